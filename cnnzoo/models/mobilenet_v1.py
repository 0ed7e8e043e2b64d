"""MobileNetV1 (Howard et al. 2017): 13 depthwise separable blocks, width multiplier `alpha`, `depth_multiplier`.

Layer names, widths (`int(filters * alpha)`, truncated as keras.applications does), padding and BatchNorm settings
follow keras.applications' MobileNet (`conv1`, `conv_dw_1`, `conv_pw_1_bn`, `conv_pad_2`, ...) so its weight files
load. keras' classifier is a 1x1 conv `conv_preds` on the pooled features; the zoo's is the same linear map as a
Dense "predictions", and the ImageNet files' `conv_preds` loads into it. keras' head drops out 1e-3 of the pooled
features while training; `dropout=None` keeps that default (`dropout=0` removes the layer). MobileNetV1 is not
residual: it has no `drop_path_rate`.

Example:
    >>> model = cnnzoo.create_model("mobilenet_v1", alpha=0.5, num_classes=10, input_shape=(96, 96, 3))
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_float, check_int, received
from cnnzoo.layers.blocks.mobilenet_v1 import DepthwiseSeparable
from cnnzoo.layers.blocks import CONV_INIT
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1704.04861"
PREPROCESSING = {"mode": "tf"}  # keras' mobilenet.preprocess_input: x / 127.5 - 1
IMAGENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
IMAGENET_SIZES = (128, 160, 192, 224)
# keras.applications' file names spell alpha as two digits: mobilenet_7_5_224_tf.h5 is alpha 0.75.
_ALPHA_TEXT = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}
STEM_FILTERS = 32
# keras.applications' default head dropout (MobileNet(dropout=1e-3)): kept so training matches keras.
DEFAULT_DROPOUT = 1e-3
_BN = dict(bn_epsilon=1e-3, bn_momentum=0.99)  # keras' BatchNormalization defaults, which keras' MobileNet uses


@dataclass(frozen=True)
class BlockSpec:
    """One depthwise separable block of the paper's Table 1: pointwise filters (at alpha 1) and depthwise stride."""

    filters: int
    strides: int


BLOCKS = (BlockSpec(64, 1), BlockSpec(128, 2), BlockSpec(128, 1), BlockSpec(256, 2), BlockSpec(256, 1),
          BlockSpec(512, 2)) + (BlockSpec(512, 1),) * 5 + (BlockSpec(1024, 2), BlockSpec(1024, 1))
FEATURES = BLOCKS[-1].filters


def _width(filters: int, alpha: float) -> int:
    # keras.applications truncates: int(filters * alpha), no rounding to a multiple of 8.
    width = int(filters * alpha)
    if width < 1:
        raise ValueError(f"`alpha` leaves a layer of {filters} filters with none (int({filters} * alpha) = 0); "
                         f"alpha must be at least {1 / STEM_FILTERS}. {received('alpha', alpha)}")
    return width


def build_mobilenet_v1(x, *, include_top, num_classes, pooling, dropout, classifier_activation, alpha: float = 1.0,
                       depth_multiplier: int = 1):
    alpha = check_float("alpha", alpha, minimum=0.0, exclusive_minimum=True, finite=True)
    depth_multiplier = check_int("depth_multiplier", depth_multiplier, minimum=1)
    # The stem is a "same"-padded stride-2 conv (keras pads nothing explicitly there, unlike in the blocks).
    x = layers.Conv2D(_width(STEM_FILTERS, alpha), 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="conv1")(x)
    x = layers.BatchNormalization(epsilon=_BN["bn_epsilon"], momentum=_BN["bn_momentum"], name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, spec in enumerate(BLOCKS, start=1):
        x = DepthwiseSeparable(_width(spec.filters, alpha), strides=spec.strides, depth_multiplier=depth_multiplier,
                               **_BN)(x, block_id=block_id)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling,
                      dropout=DEFAULT_DROPOUT if dropout is None else dropout,
                      classifier_activation=classifier_activation)


def _stage_of_block() -> dict[int, int]:
    """Stages by output stride (2, 4, 8, 16, 32): a stride-2 block opens the next stage."""
    mapping, stage = {}, 1
    for block_id, spec in enumerate(BLOCKS, start=1):
        if spec.strides == 2:
            stage += 1
        mapping[block_id] = stage
    return mapping


_BLOCK_STAGE = _stage_of_block()
_BLOCK = re.compile(r"^conv_(?:pad|dw|pw)_(\d+)(?:_bn|_relu)?$")


def mobilenet_v1_group(name: str) -> str | None:
    """stem (`conv1*`) | stage1 (block 1, stride 2) .. stage5 (blocks 12-13, stride 32) | head."""
    if name in ("conv1", "conv1_bn", "conv1_relu"):
        return "stem"
    match = _BLOCK.match(name)
    if match and int(match.group(1)) in _BLOCK_STAGE:
        return f"stage{_BLOCK_STAGE[int(match.group(1))]}"
    return "head" if is_head(name) else None


def _imagenet(include_top, input_shape, kwargs):
    from keras.src.applications import mobilenet as ka

    depth_multiplier = kwargs.get("depth_multiplier", 1)
    if depth_multiplier != 1:
        raise ValueError("MobileNetV1 ImageNet weights exist only for depth_multiplier=1. "
                         + received("depth_multiplier", depth_multiplier))
    alpha = kwargs.get("alpha", 1.0)
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(f"MobileNetV1 ImageNet weights exist for alpha in {IMAGENET_ALPHAS}. "
                         + received("alpha", alpha))
    rows = input_shape[0] if input_shape[0] == input_shape[1] else None
    if rows not in IMAGENET_SIZES:
        warnings.warn(f"MobileNetV1 ImageNet weights exist for sizes {IMAGENET_SIZES}; loading the 224 px ones for "
                      f"input_shape={tuple(input_shape)}.", stacklevel=3)
        rows = 224
    file_name = f"mobilenet_{_ALPHA_TEXT[float(alpha)]}_{rows}_tf{'' if include_top else '_no_top'}.h5"
    return file_name, ka.BASE_WEIGHT_PATH + file_name, None


IMAGENET = ImageNetWeights(locate=_imagenet, preprocessing=PREPROCESSING, classifier="conv_preds",
                           input_sizes=IMAGENET_SIZES)

# Feature taps (`create_model(features_only=True)`): the last pointwise ReLU at each stride.
FEATURE_TAPS = r"conv1_relu|conv_(dw|pw)_\d+_relu"

for _suffix, _alpha in [("", 1.0), ("_025", 0.25), ("_050", 0.5), ("_075", 0.75), ("_100", 1.0)]:
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=f"mobilenet_v1{_suffix}", family="mobilenet_v1", builder=build_mobilenet_v1, default_input_size=224,
        paper=PAPER, preprocessing=PREPROCESSING, group_of=mobilenet_v1_group, imagenet=IMAGENET,
        defaults={"alpha": _alpha}, fixed=("alpha",) if _suffix else (),
    ))
