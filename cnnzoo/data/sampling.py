"""Class-balanced sampling in tf.data: every class drawn equally often (`ImageData.balanced()`,
`from_directory(..., sampling="balanced")`, `from_arrays(..., sampling="balanced")`).

Each class is its own endless, reshuffled stream; `tf.data.Dataset.sample_from_datasets` picks the class of
every draw uniformly (re-randomised each epoch), and an epoch keeps the data's size. Rare classes are thereby
oversampled and common ones undersampled, the resampling alternative to `fit(class_weight="balanced")` (use one,
not both).

Example:
    >>> streams = [tf.data.Dataset.from_tensor_slices(idx) for idx in per_class_indices]   # doctest: +SKIP
    >>> epoch = mix_classes(streams, n_items=1000, seed=0)                                 # doctest: +SKIP
"""
from __future__ import annotations

import tensorflow as tf

from cnnzoo._checks import check_choice

__all__ = ["SAMPLINGS", "check_sampling", "mix_classes", "balanced_stream"]

SAMPLINGS = ("shuffle", "balanced")
_BUFFER = 1024    # per-class shuffle buffer of the fallback (decoded images)


def check_sampling(sampling: str) -> str:
    return check_choice("sampling", sampling, SAMPLINGS)


def mix_classes(class_streams: list, *, n_items: int, seed: int) -> tf.data.Dataset:
    """One epoch of `n_items` elements, the class of each drawn uniformly from the (finite) `class_streams`,
    which repeat as often as needed; other draws every epoch."""
    streams = [s.repeat() for s in class_streams]
    weights = [1.0 / len(streams)] * len(streams)
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights=weights, seed=seed,
                                                 rerandomize_each_iteration=True)
    return mixed.take(n_items)


def balanced_stream(train: tf.data.Dataset, counts: list, *, batch_size: int | None, seed: int) -> tf.data.Dataset:
    """A class-balanced version of a batched (images, labels) stream whose training set has `counts` images per
    class: each class is filtered from the unbatched stream (so the stream is read once per class and epoch)."""
    if batch_size is None:
        batch_size = int(next(iter(train))[0].shape[0])
    base = train.unbatch()
    label_rank = base.element_spec[1].shape.rank

    def label_of(y):
        return tf.cast(y if label_rank == 0 else tf.argmax(y, axis=-1), tf.int32)

    streams = []
    for k, count in enumerate(counts):
        if count > 0:
            only = base.filter(lambda x, y, k=k: tf.equal(label_of(y), k))
            streams.append(only.shuffle(min(int(count), _BUFFER), seed=seed + k, reshuffle_each_iteration=True))
    return mix_classes(streams, n_items=int(sum(counts)), seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE)
