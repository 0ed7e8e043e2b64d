"""Class imbalance: per-class loss weights from class counts (`fit(..., class_weight="balanced")`).

The "balanced" rule is scikit-learn's `compute_class_weight("balanced")`: class k weighs
n_samples / (n_classes * count_k), so every class contributes the same total weight and the mean weight over the
training set is 1 (the learning rate keeps its meaning). Counts come from `ImageData.class_counts` (images per class;
pixels per class for segmentation data) or, for a bare stream, from one pass over its labels.

Example:
    >>> balanced_weights({"cat": 90, "dog": 10}, ["cat", "dog"])
    {0: 0.5555555555555556, 1: 5.0}
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnzoo._checks import received

__all__ = ["check_class_weight", "balanced_weights", "resolve_class_weight", "count_labels"]

CLASS_WEIGHT_MODES = ("balanced",)


def check_class_weight(class_weight):
    """None, "balanced", or a {class index or name: weight > 0} dict; anything else raises naming it."""
    if class_weight is None or (isinstance(class_weight, str) and class_weight in CLASS_WEIGHT_MODES):
        return class_weight
    if isinstance(class_weight, str):
        raise ValueError(f"`class_weight` must be None, 'balanced' or a dict. {received('class_weight', class_weight)}")
    if not isinstance(class_weight, dict) or not class_weight:
        raise TypeError("`class_weight` must be None, 'balanced' or a non-empty dict {class index or name: weight}. "
                        + received("class_weight", class_weight))
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (numbers.Integral, str)):
            raise TypeError(f"`class_weight` keys are class indices or names. Received: class_weight key {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"`class_weight` values must be finite numbers >= 0. "
                             f"Received: class_weight[{key!r}]={value!r}")
    return class_weight


def balanced_weights(counts: dict, class_names) -> dict:
    """{class index: n_samples / (n_classes * count)} for `counts` ({class name: count})."""
    names = [str(c) for c in class_names]
    values = np.asarray([float(counts.get(name, 0)) for name in names])
    empty = [name for name, n in zip(names, values) if n <= 0]
    if empty:
        raise ValueError(f"class_weight='balanced' needs training examples of every class; {empty} have none. "
                         "Give explicit weights, or leave such classes out of the data. "
                         "Received: class_weight='balanced'")
    weights = values.sum() / (len(values) * values)
    return {i: float(w) for i, w in enumerate(weights)}


def count_labels(stream, num_classes: int) -> dict:
    """{class index: count} over a stream of (images, labels) batches: int labels, one-hot/multi-hot rows, or masks
    (pixels; 255 = ignore is skipped)."""
    counts = np.zeros(num_classes, np.float64)
    for batch in stream:
        labels = np.asarray(batch[1])
        if labels.ndim == 2 and labels.shape[-1] == num_classes and labels.dtype.kind == "f":
            counts += labels.sum(axis=0)
        else:
            flat = labels.reshape(-1).astype(np.int64)
            flat = flat[(flat >= 0) & (flat < num_classes)]
            counts += np.bincount(flat, minlength=num_classes)
    return {i: float(c) for i, c in enumerate(counts)}


def resolve_class_weight(class_weight, class_names, *, counts: dict | None, stream=None) -> dict | None:
    """{class index: weight} for `fit`: "balanced" from `counts` ({name: count}; counted from `stream` when None),
    or a user dict keyed by index or name (classes left out weigh 1)."""
    if class_weight is None:
        return None
    names = [str(c) for c in class_names]
    if class_weight == "balanced":
        if not counts:
            if stream is None:
                raise ValueError("class_weight='balanced' needs class counts: give ImageData (it counts its "
                                 "classes) or a labelled stream. Received: class_weight='balanced'")
            counts = {names[i]: c for i, c in count_labels(stream, len(names)).items()}
        return balanced_weights(counts, names)
    weights = {i: 1.0 for i in range(len(names))}
    for key, value in class_weight.items():
        if isinstance(key, str):
            if key not in names:
                raise ValueError(f"`class_weight` names class {key!r}, which is not one of {names}. "
                                 + received("class_weight", class_weight))
            index = names.index(key)
        else:
            index = int(key)
            if not 0 <= index < len(names):
                raise ValueError(f"`class_weight` has class index {index}; the model has {len(names)} classes. "
                                 + received("class_weight", class_weight))
        weights[index] = float(value)
    return weights
