"""ConvNeXt's block (Liu et al. 2022), its learned per-channel layer scale, and an exportable depthwise/GELU.

`ConvNeXtBlock` is the inverted bottleneck of "A ConvNet for the 2020s": a 7x7 depthwise conv, LayerNorm, a 4x
wider pointwise layer, GELU, a pointwise layer back to the block's width, a learned per-channel scale (started
tiny, 1e-6, so each block starts close to the identity), stochastic depth, and the residual add. The pointwise
layers are `Dense` layers on the 4D map (the same linear map as a 1x1 conv), and the depthwise conv is a
`Conv2D` with `groups` equal to its channels, as keras.applications writes them, so its weight files load
(`cnnzoo.layers.blocks.Conv2D` computes it as a depthwise conv and `gelu` uses erf, so both export).

Layers: `{name}_depthwise_conv`, `{name}_layernorm`, `{name}_pointwise_conv_1`, `{name}_gelu`,
`{name}_pointwise_conv_2`, `{name}_layer_scale` (unless `layer_scale_init_value=None`), `{name}_drop` (when
`drop_rate` > 0), `{name}_add`.

Example:
    >>> x = ConvNeXtBlock(96, drop_rate=0.1)(x, name="convnext_tiny_stage_0_block_0")
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers, ops

from cnnzoo._checks import check_float, check_fraction, check_int, received
from cnnzoo.layers.blocks.core import Conv2D, drop_path  # Conv2D: grouped convs as one plain op

_SQRT_HALF = 1.0 / math.sqrt(2.0)


@keras.saving.register_keras_serializable(package="cnnzoo")
def gelu(x):
    """Exact GELU, x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))), keras' "gelu" (approximate=False).

    Keras' TensorFlow backend writes it with erfc, an op tf2onnx cannot convert; erf converts to ONNX and TFLite
    fuses this form into its GELU op (int8 included).
    """
    return 0.5 * x * (1.0 + ops.erf(x * _SQRT_HALF))


@keras.saving.register_keras_serializable(package="cnnzoo")
class LayerScale(keras.layers.Layer):
    """Multiply each channel by a learned factor (CaiT's layer scale, https://arxiv.org/abs/2103.17239).

    Args:
        init_values: float, the factors' starting value (ConvNeXt: 1e-6).
        projection_dim: int, the number of channels (the last axis).

    One weight of shape `(projection_dim,)`, as keras.applications' ConvNeXt `LayerScale` (same class name, so
    Keras 3 `.weights.h5` files key it alike).

    Example:
        >>> LayerScale(1e-6, 96)(np.ones((1, 4, 4, 96))).shape
        (1, 4, 4, 96)
    """

    def __init__(self, init_values: float, projection_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.init_values = check_float("init_values", init_values, finite=True)
        self.projection_dim = check_int("projection_dim", projection_dim, minimum=1)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.projection_dim:
            raise ValueError(f"LayerScale has {self.projection_dim} factors but the input has {input_shape[-1]} "
                             f"channels. {received('input_shape', tuple(input_shape))}")
        self.gamma = self.add_weight(name="gamma", shape=(self.projection_dim,),
                                     initializer=keras.initializers.Constant(self.init_values), trainable=True)

    def call(self, x):
        return x * self.gamma

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}


@dataclass(frozen=True)
class ConvNeXtBlock:
    """ConvNeXt block: 7x7 depthwise -> LayerNorm -> Dense 4x -> GELU -> Dense -> layer scale -> drop -> + input.

    Args:
        projection_dim: int, the block's width (input and output channels).
        drop_rate: float in [0, 1), stochastic depth of the residual branch.
        layer_scale_init_value: float > 0, the layer scale's starting value; None: no layer scale.
        kernel_size: int, the depthwise kernel (7).
        expansion: int, the first pointwise layer's width over `projection_dim` (4).
        layer_norm_epsilon: float, the LayerNorm epsilon (1e-6).
    """

    projection_dim: int
    drop_rate: float = 0.0
    layer_scale_init_value: float | None = 1e-6
    kernel_size: int = 7
    expansion: int = 4
    layer_norm_epsilon: float = 1e-6

    def __post_init__(self):
        check_int("projection_dim", self.projection_dim, minimum=1)
        check_fraction("drop_rate", self.drop_rate)
        if self.layer_scale_init_value is not None:
            check_float("layer_scale_init_value", self.layer_scale_init_value, minimum=0.0,
                        exclusive_minimum=True, finite=True)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("expansion", self.expansion, minimum=1)
        check_float("layer_norm_epsilon", self.layer_norm_epsilon, minimum=0.0, exclusive_minimum=True, finite=True)

    def __call__(self, x, name: str):
        if x.shape[-1] != self.projection_dim:
            raise ValueError(f"ConvNeXtBlock({self.projection_dim}) needs {self.projection_dim} input channels. "
                             f"{received('input channels', x.shape[-1])}")
        dim = self.projection_dim
        y = Conv2D(dim, self.kernel_size, padding="same", groups=dim, name=f"{name}_depthwise_conv")(x)
        y = layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name=f"{name}_layernorm")(y)
        y = layers.Dense(self.expansion * dim, name=f"{name}_pointwise_conv_1")(y)
        y = layers.Activation(gelu, name=f"{name}_gelu")(y)
        y = layers.Dense(dim, name=f"{name}_pointwise_conv_2")(y)
        if self.layer_scale_init_value is not None:
            y = LayerScale(self.layer_scale_init_value, dim, name=f"{name}_layer_scale")(y)
        y = drop_path(y, self.drop_rate, name=f"{name}_drop")
        return layers.Add(name=f"{name}_add")([x, y])
