"""MobileNetV3 (Howard et al. 2019): searched inverted residuals with hard-swish and hard-sigmoid SE gates.

Small and Large, with width multiplier `alpha` and the "minimalistic" variants (no SE, ReLU only, 3x3 kernels).
Stage tables, rounding, layer names and the head follow keras.applications' MobileNetV3 (Keras 3), so its weight
files load; the classifier is the zoo's float32 Dense "predictions" (keras' 1x1 conv `logits` loads into it).

Example:
    >>> model = cnnzoo.create_model("mobilenet_v3_small", num_classes=10, input_shape=(96, 96, 3))
    >>> model = cnnzoo.create_model("mobilenet_v3_large_minimal", alpha=0.75, include_top=False)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_choice, check_float, received
from cnnzoo.layers.blocks.mobilenet_v3 import InvertedResidualV3, activation
from cnnzoo.layers.blocks import CONV_INIT, ConvBNAct, drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier, global_pool
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.scaling import make_divisible
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1905.02244"
SE_RATIO = 0.25
DEFAULT_DROPOUT = 0.2  # keras.applications' dropout_rate before the classifier
_BN = dict(bn_epsilon=1e-3, bn_momentum=0.999)


@dataclass(frozen=True)
class BlockSpec:
    """One row of the paper's Tables 1-2 as keras.applications writes it.

    `kernel_size` 5, `se` and `hard_swish` are what minimalistic models drop (3x3, no SE, ReLU); `expansion`
    multiplies the block's input width (rounded with `make_divisible`); `filters` is scaled by `alpha`.
    """

    kernel_size: int
    expansion: float
    filters: int
    strides: int
    se: bool
    hard_swish: bool


@dataclass(frozen=True)
class MobileNetV3Spec:
    blocks: tuple
    last_point_filters: int  # the head's 1x1 conv `conv_2` (scaled only when alpha > 1, as keras does)


def _b(*row) -> BlockSpec:
    return BlockSpec(*row)


SPECS = {
    "small": MobileNetV3Spec((
        _b(3, 1, 16, 2, True, False), _b(3, 72 / 16, 24, 2, False, False), _b(3, 88 / 24, 24, 1, False, False),
        _b(5, 4, 40, 2, True, True), _b(5, 6, 40, 1, True, True), _b(5, 6, 40, 1, True, True),
        _b(5, 3, 48, 1, True, True), _b(5, 3, 48, 1, True, True),
        _b(5, 6, 96, 2, True, True), _b(5, 6, 96, 1, True, True), _b(5, 6, 96, 1, True, True),
    ), 1024),
    "large": MobileNetV3Spec((
        _b(3, 1, 16, 1, False, False), _b(3, 4, 24, 2, False, False), _b(3, 3, 24, 1, False, False),
        _b(5, 3, 40, 2, True, False), _b(5, 3, 40, 1, True, False), _b(5, 3, 40, 1, True, False),
        _b(3, 6, 80, 2, False, True), _b(3, 2.5, 80, 1, False, True), _b(3, 2.3, 80, 1, False, True),
        _b(3, 2.3, 80, 1, False, True), _b(3, 6, 112, 1, True, True), _b(3, 6, 112, 1, True, True),
        _b(5, 6, 160, 2, True, True), _b(5, 6, 160, 1, True, True), _b(5, 6, 160, 1, True, True),
    ), 1280),
}
MODEL_TYPES = tuple(SPECS)
STEM_FILTERS = 16  # not scaled by alpha (keras.applications)
LAST_CONV_EXPANSION = 6  # `conv_1` widens the last block's output 6x: 576 (small) / 960 (large) at alpha 1


def _prefix(block_id: int) -> str:
    return "expanded_conv_" if block_id == 0 else f"expanded_conv_{block_id}_"


def build_mobilenet_v3(x, *, include_top, num_classes, pooling, dropout, classifier_activation,
                       model_type: str = "large", alpha: float = 1.0, minimalistic: bool = False,
                       drop_path_rate: float = 0.0):
    """MobileNetV3 Small or Large (https://arxiv.org/abs/1905.02244), keras.applications' graph and names.

    Args:
        model_type: str, "small" or "large" (fixed by every registered name).
        alpha: float > 0, width multiplier of the blocks (`make_divisible(filters * alpha)`); the stem stays 16,
            `conv_2` widens only for alpha > 1 (keras' rule). ImageNet files exist for 0.75 and 1.0.
        minimalistic: bool, keras' minimalistic models: no SE, ReLU everywhere, 3x3 depthwise kernels.
        drop_path_rate: float in [0, 1), stochastic depth on the identity blocks, block i of n at rate * i / n.

    Example:
        >>> cnnzoo.create_model("mobilenet_v3_small", alpha=0.75, drop_path_rate=0.1, input_shape=(96, 96, 3))
    """
    spec = SPECS[check_choice("model_type", model_type, MODEL_TYPES)]
    alpha = check_float("alpha", alpha, minimum=0.0, exclusive_minimum=True, finite=True)
    check_choice("minimalistic", minimalistic, (True, False))
    act = "relu" if minimalistic else "hard_swish"
    x = ConvBNAct(STEM_FILTERS, 3, strides=2, padding="same", activation=None, conv_name="conv", bn_name="conv_bn",
                  **_BN)(x, name="conv")
    x = activation(x, act, f"conv_{act}")
    rates = drop_path_rates(drop_path_rate, len(spec.blocks))
    for block_id, (block, rate) in enumerate(zip(spec.blocks, rates)):
        x = InvertedResidualV3(
            make_divisible(block.filters * alpha), expansion=block.expansion,
            kernel_size=3 if minimalistic else block.kernel_size, strides=block.strides,
            se_ratio=SE_RATIO if block.se and not minimalistic else None,
            activation=act if block.hard_swish else "relu", drop_rate=rate, **_BN)(x, prefix=_prefix(block_id))
    x = ConvBNAct(make_divisible(x.shape[-1] * LAST_CONV_EXPANSION), 1, activation=None, conv_name="conv_1",
                  bn_name="conv_1_bn", **_BN)(x, name="conv_1")
    x = activation(x, act, f"conv_1_{act}")
    if not include_top:
        return global_pool(x, pooling)
    # keras: GlobalAveragePooling2D(keepdims) -> `conv_2` 1x1 with bias -> activation -> dropout -> `logits` 1x1.
    # Here any `pooling=` feeds `conv_2` as a 1x1 map, and the zoo's Dense "predictions" replaces `logits`.
    last_point = spec.last_point_filters
    if alpha > 1.0:
        last_point = make_divisible(last_point * alpha)
    x = global_pool(x, pooling)
    x = layers.Reshape((1, 1, x.shape[-1]), name="conv_2_reshape")(x)
    x = layers.Conv2D(last_point, 1, padding="same", use_bias=True, kernel_initializer=CONV_INIT, name="conv_2")(x)
    x = activation(x, act, f"conv_2_{act}")
    x = layers.Flatten(name="flatten")(x)
    return classifier(x, include_top=True, num_classes=num_classes, pooling=pooling,
                      dropout=DEFAULT_DROPOUT if dropout is None else dropout,
                      classifier_activation=classifier_activation, pool=False)


_BLOCK = re.compile(r"^expanded_conv_(?:(\d+)_)?")
_STEM = re.compile(r"^conv(_bn|_relu|_hard_swish)?$")
_LAST_CONV = re.compile(r"^conv_1(_bn|_relu|_hard_swish)?$")
_HEAD_CONV = re.compile(r"^conv_2(_reshape|_relu|_hard_swish)?$")


def _stage_of_blocks(spec: MobileNetV3Spec) -> dict[int, int]:
    """Block index -> stage by output stride: stage k ends at stride 2**(k + 1); stride-2 blocks join the stem."""
    stages, stride = {}, 2  # after the stem
    for block_id, block in enumerate(spec.blocks):
        stride *= block.strides
        stages[block_id] = max(0, stride.bit_length() - 2)  # 2 -> 0 (stem), 4 -> 1, ..., 32 -> 4
    return stages


def _group_of(model_type: str):
    stages = _stage_of_blocks(SPECS[model_type])
    last = max(stages.values())

    def mobilenet_v3_group(name: str) -> str | None:
        """stem: `conv*` (and Large's first block, still at stride 2); stage1-4: blocks by output stride 4..32
        (`conv_1`, the last 1x1 conv, with stage4); head: pooling, `conv_2`, classifier."""
        if _STEM.match(name):
            return "stem"
        match = _BLOCK.match(name)
        if match:
            stage = stages.get(int(match.group(1) or 0))
            return None if stage is None else ("stem" if stage == 0 else f"stage{stage}")
        if _LAST_CONV.match(name):
            return f"stage{last}"
        if _HEAD_CONV.match(name) or is_head(name):
            return "head"
        return None

    return mobilenet_v3_group


# keras.applications' ImageNet files: alpha 0.75 and 1.0, minimalistic only at 1.0; all trained at 224 px.
IMAGENET_ALPHAS = {False: (0.75, 1.0), True: (1.0,)}


def _imagenet(include_top, input_shape, options):
    from keras.src.applications import mobilenet_v3 as ka

    model_type = options.get("model_type", "large")
    minimalistic = bool(options.get("minimalistic", False))
    alpha = float(options.get("alpha", 1.0))
    if alpha not in IMAGENET_ALPHAS[minimalistic]:
        kind = "minimalistic " if minimalistic else ""
        raise ValueError(f"keras.applications has {kind}MobileNetV3 ImageNet weights for alpha in "
                         f"{IMAGENET_ALPHAS[minimalistic]} only. {received('alpha', alpha)}")
    key = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    file_name = f"weights_mobilenet_v3_{key}{'' if include_top else '_no_top_v2'}.h5"
    return file_name, ka.BASE_WEIGHT_PATH + file_name, ka.WEIGHTS_HASHES[key][0 if include_top else 1]


# keras' MobileNetV3 rescales inside the model (Rescaling(1 / 127.5, offset=-1)): x / 127.5 - 1, "tf" mode.
IMAGENET = ImageNetWeights(locate=_imagenet, preprocessing={"mode": "tf"}, classifier="logits", input_sizes=(224,))

# Feature taps (`create_model(features_only=True)`): the last activation at each stride: the expansion of the next stride-2 block (as MobileNetV2), conv_1 at stride 32.
FEATURE_TAPS = r"(conv|conv_1|expanded_conv(_\d+)?_(expand|depthwise))_(relu|hard_swish)"

for _type in MODEL_TYPES:
    _groups = _group_of(_type)
    for _suffix, _options, _fixed in [
        ("", {"alpha": 1.0, "minimalistic": False}, ("model_type", "minimalistic")),
        ("_075", {"alpha": 0.75, "minimalistic": False}, ("model_type", "alpha", "minimalistic")),
        ("_100", {"alpha": 1.0, "minimalistic": False}, ("model_type", "alpha", "minimalistic")),
        ("_minimal", {"alpha": 1.0, "minimalistic": True}, ("model_type", "minimalistic")),
    ]:
        register_model(ModelEntry(
            feature_taps=FEATURE_TAPS,
            name=f"mobilenet_v3_{_type}{_suffix}", family="mobilenet_v3", builder=build_mobilenet_v3,
            default_input_size=224, paper=PAPER, preprocessing=IMAGENET.preprocessing, group_of=_groups,
            imagenet=IMAGENET, defaults={"model_type": _type, **_options}, fixed=_fixed,
        ))
