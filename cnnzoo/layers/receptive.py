"""Receptive fields: how many input pixels one unit of a model's deepest feature map sees.

`receptive_field` walks a Keras model's graph through keras' and cnnzoo's convolutions, poolings and paddings.

Example:
    >>> model = keras.Sequential([keras.Input((32, 32, 3))] + [keras.layers.Conv2D(8, 3) for _ in range(5)])
    >>> receptive_field(model)
    11
"""
from __future__ import annotations

import keras

from cnnzoo._checks import received
from cnnzoo.layers import padding, pooling

__all__ = ["receptive_field"]

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

