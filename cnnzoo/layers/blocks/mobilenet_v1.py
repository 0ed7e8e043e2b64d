"""MobileNetV1's depthwise separable block (to be merged into `cnnzoo.layers.blocks`).

Example:
    >>> x = DepthwiseSeparable(64)(x, block_id=1)
"""
from __future__ import annotations

from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_int
from cnnzoo.layers.blocks.core import CONV_INIT, _check_bn


@dataclass(frozen=True)
class DepthwiseSeparable:
    """MobileNetV1 (Howard et al. 2017) block: 3x3 depthwise -> BN -> ReLU6 -> 1x1 conv -> BN -> ReLU6.

    keras.applications' names: `conv_pad_{id}` (stride 2 only: zero padding bottom/right, then a valid conv, as
    TF-Slim trained it), `conv_dw_{id}`, `conv_dw_{id}_bn`, `conv_dw_{id}_relu`, `conv_pw_{id}`, `conv_pw_{id}_bn`,
    `conv_pw_{id}_relu`. `depth_multiplier` depthwise channels per input channel.
    """

    filters: int
    strides: int = 1
    depth_multiplier: int = 1
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("strides", self.strides, minimum=1, maximum=2)
        check_int("depth_multiplier", self.depth_multiplier, minimum=1)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def _bn_relu(self, x, name):
        x = layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    def __call__(self, x, block_id: int):
        padding = "same"
        if self.strides == 2:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
            padding = "valid"
        x = layers.DepthwiseConv2D(3, strides=self.strides, padding=padding, depth_multiplier=self.depth_multiplier,
                                   use_bias=False, depthwise_initializer=CONV_INIT, name=f"conv_dw_{block_id}")(x)
        x = self._bn_relu(x, f"conv_dw_{block_id}")
        x = layers.Conv2D(self.filters, 1, padding="same", use_bias=False, kernel_initializer=CONV_INIT,
                          name=f"conv_pw_{block_id}")(x)
        return self._bn_relu(x, f"conv_pw_{block_id}")
