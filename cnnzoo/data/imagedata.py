"""`ImageData`: the one object every data source returns and every trainer, tuner and exporter takes."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf


@dataclass
class ImageData:
    """Batched, prefetched train/val streams of `(uint8 images [B, H, W, 3], int32 labels [B])`.

    `task` tells trainers what the labels are: "classification" (class ids [B]; `class_counts` counts
    training images) or "segmentation" (int32 masks [B, H, W] of class indices, 255 = ignore;
    `class_counts` counts training pixels).

    Example:
        >>> data = cnnzoo.data.from_arrays(x, y)      # doctest: +SKIP
        >>> model.fit(data.train, validation_data=data.val)   # doctest: +SKIP
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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        task = "" if self.task == "classification" else f"task={self.task!r}, "
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
