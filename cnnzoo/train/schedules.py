"""Learning-rate schedules: step decay, exponential, cosine, cosine with warm restarts, one-cycle, warmup.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` of the optimizer step `t`, so it can be
given to any Keras optimizer, saved in its config and resumed from `optimizer.iterations`. Where Keras already
has the formula (exponential/step decay, cosine, cosine restarts) the factory returns the Keras object; the
one-cycle policy and the warmup wrapper are ours. Reduce-on-plateau depends on a validation metric, so it is a
callback (`reduce_on_plateau`).

Formulas (design notes, "Learning Rate Scheduling"):

- step decay: `lr0 * gamma ** floor(t / step_size)`
- exponential: `lr0 * gamma ** (t / decay_steps)`
- cosine: `min_lr + 0.5 * (lr0 - min_lr) * (1 + cos(pi * t / T))`, held at `min_lr` after `T`
- cosine restarts: cosine within cycle `i` of length `T_i = T_0 * t_mult ** i`, restarting at `lr0`
- one-cycle: linear `min_lr -> max_lr` over `p * T` steps, then `max_lr -> final_lr` over the rest
- warmup: linear `start_lr -> schedule(0)` over `W` steps, then `schedule(t - W)`

Example:
    >>> sched = cnnzoo.train.schedules.one_cycle(3e-3, total_steps=1000)
    >>> opt = keras.optimizers.AdamW(learning_rate=sched)
"""
from __future__ import annotations

import math

import keras
from keras import ops

from cnnzoo._checks import check_choice, check_float, check_int, check_positive_finite
from cnnzoo.options import SCHEDULE_NAMES  # defined once, for the CLI too

__all__ = ["step_decay", "exponential_decay", "cosine", "cosine_restarts", "one_cycle", "warmup",
           "reduce_on_plateau", "OneCycle", "LinearWarmup", "get", "SCHEDULE_NAMES"]



def _check_lr(name, value):
    return check_positive_finite(name, value)


def step_decay(learning_rate: float, step_size: int, gamma: float = 0.1):
    """`lr0 * gamma ** floor(t / step_size)`: divide the rate by `1/gamma` every `step_size` steps.

    Example:
        >>> step_decay(0.01, step_size=30, gamma=0.1)(60)   # 1e-4
    """
    _check_lr("learning_rate", learning_rate)
    check_int("step_size", step_size, minimum=1)
    check_float("gamma", gamma, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=step_size, decay_rate=gamma, staircase=True)


def exponential_decay(learning_rate: float, gamma: float, decay_steps: int = 1):
    """`lr0 * gamma ** (t / decay_steps)`: a smooth decay by `gamma` every `decay_steps` steps.

    Example:
        >>> exponential_decay(1e-3, gamma=0.95, decay_steps=100)
    """
    _check_lr("learning_rate", learning_rate)
    check_float("gamma", gamma, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check_int("decay_steps", decay_steps, minimum=1)
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=decay_steps, decay_rate=gamma, staircase=False)


def cosine(learning_rate: float, decay_steps: int, min_lr: float = 0.0):
    """Cosine annealing from `learning_rate` to `min_lr` over `decay_steps` steps.

    Example:
        >>> cosine(1e-3, decay_steps=1000, min_lr=1e-5)
    """
    _check_lr("learning_rate", learning_rate)
    check_int("decay_steps", decay_steps, minimum=1)
    check_float("min_lr", min_lr, minimum=0.0, maximum=learning_rate)
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=decay_steps, alpha=min_lr / learning_rate)


def cosine_restarts(learning_rate: float, first_decay_steps: int, t_mult: float = 2.0, m_mul: float = 1.0,
                    min_lr: float = 0.0):
    """Cosine annealing with warm restarts (SGDR): cycle `i` lasts `first_decay_steps * t_mult ** i` steps.

    `m_mul` scales the peak of each new cycle (1.0 restarts at `learning_rate`).

    Example:
        >>> cosine_restarts(1e-3, first_decay_steps=100, t_mult=2.0)
    """
    _check_lr("learning_rate", learning_rate)
    check_int("first_decay_steps", first_decay_steps, minimum=1)
    check_float("t_mult", t_mult, minimum=1.0, finite=True)
    check_float("m_mul", m_mul, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check_float("min_lr", min_lr, minimum=0.0, maximum=learning_rate)
    return keras.optimizers.schedules.CosineDecayRestarts(
        learning_rate, first_decay_steps=first_decay_steps, t_mul=t_mult, m_mul=m_mul,
        alpha=min_lr / learning_rate)


@keras.saving.register_keras_serializable(package="cnnzoo")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy: warm up `min_lr -> max_lr` for `warmup_fraction * total_steps`, then anneal to
    `final_lr`; held at `final_lr` after `total_steps`. `anneal="linear"` follows the design notes,
    `"cos"` is fastai's cosine variant.
    """

    def __init__(self, max_lr, total_steps, warmup_fraction=0.3, min_lr=None, final_lr=None,
                 anneal="linear", name="one_cycle"):
        super().__init__()
        self.max_lr = _check_lr("max_lr", max_lr)
        self.total_steps = check_int("total_steps", total_steps, minimum=2)
        self.warmup_fraction = check_float("warmup_fraction", warmup_fraction, minimum=0.0, maximum=1.0)
        self.min_lr = self.max_lr / 25.0 if min_lr is None else check_float("min_lr", min_lr, minimum=0.0,
                                                                              maximum=max_lr)
        self.final_lr = self.min_lr if final_lr is None else check_float("final_lr", final_lr, minimum=0.0,
                                                                           maximum=max_lr)
        self.anneal = check_choice("anneal", anneal, ("linear", "cos"))
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(self.total_steps)
        warm = self.warmup_fraction * total
        step = ops.minimum(step, total)
        up = self.min_lr + (self.max_lr - self.min_lr) * step / max(warm, 1e-12)
        frac = ops.clip((step - warm) / max(total - warm, 1e-12), 0.0, 1.0)
        if self.anneal == "linear":
            down = self.max_lr - (self.max_lr - self.final_lr) * frac
        else:
            down = self.final_lr + 0.5 * (self.max_lr - self.final_lr) * (1.0 + ops.cos(math.pi * frac))
        return ops.where(step < warm, up, down)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "warmup_fraction": self.warmup_fraction, "min_lr": self.min_lr, "final_lr": self.final_lr,
                "anneal": self.anneal, "name": self.name}


def one_cycle(max_lr: float, total_steps: int, warmup_fraction: float = 0.3, min_lr: float | None = None,
              final_lr: float | None = None, anneal: str = "linear") -> OneCycle:
    """One-cycle policy (Smith 2018). `min_lr` defaults to `max_lr / 25`, `final_lr` to `min_lr`.

    Example:
        >>> one_cycle(1e-2, total_steps=500, warmup_fraction=0.3)
    """
    return OneCycle(max_lr, total_steps, warmup_fraction, min_lr, final_lr, anneal)


@keras.saving.register_keras_serializable(package="cnnzoo")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `start_lr` to `schedule(0)` over `warmup_steps`, then `schedule(t - warmup_steps)`."""

    def __init__(self, schedule, warmup_steps, start_lr=0.0, name="linear_warmup"):
        super().__init__()
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = _check_lr("schedule", schedule)
        self.schedule = schedule
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=1)
        self.start_lr = check_float("start_lr", start_lr, minimum=0.0, finite=True)
        self.name = name

    def _after(self, step):
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            return ops.cast(self.schedule(step), "float32")
        return ops.cast(self.schedule, "float32")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(self.warmup_steps)
        target = self._after(ops.cast(0.0, "float32"))
        ramp = self.start_lr + (target - self.start_lr) * step / warm
        return ops.where(step < warm, ramp, self._after(ops.maximum(step - warm, 0.0)))

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps, "start_lr": self.start_lr,
                "name": self.name}


def warmup(schedule, warmup_steps: int, start_lr: float = 0.0) -> LinearWarmup:
    """Wrap a schedule (or a constant rate) with a linear warmup of `warmup_steps` steps.

    Example:
        >>> warmup(cosine(1e-3, decay_steps=900), warmup_steps=100)
    """
    return LinearWarmup(schedule, warmup_steps, start_lr)


def reduce_on_plateau(monitor: str = "val_loss", factor: float = 0.1, patience: int = 5,
                      min_delta: float = 1e-4, min_lr: float = 0.0, cooldown: int = 0, verbose: int = 0):
    """Reduce-on-plateau as a callback: `lr <- factor * lr` after `patience` epochs without an improvement
    larger than `min_delta` in `monitor` (mode inferred from the name: "loss" minimised, others maximised).

    Example:
        >>> model.fit(data.train, epochs=30, callbacks=[reduce_on_plateau(patience=3)])  # doctest: +SKIP
    """
    check_float("factor", factor, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    if factor >= 1.0:
        raise ValueError(f"`factor` must be < 1. Received: factor={factor!r}")
    check_int("patience", patience, minimum=0)
    check_float("min_delta", min_delta, minimum=0.0, finite=True)
    check_float("min_lr", min_lr, minimum=0.0, finite=True)
    check_int("cooldown", cooldown, minimum=0)
    mode = "min" if "loss" in monitor else "max"
    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=factor, patience=patience, mode=mode,
                                             min_delta=min_delta, min_lr=min_lr, cooldown=cooldown,
                                             verbose=verbose)


def get(name, *, learning_rate: float, total_steps: int, steps_per_epoch: int, warmup_steps: int = 0,
        **options):
    """Build the schedule that `fit(schedule=name)` means for a run of `total_steps` steps.

    Names: "constant", "step" (options `step_epochs` (default a third of the run), `gamma`=0.1),
    "exponential" (`gamma` per epoch, default 0.9), "cosine" (`min_lr`), "cosine_restarts"
    (`cycle_epochs`=1, `t_mult`=2, `min_lr`), "one_cycle" (`warmup_fraction`=0.3; `learning_rate` is the
    peak), "plateau" (constant rate; `fit` adds `reduce_on_plateau`). A `LearningRateSchedule` passes through.
    `warmup_steps` > 0 wraps the result in `warmup`.
    """
    if isinstance(name, keras.optimizers.schedules.LearningRateSchedule):
        sched = name
    else:
        if name is None:
            name = "constant"
        check_choice("schedule", name, SCHEDULE_NAMES)
        decay_steps = max(1, total_steps - warmup_steps)
        if name in ("constant", "plateau"):
            sched = _check_lr("learning_rate", learning_rate)
        elif name == "step":
            step_epochs = options.pop("step_epochs", None)
            if step_epochs is not None:
                check_int("step_epochs", step_epochs, minimum=1)
            step_size = (step_epochs * steps_per_epoch if step_epochs else max(1, decay_steps // 3))
            sched = step_decay(learning_rate, step_size, options.pop("gamma", 0.1))
        elif name == "exponential":
            sched = exponential_decay(learning_rate, options.pop("gamma", 0.9), decay_steps=steps_per_epoch)
        elif name == "cosine":
            sched = cosine(learning_rate, decay_steps, options.pop("min_lr", 0.0))
        elif name == "cosine_restarts":
            sched = cosine_restarts(learning_rate, check_int("cycle_epochs", options.pop("cycle_epochs", 1),
                                                             minimum=1) * steps_per_epoch,
                                    options.pop("t_mult", 2.0), min_lr=options.pop("min_lr", 0.0))
        else:  # one_cycle
            sched = one_cycle(learning_rate, max(2, total_steps), options.pop("warmup_fraction", 0.3))
            warmup_steps = 0  # one-cycle has its own warmup
        if options:
            raise ValueError(f"Unknown options for schedule={name!r}: {sorted(options)}. "
                             f"Received: schedule_options={options!r}")
    if warmup_steps:
        sched = warmup(sched, warmup_steps)
    return sched
