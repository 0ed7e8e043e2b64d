"""`fit`: one training run done right — optimizer, schedule, regularisation, logs, BN statistics, mixed precision,
distribution and resumable checkpoints — around `keras.Model.fit`.

`finetune` runs several of these (stages) on one model; both share `_run_stages` below.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_choice, check_float, check_int, check_positive_finite, received
from cnnzoo.train import schedules as _schedules
from cnnzoo.introspect import all_layers, head_activation, is_multilabel, is_segmenter, num_outputs, outputs_probabilities
from cnnzoo.train.batchnorm import auto_momentum, recalibrate_bn, trained_batchnorm_layers
from cnnzoo.train.checkpoints import Checkpointer, data_fingerprint, describe, model_fingerprint
from cnnzoo.train.distribute import broadcast_from_chief, get_strategy, is_chief, multiworker_fit_fix
from cnnzoo.train.optimizers import OPTIMIZER_NAMES, check_ema, make_optimizer
from cnnzoo.train.imbalance import check_class_weight, resolve_class_weight
from cnnzoo.train.losses import SEGMENTATION_LOSSES, SegmentationLoss
from cnnzoo.train.precision import float32_model, mixed_model, resolve_policy

__all__ = ["fit", "FitResult"]


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the trained `model` (float32) and the per-epoch `history` (lists by metric name,
    with "epoch" and "stage" columns).

    Example:
        >>> result = cnnzoo.train.fit(model, data, epochs=5)
        >>> result.history["val_accuracy"][-1]
    """

    model: keras.Model
    history: dict


# Per-stage training options and their defaults (a `Stage` may override any of them).
STAGE_DEFAULTS = dict(
    optimizer="adamw", learning_rate=1e-3, schedule="cosine", schedule_options=None, warmup_epochs=0.0,
    weight_decay="default", momentum=0.9, nesterov=False, label_smoothing=0.0, clipnorm=None,
    global_clipnorm=None, clipvalue=None, early_stopping=None, monitor=None, min_delta=0.0,
    restore_best_weights=True, lr_multipliers=None, bn_momentum="auto", recalibrate_bn="auto", loss="auto",
    focal_gamma=2.0, class_weight=None, ema=None, ema_validation=False, accumulate=1,
)
LOSS_NAMES = ("auto", "focal", *SEGMENTATION_LOSSES)
# Options of the whole run, not of a stage (`finetune` takes them in **train_kwargs and hands them to the run).
RUN_OPTIONS = ("log_dir", "callbacks", "verbose", "steps_per_epoch")


@dataclasses.dataclass
class _Plan:
    """One stage as `_run_stages` executes it."""

    epochs: int
    options: dict
    name: str = "fit"
    prepare: object = None          # callable(model) -> None: sets trainable flags for the stage
    multipliers: object = None      # callable(model) -> {variable path: factor}
    describe: dict = dataclasses.field(default_factory=dict)


def fit(model, data, *, epochs: int, optimizer: str = "adamw", learning_rate: float = 1e-3,
        schedule="cosine", warmup_epochs: float = 0.0, schedule_options: dict | None = None,
        weight_decay="default", momentum: float = 0.9, nesterov: bool = False, label_smoothing: float = 0.0,
        clipnorm: float | None = None, global_clipnorm: float | None = None, clipvalue: float | None = None,
        early_stopping: int | None = None, monitor: str | None = None, min_delta: float = 0.0,
        restore_best_weights: bool = True, lr_multipliers: dict | None = None, bn_momentum="auto",
        recalibrate_bn="auto", mixed_precision="auto", strategy=None, checkpoint_dir=None, log_dir=None,
        augment=None, callbacks=None, verbose="auto", steps_per_epoch: int | None = None,
        seed: int | None = None, loss="auto", focal_gamma: float = 2.0, class_weight=None, ema: float | None = None,
        ema_validation: bool = False, accumulate: int = 1) -> FitResult:
    """Train `model` on `data` with a complete recipe (all trainable layers train; see `finetune` for freezing).

    Args:
        model: keras.Model ending in the classifier (softmax probabilities or logits).
        data: ImageData (`.train`, `.val`), or a tf.data.Dataset of (images, labels) batches (no validation).
        epochs: int >= 1.
        optimizer: "adamw" (default), "sgd" (momentum `momentum`, `nesterov`), "adam", or a keras optimizer.
        learning_rate: float, the base (peak) rate.
        schedule: "cosine" (default), "constant", "step", "exponential", "cosine_restarts", "one_cycle",
            "plateau" (reduce-on-plateau callback), or a `LearningRateSchedule`. See `schedules.get`.
        warmup_epochs: float, linear warmup length in epochs (0: none).
        weight_decay: float, None, or "default" (0.05 AdamW, 5e-4 SGD); never applied to BN or biases.
        label_smoothing: float in [0, 1).
        clipnorm / global_clipnorm / clipvalue: gradient clipping (at most one).
        early_stopping: int patience in epochs, or None. Stops on `monitor` (default "val_accuracy",
            "accuracy" without validation data) and restores the best weights.
        lr_multipliers: {layer name or variable path: factor} per-variable learning-rate factors.
        bn_momentum: "auto" (BN momentum follows the number of steps per epoch) or None (leave as is).
        recalibrate_bn: "auto"/True (re-estimate BN statistics after training when BN trained, from up to
            200 un-augmented training batches) or False.
        mixed_precision: "auto", "float16", "bf16", "float32"/None. The returned model is float32.
        strategy: a tf.distribute.Strategy, "mirrored", "multiworker" or None.
        checkpoint_dir: path or None. Saves every epoch; a restarted run with the same arguments resumes.
        log_dir: path or None. Writes `log_dir/training.csv` and TensorBoard logs.
        augment: None, or what `cnnzoo.data.augment_dataset` takes (a policy name such as "standard", a list of
            steps, an `Augmentation` with MixUp/CutMix, a keras layer); train stream only.
        callbacks: extra keras callbacks. verbose: Keras progress bars ("auto", 0, 1, 2).
        steps_per_epoch: int, needed only when the train stream's length is unknown.
        loss: "auto" (cross-entropy matched to the head; for a segmenter per-pixel cross-entropy + Dice, 255
            skipped: Dice keeps small classes from drowning in background, 0.56 vs 0.43 held-out mIoU on digit
            scenes), "focal" (classifiers: `keras.losses.CategoricalFocalCrossentropy` with `focal_gamma`), a keras
            loss, or for segmenters "cross_entropy" / "dice" / "cross_entropy+dice" (`SegmentationLoss`).
        focal_gamma: float >= 0, the focusing parameter of loss="focal" (2.0, Lin et al. 2017).
        class_weight: None, "balanced" (n_samples / (n_classes * count) per class: scikit-learn's
            `compute_class_weight` rule, from `data.class_counts`, or counted from the stream), or
            {class index or name: weight}. Classifiers weight each image's loss; segmenters each pixel's.
        ema: None or a momentum in (0, 1) (e.g. 0.999): keep an exponential moving average of the weights (Keras'
            optimizer EMA, warmed up as `tf.train.ExponentialMovingAverage` does) and end each stage with the
            averaged weights in the model, BatchNorm statistics re-estimated for them. The checkpoint keeps it.
        ema_validation: bool, validate with the EMA weights (`keras.callbacks.SwapEMAWeights`) during training.
        accumulate: int >= 1, apply the mean gradient of this many batches at once (Keras'
            `gradient_accumulation_steps`): the effective batch of `accumulate * batch_size` on the memory of one
            batch. BatchNorm still normalizes and updates its statistics over each small batch.
            Segmenters report and monitor "miou" (`keras.metrics.MeanIoU`, 255 ignored) instead of accuracy.

    Returns:
        FitResult(model, history). `model` is the model passed in, trained in place, unless mixed precision or
        a strategy required rebuilding it (then a float32 rebuild with the trained weights).

    Example:
        >>> result = cnnzoo.train.fit(model, data, epochs=10, learning_rate=3e-3, schedule="one_cycle",
        ...                           label_smoothing=0.1, early_stopping=3, log_dir="runs/a")
    """
    check_int("epochs", epochs, minimum=1)
    options = dict(optimizer=optimizer, learning_rate=learning_rate, schedule=schedule,
                   warmup_epochs=warmup_epochs, schedule_options=schedule_options, weight_decay=weight_decay,
                   momentum=momentum, nesterov=nesterov, label_smoothing=label_smoothing, clipnorm=clipnorm,
                   global_clipnorm=global_clipnorm, clipvalue=clipvalue, early_stopping=early_stopping,
                   monitor=monitor, min_delta=min_delta, restore_best_weights=restore_best_weights,
                   lr_multipliers=lr_multipliers, bn_momentum=bn_momentum, recalibrate_bn=recalibrate_bn,
                   loss=loss, focal_gamma=focal_gamma, class_weight=class_weight, ema=ema,
                   ema_validation=ema_validation, accumulate=accumulate)
    plan = _Plan(epochs=epochs, options=check_stage_options(options),
                 multipliers=(lambda m: expand_multipliers(m, lr_multipliers)) if lr_multipliers else None)
    return _run_stages(model, data, [plan], mixed_precision=mixed_precision, strategy=strategy,
                       checkpoint_dir=checkpoint_dir, log_dir=log_dir, augment=augment, callbacks=callbacks,
                       verbose=verbose, steps_per_epoch=steps_per_epoch, seed=seed, result_cls=FitResult)


# --------------------------------------------------------------------------------------------------------------
# argument checks


def check_stage_options(options: dict) -> dict:
    """Validate the per-stage training options (shared by `fit` and `Stage`); returns the full option dict."""
    unknown = sorted(set(options) - set(STAGE_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown training options {unknown}; known: {sorted(STAGE_DEFAULTS)}. "
                         + received(unknown[0], options[unknown[0]]))
    full = dict(STAGE_DEFAULTS, **options)
    opt = full["optimizer"]
    if not isinstance(opt, keras.optimizers.Optimizer):
        check_choice("optimizer", opt, OPTIMIZER_NAMES)
    check_positive_finite("learning_rate", full["learning_rate"])
    if not isinstance(full["schedule"], keras.optimizers.schedules.LearningRateSchedule):
        check_choice("schedule", full["schedule"], (None,) + _schedules.SCHEDULE_NAMES)
    check_float("warmup_epochs", full["warmup_epochs"], minimum=0.0, finite=True)
    check_float("label_smoothing", full["label_smoothing"], minimum=0.0, maximum=0.99)
    if full["early_stopping"] is not None:
        check_int("early_stopping", full["early_stopping"], minimum=0)
    check_choice("bn_momentum", full["bn_momentum"], ("auto", None))
    check_choice("recalibrate_bn", full["recalibrate_bn"], ("auto", True, False))
    if not (isinstance(full["loss"], keras.losses.Loss) or callable(full["loss"])):
        check_choice("loss", full["loss"], LOSS_NAMES)
    check_class_weight(full["class_weight"])
    check_ema(full["ema"])
    check_choice("ema_validation", full["ema_validation"], (True, False))
    if full["ema_validation"] and full["ema"] is None:
        raise ValueError("`ema_validation=True` validates with the EMA weights; give `ema` (e.g. 0.999) too. "
                         + received("ema_validation", True))
    check_int("accumulate", full["accumulate"], minimum=1)
    if full["ema"] is not None and full["early_stopping"] is not None and full["restore_best_weights"]:
        raise ValueError("With `ema`, early stopping's restore_best_weights would put back the raw weights of the "
                         "best epoch instead of the averaged ones; set restore_best_weights=False (the stage then "
                         "ends with the EMA weights). " + received("restore_best_weights", True))
    if full["schedule_options"] is not None and not isinstance(full["schedule_options"], dict):
        raise TypeError("`schedule_options` must be a dict. "
                        + received("schedule_options", full["schedule_options"]))
    _check_numbers(full)
    return full


def _check_numbers(full: dict) -> None:
    """The numeric options: finite and in range (inf or NaN would train to NaN); schedule options by a dry run."""
    if full["weight_decay"] not in ("default", None):
        check_float("weight_decay", full["weight_decay"], minimum=0.0, finite=True)
    check_float("momentum", full["momentum"], minimum=0.0, maximum=1.0)
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        if full[name] is not None:
            check_positive_finite(name, full[name])
    check_float("min_delta", full["min_delta"], minimum=0.0, finite=True)
    check_float("focal_gamma", full["focal_gamma"], minimum=0.0, finite=True)
    schedule = full["schedule"]
    if schedule == "plateau":
        _schedules.reduce_on_plateau(**_plateau_options(full))
    elif not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        # Built once for a nominal 10 x 10-step run, so a bad option fails here, not after earlier stages trained.
        _schedules.get(schedule, learning_rate=full["learning_rate"], total_steps=100, steps_per_epoch=10,
                       **(full["schedule_options"] or {}))


def expand_multipliers(model, mapping: dict) -> dict:
    """{layer name or variable path: factor} -> {trainable variable path: factor}."""
    by_path = {v.path: v for v in model.trainable_variables}
    layers = {layer.name: layer for layer in all_layers(model)}
    out = {}
    for key, factor in mapping.items():
        check_positive_finite(f"lr_multipliers[{key!r}]", factor)
        if key in by_path:
            out[key] = float(factor)
        elif key in layers:
            for variable in layers[key].trainable_variables:
                out[variable.path] = float(factor)
        else:
            raise ValueError(f"`lr_multipliers` names {key!r}, which is neither a layer nor a trainable variable "
                             f"of the model. Received: lr_multipliers={mapping!r}")
    return out


def _check_data(data, model):
    """Return (train, val, num_classes or None) and check the classes match the model's head."""
    from cnnzoo.data.adapt import training_streams

    train, val, class_names = training_streams(data, name="data")
    num_classes = None if class_names is None else len(class_names)
    outputs = num_outputs(model)
    if num_classes is not None and outputs != num_classes:
        raise ValueError(f"The data has {num_classes} classes but the model's head has {outputs} outputs; "
                         "create the model with num_classes=data.num_classes or give finetune(head='new'). "
                         f"Received: data.num_classes={num_classes}")
    return train, val, num_classes


def _steps(train, steps_per_epoch):
    if steps_per_epoch is not None:
        return check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    n = int(train.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The train stream repeats forever; give `steps_per_epoch`. "
                         "Received: steps_per_epoch=None")
    if n == tf.data.UNKNOWN_CARDINALITY:
        n = int(train.reduce(np.int64(0), lambda count, _: count + 1))
    if n == 0:
        raise ValueError("The train stream is empty. " + received("data", train))
    return n


# --------------------------------------------------------------------------------------------------------------
# data, loss, callbacks


def _pipelines(train, val, *, augment, seed, num_classes, one_hot, shard_by_data):
    """Train/val streams for one stage: augmentation (train only), one-hot labels when the loss needs them
    (label smoothing, or MixUp/CutMix soft labels), data sharding for multi-worker runs. Returns
    (train, val, one_hot)."""
    if augment is not None and not (isinstance(augment, str) and augment == "none") and augment is not False:
        from cnnzoo.data import augment_dataset

        train = augment_dataset(train, augment, num_classes=num_classes, seed=seed)
    label_rank = train.element_spec[1].shape.rank
    one_hot = one_hot or label_rank == 2

    def encode(x, y):
        if y.shape.rank == 2:
            return x, tf.cast(y, "float32")
        return x, tf.one_hot(tf.cast(y, "int32"), num_classes)

    if one_hot:
        train = train.map(encode)
        val = val.map(encode) if val is not None else None
    if shard_by_data:
        # Keras' symbolic build under MultiWorkerMirroredStrategy all-reduces a first batch, which fails on uint8.
        train = train.map(lambda x, y: (tf.cast(x, "float32"), y))
        val = val.map(lambda x, y: (tf.cast(x, "float32"), y)) if val is not None else None
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train = train.with_options(options)
        val = val.with_options(options) if val is not None else None
    return train.prefetch(tf.data.AUTOTUNE), val, one_hot


def make_loss(model, label_smoothing: float = 0.0, *, one_hot: bool = False):
    """Cross-entropy matched to the head (probabilities or logits); label smoothing uses one-hot targets. A sigmoid
    head (multi-label) gets binary cross-entropy per class."""
    if is_multilabel(model):
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    from_logits = not outputs_probabilities(model)
    if label_smoothing or one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def task_of(model, data, train) -> str:
    """"segmentation", "multilabel" or "classification": what `model` must learn from `data`; a head that cannot
    learn the data's targets is refused (a softmax on multi-hot rows, a sigmoid on class ids)."""
    from cnnzoo.data.imagedata import ImageData

    if is_segmenter(model):
        return "segmentation"
    data_task = data.task if isinstance(data, ImageData) else None
    label_rank = train.element_spec[1].shape.rank
    multi_data = data_task == "multilabel"
    if is_multilabel(model):
        if label_rank != 2:
            raise ValueError("The model's head is a sigmoid (multi-label) but the data's labels are class ids; give "
                             "multi-hot targets ([N, classes] of 0/1: from_arrays(x, y_multi_hot), "
                             "from_directory(path, labels_csv=...)) or use a softmax head. "
                             + received("data.task", data_task or "classification"))
        return "multilabel"
    if multi_data:
        raise ValueError("The data is multi-label (several classes per image) but the model's head is a "
                         f"{head_activation(model)}; create it with classifier_activation='sigmoid' (each class "
                         "scored on its own). For single-label data pass class ids instead. "
                         + received("data.task", data_task))
    return "classification"


def task_loss_and_metric(model, opts: dict, *, one_hot: bool = False, class_weight: dict | None = None,
                         task: str | None = None):
    """(loss, metric) for the model's task: classifiers get cross-entropy (or focal) and accuracy, multi-label
    classifiers binary cross-entropy (or binary focal) and the area under the precision-recall curve averaged over
    the classes ("pr_auc", close to mAP), segmenters the per-pixel `SegmentationLoss` (255 ignored;
    `class_weight` {index: weight} weighs its cross-entropy) and mean IoU; `opts["loss"]` may replace the loss."""
    chosen = opts.get("loss", "auto")
    task = task or ("segmentation" if is_segmenter(model) else "multilabel" if is_multilabel(model)
                    else "classification")
    if task == "multilabel":
        metric = keras.metrics.AUC(curve="PR", multi_label=True, name="pr_auc")
        if class_weight is not None:
            raise ValueError("class_weight weighs single-label classes; for multi-label data use loss='focal' (or "
                             "your own weighted binary loss). " + received("class_weight", opts["class_weight"]))
        if chosen == "focal":
            return keras.losses.BinaryFocalCrossentropy(gamma=opts["focal_gamma"],
                                                        label_smoothing=opts["label_smoothing"]), metric
        if isinstance(chosen, str) and chosen != "auto":
            raise ValueError(f"loss={chosen!r} is a segmentation loss and this model is a multi-label classifier. "
                             + received("loss", chosen))
        return (make_loss(model, opts["label_smoothing"]) if chosen == "auto" else chosen), metric
    if task == "segmentation":
        if opts["label_smoothing"]:
            raise ValueError("label_smoothing is for classifiers; a segmenter's masks are class indices. "
                             + received("label_smoothing", opts["label_smoothing"]))
        classes = num_outputs(model)
        metric = keras.metrics.MeanIoU(classes, name="miou", sparse_y_true=True, sparse_y_pred=False,
                                       ignore_class=255)
        if chosen == "focal":
            raise ValueError("loss='focal' is for classifiers; a segmenter's default loss (cross-entropy + Dice) "
                             "already balances small classes. " + received("loss", chosen))
        if isinstance(chosen, str):
            kind = "cross_entropy+dice" if chosen == "auto" else chosen
            weights = None if class_weight is None else [class_weight[i] for i in range(classes)]
            chosen = SegmentationLoss(kind, from_logits=not outputs_probabilities(model), class_weights=weights)
        elif class_weight is not None:
            raise ValueError("`class_weight` for a segmenter weighs the built-in SegmentationLoss; with your own "
                             "loss, weigh the classes inside it. " + received("class_weight", class_weight))
        return chosen, metric
    metric = (keras.metrics.CategoricalAccuracy(name="accuracy") if one_hot
              else keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
    if chosen == "focal":
        if not one_hot:
            raise ValueError("loss='focal' needs one-hot targets. " + received("loss", chosen))
        return keras.losses.CategoricalFocalCrossentropy(gamma=opts["focal_gamma"],
                                                         from_logits=not outputs_probabilities(model),
                                                         label_smoothing=opts["label_smoothing"]), metric
    if isinstance(chosen, str) and chosen != "auto":
        raise ValueError(f"loss={chosen!r} is a segmentation loss and this model is a classifier. "
                         + received("loss", chosen))
    return (make_loss(model, opts["label_smoothing"], one_hot=one_hot) if chosen == "auto" else chosen), metric


class _EpochRecorder(keras.callbacks.Callback):
    """Collects each epoch's logs (with global epoch and stage) and writes the checkpoint."""

    def __init__(self, run, stage_index, offset):
        super().__init__()
        self.run, self.stage_index, self.offset = run, stage_index, offset

    def on_epoch_end(self, epoch, logs=None):
        row = {k: float(v) for k, v in (logs or {}).items()}
        row["learning_rate"] = _current_lr(self.model.optimizer)
        self.run.record(row, epoch=epoch, stage=self.stage_index)
        self.run.checkpoint(self.model, stage=self.stage_index, stage_epochs_done=epoch - self.offset + 1,
                            stage_complete=False)


def _current_lr(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.learning_rate
    return float(keras.ops.convert_to_numpy(rate))


# --------------------------------------------------------------------------------------------------------------
# the run


class _Run:
    """State of one (possibly resumed) multi-stage run: history, checkpointer, stage bookkeeping."""

    def __init__(self, checkpointer, state):
        self.checkpointer = checkpointer
        self.state = state
        self.history = {k: list(v) for k, v in (state or {}).get("history", {}).items()}
        self.optimizer = None

    def record(self, row, *, epoch, stage):
        row = dict(row, epoch=epoch, stage=stage)
        length = len(self.history.get("epoch", []))
        for key in set(self.history) | set(row):
            column = self.history.setdefault(key, [math.nan] * length)
            column.append(row.get(key, math.nan))

    def checkpoint(self, model, **position):
        if self.checkpointer is not None:
            self.checkpointer.save(dict(position, history=self.history), model, self.optimizer)


def _fingerprint(model, data, plans, train_steps, *, augment, seed):
    """What makes a run this run: a checkpoint of another one is refused (see `checkpoints`)."""
    return {"model": model_fingerprint(model), "data": data_fingerprint(data, train_steps),
            "augment": describe(augment), "seed": seed,
            "stages": [{**describe(plan.options), **describe(plan.describe), "name": plan.name, "epochs": plan.epochs}
                       for plan in plans]}


def _run_stages(model, data, plans, *, mixed_precision="auto", strategy=None, checkpoint_dir=None,
                log_dir=None, augment=None, callbacks=None, verbose="auto", steps_per_epoch=None, seed=None,
                result_cls=FitResult, finalize=None):
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError("`callbacks` must be a list of keras callbacks. " + received("callbacks", callbacks))
    train, val, num_classes = _check_data(data, model)
    strategy = get_strategy(strategy)
    policy = resolve_policy(mixed_precision)
    model = mixed_model(model, policy, strategy)
    broadcast_from_chief(model.weights, strategy)
    steps = _steps(train, steps_per_epoch)
    chief = is_chief(strategy)

    checkpointer, state = None, None
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir, _fingerprint(model, data, plans, steps, augment=augment, seed=seed),
                                    enabled=chief)
        state = checkpointer.load_state()
    run = _Run(checkpointer, state)
    scope = strategy.scope if strategy is not None else contextlib.nullcontext

    offset, restored = 0, False
    for index, plan in enumerate(plans):
        opts = plan.options
        done = 0
        if state is not None:
            if index < state["stage"] or (index == state["stage"] and state["stage_complete"]):
                offset += plan.epochs
                continue
            if index == state["stage"]:
                done = state["stage_epochs_done"]
        if plan.prepare is not None:
            plan.prepare(model)
        n_classes = num_classes or num_outputs(model)
        task = task_of(model, data, train)
        train_s, val_s, one_hot = _pipelines(
            train, val, augment=augment, seed=seed, num_classes=n_classes,
            one_hot=bool(opts["label_smoothing"]) or (opts["loss"] == "focal" and task == "classification"),
            shard_by_data=isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy))
        weights = _class_weights(opts["class_weight"], data, train, n_classes)
        total = plan.epochs * steps
        warm = int(round(opts["warmup_epochs"] * steps))
        if warm >= total:
            raise ValueError(f"`warmup_epochs` must be shorter than the stage ({plan.epochs} epochs). "
                             + received("warmup_epochs", opts["warmup_epochs"]))
        schedule_name = opts["schedule"]
        schedule_options = {} if schedule_name == "plateau" else (opts["schedule_options"] or {})
        rate = _schedules.get(schedule_name, learning_rate=opts["learning_rate"], total_steps=total,
                              steps_per_epoch=steps, warmup_steps=warm, **schedule_options)
        with scope():
            optimizer = make_optimizer(
                opts["optimizer"], rate, model=model, weight_decay=opts["weight_decay"],
                momentum=opts["momentum"], nesterov=opts["nesterov"], clipnorm=opts["clipnorm"],
                global_clipnorm=opts["global_clipnorm"], clipvalue=opts["clipvalue"],
                lr_multipliers=plan.multipliers(model) if plan.multipliers else None, ema=opts["ema"],
                accumulate=opts["accumulate"])
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            loss, metric = task_loss_and_metric(model, opts, one_hot=one_hot, task=task,
                                                class_weight=weights if task != "classification" else None)
            model.compile(optimizer=optimizer, loss=loss, metrics=[metric])
            if done:
                optimizer.build(model.trainable_variables)
        if state is not None and not restored:
            # The first stage that still has work continues from the saved weights (and optimizer state).
            checkpointer.restore(state, model, optimizer if done else None)
            restored = True
        run.optimizer = optimizer

        stage_callbacks = list(callbacks or [])
        if opts["ema_validation"]:
            stage_callbacks.insert(0, keras.callbacks.SwapEMAWeights())
        metric_name = {"segmentation": "miou", "multilabel": "pr_auc"}.get(task, "accuracy")
        monitor = opts["monitor"] or (f"val_{metric_name}" if val_s is not None else metric_name)
        if schedule_name == "plateau":
            stage_callbacks.append(_schedules.reduce_on_plateau(monitor=monitor, **_plateau_options(opts)))
        if opts["early_stopping"] is not None:
            stage_callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, patience=opts["early_stopping"], min_delta=opts["min_delta"],
                mode="min" if "loss" in monitor else "max",
                restore_best_weights=opts["restore_best_weights"]))
        if log_dir is not None and chief:
            os.makedirs(log_dir, exist_ok=True)
            stage_callbacks += [keras.callbacks.CSVLogger(os.path.join(log_dir, "training.csv"), append=True),
                                keras.callbacks.TensorBoard(log_dir=os.path.join(log_dir, "tensorboard"),
                                                            write_graph=False)]
        stage_callbacks.append(_EpochRecorder(run, index, offset))

        train_bn = trained_batchnorm_layers(model)
        momentum_ctx = (auto_momentum(model, steps) if opts["bn_momentum"] == "auto"
                        else contextlib.nullcontext())
        if done < plan.epochs:
            with momentum_ctx, multiworker_fit_fix(model, strategy):
                model.fit(train_s, validation_data=val_s, epochs=offset + plan.epochs,
                          initial_epoch=offset + done, callbacks=stage_callbacks, verbose=verbose,
                          steps_per_epoch=steps_per_epoch, shuffle=False,
                          class_weight=weights if task == "classification" else None)
        if train_bn and opts["recalibrate_bn"] in ("auto", True):
            # 200 batches estimate the statistics well; more would only lengthen big runs.
            recalibrate_bn(model, train, layers=train_bn, steps=min(steps, 200))
            broadcast_from_chief([v for layer in train_bn for v in layer.non_trainable_weights], strategy)
        run.checkpoint(model, stage=index, stage_epochs_done=plan.epochs, stage_complete=True)
        offset += plan.epochs

    if state is not None and not restored:
        checkpointer.restore(state, model)  # every stage had finished before this call
    if finalize is not None:
        finalize(model)
    model = float32_model(model)
    return result_cls(model=model, history=run.history)


def _class_weights(spec, data, train, num_classes):
    """{class index: weight} for the stage, or None (see `cnnzoo.train.imbalance`)."""
    if spec is None:
        return None
    from cnnzoo.data.imagedata import ImageData

    if isinstance(data, ImageData):
        if spec == "balanced" and data.sampling == "balanced":
            raise ValueError("The data is already drawn class-balanced (sampling='balanced'); "
                             "class_weight='balanced' on top would correct the imbalance twice. Use one of them. "
                             "Received: class_weight='balanced'")
        return resolve_class_weight(spec, data.class_names, counts=data.class_counts, stream=train)
    return resolve_class_weight(spec, [str(i) for i in range(num_classes)], counts=None, stream=train)


def _plateau_options(opts):
    extra = dict(opts["schedule_options"] or {})
    allowed = {"factor", "patience", "min_delta", "min_lr", "cooldown"}
    return {k: v for k, v in extra.items() if k in allowed}
