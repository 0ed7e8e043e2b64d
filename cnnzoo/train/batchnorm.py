"""BatchNorm statistics that keep up with the weights.

keras.applications' MobileNetV2 and EfficientNet use BN momentum 0.999: the moving mean/variance move 0.1 % per
step toward the batch statistics, so after a few hundred steps they still sit near their initial values while
the weights have moved on. Training accuracy is then high and `evaluate` at chance (digits, 32 px, 8 epochs:
93 % train vs 9.8 % val). Two remedies, both used by `fit`:

- `auto_momentum`: during a run, lower the momentum so the moving average spans about a tenth of an epoch
  (`1 - 10 / steps_per_epoch`, never above the layer's own momentum, never below 0.9 (PyTorch's default)), and
  restore it afterwards. The start values (variance 1) must be forgotten early: real variances deep in a
  network are often ~0.01, so even 5 % of the start value left dominates them;
- `recalibrate_bn`: after a run, re-estimate the statistics as the plain average over training batches
  (forward passes in training mode, no weight updates): the exact population estimate for the final weights.

Example:
    >>> cnnzoo.train.recalibrate_bn(model, data)        # data: ImageData or a tf.data of (images, labels)
"""
from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from cnnzoo._checks import check_int, received
from cnnzoo.introspect import batchnorm_layers

__all__ = ["recalibrate_bn", "auto_momentum", "trained_batchnorm_layers", "scaled_momentum"]


def trained_batchnorm_layers(model) -> list:
    """BN layers whose statistics move during training: trainable ones (Keras runs frozen BN in inference)."""
    return [layer for layer in batchnorm_layers(model) if layer.trainable]


def scaled_momentum(momentum: float, steps_per_epoch: int) -> float:
    """The momentum `auto_momentum` uses: `min(momentum, max(0.9, 1 - 10 / steps_per_epoch))`."""
    return min(float(momentum), max(0.9, 1.0 - 10.0 / max(1, steps_per_epoch)))


@contextlib.contextmanager
def auto_momentum(model, steps_per_epoch: int):
    """Within the block, trained BN layers use `scaled_momentum(layer.momentum, steps_per_epoch)`."""
    layers = trained_batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = scaled_momentum(layer.momentum, steps_per_epoch)
        yield
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


def _images(data):
    """A tf.data stream of image batches from an ImageData, a dataset of (x, y) / x, or an array (cnnzoo.data.adapt)."""
    from cnnzoo.data.adapt import stream

    return stream(data, name="data", split="train", labels=False, batch_size=32)


def recalibrate_bn(model, data, *, steps: int | None = None, layers=None) -> int:
    """Re-estimate BatchNorm moving statistics from training batches, with no weight update.

    Each selected BN layer's moving mean/variance become the average of the batch statistics over the batches
    seen (a cumulative average, not an exponential one): the population estimate for the current weights.

    Args:
        model: keras.Model.
        data: ImageData (its un-augmented `.train` is used), a tf.data.Dataset of images or
            (images, labels) batches, or an image array.
        steps: int or None. Batches to use (None: one pass over `data`).
        layers: list of BN layers or None (all BatchNormalization layers of the model).

    Returns:
        int, the number of batches used.

    Example:
        >>> recalibrate_bn(model, data)
    """
    if steps is not None:
        check_int("steps", steps, minimum=1)
    selected = batchnorm_layers(model) if layers is None else list(layers)
    if not selected:
        return 0
    stream = _images(data)
    if steps is not None:
        stream = stream.take(steps)
    others = [layer for layer in batchnorm_layers(model) if layer not in selected]
    state = [(layer, layer.momentum, layer.trainable) for layer in selected + others]
    # A variable momentum lets one traced function run the cumulative average k/(k+1).
    momentum = tf.Variable(0.0, trainable=False, dtype="float32")
    try:
        for layer in selected:
            layer.momentum = momentum
            layer.trainable = True
        for layer in others:
            layer.trainable = False  # frozen BN runs in inference mode and keeps its statistics

        @tf.function(reduce_retracing=True)
        def forward(images):
            model(images, training=True)

        count = 0
        for images in stream:
            momentum.assign(count / (count + 1.0))
            forward(images)
            count += 1
    finally:
        for layer, saved_momentum, trainable in state:
            layer.momentum = saved_momentum
            layer.trainable = trainable
    if count == 0:
        raise ValueError("`data` gave no batches to estimate BatchNorm statistics from. "
                         + received("data", data))
    return count


def has_trained_batchnorm(model) -> bool:
    return bool(trained_batchnorm_layers(model))

