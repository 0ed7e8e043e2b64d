"""Inception-v3 (Szegedy et al. 2015) and Inception-ResNet-v2 (Szegedy et al. 2016), keras.applications' layouts.

Both share a valid-padding stem (so they need inputs of at least 75 px) and are built from Inception modules
written as tables of branches (`cnnzoo.layers.blocks.inception`). keras.applications names only the modules'
concats (`mixed0`..`mixed10`, `mixed9_0`; `mixed_5b`, `mixed_6a`, `mixed_7a`, `block35_1_mixed`, ...), the
Inception-ResNet projections and activations (`block35_1_conv`, `block35_1_ac`) and `conv_7b`; every other layer
gets a deterministic name here (`stem_conv1_conv`, `mixed0_branch5x5_2_bn`, `block17_3_branch_1_2_relu`, ...).
The graphs mirror keras' branch and concat order exactly, so `model.layers` comes out in keras' order with keras'
classes: its legacy files load by order and its `.weights.h5` files by class keys.

Inception-ResNet-v2 is residual: `drop_path_rate` is stochastic depth on each of its 40 scaled residual branches,
growing linearly from 0 (first block) to the rate (last). Inception-v3 has no residuals and no such option.

Example:
    >>> model = cnnzoo.create_model("inception_v3", num_classes=10, input_shape=(96, 96, 3))
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo.layers.blocks.inception import Branch, InceptionConv as C, InceptionModule, InceptionResNetBlock
from cnnzoo.layers.blocks import drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

V3_PAPER = "https://arxiv.org/abs/1512.00567"
IRV2_PAPER = "https://arxiv.org/abs/1602.07261"
# keras.applications' Inception files expect pixels scaled to [-1, 1] (its preprocess_input, mode "tf").
PREPROCESSING = {"mode": "tf"}
DEFAULT_SIZE = 299
MIN_SIZE = 75  # the valid-padding stem and the stride-2 'valid' reductions leave a 1x1 map at 75 px


def _stem(x):
    """Both models' stem: three 3x3 convs (the first stride 2), max pool, 1x1 80, 3x3 192, max pool (stride 8)."""
    x = C(32, 3, strides=2, padding="valid")(x, name="stem_conv1")
    x = C(32, 3, padding="valid")(x, name="stem_conv2")
    x = C(64, 3)(x, name="stem_conv3")
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool1")(x)
    x = C(80, 1, padding="valid")(x, name="stem_conv4")
    x = C(192, 3, padding="valid")(x, name="stem_conv5")
    return layers.MaxPooling2D(3, strides=2, name="stem_pool2")(x)


def _valid(filters, kernel=3):
    """A stride-2 'valid' conv: how every reduction branch ends."""
    return C(filters, kernel, strides=2, padding="valid")


# ---- Inception-v3: 3 x A (35x35), reduction A, 4 x B (17x17, 7x7 factorized), reduction B, 2 x C (8x8).

def _v3_a(pool_filters: int) -> InceptionModule:
    return InceptionModule((
        Branch("branch1x1", (C(64),)),
        Branch("branch5x5", (C(48), C(64, 5))),
        Branch("branch3x3dbl", (C(64), C(96, 3), C(96, 3))),
        Branch("branch_pool", (C(pool_filters),), pool="avg"),
    ))


def _v3_b(c7: int) -> InceptionModule:
    return InceptionModule((
        Branch("branch1x1", (C(192),)),
        Branch("branch7x7", (C(c7), C(c7, (1, 7)), C(192, (7, 1)))),
        Branch("branch7x7dbl", (C(c7), C(c7, (7, 1)), C(c7, (1, 7)), C(c7, (7, 1)), C(192, (1, 7)))),
        Branch("branch_pool", (C(192),), pool="avg"),
    ))


def _v3_c(split_name: str) -> InceptionModule:
    # keras.applications names the 1x3 | 3x1 concat of branch3x3 (`mixed9_0`, `mixed9_1`), not branch3x3dbl's.
    expand = (C(384, (1, 3)), C(384, (3, 1)))
    return InceptionModule((
        Branch("branch1x1", (C(320),)),
        Branch("branch3x3", (C(384),), split=expand, split_name=split_name),
        Branch("branch3x3dbl", (C(448), C(384, 3)), split=expand),
        Branch("branch_pool", (C(192),), pool="avg"),
    ))


V3_REDUCTION_A = InceptionModule((
    Branch("branch3x3", (_valid(384),)),
    Branch("branch3x3dbl", (C(64), C(96, 3), _valid(96))),
    Branch("branch_pool", pool="max"),
))
V3_REDUCTION_B = InceptionModule((
    Branch("branch3x3", (C(192), _valid(320))),
    Branch("branch7x7x3", (C(192), C(192, (1, 7)), C(192, (7, 1)), _valid(192))),
    Branch("branch_pool", pool="max"),
))
# (concat name, module), input to output; the concat names are keras.applications'.
V3_MODULES = (
    ("mixed0", _v3_a(32)), ("mixed1", _v3_a(64)), ("mixed2", _v3_a(64)),
    ("mixed3", V3_REDUCTION_A),
    ("mixed4", _v3_b(128)), ("mixed5", _v3_b(160)), ("mixed6", _v3_b(160)), ("mixed7", _v3_b(192)),
    ("mixed8", V3_REDUCTION_B),
    ("mixed9", _v3_c("mixed9_0")), ("mixed10", _v3_c("mixed9_1")),
)


def build_inception_v3(x, *, include_top, num_classes, pooling, dropout, classifier_activation):
    x = _stem(x)
    for name, module in V3_MODULES:
        x = module(x, name=name)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_V3_MODULE = re.compile(r"^mixed(\d+)(_|$)")
# Stages by resolution, each starting with the module that reduces to it: 35x35, 17x17, 8x8.
_V3_STAGE_STARTS = (0, 3, 8)


def inception_v3_group(name: str) -> str | None:
    """stem | stage1..3 | head: stage1 = mixed0-2 (35x35), stage2 = mixed3-7 (17x17), stage3 = mixed8-10 (8x8).

    Each stage starts with the reduction into its resolution (as a ResNet stage starts with its stride-2 block).
    """
    if name.startswith("stem_"):
        return "stem"
    match = _V3_MODULE.match(name)
    if match:
        return f"stage{sum(int(match.group(1)) >= start for start in _V3_STAGE_STARTS)}"
    return "head" if is_head(name) else None


# ---- Inception-ResNet-v2: mixed_5b, 10 x block35, mixed_6a, 20 x block17, mixed_7a, 10 x block8, conv_7b.

IRV2_MIXED_5B = InceptionModule((
    Branch("branch_0", (C(96),)),
    Branch("branch_1", (C(48), C(64, 5))),
    Branch("branch_2", (C(64), C(96, 3), C(96, 3))),
    Branch("branch_pool", (C(64),), pool="avg"),
))
IRV2_MIXED_6A = InceptionModule((
    Branch("branch_0", (_valid(384),)),
    Branch("branch_1", (C(256), C(256, 3), _valid(384))),
    Branch("branch_pool", pool="max"),
))
IRV2_MIXED_7A = InceptionModule((
    Branch("branch_0", (C(256), _valid(384))),
    Branch("branch_1", (C(256), _valid(288))),
    Branch("branch_2", (C(256), C(288, 3), _valid(320))),
    Branch("branch_pool", pool="max"),
))
BLOCK35 = InceptionResNetBlock(InceptionModule((
    Branch("branch_0", (C(32),)),
    Branch("branch_1", (C(32), C(32, 3))),
    Branch("branch_2", (C(32), C(48, 3), C(64, 3))),
)), scale=0.17)
BLOCK17 = InceptionResNetBlock(InceptionModule((
    Branch("branch_0", (C(192),)),
    Branch("branch_1", (C(128), C(160, (1, 7)), C(192, (7, 1)))),
)), scale=0.1)
BLOCK8 = InceptionResNetBlock(InceptionModule((
    Branch("branch_0", (C(192),)),
    Branch("branch_1", (C(192), C(224, (1, 3)), C(256, (3, 1)))),
)), scale=0.2)


@dataclass(frozen=True)
class IRStage:
    """One Inception-ResNet-v2 stage: the module that enters its resolution, then `repeats` residual blocks."""

    entry_name: str
    entry: InceptionModule
    block_name: str
    block: InceptionResNetBlock
    repeats: int


IRV2_STAGES = (
    IRStage("mixed_5b", IRV2_MIXED_5B, "block35", BLOCK35, 10),  # 35x35, 320 channels
    IRStage("mixed_6a", IRV2_MIXED_6A, "block17", BLOCK17, 20),  # 17x17, 1088
    IRStage("mixed_7a", IRV2_MIXED_7A, "block8", BLOCK8, 10),    # 8x8, 2080
)
IRV2_FEATURES = 1536


def build_inception_resnet_v2(x, *, include_top, num_classes, pooling, dropout, classifier_activation,
                              drop_path_rate: float = 0.0):
    rates = iter(drop_path_rates(drop_path_rate, sum(s.repeats for s in IRV2_STAGES), endpoint=True))
    x = _stem(x)
    for stage in IRV2_STAGES:
        x = stage.entry(x, name=stage.entry_name)
        for i in range(1, stage.repeats + 1):
            block = dataclasses.replace(stage.block, drop_rate=next(rates))
            if stage is IRV2_STAGES[-1] and i == stage.repeats:
                # The very last block adds its residual unscaled and has no activation (keras.applications).
                block = dataclasses.replace(block, scale=1.0, activation=None)
            x = block(x, name=f"{stage.block_name}_{i}")
    x = C(IRV2_FEATURES, 1, conv_name="conv_7b", bn_name="conv_7b_bn", act_name="conv_7b_ac")(x, name="conv_7b")
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_IRV2_STAGE = {"mixed_5b": 1, "block35": 1, "mixed_6a": 2, "block17": 2, "mixed_7a": 3, "block8": 3, "conv_7b": 3}
_IRV2_PREFIX = re.compile(r"^(mixed_\d[a-z]|block\d+|conv_7b)(_|$)")


def inception_resnet_v2_group(name: str) -> str | None:
    """stem | stage1..3 | head: stage1 = mixed_5b + block35_1-10 (35x35), stage2 = mixed_6a + block17_1-20
    (17x17), stage3 = mixed_7a + block8_1-10 + conv_7b (8x8)."""
    if name.startswith("stem_"):
        return "stem"
    match = _IRV2_PREFIX.match(name)
    if match and match.group(1) in _IRV2_STAGE:
        return f"stage{_IRV2_STAGE[match.group(1)]}"
    return "head" if is_head(name) else None


# keras.applications writes the files' MD5 hashes inline in its builders (no table to import): (top, no top).
WEIGHTS_HASHES = {
    "inception_v3": ("9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63"),
    "inception_resnet_v2": ("e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4"),
}


def _locate_inception_v3(include_top, input_shape, kwargs):
    from keras.src.applications import inception_v3 as ka

    url = ka.WEIGHTS_PATH if include_top else ka.WEIGHTS_PATH_NO_TOP
    return url.rsplit("/", 1)[1], url, WEIGHTS_HASHES["inception_v3"][0 if include_top else 1]


def _locate_inception_resnet_v2(include_top, input_shape, kwargs):
    from keras.src.applications import inception_resnet_v2 as ka

    file_name = f"inception_resnet_v2_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return file_name, ka.BASE_WEIGHT_URL + file_name, WEIGHTS_HASHES["inception_resnet_v2"][0 if include_top else 1]


# Feature taps (`create_model(features_only=True)`): the stem's activations at strides 2 and 4, then each stage's
# last module output (Inception-v3: mixed2, mixed7, mixed10; Inception-ResNet-v2: the last block35/block17
# activation and conv_7b_ac).
V3_FEATURE_TAPS = r"stem_conv\d+_relu|mixed\d+"
IRV2_FEATURE_TAPS = r"stem_conv\d+_relu|block35_\d+_ac|block17_\d+_ac|conv_7b_ac"

register_model(ModelEntry(
    name="inception_v3",
    family="inception_v3",
    builder=build_inception_v3,
    default_input_size=DEFAULT_SIZE,
    paper=V3_PAPER,
    preprocessing=PREPROCESSING,
    group_of=inception_v3_group,
    feature_taps=V3_FEATURE_TAPS,
    imagenet=ImageNetWeights(locate=_locate_inception_v3, preprocessing=PREPROCESSING),
    min_input_size=MIN_SIZE,
))
register_model(ModelEntry(
    name="inception_resnet_v2",
    family="inception_resnet_v2",
    builder=build_inception_resnet_v2,
    default_input_size=DEFAULT_SIZE,
    paper=IRV2_PAPER,
    preprocessing=PREPROCESSING,
    group_of=inception_resnet_v2_group,
    feature_taps=IRV2_FEATURE_TAPS,
    imagenet=ImageNetWeights(locate=_locate_inception_resnet_v2, preprocessing=PREPROCESSING),
    min_input_size=MIN_SIZE,
))
