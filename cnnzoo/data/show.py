"""`show_batch`: a matplotlib grid of images and their labels, before and after augmentation."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_int
from cnnzoo.data.imagedata import ImageData


def _take(data: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` (images, labels) as numpy from an ImageData, a dataset (batched or not) or an (x, y) pair."""
    if isinstance(data, ImageData):
        data = data.train
    if isinstance(data, tf.data.Dataset):
        images, labels = [], []
        element = data.element_spec
        batched = isinstance(element, tuple) and element[0].shape.rank == 4
        for x, y in (data if batched else data.batch(n)):
            images.append(np.asarray(x))
            labels.append(np.asarray(y))
            if sum(len(i) for i in images) >= n:
                break
        if not images:
            raise ValueError("`data` is empty: there is nothing to show.")
        return np.concatenate(images)[:n], np.concatenate(labels)[:n]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return np.asarray(data[0])[:n], np.asarray(data[1])[:n]
    raise TypeError("`data_or_dataset` must be an ImageData, a tf.data.Dataset of (images, labels) or an "
                    f"(images, labels) pair. Received: data_or_dataset={type(data).__name__}")


def _label_text(label: np.ndarray, class_names: Sequence[str] | None) -> str:
    def name(i):
        return class_names[i] if class_names is not None and i < len(class_names) else str(i)

    label = np.asarray(label)
    if label.ndim == 0:
        return name(int(label))
    top = np.argsort(label)[::-1][:2]           # soft labels (MixUp/CutMix): the two largest weights
    parts = [f"{name(int(i))} {label[i]:.2f}" for i in top if label[i] > 0.005]
    return " / ".join(parts)


def show_batch(data_or_dataset: Any, n: int = 16, *, class_names: Sequence[str] | None = None,
               augment: Any = None, seed: int | None = 0, ncols: int | None = None, size: float = 2.0):
    """Plot `n` images with their class names; with `augment`, each image is followed by its augmented copy.

    Args:
        data_or_dataset: ImageData (its .train), a tf.data.Dataset of (images, labels) batched or not (also the
            output of `augment_dataset`, whose soft labels show as "cat 0.70 / dog 0.30"), or (images, labels).
        n: int, how many images.
        class_names: names for the label ids (taken from an ImageData when not given).
        augment: None, a policy name, a list of steps or an augmentation layer (see `augmentation`).
        seed: seed for `augment`.
        ncols: columns of the grid (default: about square).
        size: inches per image.

    Returns:
        matplotlib.figure.Figure.

    Example:
        >>> fig = cnnzoo.data.show_batch(data, n=8, augment="standard")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    from cnnzoo.data.augment import Augmentation, augmentation

    check_int("n", n, minimum=1)
    if class_names is None and isinstance(data_or_dataset, ImageData):
        class_names = data_or_dataset.class_names
    images, labels = _take(data_or_dataset, n)
    panels = [(image, _label_text(label, class_names)) for image, label in zip(images, labels)]
    if augment is not None:
        layer = augment if isinstance(augment, Augmentation) else augmentation(augment, seed=seed)
        seed_tensor = tf.constant([0 if seed is None else seed, 0], tf.int64)
        augmented = layer.augment_images(tf.constant(images), seed_tensor).numpy()
        panels = [panel for pair in zip(panels, [(a, f"{t} (aug)") for a, (_, t) in zip(augmented, panels)])
                  for panel in pair]
    count = len(panels)
    ncols = ncols or (2 * math.ceil(math.sqrt(count / 2)) if augment is not None else math.ceil(math.sqrt(count)))
    nrows = math.ceil(count / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, title) in zip(axes.flat, panels):
        image = np.asarray(image, np.float32)
        ax.imshow(np.clip(image, 0, 255).astype(np.uint8).squeeze())
        ax.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure
