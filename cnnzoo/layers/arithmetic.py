"""Convolution arithmetic: output sizes and receptive fields.

`conv_output_size` is the output-size formula of a convolution or pooling window along one axis;
`receptive_field` walks a Keras model and reports how many input pixels one unit of its deepest
feature map sees.

Example:
    >>> conv_output_size(32, kernel=3, stride=2, padding=1)
    16
    >>> model = keras.Sequential([keras.Input((32, 32, 3))] + [keras.layers.Conv2D(8, 3) for _ in range(5)])
    >>> receptive_field(model)
    11
"""
from __future__ import annotations

from typing import Any

import keras

from cnnzoo._checks import check_choice, check_int, received

__all__ = ["conv_output_size", "receptive_field"]


def _to_pair(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """`value` (int or pair of ints) as a (height, width) pair, each checked against `minimum`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int or a pair of ints. {received(name, value)}")
        pair = tuple(value)
    else:
        pair = (value, value)
    for item in pair:
        try:
            check_int(name, item, minimum=minimum)
        except (TypeError, ValueError) as error:
            # Re-raise with the whole value, which is what the user passed.
            raise type(error)(f"`{name}` must be an int or a pair of ints, each >= {minimum}. "
                              f"{received(name, value)}") from None
    return int(pair[0]), int(pair[1])


def _data_format(value: str | None) -> str:
    """`value`, or Keras' configured image data format when None."""
    if value is None:
        return keras.config.image_data_format()
    return check_choice("data_format", value, ("channels_last", "channels_first"))


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | str | tuple = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis.

    `floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1`.

    Args:
        size: int, input length (>= 1).
        kernel: int, window length (>= 1).
        stride: int, step between windows (>= 1).
        padding: int (each side), a pair `(before, after)`, or Keras' `"valid"` (no padding) /
            `"same"` (`ceil(size / stride)`, whatever the kernel).
        dilation: int, spacing between kernel taps (>= 1); the window spans `dilation * (kernel - 1) + 1`.

    Returns:
        int, the output length.

    Raises:
        ValueError: an argument is out of range, or the window is longer than the padded input.

    Example:
        >>> [conv_output_size(32, 3, stride=s, padding=p) for p, s in [(0, 1), (1, 1), (0, 2), (1, 2)]]
        [30, 32, 15, 16]
    """
    size = check_int("size", size, minimum=1)
    kernel = check_int("kernel", kernel, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    dilation = check_int("dilation", dilation, minimum=1)
    if isinstance(padding, str):
        check_choice("padding", padding, ("valid", "same"))
        if padding == "same":
            return -(-size // stride)
        before = after = 0
    elif isinstance(padding, (tuple, list)):
        before, after = _to_pair("padding", padding, minimum=0)
    else:
        before = after = check_int("padding", padding, minimum=0)
    span = dilation * (kernel - 1) + 1
    padded = size + before + after
    if span > padded:
        raise ValueError(f"The window ({span} wide: kernel={kernel}, dilation={dilation}) is longer than the "
                         f"padded input ({padded}). Received: size={size}, padding={padding!r}")
    return (padded - span) // stride + 1


# --------------------------------------------------------------------------------------------------
# Receptive field
# --------------------------------------------------------------------------------------------------
# A spatial tensor's state is (rf_h, rf_w, jump_h, jump_w): the receptive field of one of its units
# in input pixels, and the input-pixel distance between two neighbouring units. A window layer with
# kernel k, dilation d and stride s maps (r, j) -> (r + d*(k-1)*j, j*s). None marks a tensor whose
# units see the whole input (after global pooling, Flatten, ...).

# Layers that act on each position alone (or merge same-grid tensors): they keep the field as it is. A
# Lambda could hide anything, and keras.ops convs / pools are windows, so neither counts as pointwise.
_POINTWISE_MODULES = (
    "keras.src.layers.activations", "keras.src.layers.normalization", "keras.src.layers.regularization",
    "keras.src.layers.merging", "keras.src.layers.core", "keras.src.layers.preprocessing",
    "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core", "keras.src.ops.math",
    "cnnzoo.layers.preprocessing",
)
_NOT_POINTWISE = ("Lambda", "Conv", "DepthwiseConv", "SeparableConv", "ConvTranspose", "MaxPool", "AveragePool",
                  "AdaptiveMaxPool", "AdaptiveAveragePool", "Pool")


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """(kernel, stride, dilation) pairs of a 2-D sliding-window layer, or None."""
    conv_types = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    if isinstance(layer, conv_types):
        return tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    pool_types = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    from cnnzoo.layers import pooling  # late: pooling imports this module

    if isinstance(layer, pool_types + pooling._WINDOW_POOLINGS):
        return tuple(layer.pool_size), tuple(layer.strides), (1, 1)
    return None


def _spatial_shape(shape, data_format):
    return tuple(shape[2:4]) if data_format == "channels_first" else tuple(shape[1:3])


def _compose(state, inner):
    """State after a sub-network with transfer `inner` applied to a tensor in `state`."""
    rh, rw, jh, jw = state
    ih, iw, sh, sw = inner
    return (rh + (ih - 1) * jh, rw + (iw - 1) * jw, jh * sh, jw * sw)


def _graph_states(model) -> dict[int, tuple | None]:
    """Receptive-field state of every tensor of a functional model, from an input state of (1, 1, 1, 1)."""
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            raise ValueError(f"`model` must be built (start it with keras.Input). {received('model', model.name)}")
        model = model._functional
    if not hasattr(model, "_nodes_by_depth"):
        raise TypeError("`model` must be a functional or Sequential Keras model (subclassed models hide their "
                        f"graph). {received('model', type(model).__name__)}")
    data_format = keras.config.image_data_format()
    states: dict[int, tuple | None] = {}
    for tensor in model.inputs:
        if len(tensor.shape) != 4:
            raise ValueError(f"`model` must take images [batch, height, width, channels]; an input has shape "
                             f"{tensor.shape}. {received('model', model.name)}")
        states[id(tensor)] = (1, 1, 1, 1)
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or node.operation is None:
                continue
            layer, inputs, outputs = node.operation, node.input_tensors, node.outputs
            spatial_inputs = [t for t in inputs if states.get(id(t)) is not None]
            state = _layer_state(layer, spatial_inputs, outputs, [states[id(t)] for t in spatial_inputs],
                                 data_format, model.name)
            for out in outputs:
                states[id(out)] = state if len(out.shape) == 4 else None
    return states


def _layer_state(layer, inputs, outputs, spatial, data_format, model_name):
    if not spatial:
        return None  # every input already sees the whole image
    out_rank = len(outputs[0].shape)
    if out_rank < 4:
        return None  # Flatten, global pooling, SPP...: each unit sees everything
    merged = tuple(max(s[i] for s in spatial) for i in range(4))
    if isinstance(layer, keras.Model):
        if len(inputs) != 1:
            raise ValueError(f"receptive_field follows nested models with one input; {layer.name!r} has "
                             f"{len(inputs)}. {received('model', model_name)}")
        inner = _deepest(_graph_states(layer))
        return _compose(merged, inner)
    window = _window(layer)
    if window is not None:
        (kh, kw), (sh, sw), (dh, dw) = window
        rh, rw, jh, jw = merged
        return (rh + dh * (kh - 1) * jh, rw + dw * (kw - 1) * jw, jh * sh, jw * sw)
    name = type(layer).__name__
    from cnnzoo.layers import padding, pooling

    # Cropping and padding move the grid but do not widen any unit's view.
    if isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Cropping2D, padding.Padding2D)):
        return merged
    keras_global = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
                    keras.layers.AdaptiveAveragePooling2D, keras.layers.AdaptiveMaxPooling2D)
    if isinstance(layer, keras_global + pooling._GLOBAL_POOLINGS):
        return None  # kept dims or an adaptive grid: each unit still sees (about) everything
    module = type(layer).__module__
    same_grid = all(_spatial_shape(t.shape, data_format) == _spatial_shape(outputs[0].shape, data_format)
                    for t in inputs)
    if module.startswith(_POINTWISE_MODULES) and name not in _NOT_POINTWISE and same_grid:
        return merged
    raise ValueError(f"receptive_field cannot follow layer {layer.name!r} of type {name}: it is neither a known "
                     "sliding window (Conv2D, DepthwiseConv2D, SeparableConv2D, pooling) nor a pointwise layer "
                     f"that keeps the grid. {received('model', model_name)}")


def _deepest(states) -> tuple[int, int, int, int]:
    """Transfer (rf_h, rf_w, jump_h, jump_w) of a model's deepest (widest-seeing) spatial tensor."""
    return max((s for s in states.values() if s is not None), key=lambda s: (s[0] * s[1], s[2] * s[3]))


def receptive_field(model: keras.Model) -> int | tuple[int, int]:
    """Receptive field, in input pixels, of one unit of the model's deepest feature map.

    Walks the model graph with `r_out = r_in + dilation * (kernel - 1) * jump_in` and
    `jump_out = jump_in * stride` for every Conv2D / DepthwiseConv2D / SeparableConv2D / pooling window
    (keras and cnnzoo). Branches merge by taking the widest view (a residual block's field is its conv
    path's). Padding, cropping, normalization, activations, dropout, merges and channel gates
    (squeeze-excitation) do not widen the field; global pooling, Flatten, SPP and adaptive pooling make
    every unit see the whole input and end the walk. Nested functional / Sequential models are followed.

    Args:
        model: keras.Model, functional or Sequential, taking `[batch, height, width, channels]` images.

    Returns:
        int, the field's side in pixels; a `(height, width)` pair when the two differ.

    Raises:
        TypeError: a subclassed model (its graph is not visible).
        ValueError: a layer whose geometry is unknown (e.g. Conv2DTranspose, UpSampling2D, Resizing).

    Example:
        >>> stack = keras.Sequential([keras.Input((None, None, 3))] +
        ...                          [keras.layers.Conv2D(4, 3, padding="same") for _ in range(5)])
        >>> receptive_field(stack)
        11
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', type(model).__name__)}")
    rh, rw, _, _ = _deepest(_graph_states(model))
    return rh if rh == rw else (rh, rw)

