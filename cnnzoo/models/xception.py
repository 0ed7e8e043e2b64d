"""Xception (Chollet 2017): residual blocks of depthwise separable convolutions, entry, middle and exit flows.

Layer names, widths, padding and BatchNorm settings follow keras.applications' Xception (`block1_conv1`,
`block2_sepconv1`, `block13_pool`, `block14_sepconv2_act`, ...) so its weight files load. keras leaves the four
1x1 shortcut convs, their BNs and the adds auto-named; here they are `block{2,3,4,13}_residual_conv`/`_bn` and
`block{N}_add`, built in keras' order so its files load by order. Xception is residual: `drop_path_rate` puts
stochastic depth on the branch of each of the 12 residual blocks, growing linearly to `drop_path_rate` at the last.

Example:
    >>> model = cnnzoo.create_model("xception", num_classes=10, input_shape=(96, 96, 3))
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_fraction
from cnnzoo.layers.blocks.xception import XceptionBlock
from cnnzoo.layers.blocks import CONV_INIT, ConvBNAct, drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1610.02357"
PREPROCESSING = {"mode": "tf"}  # keras' xception.preprocess_input: x / 127.5 - 1
# keras.applications refuses inputs under 71 px (`obtain_input_shape(min_size=71)`) and so does the zoo. The graph
# itself would run from 32 px (two valid 3x3 convs, then four "same" stride-2 pools: 32 -> 15 -> 13 -> 1).
MIN_INPUT_SIZE = 71
FEATURES = 2048


@dataclass(frozen=True)
class XceptionBlockSpec:
    """One residual block: the separable convs' widths and whether it halves the resolution (pool + 1x1 shortcut)."""

    block: int  # keras' block number (block2 ... block13)
    filters: tuple[int, ...]
    downsample: bool


# Entry flow (blocks 2-4), middle flow (8 x block 5-12), exit flow's residual block 13; block 14 is not residual.
BLOCKS = ((XceptionBlockSpec(2, (128, 128), True), XceptionBlockSpec(3, (256, 256), True),
           XceptionBlockSpec(4, (728, 728), True))
          + tuple(XceptionBlockSpec(b, (728, 728, 728), False) for b in range(5, 13))
          + (XceptionBlockSpec(13, (728, 1024), True),))
EXIT_FILTERS = (1536, FEATURES)
_BN = dict(epsilon=1e-3, momentum=0.99)  # keras' BatchNormalization defaults, which keras' Xception uses


def build_xception(x, *, include_top, num_classes, pooling, dropout, classifier_activation,
                   drop_path_rate: float = 0.0):
    rates = drop_path_rates(check_fraction("drop_path_rate", drop_path_rate), len(BLOCKS), endpoint=True)
    # Entry flow stem: two valid 3x3 convs (the first with stride 2).
    x = ConvBNAct(32, 3, strides=2, padding="valid", conv_name="block1_conv1", bn_name="block1_conv1_bn",
                  act_name="block1_conv1_act")(x, name="block1_conv1")
    x = ConvBNAct(64, 3, padding="valid", conv_name="block1_conv2", bn_name="block1_conv2_bn",
                  act_name="block1_conv2_act")(x, name="block1_conv2")
    for spec, rate in zip(BLOCKS, rates):
        x = XceptionBlock(spec.filters, downsample=spec.downsample, first_activation=spec.block != 2,
                          drop_rate=rate)(x, name=f"block{spec.block}")
    # Exit flow: separable conv -> BN -> ReLU, twice (post-activation, no shortcut).
    for i, filters in enumerate(EXIT_FILTERS, start=1):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_initializer=CONV_INIT,
                                   pointwise_initializer=CONV_INIT, name=f"block14_sepconv{i}")(x)
        x = layers.BatchNormalization(**_BN, name=f"block14_sepconv{i}_bn")(x)
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_BLOCK = re.compile(r"^block(\d+)_")


def _stage_of_block(block: int) -> int:
    """Stages end at output strides 4, 8, 16, 32: block2 | block3 | blocks 4-12 | blocks 13-14."""
    if block <= 3:
        return block - 1
    return 3 if block <= 12 else 4


def xception_group(name: str) -> str | None:
    match = _BLOCK.match(name)
    if match:
        block = int(match.group(1))
        if block == 1:
            return "stem"
        if 2 <= block <= 14:
            return f"stage{_stage_of_block(block)}"
        return None
    return "head" if is_head(name) else None


# keras.applications writes these MD5 hashes inline in Xception() (no table to import): (top, no top).
WEIGHTS_HASHES = ("0a58e3b7378bc2990ea3b43d5981f1f6", "b0042744bf5b25fce3cb969f33bebb97")


def _imagenet(include_top, input_shape, kwargs):
    from keras.src.applications import xception as ka

    url = ka.WEIGHTS_PATH if include_top else ka.WEIGHTS_PATH_NO_TOP
    return url.rsplit("/", 1)[1], url, WEIGHTS_HASHES[0 if include_top else 1]


IMAGENET = ImageNetWeights(locate=_imagenet, preprocessing=PREPROCESSING)

# Feature taps (`create_model(features_only=True)`): each block's input activation (the ReLU of the previous block's sum); block14_sepconv2_act at stride 32.
FEATURE_TAPS = r"block1_conv2_act|block\d+_sepconv1_act|block14_sepconv2_act"

register_model(ModelEntry(
    feature_taps=FEATURE_TAPS,
    name="xception", family="xception", builder=build_xception, default_input_size=299, paper=PAPER,
    preprocessing=PREPROCESSING, group_of=xception_group, imagenet=IMAGENET, min_input_size=MIN_INPUT_SIZE,
))
