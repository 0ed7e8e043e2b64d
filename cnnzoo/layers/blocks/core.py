"""The building blocks of the zoo: ConvBNAct, SqueezeExcite, BasicBlock, Bottleneck, PreActBottleneck,
InvertedResidual.

Blocks are frozen dataclasses (a block *is* its spec) that add flat, deterministically named Keras layers to a
functional graph when called on a tensor: `Bottleneck(64, strides=2)(x, name="conv3_block1")`. Flat layers with
keras.applications' names are what make its weight files load by name, so blocks are not nested Keras layers.
One class per idea: SE, activation and stochastic depth are injected as fields, not subclassed.

Example:
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = ConvBNAct(16, 3, strides=2)(inputs, name="stem")
    >>> x = BasicBlock(16, se_ratio=0.25)(x, name="conv2_block1")
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
from keras import layers, ops

from cnnzoo._checks import check_choice, check_float, check_fraction, check_int

# He (fan-out) initialization as torchvision. A config, not an instance: Keras fixes an instance's seed when it is
# made, so one shared instance would give every same-shaped layer the same initial weights.
CONV_INIT = {"class_name": "VarianceScaling",
             "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}


def correct_pad(tensor, kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """keras.applications' asymmetric zero padding before a stride-2 'valid' conv (even sizes pad less on top)."""
    size = tensor.shape[1:3]
    adjust = (1, 1) if size[0] is None or size[1] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


@keras.saving.register_keras_serializable(package="cnnzoo")
class Conv2D(layers.Conv2D):
    """keras' Conv2D whose grouped convolutions (`groups` > 1) run as one plain TensorFlow op.

    Keras' TensorFlow backend runs every grouped convolution inside an XLA-compiled function (a CPU workaround),
    which tf2onnx cannot convert and which compiles again for each new input shape. Here the depthwise case
    (one input channel per group: ConvNeXt's 7x7) is a depthwise convolution and any other grouped case
    (ResNeXt's 3x3) is `tf.nn.convolution`, whose kernels take groups; `groups=1` is keras' own path. The class
    name, config and weights are keras' Conv2D's, so keras.applications weight files (both layouts) load.

    Example:
        >>> y = Conv2D(64, 3, padding="same", groups=32)(x)     # exports to TFLite and ONNX
    """

    def convolution_op(self, inputs, kernel):
        channels = inputs.shape[-1]
        if self.groups == 1 or self.data_format != "channels_last" or len(inputs.shape) != 4:
            return super().convolution_op(inputs, kernel)
        if self.groups == channels == kernel.shape[-1] and kernel.shape[-2] == 1:
            # (k, k, 1, C): output channel c filters input channel c, the depthwise (k, k, C, 1) layout.
            depthwise = ops.reshape(kernel, tuple(kernel.shape[:2]) + (self.groups, 1))
            return ops.depthwise_conv(inputs, depthwise, strides=self.strides, padding=self.padding,
                                      data_format=self.data_format, dilation_rate=self.dilation_rate)
        if keras.backend.backend() != "tensorflow":  # the XLA detour is TensorFlow's alone
            return super().convolution_op(inputs, kernel)
        return _grouped_conv(inputs, kernel, tuple(self.strides), self.padding.upper(), tuple(self.dilation_rate))


def _grouped_conv(inputs, kernel, strides, padding, dilations):
    """A grouped NHWC convolution as one plain op forward (what SavedModel, TFLite and ONNX get).

    TensorFlow computes grouped-convolution gradients with oneDNN (on by default on x86 Linux) and cuDNN, but its
    plain CPU kernels raise "Gradients for grouped convolutions are not supported on CPU" (`TF_ENABLE_ONEDNN_OPTS=0`,
    ARM builds). There the backward pass runs the two backprop ops once per group on channel slices: the same
    FLOPs at ~3x the native time (keras' XLA-compiled grouped backprop is ~200x slower on CPU).
    Which one runs is decided once per process (`_native_grouped_gradients`).
    """
    import tensorflow as tf

    def forward(x, k):
        return tf.nn.convolution(x, k, strides=strides, padding=padding, dilations=dilations, data_format="NHWC")

    if _native_grouped_gradients():
        return forward(inputs, kernel)

    strides4, dilations4 = [1, *strides, 1], [1, *dilations, 1]

    @tf.custom_gradient
    def conv(x, k):
        def grad(dy):
            dy = tf.cast(dy, x.dtype)
            groups = x.shape[-1] // k.shape[-2]
            xs, ks, dys = tf.split(x, groups, -1), tf.split(k, groups, -1), tf.split(dy, groups, -1)
            dx = [tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(a), filter=b, out_backprop=d,
                                                 strides=strides4, padding=padding, dilations=dilations4)
                  for a, b, d in zip(xs, ks, dys)]
            dk = [tf.raw_ops.Conv2DBackpropFilter(input=a, filter_sizes=tf.shape(b), out_backprop=d,
                                                  strides=strides4, padding=padding, dilations=dilations4)
                  for a, b, d in zip(xs, ks, dys)]
            return tf.concat(dx, -1), tf.concat(dk, -1)

        return forward(x, k), grad

    # A tensor, not the variable: the gradient then flows to the kernel through its read, as for any op.
    return conv(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))


@functools.cache
def _native_grouped_gradients() -> bool:
    """Whether TensorFlow here has grouped-convolution gradient kernels (oneDNN on, or a GPU)."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled() or tf.config.list_logical_devices("GPU"))


def drop_path(x, rate: float, name: str):
    """Stochastic depth (Huang et al. 2016): while training, drop a residual branch for whole samples.

    Kept branches are scaled by 1 / (1 - rate) (Keras' Dropout with one noise value per sample), so inference is
    the identity. `rate=0` adds no layer. Every residual block in the zoo calls this one function.

    Example:
        >>> y = drop_path(branch, 0.1, name="conv2_block1_drop")
    """
    check_fraction("drop_path_rate", rate)
    if not rate:
        return x
    return layers.Dropout(rate, noise_shape=(None,) + (1,) * (len(x.shape) - 1), name=name)(x)


def drop_path_rates(rate: float, blocks: int, *, endpoint: bool = False) -> list[float]:
    """Per-block stochastic depth growing linearly with depth, from 0 at the first block.

    `endpoint=False` is EfficientNet's rule (block i of n gets rate * i / n); `endpoint=True` reaches `rate` at the
    last block (timm's and ConvNeXt's linspace).

    Example:
        >>> drop_path_rates(0.2, 4, endpoint=True)
        [0.0, 0.0666..., 0.1333..., 0.2]
    """
    check_fraction("drop_path_rate", rate)
    check_int("blocks", blocks, minimum=1)
    if endpoint:
        return [rate * i / (blocks - 1) if blocks > 1 else 0.0 for i in range(blocks)]
    return [rate * i / blocks for i in range(blocks)]


def _check_bn(bn_epsilon, bn_momentum) -> None:
    check_float("bn_epsilon", bn_epsilon, minimum=0.0, exclusive_minimum=True, finite=True)
    check_fraction("bn_momentum", bn_momentum)


def _activation(activation: str | None, name: str):
    if activation is None:
        return None
    if activation == "relu6":
        return layers.ReLU(6.0, name=name)
    return layers.Activation(activation, name=name)


@dataclass(frozen=True)
class ConvBNAct:
    """Conv2D (or depthwise) -> BatchNorm -> activation, with explicit names.

    `padding` is "same", "valid", "symmetric" (explicit ZeroPadding2D of kernel//2 * dilation, as PyTorch pads)
    or "correct" (keras.applications' `correct_pad`). Layer names default to `{name}_conv`, `{name}_bn`,
    `{name}_{activation}`; `conv_name`, `bn_name`, `act_name`, `pad_name` override them.
    """

    filters: int | None
    kernel_size: int = 3
    strides: int = 1
    padding: str = "same"
    depthwise: bool = False
    use_bias: bool = False
    activation: str | None = "relu"
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    conv_name: str | None = None
    bn_name: str | None = None
    act_name: str | None = None
    pad_name: str | None = None

    def __post_init__(self):
        if not self.depthwise:
            check_int("filters", self.filters, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("strides", self.strides, minimum=1)
        check_choice("padding", self.padding, ("same", "valid", "symmetric", "correct"))
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def __call__(self, x, name: str):
        pad = self.padding
        if pad in ("symmetric", "correct"):
            amount = correct_pad(x, self.kernel_size) if pad == "correct" else self.kernel_size // 2
            x = layers.ZeroPadding2D(amount, name=self.pad_name or f"{name}_pad")(x)
            pad = "valid"
        conv_name = self.conv_name or f"{name}_conv"
        if self.depthwise:
            x = layers.DepthwiseConv2D(self.kernel_size, strides=self.strides, padding=pad, use_bias=self.use_bias,
                                       depthwise_initializer=CONV_INIT, name=conv_name)(x)
        else:
            x = layers.Conv2D(self.filters, self.kernel_size, strides=self.strides, padding=pad,
                              use_bias=self.use_bias, kernel_initializer=CONV_INIT, name=conv_name)(x)
        x = layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum,
                                      name=self.bn_name or f"{name}_bn")(x)
        act = _activation(self.activation, self.act_name or f"{name}_{self.activation}")
        return x if act is None else act(x)


@dataclass(frozen=True)
class SqueezeExcite:
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from global context.

    Layers: `{prefix}se_squeeze` (global average), `{prefix}se_reshape`, `{prefix}se_reduce` (1x1 conv with bias,
    `reduced_filters` channels, `activation`), `{prefix}se_expand` (1x1 conv, sigmoid), `{prefix}se_excite`
    (multiply) — EfficientNet's names in keras.applications.
    """

    reduced_filters: int
    activation: str = "relu"

    def __post_init__(self):
        check_int("reduced_filters", self.reduced_filters, minimum=1)

    def __call__(self, x, prefix: str):
        channels = x.shape[-1]
        se = layers.GlobalAveragePooling2D(name=f"{prefix}se_squeeze")(x)
        se = layers.Reshape((1, 1, channels), name=f"{prefix}se_reshape")(se)
        se = layers.Conv2D(self.reduced_filters, 1, padding="same", activation=self.activation,
                           kernel_initializer=CONV_INIT, name=f"{prefix}se_reduce")(se)
        se = layers.Conv2D(channels, 1, padding="same", activation="sigmoid", kernel_initializer=CONV_INIT,
                           name=f"{prefix}se_expand")(se)
        return layers.Multiply(name=f"{prefix}se_excite")([x, se])


def _se_from_ratio(se_ratio: float | None, channels: int, activation: str) -> SqueezeExcite | None:
    if not se_ratio:
        return None
    return SqueezeExcite(max(1, int(channels * se_ratio)), activation=activation)


@dataclass(frozen=True)
class BasicBlock:
    """ResNet basic block (two 3x3 convs), torchvision's layout with keras.applications-style names.

    `{name}_1_conv` (3x3, stride) -> `{name}_2_conv` (3x3) [-> SE] [-> `{name}_drop`] + shortcut (`{name}_0_conv`
    1x1 projection when the shape changes) -> `{name}_add` -> `{name}_out`. `drop_rate` is stochastic depth on the
    residual branch (`drop_path`; no layer at 0). `expansion = 1`.
    """

    filters: int
    strides: int = 1
    se_ratio: float | None = None
    use_bias: bool = False
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9
    drop_rate: float = 0.0
    expansion = 1

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("strides", self.strides, minimum=1)
        if self.se_ratio is not None:
            check_float("se_ratio", self.se_ratio, minimum=0.0, maximum=1.0)
        check_fraction("drop_rate", self.drop_rate)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def _conv(self, filters, kernel, strides, padding, activation):
        return ConvBNAct(filters, kernel, strides=strides, padding=padding, use_bias=self.use_bias,
                         activation=activation, bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)

    def _shortcut(self, x, out_channels, name):
        if self.strides == 1 and x.shape[-1] == out_channels:
            return x
        return self._conv(out_channels, 1, self.strides, "valid", None)(x, name=f"{name}_0")

    def __call__(self, x, name: str):
        shortcut = self._shortcut(x, self.filters, name)
        padding = "symmetric" if self.strides > 1 else "same"
        y = self._conv(self.filters, 3, self.strides, padding, "relu")(x, name=f"{name}_1")
        y = self._conv(self.filters, 3, 1, "same", None)(y, name=f"{name}_2")
        se = _se_from_ratio(self.se_ratio, self.filters, "relu")
        if se is not None:
            y = se(y, prefix=f"{name}_")
        y = drop_path(y, self.drop_rate, name=f"{name}_drop")
        y = layers.Add(name=f"{name}_add")([shortcut, y])
        return layers.Activation("relu", name=f"{name}_out")(y)


@dataclass(frozen=True)
class Bottleneck(BasicBlock):
    """ResNet bottleneck (1x1 reduce, 3x3, 1x1 expand x4), keras.applications' v1 names; ResNeXt with `groups`.

    `stride_in_3x3=False` is v1 (stride on the first 1x1, as keras.applications' ResNet50); True is v1.5
    (stride on the 3x3, as torchvision and NVIDIA's ResNet50 v1.5). `groups` > 1 makes the 3x3 a grouped
    convolution (ResNeXt, Xie et al. 2017) of `width = int(filters * base_width / 64) * groups` channels,
    torchvision's rule (`groups=32, base_width=4` is ResNeXt-50 32x4d); the defaults give width = filters.
    `expansion = 4`: the block outputs `filters * 4` channels.
    """

    stride_in_3x3: bool = False
    use_bias: bool = True
    bn_epsilon: float = 1.001e-5
    bn_momentum: float = 0.99
    groups: int = 1
    base_width: int = 64
    expansion = 4

    def __post_init__(self):
        super().__post_init__()
        check_int("groups", self.groups, minimum=1)
        check_int("base_width", self.base_width, minimum=1)
        if self.width < 1:
            raise ValueError(f"`filters * base_width / 64` must be at least 1 (the width of one group). "
                             f"Received: filters={self.filters}, base_width={self.base_width}")

    @property
    def width(self) -> int:
        """Channels of the 1x1 reduce and the (grouped) 3x3."""
        return int(self.filters * self.base_width / 64) * self.groups

    def __call__(self, x, name: str):
        out_channels = self.filters * self.expansion
        width = self.width
        shortcut = self._shortcut(x, out_channels, name)
        s1, s3 = (1, self.strides) if self.stride_in_3x3 else (self.strides, 1)
        y = self._conv(width, 1, s1, "valid", "relu")(x, name=f"{name}_1")
        if s3 > 1:  # PyTorch pads a stride-2 3x3 symmetrically; TF "same" would pad only bottom/right.
            y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
        conv = Conv2D if self.groups > 1 else layers.Conv2D   # grouped: one plain op that exports
        y = conv(width, 3, strides=s3, padding="valid" if s3 > 1 else "same", groups=self.groups,
                 use_bias=self.use_bias, kernel_initializer=CONV_INIT, name=f"{name}_2_conv")(y)
        y = layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum, name=f"{name}_2_bn")(y)
        y = layers.Activation("relu", name=f"{name}_2_relu")(y)
        y = self._conv(out_channels, 1, 1, "valid", None)(y, name=f"{name}_3")
        se = _se_from_ratio(self.se_ratio, out_channels, "relu")
        if se is not None:
            y = se(y, prefix=f"{name}_")
        y = drop_path(y, self.drop_rate, name=f"{name}_drop")
        y = layers.Add(name=f"{name}_add")([shortcut, y])
        return layers.Activation("relu", name=f"{name}_out")(y)


@dataclass(frozen=True)
class PreActBottleneck:
    """Pre-activation bottleneck (He et al. 2016, "Identity Mappings"), keras.applications' ResNetV2 layout and names.

    `{name}_preact_bn` -> `{name}_preact_relu` -> `{name}_1_conv` (1x1, no bias) -> `_1_bn` -> `_1_relu` ->
    `_2_pad` -> `_2_conv` (3x3, stride, no bias) -> `_2_bn` -> `_2_relu` -> `_3_conv` (1x1 to `filters * 4`, with
    bias) [-> `{name}_drop`] + shortcut -> `{name}_out` (the add; no activation after it). The shortcut is
    `{name}_0_conv` (1x1 with bias, on the pre-activation) when `conv_shortcut`, else the block input, subsampled
    by `{name}_0_pool` (1x1 max pool) when `strides` > 1. keras puts a stage's stride in its LAST block.
    """

    filters: int
    strides: int = 1
    conv_shortcut: bool = False
    bn_epsilon: float = 1.001e-5
    bn_momentum: float = 0.99
    drop_rate: float = 0.0
    expansion = 4

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("strides", self.strides, minimum=1)
        check_fraction("drop_rate", self.drop_rate)
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def __call__(self, x, name: str):
        bn = dict(bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)
        out_channels = self.filters * self.expansion
        preact = layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum,
                                           name=f"{name}_preact_bn")(x)
        preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
        if self.conv_shortcut:
            shortcut = layers.Conv2D(out_channels, 1, strides=self.strides, kernel_initializer=CONV_INIT,
                                     name=f"{name}_0_conv")(preact)
        elif self.strides > 1:
            shortcut = layers.MaxPooling2D(1, strides=self.strides, name=f"{name}_0_pool")(x)
        else:
            shortcut = x
        y = ConvBNAct(self.filters, 1, padding="valid", **bn)(preact, name=f"{name}_1")
        y = ConvBNAct(self.filters, 3, strides=self.strides, padding="symmetric", **bn)(y, name=f"{name}_2")
        y = layers.Conv2D(out_channels, 1, kernel_initializer=CONV_INIT, name=f"{name}_3_conv")(y)
        y = drop_path(y, self.drop_rate, name=f"{name}_drop")
        return layers.Add(name=f"{name}_out")([shortcut, y])


@dataclass(frozen=True)
class InvertedResidual:
    """MobileNetV2 inverted residual / EfficientNet MBConv: expand 1x1 -> depthwise -> [SE] -> project 1x1.

    `naming="mobilenet_v2"` gives keras.applications' MobileNetV2 names (`block_{i}_expand`, `_depthwise_BN`, ...;
    block 0 is `expanded_conv_`), `naming="efficientnet"` its EfficientNet names (`block1a_expand_conv`,
    `block1a_dwconv`, `block1a_se_reduce`, ...). The residual is added when shapes allow; `drop_rate` is
    stochastic depth (drop the whole residual branch per sample, EfficientNet's drop-connect).
    SE squeezes to `int(filters_in * se_ratio)` channels, as in EfficientNet.
    """

    filters: int
    expand_ratio: float = 6
    kernel_size: int = 3
    strides: int = 1
    se_ratio: float | None = None
    activation: str = "relu6"
    drop_rate: float = 0.0
    naming: str = "mobilenet_v2"
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.999

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("strides", self.strides, minimum=1, maximum=2)
        check_fraction("drop_rate", self.drop_rate)
        check_choice("naming", self.naming, ("mobilenet_v2", "efficientnet"))
        _check_bn(self.bn_epsilon, self.bn_momentum)

    def _names(self, prefix: str) -> dict[str, str]:
        if self.naming == "mobilenet_v2":
            return dict(expand="expand", expand_bn="expand_BN", expand_act="expand_relu", pad="pad",
                        dw="depthwise", dw_bn="depthwise_BN", dw_act="depthwise_relu", project="project",
                        project_bn="project_BN", drop="drop", add="add")
        return dict(expand="expand_conv", expand_bn="expand_bn", expand_act="expand_activation", pad="dwconv_pad",
                    dw="dwconv", dw_bn="bn", dw_act="activation", project="project_conv",
                    project_bn="project_bn", drop="drop", add="add")

    def __call__(self, x, prefix: str):
        n = {k: f"{prefix}{v}" for k, v in self._names(prefix).items()}
        inputs = x
        filters_in = x.shape[-1]
        bn = dict(bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)
        expanded = int(filters_in * self.expand_ratio)
        if self.expand_ratio != 1:
            x = ConvBNAct(expanded, 1, padding="same", activation=self.activation, conv_name=n["expand"],
                          bn_name=n["expand_bn"], act_name=n["expand_act"], **bn)(x, name=prefix)
        x = ConvBNAct(None, self.kernel_size, strides=self.strides, depthwise=True,
                      padding="correct" if self.strides == 2 else "same", activation=self.activation,
                      conv_name=n["dw"], bn_name=n["dw_bn"], act_name=n["dw_act"], pad_name=n["pad"],
                      **bn)(x, name=prefix)
        se = _se_from_ratio(self.se_ratio, filters_in, self.activation)
        if se is not None:
            x = se(x, prefix=prefix)
        x = ConvBNAct(self.filters, 1, padding="same", activation=None, conv_name=n["project"],
                      bn_name=n["project_bn"], **bn)(x, name=prefix)
        if self.strides == 1 and filters_in == self.filters:
            x = drop_path(x, self.drop_rate, name=n["drop"])
            x = layers.Add(name=n["add"])([inputs, x])
        return x
