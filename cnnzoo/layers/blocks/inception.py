"""Inception's blocks (Szegedy et al. 2015, 2016): the conv-BN unit, the multi-branch module, the residual block.

An Inception module is data: a tuple of `Branch`es, each an optional pooling followed by a chain of
`InceptionConv`s (and, for Inception-v3's last modules, a final pair of parallel 1x3 | 3x1 convs that are
concatenated), all concatenated along channels in branch order. Inception-v3's A/B/C modules and both reductions,
and Inception-ResNet's mixed modules, are tables of branches for the one `InceptionModule` class;
`InceptionResNetBlock` wraps a module as a scaled residual branch.

Layer names, for a module called with `name="mixed0"`: a branch's convs are `mixed0_{branch}_{i}_conv`, `_bn`,
`_relu` (i from 1; no `_{i}` when the branch has one conv), its pooling `mixed0_{branch}`, the split convs
`..._{i}a` / `..._{i}b` with their concat `split_name` (or `..._concat`), the module's concat `mixed0`.

Example:
    >>> inputs = keras.Input((35, 35, 192))
    >>> module = InceptionModule((Branch("branch1x1", (InceptionConv(64),)),
    ...                           Branch("branch_pool", (InceptionConv(32),), pool="avg")))
    >>> x = module(inputs, name="mixed0")                       # 96 channels
"""
from __future__ import annotations

from dataclasses import dataclass

from keras import layers

from cnnzoo._checks import check_choice, check_float, check_fraction, check_int, received
from cnnzoo.layers.blocks.core import CONV_INIT, drop_path

# keras.applications' Inception BatchNorm: Keras' default momentum, epsilon 1e-3, no scale (a ReLU follows).
INCEPTION_BN_EPSILON = 1e-3


def _kernel(kernel_size) -> tuple[int, int]:
    if isinstance(kernel_size, tuple) and len(kernel_size) == 2:
        return tuple(check_int("kernel_size", k, minimum=1) for k in kernel_size)
    if isinstance(kernel_size, tuple):
        raise ValueError(f"`kernel_size` must be an int or a (height, width) pair. "
                         f"{received('kernel_size', kernel_size)}")
    size = check_int("kernel_size", kernel_size, minimum=1)
    return (size, size)


@dataclass(frozen=True)
class InceptionConv:
    """Conv2D (no bias) -> BatchNorm (no scale) -> activation: keras.applications' Inception `conv2d_bn`.

    The BatchNorm has no gamma (`scale=False`): the ReLU after it makes a per-channel scale redundant, and keras'
    weight files have none. Kernels may be rectangular (`(1, 7)`, `(7, 1)`: Inception-v3's factorized convs).
    Layer names default to `{name}_conv`, `{name}_bn`, `{name}_{activation}`; `conv_name`, `bn_name`,
    `act_name` override them (keras' own names, e.g. Inception-ResNet's `conv_7b`, `conv_7b_bn`, `conv_7b_ac`).

    Args:
        filters: int, output channels.
        kernel_size: int or (height, width).
        strides: int.
        padding: "same" or "valid".
        activation: str or None, a Keras activation.
        bn_epsilon: float, BatchNorm epsilon.
        bn_momentum: float in [0, 1), BatchNorm momentum.
    """

    filters: int
    kernel_size: int | tuple[int, int] = 1
    strides: int = 1
    padding: str = "same"
    activation: str | None = "relu"
    bn_epsilon: float = INCEPTION_BN_EPSILON
    bn_momentum: float = 0.99
    conv_name: str | None = None
    bn_name: str | None = None
    act_name: str | None = None

    def __post_init__(self):
        check_int("filters", self.filters, minimum=1)
        _kernel(self.kernel_size)
        check_int("strides", self.strides, minimum=1)
        check_choice("padding", self.padding, ("same", "valid"))
        check_float("bn_epsilon", self.bn_epsilon, minimum=0.0, exclusive_minimum=True, finite=True)
        check_fraction("bn_momentum", self.bn_momentum)

    def __call__(self, x, name: str):
        x = layers.Conv2D(self.filters, _kernel(self.kernel_size), strides=self.strides, padding=self.padding,
                          use_bias=False, kernel_initializer=CONV_INIT, name=self.conv_name or f"{name}_conv")(x)
        x = layers.BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum, scale=False,
                                      name=self.bn_name or f"{name}_bn")(x)
        if self.activation is None:
            return x
        return layers.Activation(self.activation, name=self.act_name or f"{name}_{self.activation}")(x)


# Inception's two pooling branches: a 3x3 average that keeps the size, and a 3x3 stride-2 max that reduces it.
_POOLS = {
    "avg": lambda name: layers.AveragePooling2D(3, strides=1, padding="same", name=name),
    "max": lambda name: layers.MaxPooling2D(3, strides=2, name=name),
}


@dataclass(frozen=True)
class Branch:
    """One branch of an Inception module: [pool ->] convs in a chain [-> parallel `split` convs, concatenated].

    Args:
        name: str, the branch's name in its layers' names ("branch5x5", "branch_0", "branch_pool").
        convs: tuple of `InceptionConv`, applied in order.
        pool: None, "avg" (3x3, stride 1, 'same') or "max" (3x3, stride 2, 'valid'), applied first.
        split: tuple of `InceptionConv` applied side by side to the chain's output and concatenated
            (Inception-v3's expanded filter bank: a 1x3 and a 3x1 conv); empty for none.
        split_name: str or None, the name of that concat (default `{module}_{branch}_concat`).
    """

    name: str
    convs: tuple = ()
    pool: str | None = None
    split: tuple = ()
    split_name: str | None = None

    def __post_init__(self):
        check_choice("pool", self.pool, (None, *_POOLS))
        if not (self.convs or self.split or self.pool):
            raise ValueError(f"A branch needs a pooling or at least one conv. {received('convs', self.convs)}")
        if len(self.split) == 1:
            raise ValueError(f"`split` takes two or more parallel convs (or none). {received('split', self.split)}")

    def __call__(self, x, prefix: str):
        name = f"{prefix}_{self.name}"
        if self.pool:
            x = _POOLS[self.pool](name)(x)
        numbered = len(self.convs) + bool(self.split) > 1
        for i, conv in enumerate(self.convs, start=1):
            x = conv(x, name=f"{name}_{i}" if numbered else name)
        if not self.split:
            return x
        step = len(self.convs) + 1
        parts = [conv(x, name=f"{name}_{step}{chr(ord('a') + j)}") for j, conv in enumerate(self.split)]
        return layers.Concatenate(name=self.split_name or f"{name}_concat")(parts)


@dataclass(frozen=True)
class InceptionModule:
    """Branches side by side, concatenated along channels in branch order: an Inception module or reduction.

    Reductions are modules whose branches end with stride 2 ('valid') and whose pooling is "max".

    Args:
        branches: tuple of `Branch`.
    """

    branches: tuple

    def __post_init__(self):
        if len(self.branches) < 2:
            raise ValueError(f"An Inception module has two or more branches. {received('branches', self.branches)}")
        names = [b.name for b in self.branches]
        if len(set(names)) != len(names):
            raise ValueError(f"Branch names must differ (they name the layers). {received('branches', names)}")

    def __call__(self, x, name: str, concat_name: str | None = None):
        outputs = [branch(x, prefix=name) for branch in self.branches]
        return layers.Concatenate(name=concat_name or name)(outputs)


@dataclass(frozen=True)
class InceptionResNetBlock:
    """Inception-ResNet's residual block: x + scale * (1x1 conv of an Inception module's output), then ReLU.

    The module's concat is `{name}_mixed`; the 1x1 projection back to the input width (a bias, no BatchNorm) is
    `{name}_conv`; `scale` (0.17, 0.1, 0.2 in Inception-ResNet-v2, which keeps the deep sums stable) is a
    weightless `Rescaling` `{name}_scale` (left out when 1); `drop_rate` is stochastic depth on that scaled branch
    (`{name}_drop`); `{name}_add` sums; `{name}_ac` is the activation (None: the last block has none).
    keras.applications' names (`block35_1_mixed`, `block35_1_conv`, `block35_1_ac`) are kept.

    Args:
        module: `InceptionModule`, the residual branch.
        scale: float > 0, the residual's scale.
        activation: str or None, after the sum.
        drop_rate: float in [0, 1), stochastic depth (0: no layer).
    """

    module: InceptionModule
    scale: float = 1.0
    activation: str | None = "relu"
    drop_rate: float = 0.0

    def __post_init__(self):
        check_float("scale", self.scale, minimum=0.0, exclusive_minimum=True, finite=True)
        check_fraction("drop_rate", self.drop_rate)

    def __call__(self, x, name: str):
        mixed = self.module(x, name=name, concat_name=f"{name}_mixed")
        residual = layers.Conv2D(x.shape[-1], 1, use_bias=True, kernel_initializer=CONV_INIT,
                                 name=f"{name}_conv")(mixed)
        if self.scale != 1.0:
            residual = layers.Rescaling(self.scale, name=f"{name}_scale")(residual)
        residual = drop_path(residual, self.drop_rate, name=f"{name}_drop")
        x = layers.Add(name=f"{name}_add")([x, residual])
        if self.activation is None:
            return x
        return layers.Activation(self.activation, name=f"{name}_ac")(x)
