"""Padding2D: zero, reflect, replicate and circular padding of feature maps.

Keras ships only `ZeroPadding2D`. Reflection mirrors the border without repeating it (PyTorch's
`ReflectionPad2d`), replication repeats the edge pixel (`ReplicationPad2d`) and circular wraps the opposite
side around (`CircularPad2d`, a torus), which suits periodic data.

Example:
    >>> x = keras.ops.reshape(keras.ops.arange(16.0), (1, 4, 4, 1))
    >>> tuple(Padding2D(1, mode="reflect")(x).shape)
    (1, 6, 6, 1)
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

from cnnzoo._checks import check_choice, received
from cnnzoo.layers._args import data_format as _data_format, to_pair as _to_pair

__all__ = ["Padding2D", "PADDING_MODES"]

PADDING_MODES = ("zero", "reflect", "replicate", "circular")


def _normalize_padding(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """int | (h, w) | ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        return _to_pair("padding", padding[0], minimum=0), _to_pair("padding", padding[1], minimum=0)
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        raise ValueError("`padding` must be an int, a pair (height, width) or a pair of pairs "
                         f"((top, bottom), (left, right)). {received('padding', padding)}")
    height, width = _to_pair("padding", padding, minimum=0)
    return (height, height), (width, width)


@keras.saving.register_keras_serializable(package="cnnzoo")
class Padding2D(keras.layers.Layer):
    """Pads the height and width of a 4-D feature map with zeros, a reflection, the edge, or a wrap-around.

    On a row `A B C D` padded by 1: zero gives `0 A B C D 0`, reflect `B A B C D C`, replicate
    `A A B C D D`, circular `D A B C D A`. Height is padded first, then width, so corners follow the
    same rule along both axes (PyTorch's semantics).

    Args:
        padding: int, `(height, width)` (symmetric), or `((top, bottom), (left, right))`; each >= 0.
        mode: str, one of `"zero"`, `"reflect"` (needs padding < size on that axis), `"replicate"`,
            `"circular"` (needs padding <= size).
        data_format: str, `"channels_last"` or `"channels_first"`; default `keras.config.image_data_format()`.
        **kwargs: keras.layers.Layer arguments (`name`, `dtype`, ...).

    Works with unknown height/width (the size check then happens when a concrete tensor arrives). Every mode
    converts to TFLite and ONNX (pad / mirror-pad / slice / tile / concat ops).

    Example:
        >>> letters = keras.ops.reshape(keras.ops.arange(1.0, 17.0), (1, 4, 4, 1))  # A..P
        >>> keras.ops.convert_to_numpy(Padding2D(1, "circular")(letters))[0, 0, :, 0]   # P M N O P M
        array([16., 13., 14., 15., 16., 13.], dtype=float32)
    """

    def __init__(self, padding: Any = 1, mode: str = "zero", data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _normalize_padding(padding)
        self.mode = check_choice("mode", mode, PADDING_MODES)
        self.data_format = _data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _axes(self) -> tuple[int, int]:
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def _check_size(self, shape) -> None:
        limits = {"reflect": ("<", lambda pad, size: pad < size), "circular": ("<=", lambda pad, size: pad <= size)}
        if self.mode not in limits:
            return
        sign, ok = limits[self.mode]
        for axis, pads in zip(self._axes, self.padding):
            size = shape[axis]
            if size is not None and not all(ok(pad, size) for pad in pads):
                raise ValueError(f"{self.mode} padding needs padding {sign} the input size on each axis; the input "
                                 f"is {size} along axis {axis}. {received('padding', self.padding)}")

    def build(self, input_shape):
        self._check_size(input_shape)

    def call(self, inputs):
        self._check_size(inputs.shape)
        if self.mode in ("zero", "reflect"):
            widths = [[0, 0]] * 4
            for axis, pads in zip(self._axes, self.padding):
                widths[axis] = list(pads)
            return ops.pad(inputs, widths, mode="constant" if self.mode == "zero" else "reflect")
        x = inputs
        for axis, (before, after) in zip(self._axes, self.padding):
            x = self._pad_axis(x, axis, before, after)
        return x

    def _pad_axis(self, x, axis: int, before: int, after: int):
        def take(start, stop):
            index = [slice(None)] * 4
            index[axis] = slice(start, stop)
            return x[tuple(index)]

        parts = []
        if self.mode == "replicate":
            reps = [1, 1, 1, 1]
            if before:
                reps[axis] = before
                parts.append(ops.tile(take(0, 1), reps))
            parts.append(x)
            if after:
                reps[axis] = after
                parts.append(ops.tile(take(-1, None), reps))
        else:  # circular: the far side wraps around
            if before:
                parts.append(take(-before, None))
            parts.append(x)
            if after:
                parts.append(take(0, after))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in zip(self._axes, self.padding):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "mode": self.mode, "data_format": self.data_format})
        return config
