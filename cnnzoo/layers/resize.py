"""Resizing a feature map to another tensor's height and width when sizes are unknown until run time.

`keras.ops.image.resize` needs a static output size; these take it from a reference tensor, with plain ops
(arange, take, multiply) that convert to TFLite (int8 included) and ONNX.
`resize_bilinear_to` equals `tf.image.resize(..., "bilinear")` (half-pixel centres, no antialiasing).

Example:
    >>> logits = ResizeLike("bilinear", name="upsample")([logits, images])   # back to the input's size
"""
from __future__ import annotations

import keras
from keras import ops

from cnnzoo._checks import check_choice

__all__ = ["ResizeLike", "resize_nearest_to", "resize_bilinear_to", "crop_to", "INTERPOLATIONS"]

INTERPOLATIONS = ("nearest", "bilinear", "crop")


def resize_nearest_to(x, like):
    """`x` (N, h, w, C) resized by nearest neighbour (source row floor(i * h / H)) to `like`'s height and width.

    For an exact doubling this is `UpSampling2D(2)`; an odd target drops the last source row, a larger one
    repeats edge rows.
    """
    source, target = ops.shape(x), ops.shape(like)
    rows = ops.floor_divide(ops.arange(target[1]) * source[1], target[1])
    cols = ops.floor_divide(ops.arange(target[2]) * source[2], target[2])
    return ops.take(ops.take(x, rows, axis=1), cols, axis=2)


def crop_to(x, like):
    """`x` (N, h, w, C) cut to `like`'s height and width from the top-left corner; where `x` is smaller, its last
    row/column repeats.

    This is how a map upsampled by a factor s from a stride-s "same"-padded feature map lines up with the input:
    cell i covers input pixels s*i .. s*i + s - 1, so a 65-pixel input (17 cells, 68 pixels) keeps rows 0..64.
    """
    source, target = ops.shape(x), ops.shape(like)
    rows = ops.minimum(ops.arange(target[1]), source[1] - 1)
    cols = ops.minimum(ops.arange(target[2]), source[2] - 1)
    return ops.take(ops.take(x, rows, axis=1), cols, axis=2)


def _bilinear_axis(x, size_in, size_out, axis):
    scale = ops.cast(size_in, "float32") / ops.cast(size_out, "float32")
    position = (ops.cast(ops.arange(size_out), "float32") + 0.5) * scale - 0.5
    position = ops.clip(position, 0.0, ops.cast(size_in - 1, "float32"))
    low = ops.floor(position)
    weight = ops.cast(position - low, x.dtype)
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, size_in - 1)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.reshape(weight, shape)
    return ops.take(x, low, axis=axis) * (1 - weight) + ops.take(x, high, axis=axis) * weight


def resize_bilinear_to(x, like):
    """`x` (N, h, w, C) resized bilinearly (half-pixel centres) to `like`'s height and width."""
    source, target = ops.shape(x), ops.shape(like)
    x = _bilinear_axis(x, source[1], target[1], axis=1)
    return _bilinear_axis(x, source[2], target[2], axis=2)


@keras.saving.register_keras_serializable(package="cnnzoo")
class ResizeLike(keras.layers.Layer):
    """Called on `[x, like]`: `x` resized to `like`'s height and width ("nearest", "bilinear", or "crop": cut
    from the top-left, see `crop_to`)."""

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)

    def call(self, inputs):
        x, like = inputs
        resize = {"bilinear": resize_bilinear_to, "nearest": resize_nearest_to, "crop": crop_to}[self.interpolation]
        return resize(x, like)

    def compute_output_shape(self, input_shape):
        x, like = input_shape
        return (x[0], like[1], like[2], x[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}
