"""What validation reads: the runner under test, and images (with labels when there are any) from any source.

Every check runs on uint8 RGB images at the model's input size, so pixel statistics describe what the model
sees and a folder of mixed-size photos stacks into one array.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from cnnzoo._checks import check_choice, check_int, received


@dataclasses.dataclass
class Images:
    """uint8 images [N, H, W, 3], int labels [N] in the model's class order (or None), and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None = None
    paths: list | None = None
    skipped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def runner_for(source):
    """The runner under test: a Runner as is, else `cnnzoo.export.load_runner(source)`."""
    from cnnzoo.export.runners import Runner, load_runner

    return source if isinstance(source, Runner) else load_runner(source)


def describe(runner) -> dict:
    return {"format": runner.format, "path": runner.path,
            "input_size": None if runner.input_size is None else list(runner.input_size),
            "class_names": runner.class_names}


def images_from(data, *, name: str, split: str = "val", max_images: int | None = None, size=None,
                class_names=None, fit: str = "stretch") -> Images:
    """Read `data` into an `Images` (with `cnnzoo.data.adapt.read`, the reader of every data argument).

    Args:
        data: ImageData (its `split`), a folder (one subfolder per class; `train/` `val/` layouts use
            `split`), a tf.data.Dataset of images or (images, labels), batched or not, an (images, labels)
            pair, or images [N, H, W, C] (uint8, or floats by cnnzoo's pixel rule).
        name: str, the argument name used in errors.
        split: "train" or "val".
        max_images: int or None, keep at most this many: a seeded uniform sample (classes keep their shares,
            order is kept). A stream is read to its end to draw it.
        size: (height, width) to resize to, or None to keep the images as they are.
        fit: how images of another aspect ratio are fitted to `size` ("stretch", "crop", "pad"): pass the
            runner's own `fit`, so validation sees the pixels the deployed model sees.
        class_names: the model's class names: labels are put in this order.
    """
    from cnnzoo.data.adapt import read

    check_choice("split", split, ("train", "val"))
    if max_images is not None:
        check_int("max_images", max_images, minimum=1)
    arrays = read(data, name=name, split=split, size=size, fit=fit, sample=max_images)
    notes: list = []
    labels = arrays.labels
    if labels is not None:
        labels = _model_labels(labels, arrays.class_names, class_names, name, notes)
    return Images(images=arrays.images, labels=labels, paths=arrays.paths, skipped=arrays.skipped, notes=notes)


def _model_labels(labels: np.ndarray, data_names, model_names, name: str, notes: list) -> np.ndarray:
    """Labels as indices into the model's classes: by name where the names say, else by index."""
    if labels.dtype.kind in "USO":
        if model_names is None:
            raise ValueError(f"`{name}` has string labels but the model has no class names. "
                             f"{received(name + ' labels', labels[:5].tolist())}")
        lookup = {c: i for i, c in enumerate(model_names)}
        unknown = sorted({str(v) for v in labels.tolist()} - set(lookup))
        if unknown:
            raise ValueError(f"`{name}` has labels the model does not know: {unknown[:10]}. "
                             f"{received('class_names', model_names)}")
        return np.array([lookup[str(v)] for v in labels.tolist()], np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0)):
            raise TypeError(f"`{name}` labels must be class ids or names. "
                            f"{received(name + ' labels.dtype', str(labels.dtype))}")
    labels = labels.astype(np.int64)
    if data_names is not None and model_names is not None and list(data_names) != list(model_names):
        if set(data_names) <= set(model_names):
            order = np.array([list(model_names).index(c) for c in data_names])
            labels = order[labels]
        else:
            notes.append(f"{name}: class names {list(data_names)[:5]}... differ from the model's "
                         f"{list(model_names)[:5]}...; labels matched by index")
    num_classes = None if model_names is None else len(model_names)
    if labels.size and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
        raise ValueError(f"`{name}` labels must lie in [0, {num_classes}). "
                         f"Received: {name} labels in [{labels.min()}, {labels.max()}]")
    return labels
