"""Parameters and multiply-adds (MACs) of a Keras model, counted layer by layer.

MACs count what dominates a CNN's cost: Conv2D, DepthwiseConv2D, SeparableConv2D and Dense multiply-adds at the
model's input size (BatchNorm, activations, pooling and additions are left out, as in torchvision's and the
papers' figures).

Example:
    >>> cnnzoo.profile(cnnzoo.create_model("resnet18")).macs / 1e9
    1.81...
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from cnnzoo.introspect import all_layers


@dataclass(frozen=True)
class Profile:
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    per_layer: dict  # layer name -> MACs, for the layers that have any

    def __str__(self) -> str:
        return (f"params {self.params:,} (trainable {self.trainable_params:,}), "
                f"MACs {self.macs / 1e9:.3f} G")


def _size(variables) -> int:
    return int(sum(math.prod(v.shape) for v in variables))


def layer_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds of one layer for one image (batch dimension excluded)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return math.prod(output_shape[1:]) * kh * kw
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        out_h, out_w, out_c = output_shape[1:]
        mid = input_shape[-1] * layer.depth_multiplier
        return out_h * out_w * mid * (kh * kw + out_c)  # depthwise, then pointwise
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        in_c = input_shape[-1]
        return math.prod(output_shape[1:]) * kh * kw * in_c // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return math.prod(output_shape[1:]) * input_shape[-1]
    return 0


def profile(model: keras.Model) -> Profile:
    """Count parameters and MACs of a built Keras model; the input's height and width must be known.

    Example:
        >>> p = profile(cnnzoo.create_model("mobilenet_v2"))
        >>> round(p.macs / 1e9, 2)
        0.3
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    per_layer = {}
    for layer in all_layers(model):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense,
                                  keras.layers.SeparableConv2D)):
            continue
        in_shape, out_shape = tuple(layer.input.shape), tuple(layer.output.shape)
        if any(d is None for d in in_shape[1:] + out_shape[1:]):
            raise ValueError("MACs need a known input size; build the model with a fixed input_shape. "
                             f"Received: layer {layer.name!r} with input shape {in_shape}")
        per_layer[layer.name] = layer_macs(layer, in_shape, out_shape)
    trainable = _size(model.trainable_weights)
    non_trainable = _size(model.non_trainable_weights)
    return Profile(params=trainable + non_trainable, trainable_params=trainable, non_trainable_params=non_trainable,
                   macs=int(sum(per_layer.values())), per_layer=per_layer)
