"""DenseNet's blocks (Huang et al. 2016): the dense layer and the transition between dense blocks.

Both are pre-activation (BatchNorm -> ReLU -> conv) and name their layers as keras.applications does
(`conv2_block1_0_bn`, ..., `conv2_block1_concat`; `pool2_bn`, `pool2_relu`, `pool2_conv`, `pool2_pool`) so its
weight files load. A dense block is `n` dense layers in a row; each adds `growth_rate` channels.

Example:
    >>> inputs = keras.Input((32, 32, 64))
    >>> x = DenseLayer(32)(inputs, name="conv2_block1")      # 64 + 32 channels
    >>> x = Transition(0.5)(x, name="pool2")                 # 48 channels, half the size
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from cnnzoo._checks import check_float, check_fraction, check_int

# keras.applications' DenseNet epsilon (1e-5 in the original Torch/Caffe models, nudged above cuDNN's minimum).
DENSENET_BN_EPSILON = 1.001e-5
# He initialization over the fan-in (torchvision's DenseNet). The zoo's fan-out CONV_INIT would grow activations
# ~fan_in/fan_out-fold at every 1x1 conv that reads a wide concatenation (1024 -> 128 channels), so an untrained
# DenseNet-121 gave logits ~1e5; fan-in keeps them O(1).
DENSE_CONV_INIT = {"class_name": "VarianceScaling",   # a config: each layer gets its own seed
                   "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}}


def _check_bn(bn_epsilon, bn_momentum) -> None:
    check_float("bn_epsilon", bn_epsilon, minimum=0.0, exclusive_minimum=True, finite=True)
    check_fraction("bn_momentum", bn_momentum)


def _bn_relu(x, name: str, bn_epsilon: float, bn_momentum: float):
    x = layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer: BN-ReLU-1x1 conv (bottleneck) -> BN-ReLU-3x3 conv, concatenated to its input.

    The 1x1 conv has `bn_size * growth_rate` filters, the 3x3 conv `growth_rate`; neither has a bias. Layers:
    `{name}_0_bn`, `{name}_0_relu`, `{name}_1_conv`, `{name}_1_bn`, `{name}_1_relu`, `{name}_2_conv`,
    `{name}_concat` (input first, new features last).

    Args:
        growth_rate: int, channels the layer adds.
        bn_size: int, bottleneck width as a multiple of `growth_rate`.
        bn_epsilon: float, BatchNorm epsilon.
        bn_momentum: float in [0, 1), BatchNorm momentum.
    """

    growth_rate: int
    bn_size: int = 4
    bn_epsilon: float = DENSENET_BN_EPSILON
    bn_momentum: float = 0.99

    def __post_init__(self):
        check_int("growth_rate", self.growth_rate, minimum=1)
        check_int("bn_size", self.bn_size, minimum=1)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def __call__(self, x, name: str):
        y = _bn_relu(x, f"{name}_0", self.bn_epsilon, self.bn_momentum)
        y = layers.Conv2D(self.bn_size * self.growth_rate, 1, use_bias=False, kernel_initializer=DENSE_CONV_INIT,
                          name=f"{name}_1_conv")(y)
        y = _bn_relu(y, f"{name}_1", self.bn_epsilon, self.bn_momentum)
        y = layers.Conv2D(self.growth_rate, 3, padding="same", use_bias=False, kernel_initializer=DENSE_CONV_INIT,
                          name=f"{name}_2_conv")(y)
        return layers.Concatenate(name=f"{name}_concat")([x, y])


@dataclass(frozen=True)
class Transition:
    """A transition between dense blocks: BN-ReLU-1x1 conv to `int(channels * compression)` -> 2x2 average pool.

    Layers: `{name}_bn`, `{name}_relu`, `{name}_conv` (no bias), `{name}_pool` (stride 2, 'valid': odd sizes
    drop their last row/column, as keras.applications does).

    Args:
        compression: float in (0, 1], the fraction of channels kept (the paper's theta; 0.5 in DenseNet-BC).
        bn_epsilon: float, BatchNorm epsilon.
        bn_momentum: float in [0, 1), BatchNorm momentum.
    """

    compression: float = 0.5
    bn_epsilon: float = DENSENET_BN_EPSILON
    bn_momentum: float = 0.99

    def __post_init__(self):
        check_float("compression", self.compression, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def __call__(self, x, name: str):
        filters = max(1, int(x.shape[-1] * self.compression))
        x = _bn_relu(x, name, self.bn_epsilon, self.bn_momentum)
        x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=DENSE_CONV_INIT, name=f"{name}_conv")(x)
        return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)
