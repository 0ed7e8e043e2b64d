"""VGG (Simonyan & Zisserman 2014), with and without batch normalization.

Plain VGG16/19 match keras.applications (names `block1_conv1` ... `fc1`, `fc2`, `predictions`), so its weight
files load. The `_bn` variants follow torchvision (conv with bias -> BN -> ReLU).

Example:
    >>> model = cnnzoo.create_model("vgg11_bn", num_classes=10, input_shape=(32, 32, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_fraction
from cnnzoo.layers.blocks import ConvBNAct
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import BUILTIN_POOLINGS, ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1409.1556"
BLOCK_FILTERS = (64, 128, 256, 512, 512)


@dataclass(frozen=True)
class VGGSpec:
    convs_per_block: tuple[int, int, int, int, int]
    batch_norm: bool = False


def build_vgg(x, *, spec: VGGSpec, include_top, num_classes, pooling, dropout, classifier_activation,
              bn_momentum: float | None = None):
    if bn_momentum is not None and not spec.batch_norm:
        raise ValueError("This VGG has no BatchNormalization, so `bn_momentum` would change nothing; it applies to "
                         f"the `_bn` variants (e.g. vgg16_bn). Received: bn_momentum={bn_momentum!r}")
    bn_momentum = 0.9 if bn_momentum is None else check_fraction("bn_momentum", bn_momentum)
    for b, (filters, convs) in enumerate(zip(BLOCK_FILTERS, spec.convs_per_block), start=1):
        for i in range(1, convs + 1):
            name = f"block{b}_conv{i}"
            if spec.batch_norm:
                x = ConvBNAct(filters, 3, padding="same", use_bias=True, activation="relu", bn_epsilon=1e-5,
                              bn_momentum=bn_momentum, conv_name=name)(x, name=name)
            else:
                x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    if not include_top:
        return classifier(x, include_top=False, num_classes=num_classes, pooling=pooling, dropout=dropout,
                          classifier_activation=classifier_activation)
    if pooling in BUILTIN_POOLINGS:
        # keras.applications' head: flatten the 7x7x512 map into two 4096-wide layers.
        if None in tuple(x.shape[1:3]):
            raise ValueError("VGG's classifier flattens its features, so height and width must be known; use "
                             "include_top=False, or pooling='spp' for any input size. Received: input_shape with "
                             "unknown height/width")
        x = layers.Flatten(name="flatten")(x)
    else:  # a fixed-length global pooling (e.g. SPP-net's pyramid) replaces the flatten
        x = classifier(x, include_top=False, num_classes=num_classes, pooling=pooling, dropout=None,
                       classifier_activation=None)
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    x = layers.Dense(4096, activation="relu", name="fc2")(x)
    return classifier(x, include_top=True, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation, pool=False)


_BLOCK = re.compile(r"^block(\d)_")


def vgg_group(name: str) -> str | None:
    match = _BLOCK.match(name)
    if match:
        return f"stage{match.group(1)}"
    return "head" if is_head(name) else None


def _keras_imagenet(variant: str):
    def locate(include_top, input_shape, kwargs):
        import importlib

        ka = importlib.import_module(f"keras.src.applications.{variant}")
        suffix = "" if include_top else "_notop"
        url = ka.WEIGHTS_PATH if include_top else ka.WEIGHTS_PATH_NO_TOP
        return f"{variant}_weights_tf_dim_ordering_tf_kernels{suffix}.h5", url, None

    return ImageNetWeights(locate=locate, preprocessing=CAFFE)


# keras.applications' VGG16/19 files take caffe inputs; the BN variants (torchvision's layout) ImageNet mean/std.
CAFFE, _BN_PREPROCESSING = {"mode": "caffe"}, {"mode": "torch"}
SPECS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}

# Feature taps (`create_model(features_only=True)`): the last conv (after its ReLU) of each block; stride 32 is block5_pool.
FEATURE_TAPS = r"block\d+_conv\d+(_relu)?|block5_pool"

for _name, _convs in SPECS.items():
    for _bn in (False, True):
        register_model(ModelEntry(
            feature_taps=FEATURE_TAPS,
            name=_name + ("_bn" if _bn else ""), family="vgg",
            builder=functools.partial(build_vgg, spec=VGGSpec(_convs, batch_norm=_bn)), default_input_size=224,
            paper=PAPER, preprocessing=_BN_PREPROCESSING if _bn else CAFFE, group_of=vgg_group,
            imagenet=_keras_imagenet(_name) if _name in ("vgg16", "vgg19") and not _bn else None,
        ))
