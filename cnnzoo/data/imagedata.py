"""`ImageData`: the one object every data source returns and every trainer, tuner and exporter takes."""
from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf


@dataclass
class ImageData:
    """Batched, prefetched train/val streams of `(uint8 images [B, H, W, 3], int32 labels [B])`.

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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"ImageData(num_classes={self.num_classes}, image_size={self.image_size}, "
                f"batch_size={self.batch_size}, skipped={len(self.skipped)})")
