"""Knowledge distillation: a small student learns from a trained teacher's softened class scores as well as from
the labels (Hinton et al. 2015), on `keras.distillation.Distiller` with `LogitsDistillation` (KL divergence of the
temperature-softened distributions, scaled by T^2).

The Distiller needs logits. A zoo classifier ends in a softmax Dense ("predictions"); distillation runs on a
view of each model that applies the same Dense without its softmax (shared weights, nothing copied), so the
student trains in place and keeps its softmax head for evaluation and export. The recipe around it is `fit`'s:
the optimizer and schedule by name, BatchNorm momentum following the steps per epoch, and the student's BatchNorm
statistics re-estimated at the end.

Example:
    >>> teacher = cnnzoo.train.fit(cnnzoo.create_model("resnet18", num_classes=10), data, epochs=10).model
    >>> student = cnnzoo.create_model("mobilenet_v2_035", num_classes=10)
    >>> result = cnnzoo.train.distill(teacher, student, data, temperature=4.0, alpha=0.5, epochs=10)
    >>> cnnzoo.export(result.model, "exported/student", representative_data=data)
"""
from __future__ import annotations

import contextlib

import keras

from cnnzoo._checks import check_float, check_int, received
from cnnzoo.introspect import (all_layers, head_activation, is_multilabel, is_segmenter, num_outputs,
                               output_classifier)
from cnnzoo.train import schedules as _schedules
from cnnzoo.train.batchnorm import auto_momentum, recalibrate_bn, trained_batchnorm_layers
from cnnzoo.train.fit import FitResult, _steps
from cnnzoo.train.optimizers import make_optimizer

__all__ = ["distill"]


@keras.saving.register_keras_serializable(package="cnnzoo")
class _Logits(keras.layers.Layer):
    """The classifier Dense `dense` without its activation: its kernel and bias, shared (not copied)."""

    def __init__(self, dense, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.dense = dense

    def call(self, features):
        features = keras.ops.cast(features, "float32")
        out = keras.ops.matmul(features, self.dense.kernel)
        return out + self.dense.bias if self.dense.use_bias else out

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.dense.units)


def logits_view(model, name: str) -> keras.Model:
    """A model sharing every layer of `model` that returns its classifier's logits (see the module docstring)."""
    if is_segmenter(model) or is_multilabel(model):
        raise ValueError(f"Distillation here is for single-label classifiers (a softmax over classes); this is a "
                         f"{'segmenter' if is_segmenter(model) else 'multi-label model'}. "
                         + received(name, model.name))
    activation = head_activation(model)
    if activation == "linear":
        return model
    dense = output_classifier(model)
    if activation != "softmax" or dense is None:
        raise ValueError(f"`{name}` must end in a Dense classifier with a softmax (or no activation: logits). "
                         + received(name, model.name))
    return keras.Model(model.inputs, _Logits(dense, name="logits")(dense.input), name=f"{model.name}_logits")


def distill(teacher, student, data, *, temperature: float = 4.0, alpha: float = 0.5, epochs: int,
            optimizer: str = "adamw", learning_rate: float = 1e-3, schedule="cosine", weight_decay="default",
            verbose="auto", seed: int | None = None, callbacks=None) -> FitResult:
    """Train `student` on `data` to match both the labels and the trained `teacher` (knowledge distillation).

    Args:
        teacher: a trained keras.Model classifier (softmax or logits head); it is not changed.
        student: the keras.Model classifier to train (same number of classes and input size), trained in place.
        data: ImageData, or a tf.data.Dataset of (images, labels) batches.
        temperature: float > 0, T softening both distributions (4: Hinton et al.'s range 2-5 for small students).
        alpha: float in [0, 1], the weight of the student's own cross-entropy with the labels; 1 - alpha weighs
            the distillation term (`keras.distillation.Distiller`'s `student_loss_weight`).
        epochs: int >= 1. optimizer, learning_rate, schedule, weight_decay: as in `cnnzoo.train.fit`.
        verbose, seed, callbacks: as in `fit`.

    Returns:
        FitResult(student, history): history has "loss", "student_loss", "distillation_loss", "accuracy" (and
        "val_" versions with validation data); the student's BatchNorm statistics are re-estimated at the end.

    Example:
        >>> result = cnnzoo.train.distill(teacher, student, data, temperature=4.0, alpha=0.5, epochs=10)
    """
    from cnnzoo.train.fit import _check_data

    check_int("epochs", epochs, minimum=1)
    temperature = check_float("temperature", temperature, minimum=0.0, exclusive_minimum=True, finite=True)
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(f"`{name}` must be a keras.Model. {received(name, type(model).__name__)}")
    if num_outputs(teacher) != num_outputs(student):
        raise ValueError(f"The teacher scores {num_outputs(teacher)} classes and the student {num_outputs(student)}; "
                         f"they must agree. {received('student', student.name)}")
    if tuple(teacher.input_shape[1:]) != tuple(student.input_shape[1:]):
        raise ValueError(f"The teacher takes {teacher.input_shape[1:]} images and the student "
                         f"{student.input_shape[1:]}; distillation feeds both the same batch. "
                         + received("student", student.name))
    train, val, _ = _check_data(data, student)
    if train.element_spec[1].shape.rank != 1:
        raise ValueError("distill takes class-id labels [batch]; these are rows (one-hot or multi-hot). "
                         + received("data", data))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    steps = _steps(train, None)
    teacher_logits, student_logits = logits_view(teacher, "teacher"), logits_view(student, "student")
    trainable = [(layer, layer.trainable) for layer in [teacher, *all_layers(teacher)]]
    distiller = keras.distillation.Distiller(
        teacher=teacher_logits, student=student_logits,
        # The loss as an instance: Keras 3.15's default "kl_divergence" resolves to a plain function, which
        # LogitsDistillation then applies to the raw scaled logits instead of their softmax (no T^2 either).
        distillation_losses=keras.distillation.LogitsDistillation(temperature=temperature,
                                                                  loss=keras.losses.KLDivergence()),
        student_loss_weight=alpha)
    rate = _schedules.get(schedule, learning_rate=learning_rate, total_steps=epochs * steps, steps_per_epoch=steps)
    distiller.compile(optimizer=make_optimizer(optimizer, rate, model=student, weight_decay=weight_decay),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    train_bn = trained_batchnorm_layers(student)
    try:
        with auto_momentum(student, steps) if train_bn else contextlib.nullcontext():
            history = distiller.fit(train, validation_data=val, epochs=epochs, verbose=verbose,
                                    callbacks=list(callbacks or []))
    finally:
        for layer, flag in trainable:            # the Distiller froze the teacher's layers (shared with the view)
            layer.trainable = flag
    if train_bn:
        recalibrate_bn(student, train, layers=train_bn, steps=min(steps, 200))
    return FitResult(model=student, history={k: [float(v) for v in values]
                                             for k, values in history.history.items()})
