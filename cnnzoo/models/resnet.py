"""ResNet (He et al. 2015) with basic and bottleneck blocks, v1 and v1.5 strides, and SE-ResNet (Hu et al. 2018).

ResNet50/101/152 follow keras.applications' layout and names (conv biases, `conv2_block1_1_conv`, ...) so its
weight files load; ResNet18/34 and SE-ResNets follow torchvision (no conv bias) and use the same naming scheme.

Example:
    >>> model = cnnzoo.create_model("se_resnet18", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_fraction
from cnnzoo.layers.blocks import BasicBlock, Bottleneck
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1512.03385"
CAFFE, TORCH = {"mode": "caffe"}, {"mode": "torch"}
SE_PAPER = "https://arxiv.org/abs/1709.01507"
STAGE_FILTERS = (64, 128, 256, 512)


@dataclass(frozen=True)
class ResNetSpec:
    """A ResNet variant as data: block kind, blocks per stage, and the layout switches."""

    block: str  # "basic" | "bottleneck"
    layers: tuple[int, int, int, int]
    se_ratio: float | None = None
    stride_in_3x3: bool = False  # v1.5
    use_bias: bool = False  # keras.applications' v1 ResNets carry conv biases; torchvision's do not
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9


def _block(spec: ResNetSpec, filters: int, strides: int, bn_momentum: float):
    common = dict(strides=strides, se_ratio=spec.se_ratio, use_bias=spec.use_bias, bn_epsilon=spec.bn_epsilon,
                  bn_momentum=bn_momentum)
    if spec.block == "basic":
        return BasicBlock(filters, **common)
    return Bottleneck(filters, stride_in_3x3=spec.stride_in_3x3, **common)


def build_resnet(x, *, spec: ResNetSpec, include_top, num_classes, pooling, dropout, classifier_activation,
                 bn_momentum: float | None = None):
    momentum = spec.bn_momentum if bn_momentum is None else check_fraction("bn_momentum", bn_momentum)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, use_bias=spec.use_bias, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=spec.bn_epsilon, momentum=momentum, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    # Zero padding equals -inf padding here: the max pool follows a ReLU.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(zip(STAGE_FILTERS, spec.layers)):
        for b in range(blocks):
            strides = 2 if stage > 0 and b == 0 else 1
            x = _block(spec, filters, strides, momentum)(x, name=f"conv{stage + 2}_block{b + 1}")
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_STAGE = re.compile(r"^conv([2-5])_")


def resnet_group(name: str) -> str | None:
    if name.startswith(("conv1_", "pool1_")):
        return "stem"
    match = _STAGE.match(name)
    if match:
        return f"stage{int(match.group(1)) - 1}"
    return "head" if is_head(name) else None


def _keras_imagenet(weights_name: str) -> ImageNetWeights:
    def locate(include_top, input_shape, kwargs):
        from keras.src.applications import resnet as ka

        suffix = "" if include_top else "_notop"
        file_name = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, ka.WEIGHTS_HASHES[weights_name][0 if include_top else 1]

    # keras.applications' ResNet files were trained on caffe-style inputs (BGR, mean subtracted).
    return ImageNetWeights(locate=locate, preprocessing=CAFFE)


_KERAS_V1 = dict(use_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99)
_TORCH_BN = dict(bn_epsilon=1e-5, bn_momentum=0.9)

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
}
# keras.applications' ImageNet files are v1 (stride on the 1x1): they load only into the v1 layouts.
_IMAGENET = {"resnet50", "resnet101", "resnet152"}
_PREPROCESSING = {name: CAFFE if name.startswith("resnet") and name not in ("resnet18", "resnet34") else TORCH
                  for name in SPECS}

for _name, _spec in SPECS.items():
    register_model(ModelEntry(
        name=_name,
        family="se_resnet" if _spec.se_ratio else "resnet",
        builder=functools.partial(build_resnet, spec=_spec),
        default_input_size=224,
        paper=SE_PAPER if _spec.se_ratio else PAPER,
        # keras.applications' layouts take caffe inputs like its files; torchvision-style ones ImageNet mean/std.
        preprocessing=_PREPROCESSING[_name],
        group_of=resnet_group,
        imagenet=_keras_imagenet(_name) if _name in _IMAGENET else None,
    ))
