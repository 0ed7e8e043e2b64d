"""Optimizers for the recipes: AdamW / SGD with momentum / Adam, weight decay that skips BatchNorm and biases,
gradient clipping, and per-variable learning-rate multipliers (discriminative learning rates).

Keras optimizers take one learning rate. Scaling gradients does not lower Adam's step (Adam is invariant to
gradient scale), so the multiplier is applied to the learning rate inside `update_step`, per variable. The
multipliers are keyed by variable path (`"conv1_conv/kernel"`), so they survive in the optimizer config.

Example:
    >>> opt = make_optimizer("adamw", 1e-3, model=model, weight_decay=0.05,
    ...                      lr_multipliers={"conv1_conv/kernel": 0.1})
"""
from __future__ import annotations

import numbers

import keras

from cnnzoo._checks import check_choice, check_float, check_positive_finite, received
from cnnzoo.options import DEFAULT_WEIGHT_DECAY, OPTIMIZER_NAMES  # defined once, for the CLI too

__all__ = ["make_optimizer", "OPTIMIZER_NAMES", "DiscriminativeAdamW", "DiscriminativeAdam",
           "DiscriminativeSGD", "no_decay_variables"]



class _LRMultipliers:
    """Mixin: scales the learning rate of each variable by `lr_multipliers[variable.path]` (default 1)."""

    def __init__(self, *args, lr_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})
        self._multiplier_by_key = {}

    def build(self, variables):
        super().build(variables)
        self._multiplier_by_key = {self._var_key(v): float(self.lr_multipliers[v.path])
                                   for v in variables if v.path in self.lr_multipliers}

    def update_step(self, gradient, variable, learning_rate):
        scale = self._multiplier_by_key.get(self._var_key(variable), 1.0)
        if scale != 1.0:
            learning_rate = learning_rate * scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeAdamW(_LRMultipliers, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with per-variable learning-rate multipliers."""


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeAdam(_LRMultipliers, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with per-variable learning-rate multipliers."""


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeSGD(_LRMultipliers, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with per-variable learning-rate multipliers."""


_PLAIN = {"adamw": keras.optimizers.AdamW, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
_DISCRIMINATIVE = {"adamw": DiscriminativeAdamW, "adam": DiscriminativeAdam, "sgd": DiscriminativeSGD}


def no_decay_variables(model) -> list:
    """Variables that weight decay must not shrink: biases and normalization scales/offsets (rank <= 1)."""
    return [v for v in model.trainable_variables if len(v.shape) <= 1]


def make_optimizer(name: str, learning_rate, *, model=None, weight_decay="default", momentum: float = 0.9,
                   nesterov: bool = False, clipnorm: float | None = None, global_clipnorm: float | None = None,
                   clipvalue: float | None = None, lr_multipliers: dict | None = None):
    """Build a Keras optimizer by name ("adamw", "sgd" with momentum, "adam").

    `weight_decay="default"` means 0.05 for AdamW, 5e-4 for SGD, none for Adam. With `model`, biases and
    BatchNorm gamma/beta are excluded from weight decay. `lr_multipliers` maps variable paths to factors.
    """
    if isinstance(name, keras.optimizers.Optimizer):
        if lr_multipliers:
            raise ValueError("`lr_multipliers` needs an optimizer given by name ('adamw', 'sgd', 'adam'). "
                             + received("optimizer", name))
        return name
    check_choice("optimizer", name, OPTIMIZER_NAMES)
    if isinstance(learning_rate, numbers.Real):  # schedules, variables and callables pass through to Keras
        check_positive_finite("learning_rate", learning_rate)
    if weight_decay == "default":
        weight_decay = DEFAULT_WEIGHT_DECAY[name]
    if weight_decay is not None:
        weight_decay = check_float("weight_decay", weight_decay, minimum=0.0, finite=True) or None
    if name == "adam" and weight_decay:
        raise ValueError("Adam applies no decoupled weight decay here; use optimizer='adamw'. "
                         + received("weight_decay", weight_decay))
    for arg, value in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm), ("clipvalue", clipvalue)):
        if value is not None:
            check_positive_finite(arg, value)
    if sum(v is not None for v in (clipnorm, global_clipnorm, clipvalue)) > 1:
        raise ValueError("Give at most one of `clipnorm`, `global_clipnorm`, `clipvalue`. "
                         f"Received: clipnorm={clipnorm!r}, global_clipnorm={global_clipnorm!r}, "
                         f"clipvalue={clipvalue!r}")
    kwargs = dict(learning_rate=learning_rate, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                  clipvalue=clipvalue)
    if name == "sgd":
        kwargs.update(momentum=check_float("momentum", momentum, minimum=0.0, maximum=1.0), nesterov=nesterov,
                      weight_decay=weight_decay)
    elif name == "adamw":
        kwargs.update(weight_decay=weight_decay or 0.0)
    multipliers = {k: float(v) for k, v in (lr_multipliers or {}).items() if float(v) != 1.0}
    if multipliers:
        optimizer = _DISCRIMINATIVE[name](lr_multipliers=multipliers, **kwargs)
    else:
        optimizer = _PLAIN[name](**kwargs)
    if model is not None and weight_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer
