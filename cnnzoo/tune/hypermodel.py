"""`CnnZooHyperModel`: a KerasTuner HyperModel over the zoo and the training recipe.

`build(hp)` picks the architecture (`model`), its width (`alpha` for MobileNetV2, `phi` for EfficientNet), the
head's `dropout` and the optimizer settings (`optimizer`, log-uniform `learning_rate` and `weight_decay`,
`label_smoothing`). `fit(hp, model, data, epochs=...)` tunes `batch_size`, the augmentation policy and its
strength (`augment`, `augment_strength`) and, for a pretrained backbone, how many top groups to unfreeze
(`unfreeze`), then trains with `cnnzoo.train.fit` (or `cnnzoo.finetune` for pretrained backbones) with early
stopping. The space and its `space=` overrides are described in `cnnzoo.tune.space`.

Example:
    >>> hypermodel = CnnZooHyperModel.from_data(data, models=("resnet18", "mobilenet_v2"))
    >>> tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=8)
    >>> tuner.search(data, epochs=5)
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_int, received
from cnnzoo.data.imagedata import ImageData
from cnnzoo.tune.space import (BUILD_PARAMS, CONDITIONS, DEFAULT_MODELS, EFFICIENTNET, FIT_PARAMS,
                               resolve_space)

__all__ = ["CnnZooHyperModel", "scaled_policy"]

# The history columns that are bookkeeping, not metrics, and must not reach the oracle.
_NOT_METRICS = ("epoch", "stage", "learning_rate")
_LOGGED = ("loss", "accuracy", "val_loss", "val_accuracy")
# Magnitude caps when `augment_strength` scales a policy: (step, option) -> largest valid value.
_CAPS = {("rotation", "factor"): 0.5, ("zoom", "factor"): 0.9, ("translation", "factor"): 0.5,
         ("color_jitter", "brightness"): 1.0, ("color_jitter", "contrast"): 1.0,
         ("color_jitter", "saturation"): 1.0, ("color_jitter", "hue"): 0.5, ("erasing", "probability"): 1.0,
         ("rand_augment", "factor"): 1.0}


def scaled_policy(policy: str, strength: float) -> list:
    """The steps of a named augmentation policy with every magnitude multiplied by `strength` (capped).

    Example:
        >>> scaled_policy("light", 2.0)[1]
        ('rotation', {'factor': 0.06})
    """
    from cnnzoo.data.augment import policy_steps

    steps = []
    for name, options in policy_steps(policy):
        scaled = {}
        for key, value in options.items():
            cap = _CAPS.get((name, key))
            if cap is not None and isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = min(float(value) * strength, cap)
            scaled[key] = value
        steps.append((name, scaled))
    return steps


def _check_models(models) -> tuple:
    from cnnzoo import models as registry  # the zoo: the registry with every family registered

    if isinstance(models, str):
        models = (models,)
    if not isinstance(models, (list, tuple)) or not models:
        raise ValueError(f"`models` must be a non-empty list of model names. {received('models', models)}")
    known = set(registry.list_models()) | {EFFICIENTNET}
    for name in models:
        if name not in known:
            registry.get_entry(name)  # raises with the closest registered names
    return tuple(dict.fromkeys(models))


def _check_input_shape(input_shape) -> tuple:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"`input_shape` must be (height, width, channels). {received('input_shape', input_shape)}")
    return shape


class CnnZooHyperModel(keras_tuner.HyperModel):
    """A KerasTuner HyperModel whose space is the zoo (architecture, width, unfrozen depth) and the recipe.

    Args:
        num_classes: int, the classifier width.
        input_shape: (height, width, channels) of the training images.
        models: registered model names to choose from; "efficientnet" means `cnnzoo.models.efficientnet(phi)`
            with `phi` tuned, "mobilenet_v2" has its width `alpha` tuned.
        space: dict overriding any hyperparameter (see `cnnzoo.tune.space`): a value fixes it, a list gives
            the choices, a (low, high) tuple a range.
        weights: None (train from scratch), "imagenet" or a weights file: a pretrained backbone, for which
            `unfreeze` (how many top fine-tuning groups train, the head counting as one) is tuned.
        objective: the metric early stopping watches (the tuner's objective): "val_accuracy" or "val_loss".
        early_stopping: int patience in epochs inside each trial, or None.
        seed: int or None; fixes weight initialisation and augmentation, so a trial is reproducible.

    Example:
        >>> hypermodel = CnnZooHyperModel(10, (64, 64, 3), models=("resnet18",), space={"batch_size": 32})
        >>> tuner = keras_tuner.Hyperband(hypermodel, objective="val_accuracy", max_epochs=9)
        >>> tuner.search(data, epochs=9)
    """

    def __init__(self, num_classes: int, input_shape=(224, 224, 3), *, models=DEFAULT_MODELS, space=None,
                 weights=None, objective="val_accuracy", early_stopping: int | None = 3, seed: int | None = 0,
                 name: str | None = "cnnzoo", tunable: bool = True):
        super().__init__(name=name, tunable=tunable)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.input_shape = _check_input_shape(input_shape)
        if weights is not None and not isinstance(weights, str):
            raise TypeError(f"`weights` must be None, 'imagenet' or a file path. {received('weights', weights)}")
        self.weights = weights
        self.models = _check_models(models)
        self.specs = resolve_space(space, models=self.models, pretrained=weights is not None)
        for name in [n for n in self.specs if self._condition(n) is False]:
            if space and name in space:
                parent, triggers = CONDITIONS[name]
                raise ValueError(f"`space[{name!r}]` applies only when {parent} is one of {list(triggers)}, which "
                                 f"this search never picks. {received('space', space)}")
            del self.specs[name]
        if weights is not None and EFFICIENTNET in self.specs["model"].values:
            raise ValueError("'efficientnet' (any phi) has no pretrained weights; use efficientnet_b0 ... b7. "
                             f"{received('weights', weights)}")
        self.objective = getattr(objective, "name", objective)
        if not isinstance(self.objective, str):
            raise TypeError(f"`objective` must be a metric name or a keras_tuner.Objective. "
                            f"{received('objective', objective)}")
        if early_stopping is not None:
            check_int("early_stopping", early_stopping, minimum=0)
        self.early_stopping = early_stopping
        if seed is not None:
            check_int("seed", seed)
        self.seed = seed
        self._image_counts: dict[int, int] = {}

    @classmethod
    def from_data(cls, data, **kwargs) -> "CnnZooHyperModel":
        """A hypermodel sized for an `ImageData` (its classes and image size).

        Example:
            >>> hypermodel = CnnZooHyperModel.from_data(data, models=("resnet18",))
        """
        if not isinstance(data, ImageData):
            raise TypeError(f"`data` must be an ImageData. {received('data', type(data).__name__)}")
        return cls(data.num_classes, (*data.image_size, 3), **kwargs)

    # ---------------------------------------------------------------------------------------------- the space

    def _condition(self, name: str):
        """(parent, values) that activate `name`; None when always active; False when it can never be."""
        if name not in CONDITIONS:
            return None
        parent, triggers = CONDITIONS[name]
        possible = self.specs[parent].candidates()
        if possible is None:
            return parent, triggers
        active = [v for v in possible if v in triggers]
        if not active:
            return False
        return None if len(active) == len(possible) else (parent, active)

    def _value(self, hp, name: str):
        """Declare `name` on `hp` (if it belongs to the space) and return its value (None when inactive)."""
        if name not in self.specs:
            return None
        condition = self._condition(name)
        if condition is False:
            return None
        if condition is None:
            return self.specs[name].declare(hp, name)
        return self.specs[name].declare(hp, name, *condition)

    def declare_hyperparameters(self, hp):
        """Declare the whole space, fit-time hyperparameters included, before the first trial."""
        for name in self.specs:
            self._value(hp, name)

    def values(self, hp) -> dict:
        """Every hyperparameter of this space on `hp` (declaring them), None for inactive ones."""
        return {name: self._value(hp, name) for name in (*BUILD_PARAMS, *FIT_PARAMS)}

    # ---------------------------------------------------------------------------------------------- build

    def build(self, hp) -> keras.Model:
        """The model for `hp`, compiled for evaluation (sparse cross-entropy, accuracy).

        Training (`fit`) recompiles with the full recipe: optimizer, weight decay, label smoothing.
        """
        import cnnzoo
        from cnnzoo.train import make_loss, make_optimizer

        v = self.values(hp)
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        common = dict(num_classes=self.num_classes, input_shape=self.input_shape, dropout=v["dropout"],
                      weights=self.weights)
        if v["model"] == EFFICIENTNET:
            model = cnnzoo.models.efficientnet(v["phi"], **common)
        else:
            model = cnnzoo.create_model(v["model"], **common, alpha=v["alpha"])
        optimizer = make_optimizer(v["optimizer"], v["learning_rate"], model=model,
                                   weight_decay="default" if v["weight_decay"] is None else v["weight_decay"])
        model.compile(optimizer=optimizer, loss=make_loss(model),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        return model

    # ---------------------------------------------------------------------------------------------- fit

    def fit(self, hp, model, *args, epochs: int = 1, initial_epoch: int = 0, callbacks=None, verbose="auto",
            validation_data=None, steps_per_epoch: int | None = None, **kwargs):
        """Train `model` for a trial; returns a `keras.callbacks.History` of the per-epoch metrics.

        Args:
            hp: the trial's `keras_tuner.HyperParameters`.
            model: the model `build(hp)` returned.
            *args: an `ImageData` (or a tf.data.Dataset of (images, labels) with `validation_data=`).
            epochs, initial_epoch: as in `keras.Model.fit` (Hyperband continues a trial from initial_epoch).
            callbacks, verbose, steps_per_epoch: passed to training.
        """
        data = self._as_image_data(args, kwargs, validation_data)
        check_int("epochs", epochs, minimum=1)
        run_epochs = max(1, int(epochs) - int(initial_epoch or 0))
        result = self._train(hp, model, data, epochs=run_epochs, callbacks=callbacks, verbose=verbose,
                             steps_per_epoch=steps_per_epoch, final=False)
        history = keras.callbacks.History()
        history.history = {k: list(v) for k, v in result.history.items() if k not in _NOT_METRICS}
        return history

    def build_and_train(self, hp, data, *, epochs: int, callbacks=None, verbose="auto"):
        """Build the model for `hp` and train it on `data` with the full recipe (BatchNorm statistics
        re-estimated at the end): how `search(refit=True)` trains the best configuration.

        Returns:
            `cnnzoo.train.FitResult` (`.model`, `.history`).

        Example:
            >>> result = hypermodel.build_and_train(tuner.get_best_hyperparameters()[0], data, epochs=20)
        """
        data = self._as_image_data((data,), {}, None)
        check_int("epochs", epochs, minimum=1)
        model = self.build(hp)
        return self._train(hp, model, data, epochs=epochs, callbacks=callbacks, verbose=verbose,
                           steps_per_epoch=None, final=True)

    def _train(self, hp, model, data, *, epochs, callbacks, verbose, steps_per_epoch, final):
        import cnnzoo
        from cnnzoo.data import augmentation

        v = self.values(hp)
        data = self._rebatch(data, v["batch_size"])
        augment = None
        if v["augment"] not in (None, "none"):
            strength = 1.0 if v["augment_strength"] is None else float(v["augment_strength"])
            policy = v["augment"] if strength == 1.0 else scaled_policy(v["augment"], strength)
            augment = augmentation(policy, seed=self.seed)
        options = dict(optimizer=v["optimizer"], label_smoothing=v["label_smoothing"],
                       weight_decay="default" if v["weight_decay"] is None else v["weight_decay"],
                       early_stopping=self.early_stopping,
                       monitor=self.objective if self.objective in _LOGGED else None,
                       # A trial's score and checkpoint come from epoch ends, before any re-estimation: skip it.
                       recalibrate_bn="auto" if final else False,
                       class_weight=None if v["class_weight"] in (None, "none") else v["class_weight"],
                       loss=v["loss"] or "auto", ema=v["ema"] or None,
                       # early stopping would restore raw weights over the EMA ones (fit refuses the pair)
                       restore_best_weights=not v["ema"])
        run = dict(callbacks=list(callbacks or []), verbose=verbose, steps_per_epoch=steps_per_epoch,
                   seed=self.seed)
        if self.weights is None:
            return cnnzoo.train.fit(model, data, epochs=epochs, learning_rate=v["learning_rate"], augment=augment,
                                    **options, **run)
        from cnnzoo.models import finetune_groups

        groups = len(finetune_groups(model))
        stage = cnnzoo.Stage(min(int(v["unfreeze"]), groups), epochs=epochs, learning_rate=v["learning_rate"],
                             **options)
        return cnnzoo.finetune(model, data, stages=[stage], augment=augment, **run)

    # ---------------------------------------------------------------------------------------------- data

    def _as_image_data(self, args, kwargs, validation_data) -> ImageData:
        kwargs = dict(kwargs)
        data = args[0] if args else kwargs.pop("x", kwargs.pop("data", None))
        extra = list(args[1:]) + sorted(kwargs)
        if extra:
            raise TypeError(f"CnnZooHyperModel.fit takes the data (an ImageData) and epochs, callbacks, verbose, "
                            f"steps_per_epoch; unexpected: {extra}. Received: {extra[0]!r}")
        if isinstance(data, tf.data.Dataset):
            data = ImageData(train=data, val=validation_data, class_names=[str(i) for i in range(self.num_classes)],
                             image_size=self.input_shape[:2])
        elif not isinstance(data, ImageData):
            raise TypeError("Pass the training data as an ImageData (or a tf.data.Dataset of (images, labels) "
                            f"with validation_data=). {received('data', type(data).__name__)}")
        elif validation_data is not None:
            raise ValueError("An ImageData brings its own validation stream (.val); do not pass validation_data. "
                             f"{received('validation_data', validation_data)}")
        if data.num_classes != self.num_classes:
            raise ValueError(f"The data has {data.num_classes} classes but the hypermodel was built for "
                             f"{self.num_classes}. Received: data.num_classes={data.num_classes}")
        return data

    def _rebatch(self, data: ImageData, batch_size) -> ImageData:
        """`data` with its train stream re-batched to `batch_size` (the epoch length stays known)."""
        if batch_size is None or batch_size == data.batch_size:
            return data
        train = data.train.unbatch().batch(int(batch_size))
        if data.train.cardinality() != tf.data.INFINITE_CARDINALITY:
            key = id(data.train)
            if key not in self._image_counts:
                # One pass over the labels, once per dataset: every later trial knows its epoch length.
                self._image_counts[key] = int(data.train.reduce(
                    np.int64(0), lambda n, batch: n + tf.cast(tf.shape(batch[1])[0], tf.int64)))
            steps = math.ceil(self._image_counts[key] / int(batch_size))
            train = train.apply(tf.data.experimental.assert_cardinality(steps))
        return dataclasses.replace(data, train=train.prefetch(tf.data.AUTOTUNE), batch_size=int(batch_size))

    def __repr__(self):
        space = ", ".join(f"{k}={s.kind}" for k, s in self.specs.items())
        return (f"CnnZooHyperModel(num_classes={self.num_classes}, input_shape={self.input_shape}, "
                f"weights={self.weights!r}, space=[{space}])")

