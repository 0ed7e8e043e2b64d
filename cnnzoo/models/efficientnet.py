"""EfficientNet (Tan & Le 2019): MBConv stages scaled in width, depth and resolution by one coefficient.

B0-B7 use the published coefficients (keras.applications' table, so its weight files load);
`efficientnet(phi)` computes them from the compound rule depth=alpha**phi, width=beta**phi,
resolution=gamma**phi*224 for any phi. Stochastic depth is `drop_path_rate` (the zoo's common name) or
`drop_connect_rate` (keras.applications' name), default 0.2; give one, or both with the same value.

Example:
    >>> model = cnnzoo.models.efficientnet(phi=0.5, num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import keras

from cnnzoo._checks import check_float, check_fraction, received
from cnnzoo.layers.blocks import ConvBNAct, InvertedResidual
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, create_model, get_entry, register_model
from cnnzoo.weights import ImageNetWeights
from cnnzoo.scaling import compound_coefficients, round_filters, round_repeats

PAPER = "https://arxiv.org/abs/1905.11946"
DROP_CONNECT_RATE = 0.2  # keras.applications' default stochastic depth


@dataclass(frozen=True)
class MBConvStage:
    """One EfficientNet-B0 stage before scaling."""

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float = 0.25


B0_STAGES = (MBConvStage(3, 1, 32, 16, 1, 1), MBConvStage(3, 2, 16, 24, 6, 2), MBConvStage(5, 2, 24, 40, 6, 2),
             MBConvStage(3, 3, 40, 80, 6, 2), MBConvStage(5, 3, 80, 112, 6, 1), MBConvStage(5, 4, 112, 192, 6, 2),
             MBConvStage(3, 1, 192, 320, 6, 1))


@dataclass(frozen=True)
class Scaling:
    """Published (width, depth, resolution, head dropout) of one EfficientNet variant."""

    width: float
    depth: float
    resolution: int
    dropout: float


PUBLISHED = {
    "b0": Scaling(1.0, 1.0, 224, 0.2), "b1": Scaling(1.0, 1.1, 240, 0.2), "b2": Scaling(1.1, 1.2, 260, 0.3),
    "b3": Scaling(1.2, 1.4, 300, 0.3), "b4": Scaling(1.4, 1.8, 380, 0.4), "b5": Scaling(1.6, 2.2, 456, 0.4),
    "b6": Scaling(1.8, 2.6, 528, 0.5), "b7": Scaling(2.0, 3.1, 600, 0.5),
}


def default_dropout(phi: float) -> float:
    """The published head dropout grows 0.1 every two steps of phi: 0.2 (B0, B1) ... 0.5 (B6, B7)."""
    return min(0.5, 0.2 + 0.1 * int(phi // 2))


def build_efficientnet(x, *, include_top, num_classes, pooling, dropout, classifier_activation, width: float = 1.0,
                       depth: float = 1.0, default_dropout_rate: float = 0.2, drop_connect_rate: float | None = None,
                       activation: str = "swish", bn_momentum: float = 0.99, drop_path_rate: float | None = None):
    width = check_float("width", width, minimum=0.0, exclusive_minimum=True, finite=True)
    depth = check_float("depth", depth, minimum=0.0, exclusive_minimum=True, finite=True)
    drop_rate = _drop_rate(drop_connect_rate, drop_path_rate)
    check_fraction("bn_momentum", bn_momentum)
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(f"`activation` must be a Keras activation. {received('activation', activation)}") from None
    bn = dict(bn_epsilon=1e-3, bn_momentum=bn_momentum)
    x = ConvBNAct(round_filters(32, width), 3, strides=2, padding="correct", activation=activation,
                  conv_name="stem_conv", bn_name="stem_bn", act_name="stem_activation", pad_name="stem_conv_pad",
                  **bn)(x, name="stem")
    total = sum(round_repeats(s.repeats, depth) for s in B0_STAGES)
    index = 0
    for i, stage in enumerate(B0_STAGES):
        filters_out = round_filters(stage.filters_out, width)
        for j in range(round_repeats(stage.repeats, depth)):
            letter = chr(ord("a") + j) if j < 26 else f"z{j}"
            # Stochastic depth grows linearly with block index, as in the paper and keras.applications.
            x = InvertedResidual(filters_out, expand_ratio=stage.expand_ratio, kernel_size=stage.kernel_size,
                                 strides=stage.strides if j == 0 else 1, se_ratio=stage.se_ratio,
                                 activation=activation, drop_rate=drop_rate * index / total,
                                 naming="efficientnet", **bn)(x, prefix=f"block{i + 1}{letter}_")
            index += 1
    x = ConvBNAct(round_filters(1280, width), 1, padding="same", activation=activation, conv_name="top_conv",
                  bn_name="top_bn", act_name="top_activation", **bn)(x, name="top")
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling,
                      dropout=default_dropout_rate if dropout is None else dropout,
                      classifier_activation=classifier_activation)


def _drop_rate(drop_connect_rate: float | None, drop_path_rate: float | None) -> float:
    """One stochastic depth rate from keras' `drop_connect_rate` and the zoo's `drop_path_rate` (None: not given)."""
    if drop_connect_rate is not None:
        drop_connect_rate = check_fraction("drop_connect_rate", drop_connect_rate)
    if drop_path_rate is not None:
        drop_path_rate = check_fraction("drop_path_rate", drop_path_rate)
    if drop_connect_rate is not None and drop_path_rate is not None and drop_connect_rate != drop_path_rate:
        raise ValueError("`drop_path_rate` and `drop_connect_rate` are two names of EfficientNet's stochastic depth "
                         "rate; pass one of them. "
                         f"Received: drop_path_rate={drop_path_rate!r}, drop_connect_rate={drop_connect_rate!r}")
    if drop_path_rate is not None:
        return drop_path_rate
    return DROP_CONNECT_RATE if drop_connect_rate is None else drop_connect_rate


_BLOCK = re.compile(r"^block(\d+)[a-z]")


def efficientnet_group(name: str) -> str | None:
    if is_head(name):
        return "head"
    if name.startswith("stem_"):
        return "stem"
    match = _BLOCK.match(name)
    if match:
        return f"stage{int(match.group(1))}"
    if name in ("top_conv", "top_bn", "top_activation"):  # the last 1x1 conv trains with the last stage
        return f"stage{len(B0_STAGES)}"
    return None


def _keras_imagenet(variant: str):
    def locate(include_top, input_shape, kwargs):
        from keras.src.applications import efficientnet as ka

        file_name = f"efficientnet{variant}{'' if include_top else '_notop'}.h5"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, ka.WEIGHTS_HASHES[variant][0 if include_top else 1]

    return ImageNetWeights(locate=locate, preprocessing=_PREPROCESSING)


# With ImageNet weights keras.applications computes (x/255 - mean) / sqrt(std) / sqrt(std) = (x/255 - mean)/std:
# its Normalization layer stores the std as a variance (TF #49930) and a Rescaling undoes it. "torch" mode is
# that same result in one step.
_PREPROCESSING = {"mode": "torch"}

# Feature taps (`create_model(features_only=True)`): the last activation at each stride: the expansion of the next stride-2 block (as MobileNetV2), top_activation at stride 32.
FEATURE_TAPS = r"(stem|top|block\d+[a-z]+(_expand)?)_activation|block\d+[a-z]+_add"

for _variant, _s in PUBLISHED.items():
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=f"efficientnet_{_variant}", family="efficientnet", builder=build_efficientnet,
        default_input_size=_s.resolution, paper=PAPER, preprocessing=_PREPROCESSING, group_of=efficientnet_group,
        imagenet=_keras_imagenet(_variant),
        defaults={"width": _s.width, "depth": _s.depth, "default_dropout_rate": _s.dropout},
        fixed=("width", "depth", "default_dropout_rate"),
    ))


def efficientnet(phi: float, *, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15, input_shape=None,
                 **kwargs):
    """An EfficientNet for any compound coefficient `phi` (depth alpha**phi, width beta**phi, size gamma**phi).

    Keyword arguments are those of `cnnzoo.create_model`. The model is named `efficientnet_phi{phi}`.

    Example:
        >>> model = efficientnet(1.5, num_classes=10)   # 256 x 256 input by default
    """
    depth, width, resolution = compound_coefficients(phi, alpha, beta, gamma)
    entry = dataclasses.replace(
        get_entry("efficientnet_b0"), name=f"efficientnet_phi{phi:g}", default_input_size=resolution,
        defaults={"width": width, "depth": depth, "default_dropout_rate": default_dropout(phi)}, imagenet=None)
    return create_model(entry, input_shape=input_shape, **kwargs)


# `cnnzoo.models.efficientnet(phi=...)` is the builder; the module stays importable under the same name.
from cnnzoo._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, efficientnet)
