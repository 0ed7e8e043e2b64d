"""MobileNetV2 (Sandler et al. 2018): inverted residuals with linear bottlenecks, width multiplier `alpha`.

Layer names, widths and rounding follow keras.applications' MobileNetV2, so its weight files load.
`drop_path_rate` adds stochastic depth to the residual blocks (rate * i / 17 at block i, EfficientNet's rule;
keras.applications has none, so the default is 0).

Example:
    >>> model = cnnzoo.create_model("mobilenet_v2", alpha=0.5, num_classes=10, input_shape=(96, 96, 3))
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from cnnzoo._checks import check_float, check_fraction
from cnnzoo.layers.blocks import ConvBNAct, InvertedResidual, drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights
from cnnzoo.scaling import make_divisible

PAPER = "https://arxiv.org/abs/1801.04381"
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class StageSpec:
    """One row of the paper's Table 2: expansion t, output channels c, repeats n, first stride s."""

    expand_ratio: int
    filters: int
    repeats: int
    strides: int


STAGES = (StageSpec(1, 16, 1, 1), StageSpec(6, 24, 2, 2), StageSpec(6, 32, 3, 2), StageSpec(6, 64, 4, 2),
          StageSpec(6, 96, 3, 1), StageSpec(6, 160, 3, 2), StageSpec(6, 320, 1, 1))
_BN = dict(bn_epsilon=1e-3, bn_momentum=0.999)


def build_mobilenet_v2(x, *, include_top, num_classes, pooling, dropout, classifier_activation, alpha: float = 1.0,
                       bn_momentum: float | None = None, drop_path_rate: float = 0.0):
    alpha = check_float("alpha", alpha, minimum=0.0, exclusive_minimum=True, finite=True)
    rates = drop_path_rates(drop_path_rate, sum(stage.repeats for stage in STAGES))
    bn = dict(_BN, bn_momentum=_BN["bn_momentum"] if bn_momentum is None else check_fraction("bn_momentum",
                                                                                            bn_momentum))
    x = ConvBNAct(make_divisible(32 * alpha, 8), 3, strides=2, padding="same", activation="relu6",
                  conv_name="Conv1", bn_name="bn_Conv1", act_name="Conv1_relu", **bn)(x, name="Conv1")
    block_id = 0
    for stage in STAGES:
        for i in range(stage.repeats):
            prefix = "expanded_conv_" if block_id == 0 else f"block_{block_id}_"
            # keras.applications truncates before rounding: int(filters * alpha), then make_divisible.
            x = InvertedResidual(make_divisible(int(stage.filters * alpha), 8), expand_ratio=stage.expand_ratio,
                                 strides=stage.strides if i == 0 else 1, activation="relu6",
                                 drop_rate=rates[block_id], naming="mobilenet_v2", **bn)(x, prefix=prefix)
            block_id += 1
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = ConvBNAct(last, 1, padding="same", activation="relu6", conv_name="Conv_1", bn_name="Conv_1_bn",
                  act_name="out_relu", **bn)(x, name="Conv_1")
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


def _stage_of_block() -> dict[int, int]:
    mapping, block_id = {}, 0
    for index, stage in enumerate(STAGES, start=1):
        for _ in range(stage.repeats):
            mapping[block_id] = index
            block_id += 1
    return mapping


_BLOCK_STAGE = _stage_of_block()
_BLOCK = re.compile(r"^block_(\d+)_")


def mobilenet_v2_group(name: str) -> str | None:
    if name in ("Conv1", "bn_Conv1", "Conv1_relu"):
        return "stem"
    if name.startswith("expanded_conv_"):
        return "stage1"
    match = _BLOCK.match(name)
    if match:
        return f"stage{_BLOCK_STAGE[int(match.group(1))]}"
    if name in ("Conv_1", "Conv_1_bn", "out_relu"):  # the last 1x1 conv trains with the last stage
        return f"stage{len(STAGES)}"
    return "head" if is_head(name) else None


def _imagenet(include_top, input_shape, kwargs):
    from keras.src.applications import mobilenet_v2 as ka

    alpha = float(kwargs.get("alpha", 1.0))
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(f"MobileNetV2 ImageNet weights exist for alpha in {IMAGENET_ALPHAS}. Received: alpha={alpha}")
    rows = input_shape[0] if input_shape[0] == input_shape[1] else None
    if rows not in IMAGENET_SIZES:
        warnings.warn(f"MobileNetV2 ImageNet weights exist for sizes {IMAGENET_SIZES}; loading the 224 px ones for "
                      f"input_shape={input_shape}.", stacklevel=3)
        rows = 224
    suffix = "" if include_top else "_no_top"
    file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}{suffix}.h5"
    return file_name, ka.BASE_WEIGHT_PATH + file_name, None


IMAGENET = ImageNetWeights(locate=_imagenet, preprocessing={"mode": "tf"}, input_sizes=IMAGENET_SIZES)


# Feature taps (`create_model(features_only=True)`): the last activation at each stride, which is the expansion of the next stride-2 block (block_1/3/6/13_expand_relu, 6x the block width; where SSDLite, DeepLab and the TF segmentation tutorial tap), and out_relu at stride 32.
FEATURE_TAPS = r"Conv1_relu|expanded_conv_depthwise_relu|block_\d+_(expand|depthwise)_relu|out_relu"

for _suffix, _alpha in [("", 1.0), ("_035", 0.35), ("_050", 0.5), ("_075", 0.75), ("_100", 1.0), ("_130", 1.3),
                        ("_140", 1.4)]:
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=f"mobilenet_v2{_suffix}", family="mobilenet_v2", builder=build_mobilenet_v2, default_input_size=224,
        paper=PAPER, preprocessing=IMAGENET.preprocessing, group_of=mobilenet_v2_group, imagenet=IMAGENET,
        defaults={"alpha": _alpha}, fixed=("alpha",) if _suffix else (),
    ))
