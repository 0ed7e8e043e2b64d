"""MobileNetV3 blocks (Howard et al. 2019): hard-swish and hard-sigmoid, its squeeze-and-excite, its inverted residual.

Hard-swish and hard-sigmoid are computed as keras.applications' MobileNetV3 computes them, with the same three
float ops in the same order (no custom op), so the graph converts to TFLite int8 and ONNX:
    hard_sigmoid(x) = relu6(x + 3) * (1 / 6)      `Activation(hard_sigmoid_gate)`: add, relu6, multiply
    hard_swish(x)   = x * relu6(x + 3) / 6        `Activation("hard_swish")`, keras' own activation

Example:
    >>> inputs = keras.Input((32, 32, 16))
    >>> x = InvertedResidualV3(24, expansion=4, kernel_size=5, strides=2, se_ratio=0.25,
    ...                        activation="hard_swish")(inputs, prefix="expanded_conv_1_")
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from cnnzoo._checks import check_choice, check_float, check_fraction, check_int
from cnnzoo.layers.blocks.core import CONV_INIT, ConvBNAct, drop_path
from cnnzoo.scaling import make_divisible

ACTIVATIONS = ("relu", "hard_swish")


def activation(x, kind: str, name: str):
    """keras.applications' MobileNetV3 nonlinearities: `ReLU()` for "relu", `Activation("hard_swish")`."""
    check_choice("activation", kind, ACTIVATIONS)
    if kind == "relu":
        return layers.ReLU(name=name)(x)
    return layers.Activation("hard_swish", name=name)(x)


@keras.saving.register_keras_serializable(package="cnnzoo")
def hard_sigmoid_gate(x):
    """relu6(x + 3) * (1 / 6): keras.applications' MobileNetV3 gate, the same three ops in the same order."""
    return ops.relu6(x + 3.0) * (1.0 / 6.0)


def hard_sigmoid(x, name: str):
    """MobileNetV3's hard-sigmoid as one weightless layer `{name}` (`Activation(hard_sigmoid_gate)`).

    Keras' own "hard_sigmoid" activation is relu6(x + 3) / 6 in another order (last bits differ), so it is not used.
    """
    return layers.Activation(hard_sigmoid_gate, name=name)(x)


@dataclass(frozen=True)
class SqueezeExciteV3:
    """MobileNetV3's squeeze-and-excitation: global average -> 1x1 conv + ReLU -> 1x1 conv -> hard-sigmoid gate.

    keras.applications' names: `{prefix}squeeze_excite_avg_pool` (keepdims), `_conv` (`reduced_filters`, bias),
    `_relu`, `_conv_1` (back to the input width), `_hard_sigmoid` (see `hard_sigmoid`), `_mul`.
    """

    reduced_filters: int

    def __post_init__(self):
        check_int("reduced_filters", self.reduced_filters, minimum=1)

    def __call__(self, x, prefix: str):
        p = f"{prefix}squeeze_excite_"
        se = layers.GlobalAveragePooling2D(keepdims=True, name=f"{p}avg_pool")(x)
        se = layers.Conv2D(self.reduced_filters, 1, padding="same", kernel_initializer=CONV_INIT,
                           name=f"{p}conv")(se)
        se = layers.ReLU(name=f"{p}relu")(se)
        se = layers.Conv2D(x.shape[-1], 1, padding="same", kernel_initializer=CONV_INIT, name=f"{p}conv_1")(se)
        se = hard_sigmoid(se, name=f"{p}hard_sigmoid")
        return layers.Multiply(name=f"{p}mul")([x, se])


@dataclass(frozen=True)
class InvertedResidualV3:
    """MobileNetV3's inverted residual: [expand 1x1] -> depthwise k x k -> [SE] -> project 1x1 [+ identity].

    keras.applications' rounding: the expansion is `make_divisible(filters_in * expansion)` channels (no expand
    conv when `expansion == 1`, keras' first block), SE squeezes to `make_divisible(expanded * se_ratio)`.
    `activation` is "relu" or "hard_swish" (after expand and depthwise; SE's inner one is always ReLU). Layer
    names follow keras: `{prefix}expand`, `_expand_bn`, `_depthwise_pad` (stride 2: keras' asymmetric pad),
    `_depthwise`, `_depthwise_bn`, `_squeeze_excite_*`, `_project`, `_project_bn`, `_add`; activations are
    `{prefix}expand_{activation}` and `{prefix}depthwise_{activation}`. When the identity is added, `drop_rate`
    is stochastic depth on the residual branch (`{prefix}drop`; no layer at 0).
    """

    filters: int
    expansion: float = 1.0
    kernel_size: int = 3
    strides: int = 1
    se_ratio: float | None = None
    activation: str = "relu"
    drop_rate: float = 0.0
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.999

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_float("expansion", self.expansion, minimum=1.0, finite=True)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("strides", self.strides, minimum=1, maximum=2)
        if self.se_ratio is not None:
            check_float("se_ratio", self.se_ratio, minimum=0.0, maximum=1.0)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_fraction("drop_rate", self.drop_rate)

    def __call__(self, x, prefix: str):
        inputs, filters_in, act = x, x.shape[-1], self.activation
        bn = dict(bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum, activation=None)
        if self.expansion != 1:
            x = ConvBNAct(make_divisible(filters_in * self.expansion), 1, conv_name=f"{prefix}expand",
                          bn_name=f"{prefix}expand_bn", **bn)(x, name=prefix)
            x = activation(x, act, f"{prefix}expand_{act}")
        x = ConvBNAct(None, self.kernel_size, strides=self.strides, depthwise=True,
                      padding="correct" if self.strides == 2 else "same", conv_name=f"{prefix}depthwise",
                      bn_name=f"{prefix}depthwise_bn", pad_name=f"{prefix}depthwise_pad", **bn)(x, name=prefix)
        x = activation(x, act, f"{prefix}depthwise_{act}")
        if self.se_ratio:
            x = SqueezeExciteV3(make_divisible(x.shape[-1] * self.se_ratio))(x, prefix=prefix)
        x = ConvBNAct(self.filters, 1, conv_name=f"{prefix}project", bn_name=f"{prefix}project_bn", **bn)(
            x, name=prefix)
        if self.strides == 1 and filters_in == self.filters:
            x = drop_path(x, self.drop_rate, name=f"{prefix}drop")
            x = layers.Add(name=f"{prefix}add")([inputs, x])
        return x
