"""EfficientNetV2's blocks (Tan & Le 2021): the fused MBConv, and its MBConv with keras.applications' V2 names.

`FusedMBConv` replaces MBConv's 1x1 expansion and depthwise conv with one regular conv. `MBConvV2` is MBConv
as keras.applications' EfficientNetV2 writes it: the same layers as `InvertedResidual(naming="efficientnet")`,
but the depthwise conv is named `{prefix}dwconv2` and pads "same" (no `dwconv_pad` layer), so its weight files
load by name and unknown input sizes pad as keras does.

Both add the residual when shapes allow, after stochastic depth (`drop_path`), SE squeezing to
`max(1, int(filters_in * se_ratio))` channels with the block's activation, as keras.applications.

Example:
    >>> x = FusedMBConv(48, expand_ratio=4, strides=2)(x, prefix="block3a_")
    >>> x = MBConvV2(96, expand_ratio=4, strides=2, se_ratio=0.25)(x, prefix="block4a_")
"""
from __future__ import annotations

from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_float, check_fraction, check_int
from cnnzoo.layers.blocks.core import ConvBNAct, SqueezeExcite, drop_path


@dataclass(frozen=True)
class _V2Block:
    """Fields and the SE/residual tail the two EfficientNetV2 blocks share."""

    filters: int
    expand_ratio: int = 4
    kernel_size: int = 3
    strides: int = 1
    se_ratio: float | None = None
    activation: str = "swish"
    drop_rate: float = 0.0
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.9

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("expand_ratio", self.expand_ratio, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("strides", self.strides, minimum=1, maximum=2)
        if self.se_ratio is not None:
            check_float("se_ratio", self.se_ratio, minimum=0.0, maximum=1.0)
        check_fraction("drop_rate", self.drop_rate)
        check_float("bn_epsilon", self.bn_epsilon, minimum=0.0, exclusive_minimum=True, finite=True)
        check_fraction("bn_momentum", self.bn_momentum)

    def _conv(self, filters, kernel_size, strides, activation, prefix, stem):
        """ConvBNAct with keras' V2 names: `{prefix}{stem}_conv`, `_bn`, `_activation`; "same" padding."""
        return ConvBNAct(filters, kernel_size, strides=strides, padding="same", activation=activation,
                         bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum, conv_name=f"{prefix}{stem}_conv",
                         bn_name=f"{prefix}{stem}_bn", act_name=f"{prefix}{stem}_activation")

    def _se(self, x, filters_in: int, prefix: str):
        if not self.se_ratio:
            return x
        return SqueezeExcite(max(1, int(filters_in * self.se_ratio)), activation=self.activation)(x, prefix=prefix)

    def _residual(self, x, inputs, prefix: str):
        if self.strides != 1 or inputs.shape[-1] != self.filters:
            return x
        x = drop_path(x, self.drop_rate, name=f"{prefix}drop")
        return layers.Add(name=f"{prefix}add")([x, inputs])


@dataclass(frozen=True)
class FusedMBConv(_V2Block):
    """Fused MBConv: expand kxk conv (with the stride) -> [SE] -> project 1x1; `expand_ratio=1`: one kxk conv.

    Layers: `{prefix}expand_conv/_bn/_activation` (expand_ratio > 1), `{prefix}se_*`, `{prefix}project_conv`,
    `{prefix}project_bn` (+ `{prefix}project_activation` when the project conv is the only conv),
    `{prefix}drop`, `{prefix}add`.
    """

    def __call__(self, x, prefix: str):
        inputs, filters_in = x, x.shape[-1]
        single = self.expand_ratio == 1
        if not single:
            x = self._conv(filters_in * self.expand_ratio, self.kernel_size, self.strides, self.activation, prefix,
                           "expand")(x, name=prefix)
        x = self._se(x, filters_in, prefix)
        x = self._conv(self.filters, self.kernel_size if single else 1, self.strides if single else 1,
                       self.activation if single else None, prefix, "project")(x, name=prefix)
        return self._residual(x, inputs, prefix)


@dataclass(frozen=True)
class MBConvV2(_V2Block):
    """MBConv with keras.applications' EfficientNetV2 names: expand 1x1 -> depthwise kxk -> [SE] -> project 1x1.

    Layers: `{prefix}expand_conv/_bn/_activation` (expand_ratio > 1), `{prefix}dwconv2`, `{prefix}bn`,
    `{prefix}activation`, `{prefix}se_*`, `{prefix}project_conv`, `{prefix}project_bn`, `{prefix}drop`,
    `{prefix}add`.
    """

    def __call__(self, x, prefix: str):
        inputs, filters_in = x, x.shape[-1]
        if self.expand_ratio != 1:
            x = self._conv(filters_in * self.expand_ratio, 1, 1, self.activation, prefix, "expand")(x, name=prefix)
        x = ConvBNAct(None, self.kernel_size, strides=self.strides, depthwise=True, padding="same",
                      activation=self.activation, bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum,
                      conv_name=f"{prefix}dwconv2", bn_name=f"{prefix}bn",
                      act_name=f"{prefix}activation")(x, name=prefix)
        x = self._se(x, filters_in, prefix)
        x = self._conv(self.filters, 1, 1, None, prefix, "project")(x, name=prefix)
        return self._residual(x, inputs, prefix)
