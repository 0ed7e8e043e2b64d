"""`ImageData`: the one object every data source returns and every trainer, tuner and exporter takes."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf


@dataclass
class ImageData:
    """Batched, prefetched train/val streams of `(uint8 images [B, H, W, 3], int32 labels [B])`.

    `task` tells trainers what the labels are: "classification" (class ids [B]; `class_counts` counts
    training images) or "segmentation" (int32 masks [B, H, W] of class indices, 255 = ignore;
    `class_counts` counts training pixels). `sampling` is how `.train` draws images: "shuffle" (each image once
    per epoch) or "balanced" (see `balanced()`); `class_counts` always counts the data itself.

    Example:
        >>> data = cnnzoo.data.from_arrays(x, y)      # doctest: +SKIP
        >>> model.fit(data.train, validation_data=data.val)   # doctest: +SKIP
        >>> even = data.balanced()                    # every class equally often in .train   # doctest: +SKIP
    """

    train: tf.data.Dataset
    val: tf.data.Dataset | None
    class_names: list[str]
    image_size: tuple[int, int]
    class_counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    batch_size: int | None = None
    fingerprint: str | None = None  # of the examples (file list or array sample): resuming checks it
    task: str = "classification"    # or "segmentation"
    sampling: str = "shuffle"       # or "balanced"
    # the source's own balanced sampler (per-class streams of its files or arrays), set by from_directory/from_arrays
    resample: Callable[[int], tf.data.Dataset] | None = field(default=None, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def balanced(self, *, seed: int = 0) -> "ImageData":
        """This data with a class-balanced `.train`: every class drawn equally often, images within a class at
        random (oversampling rare classes, undersampling common ones), as many images per epoch as before.
        `.val`, `class_counts` and everything else stay as they are.

        Sources that know their files or arrays (`from_directory`, `from_arrays`) draw from per-class streams of
        them; any other stream is split by label (each class filtered from the unbatched stream).

        Example:
            >>> even = cnnzoo.data.from_directory("photos/").balanced()    # doctest: +SKIP
        """
        from cnnzoo._checks import check_int, received

        check_int("seed", seed, minimum=0)
        if self.task != "classification":
            raise ValueError("balanced() resamples classification data by its image labels; a "
                             f"{self.task} image holds several classes. Received: task={self.task!r}")
        if self.sampling == "balanced":
            return self
        if self.resample is not None:
            train = self.resample(seed)
        else:
            from cnnzoo.data.sampling import balanced_stream

            counts = [int(self.class_counts.get(name, 0)) for name in self.class_names] if self.class_counts else None
            if not counts or not sum(counts):
                raise ValueError("balanced() needs the class counts of the training data (ImageData.class_counts). "
                                 + received("class_counts", self.class_counts))
            train = balanced_stream(self.train, counts, batch_size=self.batch_size, seed=seed)
        return dataclasses.replace(self, train=train, sampling="balanced", resample=None)

    def __repr__(self) -> str:
        task = "" if self.task == "classification" else f"task={self.task!r}, "
        task += "" if self.sampling == "shuffle" else f"sampling={self.sampling!r}, "
        return (f"ImageData({task}num_classes={self.num_classes}, image_size={self.image_size}, "
                f"batch_size={self.batch_size}, skipped={len(self.skipped)})")


def files_fingerprint(root: str, *parts) -> str:
    """Fingerprint of file lists (objects with `.path` and `.label`): each part's sorted (path relative to
    `root`, label, size in bytes). Cheap (one stat per file); a copy of the folder elsewhere gives the same."""
    digest = hashlib.sha1()
    for files in parts:
        rows = []
        for f in files:
            try:
                size = os.path.getsize(f.path)
            except OSError:
                size = -1
            rows.append((os.path.relpath(f.path, root).replace(os.sep, "/"), int(f.label), size))
        digest.update(repr(sorted(rows)).encode())
    return digest.hexdigest()[:16]


def arrays_fingerprint(*arrays, full_bytes: int = 1 << 23) -> str:
    """Fingerprint of arrays: shape, dtype and every byte of a small array, an evenly strided 8-16 MiB sample of a
    large one."""
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(repr((array.shape, array.dtype.str)).encode())
        flat = array.reshape(-1).view(np.uint8)
        digest.update(flat[::max(1, flat.size // full_bytes)].tobytes())
    return digest.hexdigest()[:16]
