"""DenseNet-BC (Huang et al. 2016): dense blocks, each layer fed every earlier layer's features, and transitions.

DenseNet-121/169/201 follow keras.applications' layout and layer names (`conv1_conv`, `conv2_block1_1_conv`,
`pool2_conv`, `bn`, ...) and its BatchNorm epsilon, so its weight files load. The variants differ only in how many
dense layers each of the four dense blocks has. DenseNet is not residual: it has no `drop_path_rate`.

Example:
    >>> model = cnnzoo.create_model("densenet121", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo.layers.blocks.dense import DENSE_CONV_INIT, DENSENET_BN_EPSILON, DenseLayer, Transition
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1608.06993"
# keras.applications' DenseNet files expect x/255 normalized by the ImageNet mean and std (its preprocess_input).
PREPROCESSING = {"mode": "torch"}
STEM_FILTERS = 64


@dataclass(frozen=True)
class DenseNetSpec:
    """A DenseNet-BC variant as data: dense layers per block, growth rate, compression and bottleneck width."""

    blocks: tuple[int, int, int, int]
    growth_rate: int = 32
    compression: float = 0.5
    bn_size: int = 4


SPECS = {
    "densenet121": DenseNetSpec((6, 12, 24, 16)),
    "densenet169": DenseNetSpec((6, 12, 32, 32)),
    "densenet201": DenseNetSpec((6, 12, 48, 32)),
}


def build_densenet(x, *, spec: DenseNetSpec, include_top, num_classes, pooling, dropout, classifier_activation):
    bn = dict(epsilon=DENSENET_BN_EPSILON, momentum=0.99)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(STEM_FILTERS, 7, strides=2, use_bias=False, kernel_initializer=DENSE_CONV_INIT,
                      name="conv1_conv")(x)
    x = layers.BatchNormalization(**bn, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    # Zero padding equals -inf padding here: the max pool follows a ReLU.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    dense = DenseLayer(spec.growth_rate, bn_size=spec.bn_size)
    for stage, blocks in enumerate(spec.blocks):
        if stage > 0:
            x = Transition(spec.compression)(x, name=f"pool{stage + 1}")
        for b in range(blocks):
            x = dense(x, name=f"conv{stage + 2}_block{b + 1}")
    # DenseNet's layers are pre-activation, so the features get their BN-ReLU last.
    x = layers.BatchNormalization(**bn, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_DENSE = re.compile(r"^conv([2-5])_block\d+_(0_bn|0_relu|1_conv|1_bn|1_relu|2_conv|concat)$")
_TRANSITION = re.compile(r"^pool([2-4])_(bn|relu|conv|pool)$")


def densenet_group(name: str) -> str | None:
    """stem | stage1..4 | head for a DenseNet layer name.

    A stage is a transition and the dense block AFTER it (as a ResNet stage starts with its stride-2 block):
    stage1 = dense block `conv2`; stage2 = `pool2_*` + `conv3`; stage3 = `pool3_*` + `conv4`; stage4 = `pool4_*` +
    `conv5` + the final `bn`/`relu`. Each stage thus ends at a dense block's output, at strides 4, 8, 16, 32.
    """
    if name.startswith(("conv1_", "pool1")):
        return "stem"
    match = _DENSE.match(name)
    if match:
        return f"stage{int(match.group(1)) - 1}"
    match = _TRANSITION.match(name)
    if match:
        return f"stage{match.group(1)}"
    if name in ("bn", "relu"):
        return "stage4"
    return "head" if is_head(name) else None


# keras.applications writes these MD5 hashes inline in DenseNet() (no table to import): (top, no top).
WEIGHTS_HASHES = {
    "densenet121": ("9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738"),
    "densenet169": ("d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b"),
    "densenet201": ("1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1"),
}


def _keras_imagenet(name: str) -> ImageNetWeights:
    def locate(include_top, input_shape, kwargs):
        from keras.src.applications import densenet as ka

        file_name = f"{name}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
        return file_name, ka.BASE_WEIGHTS_PATH + file_name, WEIGHTS_HASHES[name][0 if include_top else 1]

    return ImageNetWeights(locate=locate, preprocessing=PREPROCESSING)


# Feature taps (`create_model(features_only=True)`): each dense block's output after the transition's BN-ReLU (pool2..4_relu); the final relu at stride 32.
FEATURE_TAPS = r"conv1_relu|pool\d+_relu|relu"

for _name, _spec in SPECS.items():
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=_name,
        family="densenet",
        builder=functools.partial(build_densenet, spec=_spec),
        default_input_size=224,
        paper=PAPER,
        preprocessing=PREPROCESSING,
        group_of=densenet_group,
        imagenet=_keras_imagenet(_name),
    ))
