"""Test-time augmentation (TTA): average a model's probabilities over transformed views of each image.

Views: "flip" (the horizontal mirror) and "crops" (the four corner crops and the centre crop of 87.5 % of the
side, resized back to the input size; with "flip" too, their mirrors as well: torchvision's ten-crop at the
input size). A segmenter's per-pixel maps are flipped back before averaging; crops are for classifiers. Softmax,
sigmoid and logits heads all average probabilities (a logits head's softmax). The same function runs inside
`cnnzoo.evaluate(..., tta=...)` and inside an exported graph (`cnnzoo.export(..., tta="flip")`), so evaluation and
deployment average the same way.

TTA assumes the classes survive the views: a mirrored street scene is still a street, a mirrored 2 is no 2.

Example:
    >>> cnnzoo.evaluate(model, data, tta=("flip", "crops")).accuracy      # doctest: +SKIP
"""
from __future__ import annotations

import weakref

import tensorflow as tf

from cnnzoo._checks import received
from cnnzoo.options import TTA_VIEWS

__all__ = ["check_tta", "average_views", "CROP_FRACTION"]

CROP_FRACTION = 0.875


def check_tta(tta, *, allowed=TTA_VIEWS, name: str = "tta", per_pixel: bool = False) -> tuple:
    """None (or no views) -> (); "flip" or a sequence of views -> the views, in TTA_VIEWS order; anything else
    raises."""
    if tta is None or (isinstance(tta, (tuple, list)) and len(tta) == 0):
        return ()
    views = (tta,) if isinstance(tta, str) else tta
    if not isinstance(views, (tuple, list)) or not all(isinstance(v, str) for v in views):
        raise ValueError(f"`{name}` must be None, a view name or a sequence of them ({', '.join(allowed)}). "
                         + received(name, tta))
    unknown = [v for v in views if v not in allowed]
    if unknown:
        raise ValueError(f"`{name}` views must be among {allowed}. {received(name, tta)}")
    if per_pixel and "crops" in views:
        raise ValueError("A segmenter's TTA takes 'flip' only: crops would have to be pasted back per pixel. "
                         + received(name, tta))
    return tuple(v for v in TTA_VIEWS if v in views)


def _crop_boxes():
    low, high = 0.0, CROP_FRACTION
    shift = 1.0 - CROP_FRACTION
    middle = shift / 2
    return [[low, low, high, high], [low, shift, high, 1.0], [shift, low, 1.0, high], [shift, shift, 1.0, 1.0],
            [middle, middle, middle + CROP_FRACTION, middle + CROP_FRACTION]]


def average_views(probabilities_of, images, views: tuple, *, per_pixel: bool = False):
    """The mean of `probabilities_of(view)` over the original images and their `views`.

    `probabilities_of`: float images [B, H, W, 3] -> probabilities ([B, K], or [B, H, W, K] with `per_pixel`).
    All views of a batch go through one call (the batch grows by the number of views).
    """
    images = tf.cast(images, tf.float32)
    if not views:
        return probabilities_of(images)
    batch = [images]
    if "flip" in views:
        batch.append(tf.reverse(images, axis=[2]))
    if "crops" in views:
        size = tf.shape(images)[1:3]
        n = tf.shape(images)[0]
        for box in _crop_boxes():
            boxes = tf.tile(tf.constant([box], tf.float32), [n, 1])
            crop = tf.image.crop_and_resize(images, boxes, tf.range(n), size)
            batch.append(crop)
            if "flip" in views:
                batch.append(tf.reverse(crop, axis=[2]))
    outputs = probabilities_of(tf.concat(batch, axis=0))
    parts = tf.split(outputs, len(batch), axis=0)
    if per_pixel and "flip" in views:
        parts[1] = tf.reverse(parts[1], axis=[2])
    return tf.add_n(parts) / float(len(parts))


_TRACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def traced(model, body, *args):
    """`body(model, images, *args)` as a tf.function kept per (model, body, args) while the model lives.

    Evaluating the same model again (a loop over views, seeds or epochs) reuses its traces instead of tracing a new
    closure each call, which TensorFlow reports as retracing. `body` must be a module-level function: the cache
    holds the model weakly, so it is freed with the model.

    Example:
        >>> infer = traced(model, _mean_probabilities, ("flip",))      # doctest: +SKIP
        >>> probabilities = infer(images)                              # doctest: +SKIP
    """
    functions = _TRACED.setdefault(model, {})
    key = (body, *args)
    if key not in functions:
        ref = weakref.ref(model)
        functions[key] = tf.function(lambda images: body(ref(), images, *args), reduce_retracing=True)
    return functions[key]
