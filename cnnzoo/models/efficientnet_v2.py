"""EfficientNetV2 (Tan & Le 2021): fused-MBConv early stages, MBConv later, trained with progressive resizing.

B0-B3 share one stage table scaled in width and depth like EfficientNet; S, M and L have their own tables.
Layouts, names and rounding are keras.applications' (`stem_conv`, `block1a_project_conv`, `block4a_dwconv2`,
`top_conv`, ...), so its weight files load. B0-B3's ImageNet weights take ImageNet mean/std inputs, S/M/L's
x / 128 - 1.

Example:
    >>> model = cnnzoo.create_model("efficientnet_v2_b0", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from cnnzoo._checks import check_fraction, received
from cnnzoo.layers.blocks.efficientnet_v2 import FusedMBConv, MBConvV2
from cnnzoo.layers.blocks import ConvBNAct
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.scaling import make_divisible, round_repeats
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/2104.00298"
BN = dict(bn_epsilon=1e-3, bn_momentum=0.9)
TOP_FILTERS = 1280
HEAD_DROPOUT = 0.2


@dataclass(frozen=True)
class V2Stage:
    """One EfficientNetV2 stage before width/depth scaling (keras.applications' block arguments)."""

    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float
    fused: bool
    kernel_size: int = 3


def _stages(*rows) -> tuple[V2Stage, ...]:
    return tuple(V2Stage(*row) for row in rows)


#            repeats  in   out  expand strides  se   fused
B_STAGES = _stages((1, 32, 16, 1, 1, 0.0, True), (2, 16, 32, 4, 2, 0.0, True), (2, 32, 48, 4, 2, 0.0, True),
                   (3, 48, 96, 4, 2, 0.25, False), (5, 96, 112, 6, 1, 0.25, False), (8, 112, 192, 6, 2, 0.25, False))
S_STAGES = _stages((2, 24, 24, 1, 1, 0.0, True), (4, 24, 48, 4, 2, 0.0, True), (4, 48, 64, 4, 2, 0.0, True),
                   (6, 64, 128, 4, 2, 0.25, False), (9, 128, 160, 6, 1, 0.25, False),
                   (15, 160, 256, 6, 2, 0.25, False))
M_STAGES = _stages((3, 24, 24, 1, 1, 0.0, True), (5, 24, 48, 4, 2, 0.0, True), (5, 48, 80, 4, 2, 0.0, True),
                   (7, 80, 160, 4, 2, 0.25, False), (14, 160, 176, 6, 1, 0.25, False),
                   (18, 176, 304, 6, 2, 0.25, False), (5, 304, 512, 6, 1, 0.25, False))
L_STAGES = _stages((4, 32, 32, 1, 1, 0.0, True), (7, 32, 64, 4, 2, 0.0, True), (7, 64, 96, 4, 2, 0.0, True),
                   (10, 96, 192, 4, 2, 0.25, False), (19, 192, 224, 6, 1, 0.25, False),
                   (25, 224, 384, 6, 2, 0.25, False), (7, 384, 640, 6, 1, 0.25, False))


@dataclass(frozen=True)
class V2Spec:
    """An EfficientNetV2 variant as data: its stage table, width/depth coefficients and default input size."""

    stages: tuple[V2Stage, ...]
    width: float
    depth: float
    resolution: int
    weights_key: str  # keras.applications' WEIGHTS_HASHES key ("b0", "-s", ...)

    @property
    def keras_name(self) -> str:
        return "efficientnetv2-" + self.weights_key.lstrip("-")


SPECS = {
    "b0": V2Spec(B_STAGES, 1.0, 1.0, 224, "b0"), "b1": V2Spec(B_STAGES, 1.0, 1.1, 240, "b1"),
    "b2": V2Spec(B_STAGES, 1.1, 1.2, 260, "b2"), "b3": V2Spec(B_STAGES, 1.2, 1.4, 300, "b3"),
    "s": V2Spec(S_STAGES, 1.0, 1.0, 384, "-s"), "m": V2Spec(M_STAGES, 1.0, 1.0, 480, "-m"),
    "l": V2Spec(L_STAGES, 1.0, 1.0, 480, "-l"),
}


def v2_round_filters(filters: int, width: float) -> int:
    """keras.applications' EfficientNetV2 rounding: nearest multiple of 8, at least 8, with no 10 % guard."""
    # EfficientNet (V1) and MobileNetV2 add a divisor when rounding lost > 10 %; V2's own rule does not.
    return make_divisible(filters * width, divisor=8, min_value=8, round_limit=0.0)


def _block_letter(j: int) -> str:
    return chr(ord("a") + j) if j < 26 else f"z{j}"


def build_efficientnet_v2(x, *, spec: V2Spec, include_top, num_classes, pooling, dropout, classifier_activation,
                          drop_path_rate: float = 0.2):
    drop_path_rate = check_fraction("drop_path_rate", drop_path_rate)
    repeats = [round_repeats(s.repeats, spec.depth) for s in spec.stages]
    # keras.applications grows stochastic depth as rate * block_index / (blocks in the *unscaled* table), so for
    # B1-B3 (depth > 1) late blocks exceed `drop_path_rate`. Keep its rule; refuse rates that would reach 1.
    unscaled = sum(s.repeats for s in spec.stages)
    last = drop_path_rate * (sum(repeats) - 1) / unscaled
    if last >= 1.0:
        raise ValueError(f"`drop_path_rate` grows with the block index as in keras.applications (rate * block / "
                         f"{unscaled}), so the last of {sum(repeats)} blocks would drop with rate {last:.3f}; use "
                         f"drop_path_rate < {unscaled / (sum(repeats) - 1):.4f}. "
                         f"{received('drop_path_rate', drop_path_rate)}")
    x = ConvBNAct(v2_round_filters(spec.stages[0].filters_in, spec.width), 3, strides=2, padding="same",
                  activation="swish", conv_name="stem_conv", bn_name="stem_bn", act_name="stem_activation",
                  **BN)(x, name="stem")
    index = 0
    for i, (stage, count) in enumerate(zip(spec.stages, repeats)):
        block = FusedMBConv if stage.fused else MBConvV2
        filters = v2_round_filters(stage.filters_out, spec.width)
        for j in range(count):
            x = block(filters, expand_ratio=stage.expand_ratio, kernel_size=stage.kernel_size,
                      strides=stage.strides if j == 0 else 1, se_ratio=stage.se_ratio, activation="swish",
                      drop_rate=drop_path_rate * index / unscaled, **BN)(x, prefix=f"block{i + 1}{_block_letter(j)}_")
            index += 1
    x = ConvBNAct(v2_round_filters(TOP_FILTERS, spec.width), 1, padding="same", activation="swish",
                  conv_name="top_conv", bn_name="top_bn", act_name="top_activation", **BN)(x, name="top")
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling,
                      dropout=HEAD_DROPOUT if dropout is None else dropout,
                      classifier_activation=classifier_activation)


_BLOCK = re.compile(r"^block(\d+)[a-z]")


def _group_of(num_stages: int):
    def group_of(name: str) -> str | None:
        if is_head(name):
            return "head"
        if name.startswith("stem_"):
            return "stem"
        match = _BLOCK.match(name)
        if match:
            return f"stage{int(match.group(1))}"
        if name in ("top_conv", "top_bn", "top_activation"):  # the last 1x1 conv trains with the last stage
            return f"stage{num_stages}"
        return None

    return group_of


# B0-B3's weights were trained on (x / 255 - ImageNet mean) / ImageNet std (keras: Rescaling + Normalization with
# variance std**2); S/M/L's on x / 128 - 1 (keras: Rescaling(1/128, offset=-1)).
TORCH = {"mode": "torch"}
MINUS_ONE_TO_ONE = {"mode": "custom", "mean": [1.0], "std": [1.0], "scale": 1.0 / 128.0}


def _keras_imagenet(spec: V2Spec, preprocessing: dict) -> ImageNetWeights:
    def locate(include_top, input_shape, options):
        from keras.src.applications import efficientnet_v2 as ka

        file_name = f"{spec.keras_name}{'' if include_top else '_notop'}.h5"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, ka.WEIGHTS_HASHES[spec.weights_key][0 if include_top else 1]

    return ImageNetWeights(locate=locate, preprocessing=preprocessing)


# Feature taps (`create_model(features_only=True)`): the stage output (a fused stage's last block add) or the expansion of the next stride-2 MBConv block; top_activation at stride 32.
FEATURE_TAPS = r"(stem|top|block\d+[a-z]+(_expand|_project)?)_activation|block\d+[a-z]+_add"

for _variant, _spec in SPECS.items():
    _prep = TORCH if _variant.startswith("b") else MINUS_ONE_TO_ONE
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=f"efficientnet_v2_{_variant}", family="efficientnet_v2",
        builder=functools.partial(build_efficientnet_v2, spec=_spec), default_input_size=_spec.resolution,
        paper=PAPER, preprocessing=_prep, group_of=_group_of(len(_spec.stages)),
        imagenet=_keras_imagenet(_spec, _prep),
    ))
