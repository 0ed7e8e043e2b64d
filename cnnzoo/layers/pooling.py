"""Pooling families Keras lacks: mixed, stochastic, Lp, adaptive and spatial-pyramid pooling.

Window poolings (`MixedPooling2D`, `StochasticPooling2D`, `LpPooling2D`) slide a `pool_size` window like
`keras.layers.MaxPooling2D`. Adaptive poolings fix the output grid instead, with PyTorch's window rule
`start = floor(i * H / Ho)`, `end = ceil((i + 1) * H / Ho)`; `SpatialPyramidPooling2D` concatenates several
adaptive grids into one fixed-length vector. Global variants (`GlobalMixedPooling2D`, `GlobalLpPooling2D`,
`SpatialPyramidPooling2D`) can end a backbone: `GLOBAL_POOLINGS` maps the names
`cnnzoo.create_model(..., pooling=...)` accepts to their factories.

All layers take `data_format` like Keras layers, compute in the layer's compute dtype (mixed precision
returns float16; sums that could overflow it are rescaled or summed in float32), work on inputs of unknown
height/width, save to `.keras`, and convert to TFLite and ONNX, with fixed or unknown height/width
(StochasticPooling2D converts its inference path; its training-time sampling is not meant for export).

Example:
    >>> x = keras.random.uniform((2, 9, 13, 8))
    >>> tuple(SpatialPyramidPooling2D(levels=(1, 2, 4))(x).shape)
    (2, 168)
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import keras
from keras import ops

from cnnzoo._checks import check_choice, check_float, check_int, received
from cnnzoo.layers._args import data_format as _data_format, to_pair as _to_pair
from cnnzoo.layers.arithmetic import conv_output_size

__all__ = [
    "MixedPooling2D", "StochasticPooling2D", "LpPooling2D", "AdaptiveAveragePooling2D", "AdaptiveMaxPooling2D",
    "SpatialPyramidPooling2D", "GlobalMixedPooling2D", "GlobalLpPooling2D", "GLOBAL_POOLINGS",
]

_HALF = ("float16", "bfloat16")


def _to_nhwc(x, data_format):
    return ops.transpose(x, (0, 2, 3, 1)) if data_format == "channels_first" else x


def _from_nhwc(x, data_format):
    return ops.transpose(x, (0, 3, 1, 2)) if data_format == "channels_first" else x


def _upcast(x):
    """Half-precision inputs as float32 (sums of squares overflow float16 above ~256)."""
    return ops.cast(x, "float32") if keras.backend.standardize_dtype(x.dtype) in _HALF else x


def _safe_divide(numerator, denominator):
    """numerator / denominator, and 0 where denominator is 0, with finite gradients everywhere."""
    positive = denominator > 0
    return ops.where(positive, numerator / ops.where(positive, denominator, ops.ones_like(denominator)),
                     ops.zeros_like(numerator))


def _safe_root(total, p: float):
    """total ** (1 / p) with a zero (not NaN) gradient where total is 0."""
    positive = total > 0
    root = ops.power(ops.where(positive, total, ops.ones_like(total)), 1.0 / p)
    return ops.where(positive, root, ops.zeros_like(total))


def _nonzero(x):
    return ops.where(x > 0, x, ops.ones_like(x))


def _rescaled_root(scaled_total, peak, p: float):
    """peak * scaled_total^(1/p): the p-norm of values v from sum((v / peak)^p), 0 where the values are all 0.

    Dividing by the values' max (a constant for the gradient) keeps every power in [0, 1], so a large p
    neither overflows nor underflows; m * (sum (v/m)^p)^(1/p) is the norm for every m > 0.
    """
    return _nonzero(peak) * _safe_root(scaled_total, p)


def _check_alpha(alpha):
    if alpha is None:
        return None
    return check_float("alpha", alpha, minimum=0.0, maximum=1.0)


def _check_p(p):
    p = check_float("p", p, minimum=1.0)
    if not math.isfinite(p):
        raise ValueError(f"`p` must be finite (use max pooling for p = inf). {received('p', p)}")
    return p


class _WindowPooling2D(keras.layers.Layer):
    """Shared arguments and shape arithmetic of sliding-window poolings."""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _to_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _to_pair("strides", strides)
        self.padding = check_choice("padding", padding, ("valid", "same"))
        self.data_format = _data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axes = (2, 3) if self.data_format == "channels_first" else (1, 2)
        for axis, kernel, stride in zip(axes, self.pool_size, self.strides):
            if shape[axis] is not None:
                shape[axis] = conv_output_size(shape[axis], kernel, stride, self.padding)
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                       "data_format": self.data_format})
        return config


class _LearnableAlpha:
    """Mixing weight alpha: a fixed float, or sigmoid(logit) learned in [0, 1]."""

    def _init_alpha(self, alpha, initial_alpha):
        self.alpha = _check_alpha(alpha)
        self.initial_alpha = check_float("initial_alpha", initial_alpha, minimum=0.0, maximum=1.0)
        if not 0.0 < self.initial_alpha < 1.0:
            raise ValueError(f"`initial_alpha` must be strictly between 0 and 1 (a sigmoid reaches neither). "
                             f"{received('initial_alpha', initial_alpha)}")

    def _build_alpha(self):
        if self.alpha is None:
            logit = math.log(self.initial_alpha / (1.0 - self.initial_alpha))
            self.alpha_logit = self.add_weight(name="alpha_logit", shape=(),
                                               initializer=keras.initializers.Constant(logit))

    def _alpha(self, dtype):
        if self.alpha is not None:
            return self.alpha
        return ops.cast(ops.sigmoid(self.alpha_logit), dtype)

    @property
    def alpha_value(self) -> float:
        """The current mixing weight (the learned one when alpha is None)."""
        if self.alpha is not None:
            return self.alpha
        return float(ops.convert_to_numpy(ops.sigmoid(self.alpha_logit)))


@keras.saving.register_keras_serializable(package="cnnzoo")
class MixedPooling2D(_LearnableAlpha, _WindowPooling2D):
    """alpha * max pooling + (1 - alpha) * average pooling over each window.

    Args:
        pool_size: int or (height, width), the window.
        alpha: float in [0, 1] for a fixed mix (1 = max, 0 = average), or None to learn it (kept in [0, 1]
            as the sigmoid of a trainable logit).
        strides: int or pair; default `pool_size`.
        padding: `"valid"` or `"same"` (Keras' rule; averages exclude the padding).
        data_format: `"channels_last"` or `"channels_first"`.
        initial_alpha: float in (0, 1), where a learned alpha starts.

    Converts to TFLite and ONNX. `alpha_value` reads the current alpha.

    Example:
        >>> tuple(MixedPooling2D(2, alpha=0.5)(keras.ops.ones((1, 4, 4, 3))).shape)
        (1, 2, 2, 3)
    """

    def __init__(self, pool_size=2, alpha: float | None = None, strides=None, padding="valid", data_format=None,
                 initial_alpha: float = 0.5, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)
        self._init_alpha(alpha, initial_alpha)

    def build(self, input_shape):
        self._build_alpha()

    def call(self, inputs):
        args = dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                    data_format=self.data_format)
        alpha = self._alpha(inputs.dtype)
        return alpha * ops.max_pool(inputs, **args) + (1 - alpha) * ops.average_pool(inputs, **args)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "initial_alpha": self.initial_alpha})
        return config


def _same_pads(size, kernel, stride):
    """(before, after) of Keras/TF "same" padding; ints for static sizes, tensors otherwise."""
    if isinstance(size, int):
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    total = ops.maximum(((size + stride - 1) // stride - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _every(x, axis: int, start: int, count, step: int):
    """`count` entries of `axis` from `start`, `step` apart, without a strided slice (several times slower on
    TensorFlow's CPU kernels): take a contiguous block of `count * step` entries, fold it to
    [..., count, step, ...] and keep one offset."""
    index = [slice(None)] * 4
    if step == 1:
        index[axis] = slice(start, start + count)
        return x[tuple(index)]
    offset = start % step
    index[axis] = slice(start - offset, start - offset + count * step)
    block = x[tuple(index)]
    shape = list(ops.shape(block))
    folded = ops.reshape(block, shape[:axis] + [count, step] + shape[axis + 1:])
    pick = [slice(None)] * 5
    pick[axis + 1] = offset
    return folded[tuple(pick)]


def _block_overrun(size, before, after, kernel, stride, out):
    """Rows _every's blocks read past the padded map: computed when sizes are static, else the bound."""
    if stride == 1:
        return 0
    if not all(isinstance(v, int) for v in (size, before, after, out)):
        return stride - 1
    last_block_end = max(i - i % stride for i in range(kernel)) + out * stride
    return max(0, last_block_end - (size + before + after))


def _window_slices(x, pool_size, strides, padding):
    """NHWC x -> kh*kw tensors [B, Ho, Wo, C], the k-th holding each window's k-th cell (cheap, and unlike
    keras' extract_patches, not a dense convolution)."""
    (kh, kw), (sh, sw) = pool_size, strides
    shape = ops.shape(x)
    height, width = shape[1], shape[2]
    if padding == "same":
        (top, bottom), (left, right) = _same_pads(height, kh, sh), _same_pads(width, kw, sw)
        out_h, out_w = (height + sh - 1) // sh, (width + sw - 1) // sw
    else:
        top = bottom = left = right = 0
        out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    bottom = bottom + _block_overrun(height, top, bottom, kh, sh, out_h)
    right = right + _block_overrun(width, left, right, kw, sw, out_w)
    if not all(isinstance(pad, int) and pad == 0 for pad in (top, bottom, left, right)):
        x = ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    rows = [_every(x, 1, i, out_h, sh) for i in range(kh)]
    return [_every(row, 2, j, out_w, sw) for row in rows for j in range(kw)]


@keras.saving.register_keras_serializable(package="cnnzoo")
class StochasticPooling2D(_WindowPooling2D):
    """Stochastic pooling (Zeiler & Fergus, 2013): sample one activation per window, in proportion to it.

    Training: in each window (and channel) value a_i is picked with probability a_i / sum(a); gradients flow
    to the picked value only. Inference: the expectation sum(a_i^2) / sum(a_i). Activations are expected to
    be non-negative (after ReLU); negative values count as 0. An all-zero window gives 0.

    Args:
        pool_size: int or (height, width), the window.
        strides: int or pair; default `pool_size`.
        padding: `"valid"` or `"same"` (padded cells are zeros, never picked).
        seed: int or None. Two layers built with the same seed draw the same samples (a
            `keras.random.SeedGenerator` advances at each training call).
        data_format: `"channels_last"` or `"channels_first"`.

    The inference path converts to TFLite and ONNX; the training path (random sampling) is not for export.
    https://arxiv.org/abs/1301.3557

    Example:
        >>> pool = StochasticPooling2D(2, seed=0)
        >>> x = keras.random.uniform((1, 4, 4, 3))
        >>> tuple(pool(x, training=True).shape), tuple(pool(x).shape)
        ((1, 2, 2, 3), (1, 2, 2, 3))
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", seed: int | None = None, data_format=None,
                 **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs, training=None):
        x = ops.relu(_to_nhwc(inputs, self.data_format))
        out = self._sample(x) if training else self._expectation(x)
        return _from_nhwc(ops.cast(out, inputs.dtype), self.data_format)

    def _expectation(self, x):
        x = _upcast(x)
        args = dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)
        return _safe_divide(ops.average_pool(x * x, **args), ops.average_pool(x, **args))

    def _sample(self, x):
        cells = _window_slices(x, self.pool_size, self.strides, self.padding)
        prefix, running = [], None
        for cell in cells:
            running = ops.stop_gradient(cell) if running is None else running + ops.stop_gradient(cell)
            prefix.append(running)
        uniform = keras.random.uniform(ops.shape(running), dtype=running.dtype, seed=self.seed_generator)
        threshold = uniform * running
        # The pick is the first cell whose prefix sum exceeds u * total. Walking backwards, each earlier
        # cell that qualifies overrides the later ones; the last cell is the fallback (an all-zero window).
        picked = cells[-1]
        for cell, mass in zip(reversed(cells[:-1]), reversed(prefix[:-1])):
            picked = ops.where(mass > threshold, cell, picked)
        return picked

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class LpPooling2D(_WindowPooling2D):
    """Lp pooling: (sum |x|^p)^(1/p) over each window (p=1: sum of |x|; p -> inf: max of |x|).

    PyTorch's `LPPool2d` on |x|. Computed as m * (sum (|x|/m)^p)^(1/p) with m the window's max |x|, which
    is exact and neither overflows nor underflows for large p, in float32 or float16.

    Args:
        pool_size: int or (height, width), the window.
        p: float >= 1, finite.
        strides: int or pair; default `pool_size`.
        padding: `"valid"` or `"same"` (padded cells count as 0).
        data_format: `"channels_last"` or `"channels_first"`.

    Converts to TFLite and ONNX (window cells are slices and reshapes).

    Example:
        >>> float(LpPooling2D(2, p=2)(keras.ops.ones((1, 4, 4, 1)))[0, 0, 0, 0])  # sqrt(4 * 1^2)
        2.0
    """

    def __init__(self, pool_size=2, p: float = 2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)
        self.p = _check_p(p)

    def call(self, inputs):
        cells = _window_slices(ops.abs(_to_nhwc(inputs, self.data_format)), self.pool_size, self.strides,
                               self.padding)
        peak = cells[0]
        for cell in cells[1:]:
            peak = ops.maximum(peak, cell)
        peak = ops.stop_gradient(peak)
        return _from_nhwc(_rescaled_root(sum(ops.power(cell / _nonzero(peak), self.p) for cell in cells), peak,
                                         self.p), self.data_format)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


# --------------------------------------------------------------------------------------------------
# Adaptive and pyramid pooling
# --------------------------------------------------------------------------------------------------

def _adaptive_1d(x, axis: int, out: int, reduce):
    """Reduce `axis` of x into `out` windows [floor(i*n/out), ceil((i+1)*n/out)); n may be a tensor."""
    size = ops.shape(x)[axis]
    if out == 1:
        return reduce(x, axis=axis, keepdims=True)
    pieces = []
    for i in range(out):
        index = [slice(None)] * 4
        # ceil as (a + out - 1) // out: operands stay >= 0, where ONNX's truncating Div equals floor.
        index[axis] = slice((i * size) // out, ((i + 1) * size + out - 1) // out)
        pieces.append(reduce(x[tuple(index)], axis=axis, keepdims=True))
    return ops.concatenate(pieces, axis=axis)


def _adaptive_pool(x, output_size: tuple[int, int], reduce):
    """NHWC adaptive pooling; windows are rectangles, so pooling rows then columns is exact."""
    return _adaptive_1d(_adaptive_1d(x, 1, output_size[0], reduce), 2, output_size[1], reduce)


class _AdaptivePooling2D(keras.layers.Layer):
    _reduce: Callable = None

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _to_pair("output_size", output_size)
        self.data_format = _data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        x = _to_nhwc(inputs, self.data_format)
        return _from_nhwc(_adaptive_pool(x, self.output_size, type(self)._reduce), self.data_format)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            return (input_shape[0], input_shape[1]) + self.output_size
        return (input_shape[0],) + self.output_size + (input_shape[3],)

    def get_config(self):
        config = super().get_config()
        config.update({"output_size": self.output_size, "data_format": self.data_format})
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class AdaptiveAveragePooling2D(_AdaptivePooling2D):
    """Average pooling to a fixed output grid, whatever the input size (PyTorch's `AdaptiveAvgPool2d`).

    Output cell (i, j) averages rows floor(i*H/Ho) .. ceil((i+1)*H/Ho)-1 and the matching columns; windows
    may overlap and the input may be smaller than the output. Unlike `keras.layers.AdaptiveAveragePooling2D`
    (Keras 3.15), height and width may be unknown until run time.

    Args:
        output_size: int or (height, width), the output grid.
        data_format: `"channels_last"` or `"channels_first"`.

    Converts to TFLite and ONNX (slices, means and a concat).

    Example:
        >>> tuple(AdaptiveAveragePooling2D(7)(keras.ops.ones((1, 15, 15, 4))).shape)
        (1, 7, 7, 4)
    """

    _reduce = staticmethod(ops.mean)


@keras.saving.register_keras_serializable(package="cnnzoo")
class AdaptiveMaxPooling2D(_AdaptivePooling2D):
    """Max pooling to a fixed output grid, whatever the input size (PyTorch's `AdaptiveMaxPool2d`).

    Same windows as `AdaptiveAveragePooling2D`. Unlike `keras.layers.AdaptiveMaxPooling2D` (Keras 3.15,
    which needs a static size and kills the process with SIGFPE on a 1x1 input and output 2), any
    input size >= 1, known or not, works.

    Args:
        output_size: int or (height, width), the output grid.
        data_format: `"channels_last"` or `"channels_first"`.

    Converts to TFLite and ONNX (slices, max reductions and a concat).

    Example:
        >>> tuple(AdaptiveMaxPooling2D((2, 3))(keras.ops.ones((1, 5, 5, 4))).shape)
        (1, 2, 3, 4)
    """

    _reduce = staticmethod(ops.max)


def _check_levels(levels) -> tuple[int, ...]:
    if isinstance(levels, int) or not isinstance(levels, Iterable):
        raise TypeError(f"`levels` must be a sequence of grid sizes such as (1, 2, 4). {received('levels', levels)}")
    levels = tuple(levels)
    if not levels:
        raise ValueError(f"`levels` must not be empty. {received('levels', levels)}")
    for level in levels:
        try:
            check_int("levels", level, minimum=1)
        except (TypeError, ValueError) as error:
            raise type(error)(f"`levels` must hold ints >= 1. {received('levels', levels)}") from None
    return tuple(int(level) for level in levels)


@keras.saving.register_keras_serializable(package="cnnzoo")
class SpatialPyramidPooling2D(keras.layers.Layer):
    """Spatial pyramid pooling (SPP-net, He et al. 2014): a fixed-length vector from any input size.

    Pools the map onto an n x n grid for each n in `levels` (adaptive windows, so any height and width >= 1
    work, known or not) and concatenates the grids flattened as (level, row, column, channel):
    `levels=(1, 2, 4)` gives 1 + 4 + 16 = 21 * C values.

    Args:
        levels: sequence of ints >= 1, the grid sizes.
        mode: `"max"` (the paper's) or `"avg"`.
        data_format: `"channels_last"` or `"channels_first"`.

    Converts to TFLite and ONNX. https://arxiv.org/abs/1406.4729

    Example:
        >>> tuple(SpatialPyramidPooling2D((1, 2, 4))(keras.ops.ones((2, 1, 1, 8))).shape)
        (2, 168)
    """

    def __init__(self, levels=(1, 2, 4), mode: str = "max", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.levels = _check_levels(levels)
        self.mode = check_choice("mode", mode, ("max", "avg"))
        self.data_format = _data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        x = _to_nhwc(inputs, self.data_format)
        reduce = ops.max if self.mode == "max" else ops.mean
        channels = x.shape[-1] if x.shape[-1] is not None else ops.shape(x)[-1]
        pooled = [ops.reshape(_adaptive_pool(x, (n, n), reduce), (-1, n * n * channels)) for n in self.levels]
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[1] if self.data_format == "channels_first" else input_shape[3]
        size = None if channels is None else sum(n * n for n in self.levels) * channels
        return (input_shape[0], size)

    def get_config(self):
        config = super().get_config()
        config.update({"levels": self.levels, "mode": self.mode, "data_format": self.data_format})
        return config


# --------------------------------------------------------------------------------------------------
# Global poolings for heads
# --------------------------------------------------------------------------------------------------

class _GlobalPooling2D(keras.layers.Layer):
    def __init__(self, keepdims: bool = False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, bool):
            raise TypeError(f"`keepdims` must be a bool. {received('keepdims', keepdims)}")
        self.keepdims = keepdims
        self.data_format = _data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _axes(self):
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.keepdims:
            for axis in self._axes:
                shape[axis] = 1
            return tuple(shape)
        return tuple(d for i, d in enumerate(shape) if i not in self._axes)

    def get_config(self):
        config = super().get_config()
        config.update({"keepdims": self.keepdims, "data_format": self.data_format})
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class GlobalMixedPooling2D(_LearnableAlpha, _GlobalPooling2D):
    """alpha * global max + (1 - alpha) * global average, per channel; alpha fixed or learned in [0, 1].

    Args:
        alpha: float in [0, 1], or None to learn it (sigmoid of a trainable logit).
        keepdims: bool, keep the spatial axes as size 1.
        data_format: `"channels_last"` or `"channels_first"`.
        initial_alpha: float in (0, 1), where a learned alpha starts.

    Converts to TFLite and ONNX.

    Example:
        >>> tuple(GlobalMixedPooling2D()(keras.ops.ones((2, 7, 7, 16))).shape)
        (2, 16)
    """

    def __init__(self, alpha: float | None = None, keepdims: bool = False, data_format=None,
                 initial_alpha: float = 0.5, **kwargs):
        super().__init__(keepdims=keepdims, data_format=data_format, **kwargs)
        self._init_alpha(alpha, initial_alpha)

    def build(self, input_shape):
        self._build_alpha()

    def call(self, inputs):
        alpha = self._alpha(inputs.dtype)
        return (alpha * ops.max(inputs, axis=self._axes, keepdims=self.keepdims)
                + (1 - alpha) * ops.mean(inputs, axis=self._axes, keepdims=self.keepdims))

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "initial_alpha": self.initial_alpha})
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class GlobalLpPooling2D(_GlobalPooling2D):
    """(sum over the whole map of |x|^p)^(1/p) per channel; p=2 is global L2 pooling.

    Args:
        p: float >= 1, finite.
        keepdims: bool, keep the spatial axes as size 1.
        data_format: `"channels_last"` or `"channels_first"`.

    Converts to TFLite and ONNX.

    Example:
        >>> keras.ops.convert_to_numpy(GlobalLpPooling2D(p=2)(keras.ops.ones((1, 3, 3, 2))))  # sqrt(9)
        array([[3., 3.]], dtype=float32)
    """

    def __init__(self, p: float = 2, keepdims: bool = False, data_format=None, **kwargs):
        super().__init__(keepdims=keepdims, data_format=data_format, **kwargs)
        self.p = _check_p(p)

    def call(self, inputs):
        x = ops.abs(inputs)
        peak = ops.stop_gradient(ops.max(x, axis=self._axes, keepdims=True))
        out = _rescaled_root(ops.sum(ops.power(x / _nonzero(peak), self.p), axis=self._axes, keepdims=True), peak,
                             self.p)
        return out if self.keepdims else ops.squeeze(out, axis=self._axes)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


GLOBAL_POOLINGS: dict[str, Callable[[str], keras.layers.Layer]] = {
    "spp": lambda name: SpatialPyramidPooling2D(levels=(1, 2, 4), mode="max", name=name),
    "mixed": lambda name: GlobalMixedPooling2D(alpha=None, name=name),
    "lp": lambda name: GlobalLpPooling2D(p=2, name=name),
}
"""Pooling name -> factory(layer_name) of a layer mapping [B, H, W, C] to [B, D] for any H, W >= 1."""

# Used by receptive_field: which of our layers slide a window, and which see the whole map.
_WINDOW_POOLINGS = (MixedPooling2D, StochasticPooling2D, LpPooling2D)
_GLOBAL_POOLINGS = (AdaptiveAveragePooling2D, AdaptiveMaxPooling2D, SpatialPyramidPooling2D, GlobalMixedPooling2D,
                    GlobalLpPooling2D)
