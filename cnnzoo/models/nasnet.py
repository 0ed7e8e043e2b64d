"""NASNet-A (Zoph et al. 2018): cells found by architecture search, stacked as normal cells between reductions.

NASNet-A Mobile (4 @ 1056) and Large (6 @ 4032) follow keras.applications' NASNetMobile/NASNetLarge: same
layer names (`stem_conv1`, `separable_conv_1_normal_left1_0`, `adjust_bn_stem_2`, ...), widths and zero
paddings, so its weight files load and give the same logits. The network is a 3x3 stride-2 stem, two stem
reduction cells, then `num_blocks` normal cells, a reduction cell, `num_blocks` normal cells, a reduction cell
and `num_blocks` normal cells; cell widths are `penultimate_filters // 24` times 1/4, 1/2 (stem), 1, 2, 4.

Unlike keras', the graph does not depend on static shapes, so `input_shape=(None, None, 3)` works at any size
(keras' NASNet then builds another graph that fails on odd sizes).

Example:
    >>> model = cnnzoo.create_model("nasnet_mobile", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keras import layers

from cnnzoo.layers.blocks.nasnet import BN_EPSILON, BN_MOMENTUM, NORMAL_A, REDUCTION_A, NASNetCell
from cnnzoo.models._groups import is_head
from cnnzoo.models.heads import classifier
from cnnzoo.registry import ModelEntry, register_model
from cnnzoo.weights import ImageNetWeights

PAPER = "https://arxiv.org/abs/1707.07012"
TF = {"mode": "tf"}  # x / 127.5 - 1, as keras.applications.nasnet.preprocess_input


@dataclass(frozen=True)
class NASNetSpec:
    """A NASNet variant as data, in keras.applications' terms ("NASNet (N @ P)": N num_blocks, P penultimate)."""

    penultimate_filters: int
    num_blocks: int
    stem_block_filters: int
    skip_reduction: bool  # after a reduction, the next cell's `p` skips it (Large) or is its input (Mobile)
    filter_multiplier: int = 2

    def __post_init__(self):
        if self.penultimate_filters % (24 * self.filter_multiplier ** 2):
            raise ValueError("NASNet-A's penultimate_filters must be a multiple of 24 * filter_multiplier ** 2. "
                             f"Received: penultimate_filters={self.penultimate_filters}")

    def cells(self) -> list[tuple[str, int, str]]:
        """(kind, filters, block_id) of every cell, input to output."""
        filters, m, n = self.penultimate_filters // 24, self.filter_multiplier, self.num_blocks
        plan = [("reduction", filters // m ** 2, "stem_1"), ("reduction", filters // m, "stem_2")]
        plan += [("normal", filters, str(i)) for i in range(n)]
        plan += [("reduction", filters * m, f"reduce_{n}")]
        plan += [("normal", filters * m, str(n + i + 1)) for i in range(n)]
        plan += [("reduction", filters * m ** 2, f"reduce_{2 * n}")]
        plan += [("normal", filters * m ** 2, str(2 * n + i + 1)) for i in range(n)]
        return plan


def build_nasnet(x, *, spec: NASNetSpec, include_top, num_classes, pooling, dropout, classifier_activation):
    x = layers.Conv2D(spec.stem_block_filters, 3, strides=2, padding="valid", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="stem_bn1")(x)
    # Each tensor's resolution level (reductions behind it) decides whether the next cell's `p` needs the
    # factorized reduction; keras compares static shapes, which unknown sizes do not have.
    x_level, p, p_level = 0, None, None
    for kind, filters, block_id in spec.cells():
        cell = NASNetCell(NORMAL_A if kind == "normal" else REDUCTION_A, filters)
        out, ip = cell(x, p, block_id=block_id, reduce_p=p is not None and p_level != x_level)
        if not (kind == "reduction" and spec.skip_reduction and not block_id.startswith("stem")):
            p, p_level = ip, x_level
        x, x_level = out, x_level + (kind == "reduction")
    x = layers.Activation("relu", name="final_relu")(x)
    return classifier(x, include_top=include_top, num_classes=num_classes, pooling=pooling, dropout=dropout,
                      classifier_activation=classifier_activation)


_BLOCK_ID = re.compile(r"^(?:normal|reduction|separable|adjust)_.*?_(stem_[12]|reduce_\d+|\d+)$")


def nasnet_group(name: str, *, num_blocks: int) -> str | None:
    """stem: the stem conv and the two stem reduction cells; stageN: the normal cells of resolution N, each
    reduction cell opening the stage it reduces into (reduce_N -> stage2, reduce_2N -> stage3); the final ReLU
    goes with stage3."""
    if name in ("stem_conv1", "stem_bn1"):
        return "stem"
    if name == "final_relu":
        return "stage3"
    match = _BLOCK_ID.match(name)
    if match:
        block = match.group(1)
        if block.startswith("stem_"):
            return "stem"
        if block.startswith("reduce_"):
            return {num_blocks: "stage2", 2 * num_blocks: "stage3"}.get(int(block[len("reduce_"):]))
        index = int(block)
        if index < num_blocks:
            return "stage1"
        if num_blocks < index <= 2 * num_blocks:
            return "stage2"
        if 2 * num_blocks < index <= 3 * num_blocks:
            return "stage3"
        return None
    return "head" if is_head(name) else None


# keras.applications' file hashes (literals inside its NASNet()), by variant and top.
_HASHES = {("mobile", True): "020fb642bf7360b370c678b08e0adf61",
           ("mobile", False): "1ed92395b5b598bdda52abe5c0dbfd63",
           ("large", True): "11577c9a518f0070763c2b964a382f17",
           ("large", False): "d81d89dc07e6e56530c4e77faddd61b5"}


def _keras_imagenet(variant: str) -> ImageNetWeights:
    def locate(include_top, input_shape, options):
        from keras.src.applications import nasnet as ka

        url = {("mobile", True): ka.NASNET_MOBILE_WEIGHT_PATH, ("mobile", False): ka.NASNET_MOBILE_WEIGHT_PATH_NO_TOP,
               ("large", True): ka.NASNET_LARGE_WEIGHT_PATH,
               ("large", False): ka.NASNET_LARGE_WEIGHT_PATH_NO_TOP}[variant, bool(include_top)]
        return url.rsplit("/", 1)[-1], url, _HASHES[variant, bool(include_top)]

    # Trained at 224 (Mobile) / 331 (Large) px on [-1, 1] inputs; the convolutional files load at any size.
    return ImageNetWeights(locate=locate, preprocessing=TF)


SPECS = {
    "nasnet_mobile": (NASNetSpec(1056, 4, 32, skip_reduction=False), 224, "mobile"),
    "nasnet_large": (NASNetSpec(4032, 6, 96, skip_reduction=True), 331, "large"),
}

# Feature taps (`create_model(features_only=True)`): each stage's last cell output; final_relu at stride 32.
FEATURE_TAPS = r"stem_bn1|reduction_concat_stem_1|normal_concat_\d+|final_relu"

for _name, (_spec, _size, _variant) in SPECS.items():
    register_model(ModelEntry(
        feature_taps=FEATURE_TAPS,
        name=_name,
        family="nasnet",
        builder=functools.partial(build_nasnet, spec=_spec),
        default_input_size=_size,
        paper=PAPER,
        preprocessing=TF,
        group_of=functools.partial(nasnet_group, num_blocks=_spec.num_blocks),
        imagenet=_keras_imagenet(_variant),
    ))
