"""Learning-rate range test (Smith 2015; fastai's `lr_find`): an exponential sweep of the learning rate over a
short training run, recording the loss of each step.

- rate at step i (of N): `min_lr * (max_lr / min_lr) ** (i / (N - 1))`
- smoothed loss: exponential moving average with `beta` (0.98), bias-corrected (`/ (1 - beta ** (i + 1))`)
- stops when the smoothed loss exceeds `diverge` (4) times its minimum, or is not finite
- **suggestion rule**: the rate where the smoothed loss falls fastest, i.e. the most negative slope
  `d loss / d log10(lr)` (central differences), searched between the first 10 % of the sweep and the minimum
  of the smoothed loss. `.min_loss_lr / 10` (fastai's "minimum / 10") is given as a second, more careful rule.

The model's weights (BatchNorm statistics included) are restored afterwards, and the model's own compile state is
not touched: the sweep uses its own optimizer and loss.

Example:
    >>> result = cnnzoo.train.lr_find(model, data, steps=100)
    >>> result.suggestion, result.plot()
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_float, check_int, received
from cnnzoo.train.fit import make_loss
from cnnzoo.train.optimizers import make_optimizer

__all__ = ["lr_find", "LRFinderResult", "suggest"]


@dataclasses.dataclass
class LRFinderResult:
    """Rates tried, raw and smoothed losses, the suggested rate and whether the sweep stopped on divergence."""

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float
    min_loss_lr: float
    diverged: bool

    def plot(self, ax=None):
        """Smoothed loss against the learning rate (log axis), the suggestion marked; returns the Figure."""
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        ax.plot(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        ax.plot(self.learning_rates, self.losses, alpha=0.3, label="loss")
        ax.axvline(self.suggestion, color="red", linestyle="--", label=f"suggestion {self.suggestion:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        return fig


def suggest(learning_rates, smoothed_losses) -> float:
    """The steepest-descent rate of a smoothed loss curve (see the module docstring for the rule)."""
    lrs = np.asarray(learning_rates, dtype="float64")
    losses = np.asarray(smoothed_losses, dtype="float64")
    if len(lrs) < 3:
        return float(lrs[0]) if len(lrs) else math.nan
    end = int(np.argmin(losses)) + 1
    start = min(len(lrs) // 10, max(0, end - 3))
    if end - start < 3:
        start, end = 0, len(lrs)
    slope = np.gradient(losses[start:end], np.log10(lrs[start:end]))
    return float(lrs[start + int(np.argmin(slope))])


def _stream(data):
    """The train stream of (images, labels) batches (cnnzoo.data.adapt: ImageData or a dataset)."""
    from cnnzoo.data.adapt import stream

    return stream(data, name="data", split="train", labels=True, arrays=False)


def lr_find(model, data, *, min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100,
            optimizer: str = "adamw", beta: float = 0.98, diverge: float = 4.0,
            label_smoothing: float = 0.0) -> LRFinderResult:
    """Sweep the learning rate exponentially from `min_lr` to `max_lr` over `steps` training steps.

    Args:
        model: keras.Model (trained in place during the sweep, restored afterwards).
        data: ImageData (train stream, repeated as needed) or a tf.data.Dataset of (images, labels).
        min_lr, max_lr: float, the sweep's range (min_lr < max_lr).
        steps: int >= 5.
        optimizer: "adamw", "sgd" or "adam" (a fresh one; the model's compiled optimizer is not used).
        beta: float in [0, 1), loss smoothing. diverge: float > 1, the stop factor over the best loss.

    Returns:
        LRFinderResult(.learning_rates .losses .smoothed_losses .suggestion .min_loss_lr .diverged .plot()).

    Example:
        >>> lr = cnnzoo.train.lr_find(model, data).suggestion
    """
    min_lr = check_float("min_lr", min_lr, minimum=0.0, exclusive_minimum=True, finite=True)
    max_lr = check_float("max_lr", max_lr, minimum=0.0, exclusive_minimum=True, finite=True)
    if max_lr <= min_lr:
        raise ValueError(f"`max_lr` must be > min_lr={min_lr}. " + received("max_lr", max_lr))
    steps = check_int("steps", steps, minimum=5)
    beta = check_float("beta", beta, minimum=0.0, maximum=0.999)
    diverge = check_float("diverge", diverge, minimum=1.0, exclusive_minimum=True, finite=True)
    stream = _stream(data).repeat()

    saved = [np.array(w) for w in model.get_weights()]
    opt = make_optimizer(optimizer, min_lr, model=model)
    loss_fn = make_loss(model, label_smoothing)
    if label_smoothing:
        classes = int(model.outputs[0].shape[-1])
        stream = stream.map(lambda x, y: (x, tf.one_hot(tf.cast(y, "int32"), classes)))

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    rates = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
    losses, smoothed = [], []
    average, best, diverged = 0.0, math.inf, False
    try:
        for i, (x, y) in enumerate(stream.take(steps)):
            opt.learning_rate = float(rates[i])
            loss = float(train_step(x, y))
            if not math.isfinite(loss):
                diverged = True
                break
            average = beta * average + (1 - beta) * loss
            value = average / (1 - beta ** (i + 1))
            losses.append(loss)
            smoothed.append(value)
            best = min(best, value)
            if i > 0 and value > diverge * best:
                diverged = True
                break
    finally:
        model.set_weights(saved)
    if len(losses) < 2:
        raise ValueError("The loss diverged at the first rates of the sweep; lower `min_lr`. "
                         + received("min_lr", min_lr))
    lrs = rates[:len(losses)]
    smoothed = np.asarray(smoothed)
    return LRFinderResult(learning_rates=lrs, losses=np.asarray(losses), smoothed_losses=smoothed,
                          suggestion=suggest(lrs, smoothed), min_loss_lr=float(lrs[int(np.argmin(smoothed))]),
                          diverged=diverged)
