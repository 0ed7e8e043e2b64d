"""`finetune`: staged unfreezing with discriminative learning rates, BatchNorm kept in inference mode.

The recipe (fastai's stages, Keras' BatchNorm rule):

1. `Stage("head")`: the backbone is frozen (BatchNorm included, so it runs in inference mode) and the head
   trains at the full rate.
2. `Stage(3, ...)`: the head and the top two backbone groups train; the rate falls by group from the head down
   (`lr_multipliers=(1.0, 0.3, 0.1)`: head 1x, last stage 0.3x, earlier 0.1x). BatchNorm layers stay frozen
   unless `train_bn=True`; a stage that trains BN re-estimates its statistics at the end.

Groups come from `cnnzoo.registry.finetune_groups(model)` ("stem", "stage1".., "head"), never layer indices.

A model whose BatchNorm layers have never seen data (every moving mean 0 and variance 1, as a fresh
`create_model(..., weights=None)`) has no pretrained features to protect: `finetune` then trains it as `fit`
would (every group, BatchNorm trained, one rate per stage, `fit`'s augmentation) and logs that it did
(`from_scratch="auto"`; True or False decides it yourself).

Example:
    >>> result = cnnzoo.finetune("mobilenet_v2", data, stages=[
    ...     cnnzoo.Stage("head", epochs=3, learning_rate=1e-3),
    ...     cnnzoo.Stage(3, epochs=5, learning_rate=3e-4),
    ...     cnnzoo.Stage("all", epochs=5, learning_rate=1e-4, lr_multipliers=(1.0, 0.5, 0.25, 0.1))])
"""
from __future__ import annotations

import dataclasses
import logging
import numbers

import keras
import numpy as np

from cnnzoo._checks import check_choice, check_int, check_positive_finite, received
from cnnzoo.data.imagedata import ImageData
from cnnzoo.introspect import all_layers, batchnorm_layers, num_outputs
from cnnzoo.train._model import replace_head
from cnnzoo.train.fit import RUN_OPTIONS, FitResult, _Plan, _run_stages, check_stage_options

__all__ = ["finetune", "Stage", "FineTuneResult", "default_stages", "DEFAULT_MULTIPLIERS", "untrained_batchnorm"]

log = logging.getLogger("cnnzoo.train")

DEFAULT_MULTIPLIERS = (1.0, 0.3, 0.1)


class Stage:
    """One fine-tuning stage: which groups train, for how long, at what rate.

    Args:
        unfreeze: "head", "all", an int n (the n top groups, the head counting as one: 1 == "head"), or a list
            of group names.
        epochs: int >= 1.
        learning_rate: float, the head's (peak) rate (`lr=` is accepted as an alias).
        **options: `train_bn` (bool, default False) and any per-stage `fit` option: `lr_multipliers`
            (factors from the head downward, the last repeating: default (1.0, 0.3, 0.1); or
            {group: factor}; or None for one rate), `optimizer`, `schedule`, `warmup_epochs`, `weight_decay`,
            `label_smoothing`, `early_stopping`, `monitor`, `clipnorm`, ...

    Example:
        >>> Stage("head", epochs=3, learning_rate=1e-3)
        >>> Stage(3, epochs=5, learning_rate=3e-4, lr_multipliers=(1.0, 0.3, 0.1), train_bn=False)
    """

    def __init__(self, unfreeze="head", epochs: int = 1, learning_rate: float = 1e-3, **options):
        if isinstance(unfreeze, bool) or not (isinstance(unfreeze, (str, numbers.Integral, list, tuple))):
            raise TypeError("`unfreeze` must be 'head', 'all', an int or a list of group names. "
                            + received("unfreeze", unfreeze))
        if isinstance(unfreeze, numbers.Integral):
            check_int("unfreeze", unfreeze, minimum=1)
        if isinstance(unfreeze, (list, tuple)):
            if not unfreeze or not all(isinstance(g, str) for g in unfreeze):
                raise ValueError("`unfreeze` as a list must name at least one group. " + received("unfreeze",
                                                                                                   unfreeze))
            unfreeze = list(unfreeze)
        if "lr" in options:  # the spelling, kept as an alias of `learning_rate`
            learning_rate = options.pop("lr")
        self.unfreeze = unfreeze
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.learning_rate = check_positive_finite("learning_rate", learning_rate)
        self.train_bn = bool(options.pop("train_bn", False))
        options.setdefault("lr_multipliers", DEFAULT_MULTIPLIERS)
        _check_multipliers(options["lr_multipliers"])
        check_stage_options(dict(options, learning_rate=learning_rate))
        self.options = options

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return (f"Stage(unfreeze={self.unfreeze!r}, epochs={self.epochs}, learning_rate={self.learning_rate}"
                f", train_bn={self.train_bn}{extra})")

    def __eq__(self, other):
        return isinstance(other, Stage) and repr(self) == repr(other)


def _check_multipliers(value):
    if value is None:
        return
    if isinstance(value, dict):
        for key, factor in value.items():
            check_positive_finite(f"lr_multipliers[{key!r}]", factor)
        return
    if isinstance(value, (list, tuple)) and value:
        for i, factor in enumerate(value):
            check_positive_finite(f"lr_multipliers[{i}]", factor)
        return
    raise TypeError("`lr_multipliers` must be a tuple of factors from the head down, a {group: factor} dict, "
                    "or None. " + received("lr_multipliers", value))


def default_stages(head_epochs: int = 3, tune_epochs: int = 5, learning_rate: float = 1e-3) -> list[Stage]:
    """The default recipe: train the head, then the head and the top two backbone groups at lower rates.

    Example:
        >>> default_stages(2, 4)
    """
    check_int("head_epochs", head_epochs, minimum=1)
    check_int("tune_epochs", tune_epochs, minimum=1)
    return [Stage("head", epochs=head_epochs, learning_rate=learning_rate),
            Stage(3, epochs=tune_epochs, learning_rate=learning_rate / 3.0,
                  warmup_epochs=min(1.0, 0.2 * tune_epochs))]


@dataclasses.dataclass
class FineTuneResult(FitResult):
    """What `finetune` returns: `.model` (float32), `.history` (per epoch, with a "stage" column) and
    `.stages` (per stage: the groups trained and their learning-rate factors) and `.from_scratch` (True when the
    model was trained as from scratch, see `untrained_batchnorm`)."""

    stages: list = dataclasses.field(default_factory=list)
    from_scratch: bool = False


def untrained_batchnorm(model) -> bool:
    """True when `model` has BatchNorm layers and none has seen data: every moving mean is exactly 0 and every
    moving variance exactly 1, their initial values (a model created without weights, never trained).

    Example:
        >>> untrained_batchnorm(cnnzoo.create_model("mobilenet_v2_035", weights=None))   # doctest: +SKIP
        True
    """
    layers = batchnorm_layers(model)
    return bool(layers) and all(
        np.all(keras.ops.convert_to_numpy(layer.moving_mean) == 0.0)
        and np.all(keras.ops.convert_to_numpy(layer.moving_variance) == 1.0) for layer in layers)


def _selected_groups(stage: Stage, names: list[str]) -> list[str]:
    """Group names the stage trains, ordered from the head down."""
    top_down = list(reversed(names))
    if stage.unfreeze == "head":   # a task model's new neck trains with its head
        chosen = ["head"] + (["neck"] if "neck" in names else [])
    elif stage.unfreeze == "all":
        chosen = top_down
    elif isinstance(stage.unfreeze, str):
        raise ValueError(f"Unknown `unfreeze` value; use 'head', 'all', an int or a list of {names}. "
                         + received("unfreeze", stage.unfreeze))
    elif isinstance(stage.unfreeze, int):
        if stage.unfreeze > len(names):
            raise ValueError(f"`unfreeze` asks for {stage.unfreeze} top groups; the model has {len(names)} "
                             f"({names}). " + received("unfreeze", stage.unfreeze))
        chosen = top_down[:stage.unfreeze]
    else:
        unknown = [g for g in stage.unfreeze if g not in names]
        if unknown:
            raise ValueError(f"`unfreeze` names unknown group(s) {unknown}; the model's groups are {names}. "
                             + received("unfreeze", stage.unfreeze))
        chosen = [g for g in top_down if g in stage.unfreeze]
    if "head" not in names and "head" in chosen:
        raise ValueError(f"The model's groups {names} have no 'head'. " + received("unfreeze", stage.unfreeze))
    return chosen


def _group_factors(stage: Stage, chosen: list[str]) -> dict[str, float]:
    spec = stage.options["lr_multipliers"]
    if spec is None:
        return {g: 1.0 for g in chosen}
    if isinstance(spec, dict):
        unknown = [g for g in spec if g not in chosen]
        if unknown:
            raise ValueError(f"`lr_multipliers` names group(s) {unknown} that this stage does not train "
                             f"({chosen}). " + received("lr_multipliers", spec))
        return {g: float(spec.get(g, 1.0)) for g in chosen}
    return {g: float(spec[min(depth, len(spec) - 1)]) for depth, g in enumerate(chosen)}


def _groups_of(model, groups):
    if groups is None:
        from cnnzoo.models import finetune_groups  # the zoo: the registry with every family registered

        try:
            groups = finetune_groups(model)
        except (KeyError, ValueError, AttributeError) as error:
            raise ValueError(f"cnnzoo cannot tell this model's fine-tuning groups ({error}); pass "
                             "groups={name: [layers]} (ordered input -> output, with a 'head'). "
                             + received("model", model.name)) from None
    if not isinstance(groups, dict) or not groups:
        raise TypeError("`groups` must be a non-empty dict of group name -> list of layers. "
                        + received("groups", groups))
    resolved = {}
    by_name = {layer.name: layer for layer in all_layers(model)}
    for name, layers in groups.items():
        resolved[name] = [by_name[layer] if isinstance(layer, str) else layer for layer in layers]
    return resolved


def _variables_of(layers) -> list:
    seen, out = set(), []
    for layer in layers:
        for variable in layer.trainable_weights:  # after the stage's flags are set: frozen BN is left out
            if id(variable) not in seen:
                seen.add(id(variable))
                out.append(variable)
    return out


def finetune(model_or_name, data, *, stages=None, augment="auto", mixed_precision="auto", strategy=None,
             checkpoint_dir=None, head: str = "keep", groups=None, weights="imagenet", seed: int | None = None,
             from_scratch="auto", **train_kwargs) -> FineTuneResult:
    """Fine-tune a pretrained model in stages (default: head only, then the top groups at lower rates).

    Args:
        model_or_name: keras.Model, or a registered model name (created for `data` with `weights`).
        data: ImageData.
        stages: list of `Stage`, or None for `default_stages()`.
        augment: augmentation policy for the train stream ("standard", "light", "none", a keras layer...);
            "auto": "standard", or `fit`'s default (none) when training as from scratch.
        mixed_precision / strategy / checkpoint_dir: as in `fit` (a killed run resumes at its last epoch).
        head: "keep" (the head must have data.num_classes outputs) or "new" (a fresh classifier).
        groups: {group name: [layers or layer names]} for models the registry does not know.
        weights: weights for a model given by name ("imagenet", a file path, or None).
        from_scratch: "auto" (when `untrained_batchnorm(model)`: every stage trains all groups, BatchNorm
            included, at one rate, as `fit` would; logged), True (always so) or False (the recipe, always).
        **train_kwargs: run options (`log_dir`, `callbacks`, `verbose`, `steps_per_epoch`) and default
            per-stage options (`optimizer`, `label_smoothing`, ...) that a Stage's own options override.

    Returns:
        FineTuneResult(model, history, stages).

    Example:
        >>> result = cnnzoo.finetune(model, data, stages=[cnnzoo.Stage("head", epochs=2),
        ...                                               cnnzoo.Stage(3, epochs=4, learning_rate=3e-4)])
        >>> cnnzoo.evaluate(result.model, data).accuracy
    """
    check_choice("head", head, ("keep", "new"))
    check_choice("from_scratch", from_scratch, ("auto", True, False))
    if stages is None:
        stages = default_stages()
    if not isinstance(stages, (list, tuple)) or not stages or not all(isinstance(s, Stage) for s in stages):
        raise TypeError("`stages` must be a non-empty list of cnnzoo.Stage. " + received("stages", stages))
    run_kwargs = {k: train_kwargs.pop(k) for k in list(train_kwargs) if k in RUN_OPTIONS}
    stage_defaults = dict(train_kwargs)
    check_stage_options(stage_defaults)
    if isinstance(model_or_name, str):
        import cnnzoo

        if not isinstance(data, ImageData):
            raise TypeError("`data` must be an ImageData. " + received("data", type(data).__name__))
        model = cnnzoo.create_model(model_or_name, num_classes=data.num_classes,
                                    input_shape=(*data.image_size, 3), weights=weights)
    elif isinstance(model_or_name, keras.Model):
        model = model_or_name
    else:
        raise TypeError("`model_or_name` must be a keras.Model or a registered model name. "
                        + received("model_or_name", model_or_name))
    if head == "new":
        if not isinstance(data, ImageData):
            raise TypeError("head='new' needs an ImageData. " + received("data", type(data).__name__))
        model = replace_head(model, data.num_classes, seed=seed)
    elif isinstance(data, ImageData) and num_outputs(model) != data.num_classes:
        raise ValueError(f"The data has {data.num_classes} classes but the model's head has "
                         f"{num_outputs(model)} outputs; pass head='new' to train a fresh classifier. "
                         f"Received: data.num_classes={data.num_classes}")

    # Groups by layer name: the model may be rebuilt (mixed precision, strategy) with new layer objects.
    groups = {name: [layer.name for layer in layers] for name, layers in _groups_of(model, groups).items()}
    group_names = list(groups)
    scratch = _decide_scratch(model, from_scratch, augment)
    if augment == "auto":
        augment = None if scratch else "standard"   # None: what `fit` uses by default
    summaries, plans = [], []
    for stage in stages:
        chosen = _selected_groups(stage, group_names)
        factors = _group_factors(stage, chosen)
        train_bn = stage.train_bn
        if scratch:   # nothing pretrained to protect: every group, BN trained, one rate
            chosen, train_bn = list(reversed(group_names)), True
            factors = {g: 1.0 for g in chosen}
        options = dict(stage_defaults, **stage.options, learning_rate=stage.learning_rate)
        options.pop("lr_multipliers")
        options = check_stage_options(options)
        summaries.append({"unfreeze": stage.unfreeze, "groups": chosen, "lr_multipliers": factors,
                          "epochs": stage.epochs, "learning_rate": stage.learning_rate, "train_bn": train_bn,
                          "from_scratch": scratch})
        plans.append(_Plan(epochs=stage.epochs, options=options, name=f"stage{len(plans)}",
                           prepare=_preparer(groups, chosen, train_bn),
                           multipliers=_multiplier_fn(groups, factors),
                           describe={"groups": chosen, "train_bn": train_bn, "lr_multipliers": factors}))

    original = {id(layer): layer.trainable for layer in all_layers(model)}
    original_names = {layer.name: layer.trainable for layer in all_layers(model)}

    def restore_flags(trained):
        for layer in all_layers(trained):
            layer.trainable = original.get(id(layer), original_names.get(layer.name, True))

    result = _run_stages(model, data, plans, mixed_precision=mixed_precision, strategy=strategy,
                         checkpoint_dir=checkpoint_dir, augment=augment, seed=seed, result_cls=FineTuneResult,
                         finalize=restore_flags, **run_kwargs)
    result.stages = summaries
    result.from_scratch = scratch
    return result


def _decide_scratch(model, from_scratch, augment) -> bool:
    """Whether to train as from scratch (see `finetune`'s `from_scratch`), logged when it is so."""
    if from_scratch != "auto" and not from_scratch:
        return False
    shown = "none (fit's default)" if augment == "auto" else repr(augment)
    what = f"every group trains, BatchNorm included, at one learning rate per stage, with augmentation {shown}"
    if from_scratch != "auto":
        log.info("finetune(from_scratch=True): %s.", what)
        return True
    if not untrained_batchnorm(model):
        return False
    log.warning("finetune: every BatchNorm layer of %r still has its initial statistics (moving mean 0, variance "
                "1): the model was never trained, so there are no pretrained features to keep frozen. Training it "
                "as from scratch: %s. Pass from_scratch=False to keep the fine-tuning recipe.", model.name, what)
    return True


def _preparer(groups_spec, chosen, train_bn):
    """Set the trainable flags of a (possibly rebuilt) model for a stage: only `chosen` groups train, their BN
    layers only with `train_bn`."""

    def prepare(model):
        groups = _groups_of(model, groups_spec)
        model.trainable = True
        for layer in all_layers(model):
            layer.trainable = False
        bn = set(id(layer) for layer in batchnorm_layers(model))
        for name in chosen:
            for layer in groups[name]:
                for sub in [layer, *all_layers(layer)]:
                    sub.trainable = train_bn or id(sub) not in bn

    return prepare


def _multiplier_fn(groups_spec, factors):
    def multipliers(model):
        groups = _groups_of(model, groups_spec)
        out = {}
        for name, factor in factors.items():
            if factor != 1.0:
                for variable in _variables_of(groups[name]):
                    out[variable.path] = factor
        return out

    return multipliers
