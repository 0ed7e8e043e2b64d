"""Draw calibration and held-out images from whatever the user has: ImageData, a tf.data.Dataset, arrays.

Int8 calibration and parity checks both need raw uint8 images at the model's size; `cnnzoo.data.adapt` reads
each accepted kind of data into that, and this module keeps the held-out batch apart from the calibration set
whenever the data allows it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Samples:
    """uint8 images [N, h, w, 3] at the model size, with int labels [N] (or masks [N, h, w]) when the data had
    them."""

    images: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def take(self, count: int) -> "Samples":
        return Samples(self.images[:count], None if self.labels is None else self.labels[:count])

    def skip(self, count: int) -> "Samples":
        return Samples(self.images[count:], None if self.labels is None else self.labels[count:])


def calibration_and_holdout(data, *, input_size: tuple[int, int], calibration: int = 200, holdout: int = 256,
                            fit: str = "stretch", name: str = "representative_data", multi_hot: bool = False
                            ) -> tuple[Samples, Samples, bool]:
    """Split `data` into (calibration samples, held-out samples, whether the held-out set is disjoint).

    An ImageData calibrates on `.train` and holds out `.val` (or the tail of `.train` when it has no val). A
    dataset or array calibrates on its first `calibration` images and holds out the next `holdout`; when it
    has no images beyond the calibration set, the held-out batch reuses it and the third value is False.
    """
    from cnnzoo.data.imagedata import ImageData

    if isinstance(data, ImageData):
        train = collect(data.train, calibration + (0 if data.val is not None else holdout), input_size, name, fit,
                        multi_hot)
        if data.val is not None:
            return train.take(calibration), collect(data.val, holdout, input_size, name, fit, multi_hot), True
        return _split(train, calibration, holdout)
    everything = collect(data, calibration + holdout, input_size, name, fit, multi_hot)
    return _split(everything, calibration, holdout)


def _split(samples: Samples, calibration: int, holdout: int) -> tuple[Samples, Samples, bool]:
    if len(samples) > calibration:
        return samples.take(calibration), samples.skip(calibration).take(holdout), True
    return samples, samples.take(holdout), False


def collect(data, limit: int, input_size: tuple[int, int], name: str = "representative_data",
            fit: str = "stretch", multi_hot: bool = False) -> Samples:
    """Up to `limit` images (and labels) at `input_size` from any data argument cnnzoo.data.adapt reads: a
    tf.data.Dataset, an array, an (images, labels) pair, a folder (with the pixel rule for floats); label rows
    stay multi-hot with `multi_hot`."""
    from cnnzoo.data.adapt import read

    arrays = read(data, name=name, split="val", size=input_size, fit=fit, limit=limit, multi_hot=multi_hot)
    return Samples(arrays.images, None if arrays.labels is None else arrays.labels.astype(np.int64))
