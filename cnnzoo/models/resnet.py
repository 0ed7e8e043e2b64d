"""ResNet (He et al. 2015) with basic and bottleneck blocks, v1 and v1.5 strides, SE-ResNet (Hu et al. 2018),
pre-activation ResNet v2 (He et al. 2016) and ResNeXt (Xie et al. 2017, grouped 3x3 convolutions).

ResNet50/101/152 and ResNet50V2/101V2/152V2 follow keras.applications' layouts and names (conv biases,
`conv2_block1_1_conv`, `conv2_block1_preact_bn`, `post_bn`, ...) so its weight files load; ResNet18/34,
SE-ResNets and (SE-)ResNeXts follow torchvision / timm (no conv bias, stride on the 3x3, BN epsilon 1e-5) and
use the same naming scheme. Every name takes `drop_path_rate` (stochastic depth on each residual branch, growing
linearly from 0 at the first block to the rate at the last, timm's rule; default 0).

Example:
    >>> model = cnnzoo.create_model("se_resnet18", num_classes=10, input_shape=(64, 64, 3))
    >>> model = cnnzoo.create_model("resnext50_32x4d", drop_path_rate=0.1, num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_fraction
from cnnzoo.layers.blocks import BasicBlock, Bottleneck, PreActBottleneck, drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1512.03385"
CAFFE, TORCH, TF = {"mode": "caffe"}, {"mode": "torch"}, {"mode": "tf"}
SE_PAPER = "https://arxiv.org/abs/1709.01507"
V2_PAPER = "https://arxiv.org/abs/1603.05027"
RESNEXT_PAPER = "https://arxiv.org/abs/1611.05431"
STAGE_FILTERS = (64, 128, 256, 512)


@dataclass(frozen=True)
class ResNetSpec:
    """A ResNet variant as data: block kind, blocks per stage, and the layout switches."""

    block: str  # "basic" | "bottleneck" | "preact" (v2's pre-activation bottleneck)
    layers: tuple[int, int, int, int]
    se_ratio: float | None = None
    stride_in_3x3: bool = False  # v1.5
    use_bias: bool = False  # keras.applications' v1 ResNets carry conv biases; torchvision's do not
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9
    groups: int = 1  # ResNeXt's cardinality (grouped 3x3)
    base_width: int = 64  # ResNeXt's width per group at the first stage (4 in "32x4d")


def _block(spec: ResNetSpec, filters: int, strides: int, bn_momentum: float, drop_rate: float, first: bool):
    if spec.block == "preact":
        return PreActBottleneck(filters, strides=strides, conv_shortcut=first, bn_epsilon=spec.bn_epsilon,
                                bn_momentum=bn_momentum, drop_rate=drop_rate)
    common = dict(strides=strides, se_ratio=spec.se_ratio, use_bias=spec.use_bias, bn_epsilon=spec.bn_epsilon,
                  bn_momentum=bn_momentum, drop_rate=drop_rate)
    if spec.block == "basic":
        return BasicBlock(filters, **common)
    return Bottleneck(filters, stride_in_3x3=spec.stride_in_3x3, groups=spec.groups, base_width=spec.base_width,
                      **common)


def _strides(spec: ResNetSpec, stage: int, block: int) -> int:
    if spec.block == "preact":  # keras' v2: the LAST block of stages 1-3 strides (its shortcut max-pools)
        return 2 if stage < 3 and block == spec.layers[stage] - 1 else 1
    return 2 if stage > 0 and block == 0 else 1


def build_resnet(x, *, spec: ResNetSpec, include_top, num_classes, pooling, dropout, classifier_activation,
                 bn_momentum: float | None = None, drop_path_rate: float = 0.0):
    momentum = spec.bn_momentum if bn_momentum is None else check_fraction("bn_momentum", bn_momentum)
    rates = drop_path_rates(drop_path_rate, sum(spec.layers), endpoint=True)
    preact = spec.block == "preact"
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, use_bias=spec.use_bias, name="conv1_conv")(x)
    if not preact:  # v2 normalizes inside each block (`preact_bn`) and once after the last (`post_bn`)
        x = layers.BatchNormalization(epsilon=spec.bn_epsilon, momentum=momentum, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    # Zero padding equals -inf padding after a ReLU; v2 pools the raw conv output with zero padding, as keras does.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    index = 0
    for stage, (filters, blocks) in enumerate(zip(STAGE_FILTERS, spec.layers)):
        for b in range(blocks):
            block = _block(spec, filters, _strides(spec, stage, b), momentum, rates[index], first=b == 0)
            x = block(x, name=f"conv{stage + 2}_block{b + 1}")
            index += 1
    if preact:
        x = layers.BatchNormalization(epsilon=spec.bn_epsilon, momentum=momentum, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_STAGE = re.compile(r"^conv([2-5])_")


def resnet_group(name: str) -> str | None:
    if name.startswith(("conv1_", "pool1_")):
        return "stem"
    match = _STAGE.match(name)
    if match:
        return f"stage{int(match.group(1)) - 1}"
    if name in ("post_bn", "post_relu"):  # v2's final BN + ReLU train with the last stage
        return f"stage{len(STAGE_FILTERS)}"
    return "head" if is_head(name) else None


def _keras_imagenet(weights_name: str, preprocessing: dict) -> ImageNetWeights:
    def locate(include_top, input_shape, kwargs):
        from keras.src.applications import resnet as ka

        suffix = "" if include_top else "_notop"
        file_name = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, ka.WEIGHTS_HASHES[weights_name][0 if include_top else 1]

    return ImageNetWeights(locate=locate, preprocessing=preprocessing)


_KERAS_V1 = dict(use_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99)
_KERAS_V2 = dict(use_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99)  # biases on conv1, 0_conv, 3_conv only
_TORCH_BN = dict(bn_epsilon=1e-5, bn_momentum=0.9)
_RESNEXT = dict(stride_in_3x3=True, **_TORCH_BN)

SPECS = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3)),
    "resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3), **_KERAS_V1),
    "resnet101": ResNetSpec("bottleneck", (3, 4, 23, 3), **_KERAS_V1),
    "resnet152": ResNetSpec("bottleneck", (3, 8, 36, 3), **_KERAS_V1),
    "resnet50_v1_5": ResNetSpec("bottleneck", (3, 4, 6, 3), stride_in_3x3=True, **_KERAS_V1),
    "resnet101_v1_5": ResNetSpec("bottleneck", (3, 4, 23, 3), stride_in_3x3=True, **_KERAS_V1),
    "resnet152_v1_5": ResNetSpec("bottleneck", (3, 8, 36, 3), stride_in_3x3=True, **_KERAS_V1),
    "se_resnet18": ResNetSpec("basic", (2, 2, 2, 2), se_ratio=1 / 16),
    "se_resnet34": ResNetSpec("basic", (3, 4, 6, 3), se_ratio=1 / 16),
    "se_resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3), se_ratio=1 / 16, stride_in_3x3=True, **_TORCH_BN),
    "se_resnet101": ResNetSpec("bottleneck", (3, 4, 23, 3), se_ratio=1 / 16, stride_in_3x3=True, **_TORCH_BN),
    "resnet50_v2": ResNetSpec("preact", (3, 4, 6, 3), **_KERAS_V2),
    "resnet101_v2": ResNetSpec("preact", (3, 4, 23, 3), **_KERAS_V2),
    "resnet152_v2": ResNetSpec("preact", (3, 8, 36, 3), **_KERAS_V2),
    "resnext50_32x4d": ResNetSpec("bottleneck", (3, 4, 6, 3), groups=32, base_width=4, **_RESNEXT),
    "resnext101_32x8d": ResNetSpec("bottleneck", (3, 4, 23, 3), groups=32, base_width=8, **_RESNEXT),
    "se_resnext50_32x4d": ResNetSpec("bottleneck", (3, 4, 6, 3), se_ratio=1 / 16, groups=32, base_width=4,
                                     **_RESNEXT),
}
# keras.applications' ResNet files were trained on caffe-style inputs (BGR, mean subtracted), its ResNetV2 files
# on [-1, 1] inputs; the v1 files are v1 (stride on the 1x1): they load only into the v1 layouts.
_IMAGENET = {"resnet50": ("resnet50", CAFFE), "resnet101": ("resnet101", CAFFE), "resnet152": ("resnet152", CAFFE),
             "resnet50_v2": ("resnet50v2", TF), "resnet101_v2": ("resnet101v2", TF),
             "resnet152_v2": ("resnet152v2", TF)}
# keras.applications' layouts take their files' inputs (v1.5 keeps v1's caffe); torchvision-style ones ImageNet
# mean/std.
_PREPROCESSING = {name: _IMAGENET[name][1] if name in _IMAGENET else CAFFE if name.endswith("_v1_5") else TORCH
                  for name in SPECS}


def _family(name: str, spec: ResNetSpec) -> tuple[str, str]:
    if spec.block == "preact":
        return "resnet_v2", V2_PAPER
    kind = "resnext" if spec.groups > 1 else "resnet"
    if spec.se_ratio:
        return f"se_{kind}", SE_PAPER
    return kind, RESNEXT_PAPER if spec.groups > 1 else PAPER


# Feature taps (`create_model(features_only=True)`): v1 (ResNet, SE-ResNet, ResNeXt) taps each stage's last block
# output (`conv{k}_block{n}_out`, after its ReLU); v2 (pre-activation, keras' stride in a stack's last block) taps
# the activated input of the last block still at a stride (`conv{k}_block{n}_preact_relu`), and post_relu.
FEATURE_TAPS = {"v1": r"conv1_relu|conv\d+_block\d+_out",
                "v2": r"conv1_conv|conv\d+_block\d+_preact_relu|post_relu"}

for _name, _spec in SPECS.items():
    _fam, _paper = _family(_name, _spec)
    register_model(ModelEntry(
        name=_name,
        family=_fam,
        builder=functools.partial(build_resnet, spec=_spec),
        default_input_size=224,
        paper=_paper,
        preprocessing=_PREPROCESSING[_name],
        group_of=resnet_group,
        feature_taps=FEATURE_TAPS["v2" if _fam == "resnet_v2" else "v1"],
        imagenet=_keras_imagenet(*_IMAGENET[_name]) if _name in _IMAGENET else None,
    ))
