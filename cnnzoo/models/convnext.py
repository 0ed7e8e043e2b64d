"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"): a ResNet modernized step by step towards a ViT.

A 4x4 stride-4 "patchify" stem, four stages of ConvNeXt blocks (7x7 depthwise, LayerNorm, inverted 4x MLP,
GELU, layer scale) separated by LayerNorm + 2x2 stride-2 downsampling convs, and a head that pools, normalizes
(LayerNorm) and classifies. Tiny/Small/Base/Large/XLarge differ only in depths and widths (a table below).

Layer names are keras.applications', prefixed by the model name (`convnext_tiny_stem`,
`convnext_tiny_stage_0_block_0_depthwise_conv`, `convnext_tiny_downsampling_block_0`,
`convnext_tiny_head_layernorm`), and the stem and each downsampling step are small `Sequential` models as in
keras, so `model.layers` has keras' classes in keras' order and both its weight-file layouts load. The
classifier is the zoo's float32 Dense "predictions" (keras' `convnext_tiny_head_dense` in its files).

keras.applications normalizes inside the model (x/255, ImageNet mean/std); here that is the `Preprocessing`
layer in "torch" mode. With `include_top=False` the pooled (or, with `pooling=None`, per-position) features go
through the head LayerNorm, as keras returns them.

Example:
    >>> model = cnnzoo.create_model("convnext_tiny", num_classes=10, input_shape=(64, 64, 3), drop_path_rate=0.1)
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import keras
from keras import layers

from cnnzoo._checks import check_float
from cnnzoo.layers.blocks.convnext import ConvNeXtBlock
from cnnzoo.layers.blocks import drop_path_rates
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier, global_pool
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/2201.03545"
LAYER_NORM_EPSILON = 1e-6


@dataclass(frozen=True)
class ConvNeXtSpec:
    """One ConvNeXt variant: its name (every layer name's prefix, as in keras), blocks and width per stage."""

    name: str
    depths: tuple[int, int, int, int]
    projection_dims: tuple[int, int, int, int]


SPECS = {
    "convnext_tiny": ConvNeXtSpec("convnext_tiny", (3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_small": ConvNeXtSpec("convnext_small", (3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_base": ConvNeXtSpec("convnext_base", (3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_large": ConvNeXtSpec("convnext_large", (3, 3, 27, 3), (192, 384, 768, 1536)),
    "convnext_xlarge": ConvNeXtSpec("convnext_xlarge", (3, 3, 27, 3), (256, 512, 1024, 2048)),
}


def _layer_norm(name: str):
    return layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def _stem(spec: ConvNeXtSpec):
    """4x4 stride-4 patchify conv -> LayerNorm, one Sequential named `{name}_stem` (keras' layout)."""
    p = spec.name
    return keras.Sequential([layers.Conv2D(spec.projection_dims[0], 4, strides=4, name=f"{p}_stem_conv"),
                             _layer_norm(f"{p}_stem_layernorm")], name=f"{p}_stem")


def _downsampling(spec: ConvNeXtSpec, i: int):
    """LayerNorm -> 2x2 stride-2 conv to the next stage's width, one Sequential `{name}_downsampling_block_{i}`."""
    p = spec.name
    return keras.Sequential([_layer_norm(f"{p}_downsampling_layernorm_{i}"),
                             layers.Conv2D(spec.projection_dims[i + 1], 2, strides=2,
                                           name=f"{p}_downsampling_conv_{i}")],
                            name=f"{p}_downsampling_block_{i}")


def build_convnext(x, *, spec: ConvNeXtSpec, include_top, num_classes, pooling, dropout, classifier_activation,
                   drop_path_rate: float = 0.0, layer_scale_init_value: float | None = 1e-6):
    """ConvNeXt on `x`: stem, four stages (downsampling before stages 2-4), the LayerNorm head.

    `drop_path_rate` is stochastic depth reaching that rate at the last block (linear from 0 at the first,
    keras' and the paper's linspace); `layer_scale_init_value` starts every block's layer scale (1e-6).
    """
    if layer_scale_init_value is not None:
        check_float("layer_scale_init_value", layer_scale_init_value, minimum=0.0, exclusive_minimum=True,
                    finite=True)
    rates = drop_path_rates(drop_path_rate, sum(spec.depths), endpoint=True)
    x = _stem(spec)(x)
    index = 0
    for i, (depth, dim) in enumerate(zip(spec.depths, spec.projection_dims)):
        if i:
            x = _downsampling(spec, i - 1)(x)
        for j in range(depth):
            x = ConvNeXtBlock(dim, drop_rate=rates[index], layer_scale_init_value=layer_scale_init_value)(
                x, name=f"{spec.name}_stage_{i}_block_{j}")
            index += 1
    return _head(x, spec, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                 classifier_activation=classifier_activation)


def _head(x, spec: ConvNeXtSpec, *, include_top, num_classes, pooling, dropout, classifier_activation):
    """keras' head: pool -> LayerNorm `{name}_head_layernorm` -> Dense; without top, the normalized features."""
    norm = _layer_norm(f"{spec.name}_head_layernorm")
    if not include_top:
        return norm(global_pool(x, pooling))
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name=f"{spec.name}_head_gap")(x)
    else:
        x = global_pool(x, pooling)
    return classifier(norm(x), include_top=True, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation, pool=False)


_GROUP = re.compile(r"^convnext_[a-z0-9]+_(?:(stem)|stage_(\d+)_block_\d+_[a-z0-9_]+|downsampling_block_(\d+)|"
                    r"(head)_(?:gap|layernorm))$")


def convnext_group(name: str) -> str | None:
    """stem; stage1..4 (downsampling block i trains with stage i + 2, the stage it opens); head."""
    if is_head(name):
        return "head"
    match = _GROUP.match(name)
    if match is None:
        return None
    stem, stage, downsampling, head = match.groups()
    if stem:
        return "stem"
    if head:
        return "head"
    return f"stage{int(stage) + 1}" if stage is not None else f"stage{int(downsampling) + 2}"


# keras.applications' ConvNeXt normalizes inside the model: Normalization(mean=255 * ImageNet mean,
# variance=(255 * ImageNet std)**2) on raw pixels, i.e. (x/255 - mean) / std, "torch" mode.
_PREPROCESSING = {"mode": "torch"}


def _keras_imagenet(name: str) -> ImageNetWeights:
    def locate(include_top, input_shape, options):
        from keras.src.applications import convnext as ka

        file_name = f"{name}{'.h5' if include_top else '_notop.h5'}"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, ka.WEIGHTS_HASHES[name][0 if include_top else 1]

    return ImageNetWeights(locate=locate, preprocessing=_PREPROCESSING, classifier=f"{name}_head_dense")


# Feature taps (`create_model(features_only=True)`): each stage's last block output (no level at stride 2: the stem is a 4x4 stride-4 patchify).
FEATURE_TAPS = r"\w+_stage_\d+_block_\d+_add"

for _name, _spec in SPECS.items():
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=_name, family="convnext", builder=functools.partial(build_convnext, spec=_spec),
        default_input_size=224, paper=PAPER, preprocessing=_PREPROCESSING, group_of=convnext_group,
        imagenet=_keras_imagenet(_name),
    ))
