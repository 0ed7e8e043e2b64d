"""NASNet-A's building blocks (Zoph et al. 2018): the separable operation, the adjust block, and the cells as data.

A NASNet cell reads two tensors, the previous cell's output `x` and the one before it `p`. `AdjustBlock` brings
`p` to `x`'s resolution and the cell's width; a 1x1 conv brings `x` to the width (`h`); then five pairwise
combinations (each two operations added) are concatenated. The normal and the reduction cell differ only in
which operations combine which tensors, so both are one `NASNetCell` fed a `CellSpec` (`NORMAL_A`,
`REDUCTION_A`): the cells found by the architecture search, written as data.

Every layer with weights carries keras.applications' name (`separable_conv_1_normal_left1_0`,
`adjust_conv_1_stem_2`, `normal_concat_0`), so its NASNet files load by name; the layers keras leaves
auto-named (ReLUs, the adjust block's shift, one Add) get deterministic names here.

Example:
    >>> x, p = inputs, None
    >>> x, p = NASNetCell(REDUCTION_A, 11)(x, p, block_id="stem_1")
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from cnnzoo._checks import check_choice, check_int
from cnnzoo.layers.blocks.core import correct_pad

BN_MOMENTUM, BN_EPSILON = 0.9997, 1e-3


@keras.saving.register_keras_serializable(package="cnnzoo")
class SamePadding2D(keras.layers.Layer):
    """Zero padding that makes the next 'valid' k x k, stride-s op equal TF's 'same' one, at any input size.

    keras.applications pads before its stride-2 ops by `correct_pad`, which needs the size: with an unknown
    size it pads as for an even one, and an odd map then comes out one pixel smaller than NASNet's other path
    (`AdjustBlock`), so the cell's additions fail. This layer computes the same padding when the tensor
    arrives; with a known size the builders use keras' own ZeroPadding2D, which it equals.

    Args:
        kernel_size: int, the next op's kernel size.
        strides: int, the next op's stride.
    """

    def __init__(self, kernel_size: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.strides = check_int("strides", strides, minimum=1)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _pads(self, size):
        out = (size + self.strides - 1) // self.strides  # 'same': ceil(size / strides)
        total = (out - 1) * self.strides + self.kernel_size - size
        total = max(total, 0) if isinstance(total, int) else ops.maximum(total, 0)
        return total // 2, total - total // 2

    def call(self, inputs):
        shape = ops.shape(inputs)
        (top, bottom), (left, right) = self._pads(shape[1]), self._pads(shape[2])
        # A nested list (of ints, or int32 scalars where the size is dynamic), as ops.pad takes it.
        return ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] += sum(self._pads(shape[axis]))
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "strides": self.strides})
        return config


def same_pad(x, kernel_size: int, name: str):
    """Pad `x` for a 'valid' stride-2 op so it acts as TF 'same': keras' ZeroPadding2D when the size is known."""
    if None in tuple(x.shape[1:3]):
        return SamePadding2D(kernel_size, 2, name=name)(x)
    return layers.ZeroPadding2D(correct_pad(x, kernel_size), name=name)(x)


def _bn(name: str, momentum: float, epsilon: float):
    return layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)


def _conv1x1(filters: int, name: str):
    return layers.Conv2D(filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal", name=name)


@dataclass(frozen=True)
class SeparableConvBlock:
    """NASNet's separable operation: ReLU -> SeparableConv -> BN, twice (only the first may stride).

    A stride-2 block zero-pads first (as keras.applications does) and convolves 'valid'.
    Names: `separable_relu_{1,2}_<id>`, `separable_conv_1_pad_<id>`, `separable_conv_{1,2}_<id>`,
    `separable_conv_{1,2}_bn_<id>`.

    Example:
        >>> y = SeparableConvBlock(44, 5)(x, block_id="normal_left1_0")
    """

    filters: int
    kernel_size: int = 3
    strides: int = 1
    bn_momentum: float = BN_MOMENTUM
    bn_epsilon: float = BN_EPSILON

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_choice("strides", self.strides, (1, 2))

    def __call__(self, x, *, block_id: str):
        for i in (1, 2):
            strides = self.strides if i == 1 else 1
            x = layers.Activation("relu", name=f"separable_relu_{i}_{block_id}")(x)
            if strides == 2:
                x = same_pad(x, self.kernel_size, name=f"separable_conv_1_pad_{block_id}")
            x = layers.SeparableConv2D(self.filters, self.kernel_size, strides=strides,
                                       padding="valid" if strides == 2 else "same", use_bias=False,
                                       name=f"separable_conv_{i}_{block_id}")(x)
            x = _bn(f"separable_conv_{i}_bn_{block_id}", self.bn_momentum, self.bn_epsilon)(x)
        return x


@dataclass(frozen=True)
class AdjustBlock:
    """Fits the previous-previous input `p` to the cell: factorized reduction, 1x1 projection, or nothing.

    `reduce=True` (p has twice the resolution of the cell's input) is the factorized reduction: ReLU, then two
    1x1 convs of `filters // 2` on two stride-2 subsamplings, the second shifted one pixel (zero-pad
    bottom/right, crop top/left), concatenated and batch-normalized. On an odd size both subsamplings give
    ceil(n / 2) pixels, the shifted one's last row and column being the padding. Otherwise a `p` of another
    width gets ReLU -> 1x1 conv -> BN; a fitting `p` passes through, and no `p` (the first cell) means the
    input itself. keras.applications decides by comparing static shapes; the caller says it here, so unknown
    sizes build the same graph.
    Names: `adjust_relu_1_<id>`, `adjust_avg_pool_{1,2}_<id>`, `adjust_pad_<id>`, `adjust_crop_<id>`,
    `adjust_conv_{1,2}_<id>`, `adjust_concat_<id>`, `adjust_relu_projection_<id>`, `adjust_conv_projection_<id>`,
    `adjust_bn_<id>`.
    """

    filters: int
    bn_momentum: float = BN_MOMENTUM
    bn_epsilon: float = BN_EPSILON

    def __call__(self, p, x, *, block_id: str, reduce: bool):
        if p is None:
            return x
        if reduce:
            p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
            p1 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"adjust_avg_pool_1_{block_id}")(p)
            p1 = _conv1x1(self.filters // 2, f"adjust_conv_1_{block_id}")(p1)
            p2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"adjust_pad_{block_id}")(p)
            p2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"adjust_crop_{block_id}")(p2)
            p2 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"adjust_avg_pool_2_{block_id}")(p2)
            p2 = _conv1x1(self.filters // 2, f"adjust_conv_2_{block_id}")(p2)
            p = layers.Concatenate(name=f"adjust_concat_{block_id}")([p1, p2])
        elif p.shape[-1] != self.filters:
            p = layers.Activation("relu", name=f"adjust_relu_projection_{block_id}")(p)
            p = _conv1x1(self.filters, f"adjust_conv_projection_{block_id}")(p)
        else:
            return p
        return _bn(f"adjust_bn_{block_id}", self.bn_momentum, self.bn_epsilon)(p)


@dataclass(frozen=True)
class Op:
    """One operation of a cell on one of its tensors.

    kind: "separable" (a `SeparableConvBlock`), "avg_pool", "max_pool" or "identity".
    source: "h" (the cell's input after its 1x1 conv), "p" (the adjusted previous input), "h3" (h zero-padded
        for a stride-2 3x3 pooling) or "x1".."x5" (an earlier combination's sum).
    name: keras' name stem (`left1` -> `normal_left1_<id>`); stride-1 pools pad 'same', stride-2 ones read h3.
    """

    kind: str
    source: str
    name: str = ""
    kernel_size: int = 3
    strides: int = 1


@dataclass(frozen=True)
class Combination:
    """Two operations whose outputs are added (first + second), as one Add layer `<kind>_<add>_<id>`."""

    first: Op
    second: Op
    add: str


@dataclass(frozen=True)
class CellSpec:
    """A NASNet cell as data: its kind (the name prefix), its five combinations, and what it concatenates."""

    kind: str  # "normal" | "reduction"
    combinations: tuple
    concat: tuple  # tensor names, in keras' concatenation order


def _sep(source, name, kernel_size=3, strides=1):
    return Op("separable", source, name, kernel_size, strides)


def _pool(kind, source, name, strides=1):
    return Op(kind, source, name, 3, strides)


NORMAL_A = CellSpec("normal", (
    Combination(_sep("h", "left1", 5), _sep("p", "right1", 3), "add_1"),
    Combination(_sep("p", "left2", 5), _sep("p", "right2", 3), "add_2"),
    Combination(_pool("avg_pool", "h", "left3"), Op("identity", "p"), "add_3"),
    Combination(_pool("avg_pool", "p", "left4"), _pool("avg_pool", "p", "right4"), "add_4"),
    Combination(_sep("h", "left5", 3), Op("identity", "h"), "add_5"),
), concat=("p", "x1", "x2", "x3", "x4", "x5"))

# keras' names are irregular here (add3, add4; `left4` names both a pool and a separable block); they are kept.
# keras auto-names the fourth Add; `add_left4` is ours.
REDUCTION_A = CellSpec("reduction", (
    Combination(_sep("h", "left1", 5, 2), _sep("p", "right1", 7, 2), "add_1"),
    Combination(_pool("max_pool", "h3", "left2", 2), _sep("p", "right2", 7, 2), "add_2"),
    Combination(_pool("avg_pool", "h3", "left3", 2), _sep("p", "right3", 5, 2), "add3"),
    Combination(Op("identity", "x2"), _pool("avg_pool", "x1", "left4"), "add_left4"),
    Combination(_sep("x1", "left4", 3), _pool("max_pool", "h3", "right5", 2), "add4"),
), concat=("x2", "x3", "x4", "x5"))


@dataclass(frozen=True)
class NASNetCell:
    """A NASNet-A cell of `filters` per operation: adjust p, 1x1 conv x to h, five combinations, concatenate.

    Called as `cell(x, p, block_id=..., reduce_p=...)`; returns `(output, x)`, the pair the next cell reads.
    The output has `len(spec.concat) * filters` channels (6x normal, 4x reduction). Names as keras.applications:
    `<kind>_relu_1_<id>` (ours), `<kind>_conv_1_<id>`, `<kind>_bn_1_<id>`, `reduction_pad_1_<id>`, the ops'
    and adds' names from the spec, `<kind>_concat_<id>`.

    Example:
        >>> y, x = NASNetCell(NORMAL_A, 44)(x, p, block_id="0", reduce_p=True)
    """

    spec: CellSpec
    filters: int
    bn_momentum: float = BN_MOMENTUM
    bn_epsilon: float = BN_EPSILON

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)

    def _op(self, op: Op, tensors: dict, block_id: str):
        x = tensors[op.source]
        name = f"{self.spec.kind}_{op.name}_{block_id}"
        if op.kind == "identity":
            return x
        if op.kind == "separable":
            return SeparableConvBlock(self.filters, op.kernel_size, op.strides, self.bn_momentum,
                                      self.bn_epsilon)(x, block_id=name)
        pool = layers.AveragePooling2D if op.kind == "avg_pool" else layers.MaxPooling2D
        return pool(op.kernel_size, strides=op.strides, padding="valid" if op.strides == 2 else "same", name=name)(x)

    def __call__(self, x, p, *, block_id: str, reduce_p: bool):
        kind = self.spec.kind
        bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        p = AdjustBlock(self.filters, **bn)(p, x, block_id=block_id, reduce=reduce_p)
        h = layers.Activation("relu", name=f"{kind}_relu_1_{block_id}")(x)
        h = _conv1x1(self.filters, f"{kind}_conv_1_{block_id}")(h)
        h = _bn(f"{kind}_bn_1_{block_id}", self.bn_momentum, self.bn_epsilon)(h)
        tensors = {"h": h, "p": p}
        if any("h3" in (c.first.source, c.second.source) for c in self.spec.combinations):
            tensors["h3"] = same_pad(h, 3, name=f"{kind}_pad_1_{block_id}")
        for i, combination in enumerate(self.spec.combinations, start=1):
            first = self._op(combination.first, tensors, block_id)
            second = self._op(combination.second, tensors, block_id)
            tensors[f"x{i}"] = layers.Add(name=f"{kind}_{combination.add}_{block_id}")([first, second])
        out = layers.Concatenate(name=f"{kind}_concat_{block_id}")([tensors[t] for t in self.spec.concat])
        return out, x
