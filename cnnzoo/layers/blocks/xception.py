"""Xception's residual block of depthwise separable convolutions (to be merged into `cnnzoo.layers.blocks`).

Example:
    >>> x = XceptionBlock((128, 128), downsample=True, first_activation=False)(x, name="block2")
"""
from __future__ import annotations

from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_fraction, check_int, received
from cnnzoo.layers.blocks.core import CONV_INIT, _check_bn, drop_path


@dataclass(frozen=True)
class XceptionBlock:
    """Xception (Chollet 2017) block: [ReLU -> 3x3 separable conv -> BN] per entry of `filters`, plus a shortcut.

    Layers: `{name}_sepconv{i}_act`, `{name}_sepconv{i}`, `{name}_sepconv{i}_bn` (keras.applications' names);
    with `downsample`, a 3x3 stride-2 max pool `{name}_pool` ends the branch and the shortcut is a 1x1 stride-2
    conv `{name}_residual_conv` -> `{name}_residual_bn` (auto-named in keras.applications), else the identity.
    `first_activation=False` leaves out the first ReLU (keras' block2 follows the stem's ReLU). `drop_rate` is
    stochastic depth on the branch (`{name}_drop`) before `{name}_add`.

    The shortcut is built first, as keras.applications does, and added second, so `model.layers` lists the
    layers in keras' order and class (its files load by order).
    """

    filters: tuple[int, ...]
    downsample: bool = False
    first_activation: bool = True
    drop_rate: float = 0.0
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99

    def __post_init__(self):
        if not isinstance(self.filters, tuple) or not self.filters:
            raise TypeError(f"`filters` must be a non-empty tuple of ints. {received('filters', self.filters)}")
        for value in self.filters:
            check_int("filters", value, minimum=1)
        check_fraction("drop_rate", self.drop_rate)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def _bn(self, name):
        return layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum, name=name)

    def __call__(self, x, name: str):
        if self.downsample:
            shortcut = layers.Conv2D(self.filters[-1], 1, strides=2, padding="same", use_bias=False,
                                     kernel_initializer=CONV_INIT, name=f"{name}_residual_conv")(x)
            shortcut = self._bn(f"{name}_residual_bn")(shortcut)
        else:
            if x.shape[-1] != self.filters[-1]:
                raise ValueError(f"An identity shortcut needs {self.filters[-1]} input channels, got {x.shape[-1]}; "
                                 f"use downsample=True. {received('filters', self.filters)}")
            shortcut = x
        y = x
        for i, filters in enumerate(self.filters, start=1):
            if i > 1 or self.first_activation:
                y = layers.Activation("relu", name=f"{name}_sepconv{i}_act")(y)
            y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_initializer=CONV_INIT,
                                       pointwise_initializer=CONV_INIT, name=f"{name}_sepconv{i}")(y)
            y = self._bn(f"{name}_sepconv{i}_bn")(y)
        if self.downsample:
            y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
        y = drop_path(y, self.drop_rate, name=f"{name}_drop")
        return layers.Add(name=f"{name}_add")([y, shortcut])
