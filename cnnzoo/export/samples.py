"""Draw calibration and held-out images from whatever the user has: ImageData, a tf.data.Dataset, arrays.

Int8 calibration and parity checks both need raw uint8 images at the model's size; this module is the one place
that turns each accepted kind of data into that, and keeps the held-out batch apart from the calibration set
whenever the data allows it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnzoo._checks import received
from cnnzoo.export.runners import as_rgb_uint8, resize_uint8


@dataclass
class Samples:
    """uint8 images [N, h, w, 3] at the model size, with int labels [N] when the data had them."""

    images: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def take(self, count: int) -> "Samples":
        return Samples(self.images[:count], None if self.labels is None else self.labels[:count])

    def skip(self, count: int) -> "Samples":
        return Samples(self.images[count:], None if self.labels is None else self.labels[count:])


def calibration_and_holdout(data, *, input_size: tuple[int, int], calibration: int = 200, holdout: int = 256,
                            fit: str = "stretch", name: str = "representative_data"
                            ) -> tuple[Samples, Samples, bool]:
    """Split `data` into (calibration samples, held-out samples, whether the held-out set is disjoint).

    An ImageData calibrates on `.train` and holds out `.val` (or the tail of `.train` when it has no val). A
    dataset or array calibrates on its first `calibration` images and holds out the next `holdout`; when it
    has no images beyond the calibration set, the held-out batch reuses it and the third value is False.
    """
    from cnnzoo.data.imagedata import ImageData

    if isinstance(data, ImageData):
        train = collect(data.train, calibration + (0 if data.val is not None else holdout), input_size, name, fit)
        if data.val is not None:
            return train.take(calibration), collect(data.val, holdout, input_size, name, fit), True
        return _split(train, calibration, holdout)
    everything = collect(data, calibration + holdout, input_size, name, fit)
    return _split(everything, calibration, holdout)


def _split(samples: Samples, calibration: int, holdout: int) -> tuple[Samples, Samples, bool]:
    if len(samples) > calibration:
        return samples.take(calibration), samples.skip(calibration).take(holdout), True
    return samples, samples.take(holdout), False


def collect(data, limit: int, input_size: tuple[int, int], name: str = "representative_data",
            fit: str = "stretch") -> Samples:
    """Up to `limit` images (and labels) from a tf.data.Dataset, an array, or an (images, labels) pair."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        images, labels = [], []
        count = 0
        for element in data:
            batch, label = _split_element(element, name)
            if batch.ndim in (2, 3) and not (batch.ndim == 3 and batch.shape[-1] not in (1, 3, 4)):
                batch = batch[None]                       # unbatched dataset: one image per element
                label = None if label is None else np.reshape(label, (1,))
            images.append(_as_pixels(batch, name))
            if label is not None:
                labels.append(np.reshape(label, (-1,)))
            count += len(images[-1])
            if count >= limit:
                break
        if not images:
            raise ValueError(f"`{name}` is an empty dataset. {received(name, data)}")
        if labels and len(labels) != len(images):
            raise ValueError(f"`{name}` mixes elements with and without labels. {received(name, data)}")
        samples = Samples(np.concatenate(images)[:limit], np.concatenate(labels)[:limit] if labels else None)
    elif isinstance(data, tuple) and len(data) == 2:
        images = _as_pixels(np.asarray(data[0]), name)
        labels = np.reshape(np.asarray(data[1]), (-1,))
        if len(labels) != len(images):
            raise ValueError(f"`{name}` images and labels differ in length. "
                             f"Received: {name}=({len(images)} images, {len(labels)} labels)")
        samples = Samples(images[:limit], labels[:limit])
    elif isinstance(data, (np.ndarray, list)) or hasattr(data, "__array__"):
        samples = Samples(_as_pixels(np.asarray(data), name)[:limit])
    else:
        raise TypeError(f"`{name}` must be an ImageData, a tf.data.Dataset of images or (images, labels), or an "
                        f"image array. {received(name, type(data).__name__)}")
    if len(samples) == 0:
        raise ValueError(f"`{name}` holds no images. {received(name, data)}")
    resized = resize_uint8(samples.images, input_size, fit)
    labels = None if samples.labels is None else samples.labels.astype(np.int64)
    return Samples(resized, labels)


def _split_element(element, name):
    if isinstance(element, dict):
        raise TypeError(f"`{name}` must yield images or (images, labels), not dicts. "
                        f"Received: {name} element keys={sorted(element)}")
    if isinstance(element, (tuple, list)):
        if len(element) not in (1, 2, 3):
            raise ValueError(f"`{name}` must yield images or (images, labels). "
                             f"Received: {name} element of length {len(element)}")
        label = None if len(element) == 1 else np.asarray(element[1])
        return np.asarray(element[0]), label
    return np.asarray(element), None


def _as_pixels(images: np.ndarray, name: str) -> np.ndarray:
    if images.dtype != np.uint8:
        if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
            raise TypeError(f"`{name}` must hold images. Received: {name}.dtype={images.dtype}")
        low, high = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if low < 0 or high > 255 or (np.issubdtype(images.dtype, np.floating) and high <= 1.0):
            raise ValueError(f"`{name}` must be raw pixels in 0..255 (exported models normalize inside). "
                             f"Received: {name} value range=[{low:g}, {high:g}]")
        images = np.round(images).astype(np.uint8)
    return as_rgb_uint8(images, name)
