"""Optimizers for the recipes: AdamW / SGD with momentum / Adam, weight decay that skips BatchNorm and biases,
gradient clipping, per-variable learning-rate multipliers (discriminative learning rates), a weight EMA and
gradient accumulation (Keras' own `use_ema` / `gradient_accumulation_steps`).

Keras optimizers take one learning rate. Scaling gradients does not lower Adam's step (Adam is invariant to
gradient scale), so the multiplier is applied to the learning rate inside `update_step`, per variable. The
multipliers are keyed by variable path (`"conv1_conv/kernel"`), so they survive in the optimizer config.

The EMA warms up as `tf.train.ExponentialMovingAverage` does with `num_updates`: its momentum at update t is
min(ema, (1 + t) / (10 + t)), so a run of a few hundred steps with ema=0.999 averages its own late weights rather
than keeping most of the random initialisation (Keras' EMA uses the full momentum from the second step).

Example:
    >>> opt = make_optimizer("adamw", 1e-3, model=model, weight_decay=0.05,
    ...                      lr_multipliers={"conv1_conv/kernel": 0.1}, ema=0.999, accumulate=4)
"""
from __future__ import annotations

import numbers

import keras
from keras import ops

from cnnzoo._checks import check_choice, check_float, check_int, check_positive_finite, received
from cnnzoo.options import DEFAULT_WEIGHT_DECAY, OPTIMIZER_NAMES  # defined once, for the CLI too

__all__ = ["make_optimizer", "OPTIMIZER_NAMES", "DiscriminativeAdamW", "DiscriminativeAdam",
           "DiscriminativeSGD", "no_decay_variables"]



class _LRMultipliers:
    """Mixin: scales the learning rate of each variable by `lr_multipliers[variable.path]` (default 1), and warms
    the weight EMA up (momentum min(ema, (1 + t) / (10 + t)) at update t)."""

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

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")
        # the first update copies the weights (Keras' rule); then TF's num_updates warm-up
        momentum = ops.where(ops.equal(step, 0.0), 0.0, ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step)))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, variable.dtype)
                average.assign(m * average + (1.0 - m) * variable)

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeAdamW(_LRMultipliers, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with per-variable learning-rate multipliers and a warmed-up EMA."""


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeAdam(_LRMultipliers, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with per-variable learning-rate multipliers and a warmed-up EMA."""


@keras.saving.register_keras_serializable(package="cnnzoo")
class DiscriminativeSGD(_LRMultipliers, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with per-variable learning-rate multipliers and a warmed-up EMA."""


_PLAIN = {"adamw": keras.optimizers.AdamW, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
_DISCRIMINATIVE = {"adamw": DiscriminativeAdamW, "adam": DiscriminativeAdam, "sgd": DiscriminativeSGD}


def no_decay_variables(model) -> list:
    """Variables that weight decay must not shrink: biases and normalization scales/offsets (rank <= 1)."""
    return [v for v in model.trainable_variables if len(v.shape) <= 1]


def make_optimizer(name: str, learning_rate, *, model=None, weight_decay="default", momentum: float = 0.9,
                   nesterov: bool = False, clipnorm: float | None = None, global_clipnorm: float | None = None,
                   clipvalue: float | None = None, lr_multipliers: dict | None = None, ema: float | None = None,
                   accumulate: int = 1):
    """Build a Keras optimizer by name ("adamw", "sgd" with momentum, "adam").

    `weight_decay="default"` means 0.05 for AdamW, 5e-4 for SGD, none for Adam. With `model`, biases and
    BatchNorm gamma/beta are excluded from weight decay. `lr_multipliers` maps variable paths to factors.
    `ema` (a momentum in (0, 1)) keeps a warmed-up moving average of the weights, which Keras' `fit` swaps in when
    it ends; `accumulate=k` applies the mean gradient of k batches once every k batches.
    """
    ema = check_ema(ema)
    accumulate = check_int("accumulate", accumulate, minimum=1)
    if isinstance(name, keras.optimizers.Optimizer):
        for arg, value, unset in (("lr_multipliers", lr_multipliers, not lr_multipliers), ("ema", ema, ema is None),
                                  ("accumulate", accumulate, accumulate == 1)):
            if not unset:
                raise ValueError(f"`{arg}` needs an optimizer given by name ('adamw', 'sgd', 'adam'); configure "
                                 f"this one yourself. {received(arg, value)}")
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
    if ema is not None:
        kwargs.update(use_ema=True, ema_momentum=ema)
    if accumulate > 1:
        kwargs.update(gradient_accumulation_steps=accumulate)
    if name == "sgd":
        kwargs.update(momentum=check_float("momentum", momentum, minimum=0.0, maximum=1.0), nesterov=nesterov,
                      weight_decay=weight_decay)
    elif name == "adamw":
        kwargs.update(weight_decay=weight_decay or 0.0)
    multipliers = {k: float(v) for k, v in (lr_multipliers or {}).items() if float(v) != 1.0}
    if multipliers or ema is not None:
        optimizer = _DISCRIMINATIVE[name](lr_multipliers=multipliers, **kwargs)
    else:
        optimizer = _PLAIN[name](**kwargs)
    if model is not None and weight_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer


def check_ema(ema):
    """None, or the EMA momentum as a float in (0, 1)."""
    if ema is None:
        return None
    value = check_float("ema", ema, minimum=0.0, exclusive_minimum=True, maximum=1.0)
    if value >= 1.0:
        raise ValueError(f"`ema` is a momentum in (0, 1), such as 0.999. {received('ema', ema)}")
    return value
