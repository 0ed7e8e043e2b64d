"""One registry for the zoo: `register_model`, `create_model`, `list_models`, `model_info`, `finetune_groups`.

The registry holds entries and looks them up; it imports no family. The families register themselves when
`cnnzoo.models` is imported, which `cnnzoo.create_model`, `cnnzoo.list_models` and `cnnzoo.registry` do first.

Example:
    >>> cnnzoo.list_models("resnet*")[:3]
    ['resnet18', 'resnet34', 'resnet50']
    >>> model = cnnzoo.create_model("mobilenet_v2_035", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import numbers
import re
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import keras

from cnnzoo._checks import check_choice, check_fraction, check_int, received
from cnnzoo.layers.pooling import GLOBAL_POOLINGS
from cnnzoo.layers.preprocessing import Preprocessing
from cnnzoo.weights import ImageNetWeights

# `pooling=` names every head understands; the global poolings of `cnnzoo.layers.pooling` come on top.
BUILTIN_POOLINGS = ("avg", "max", None)
# Options that only add Dropout layers (stochastic depth), whatever the family calls them.
STOCHASTIC_DEPTH_OPTIONS = ("drop_path_rate", "drop_connect_rate")
# The package whose import registers the zoo's families.
ZOO_PACKAGE = "cnnzoo.models"
# Level i of a backbone has stride 2 ** (i + 1): C1 (stride 2) ... C5 (stride 32), timm's `out_indices` numbering.
FEATURE_LEVELS = 5
DEFAULT_OUT_INDICES = (1, 2, 3, 4)
# Tap strides are read at this input size: large enough that valid-padding stems (Inception, Xception, NASNet)
# still round to the right power of two at stride 32.
_PROBE_SIZE = 256


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one name: how to build it, and the metadata every other module uses."""

    name: str
    family: str
    builder: Callable  # builder(x, *, include_top, num_classes, pooling, dropout, classifier_activation, **kw)
    default_input_size: int
    paper: str
    preprocessing: dict  # Preprocessing layer config the model (and its ImageNet weights, if any) expects
    group_of: Callable[[str], str | None]  # layer name -> fine-tuning group ("stem", "stage1", ..., "head")
    imagenet: "ImageNetWeights | None" = None  # keras.applications' file and the preprocessing it expects
    defaults: dict = field(default_factory=dict)
    fixed: tuple = ()  # options of `defaults` the name fixes (mobilenet_v2_035's alpha): no override may change them
    fixed_size_top: bool = False  # include_top needs a known input size (VGG's flattening head)
    min_input_size: int = 32  # the smallest height/width the architecture takes (valid-padding stems need more)
    # Regex (fullmatch) of the layers that may be a feature level's tap; each level taps the LAST of them (model
    # order) at its resolution: the stage output before the next downsampling, after its activation.
    feature_taps: str = ""


@dataclass(frozen=True)
class FeatureLevel:
    """One level of a features model: `index` i has stride `reduction` = 2 ** (i + 1) and name "C{i + 1}"."""

    index: int
    name: str
    channels: int
    reduction: int
    layer: str


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    params: int
    macs: int
    default_input_size: int
    paper: str


_REGISTRY: "OrderedDict[str, ModelEntry]" = OrderedDict()


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry; registering a name twice warns and keeps the newer entry."""
    if entry.imagenet is not None and not isinstance(entry.imagenet, ImageNetWeights):
        raise TypeError(f"`imagenet` must be a cnnzoo.weights.ImageNetWeights. {received('imagenet', entry.imagenet)}")
    if entry.name in _REGISTRY:
        warnings.warn(f"Model {entry.name!r} was registered twice; the later registration wins.", stacklevel=2)
    _REGISTRY[entry.name] = entry
    return entry


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _zoo_loaded() -> bool:
    return ZOO_PACKAGE in sys.modules


def _check_zoo_loaded(what: str) -> None:
    """A lookup in a registry whose families were never imported would miss every zoo name: say so."""
    if not _zoo_loaded():
        raise RuntimeError(f"cnnzoo.registry.{what} needs the zoo's families, which register when {ZOO_PACKAGE} "
                           f"is imported: call {ZOO_PACKAGE}.{what} (or cnnzoo.{what}), or `import {ZOO_PACKAGE}` "
                           "first.")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch `pattern`, in natural order (resnet18 before resnet101)."""
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string. {received('pattern', pattern)}")
    _check_zoo_loaded("list_models")
    return sorted((n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)


def get_entry(name) -> ModelEntry:
    """The registry entry for `name` (an entry passes through, for builders of unregistered variants)."""
    if isinstance(name, ModelEntry):
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        _check_zoo_loaded("get_entry")
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Closest registered names: {', '.join(close)}." if close else \
            " See cnnzoo.list_models() for every name."
        raise ValueError(f"Unknown model name.{hint} {received('name', name)}")
    return _REGISTRY[name]


def _is_size(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _check_input_shape(input_shape, entry: ModelEntry, include_top: bool) -> tuple:
    if input_shape is None:
        return (entry.default_input_size, entry.default_input_size, 3)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(d is None or _is_size(d) for d in shape):
        raise ValueError("`input_shape` must be (height, width, channels) with positive ints (height/width may be "
                         f"None). {received('input_shape', input_shape)}")
    shape = tuple(None if d is None else int(d) for d in shape)
    if shape[2] is None:
        raise ValueError(f"The number of channels must be known. {received('input_shape', input_shape)}")
    if any(d is not None and d < entry.min_input_size for d in shape[:2]):
        raise ValueError(f"Height and width of {entry.name!r} must be at least {entry.min_input_size} pixels. "
                         f"{received('input_shape', input_shape)}")
    if include_top and entry.fixed_size_top and None in shape[:2]:
        raise ValueError(f"{entry.name!r} with include_top=True flattens its features, so height and width must be "
                         f"known; use include_top=False for any-size input. {received('input_shape', input_shape)}")
    return shape


def pooling_choices() -> tuple:
    """Every accepted `pooling=`: "avg", "max", None, plus the global poolings of `cnnzoo.layers.pooling`."""
    return BUILTIN_POOLINGS + tuple(GLOBAL_POOLINGS)


def _check_head_args(*, num_classes, include_top, pooling, dropout, classifier_activation):
    check_choice("include_top", include_top, (True, False))
    check_choice("pooling", pooling, pooling_choices())
    if include_top:
        check_int("num_classes", num_classes, minimum=1)
        if pooling is None:
            raise ValueError("A classifier needs pooled features: with include_top=True `pooling` cannot be None. "
                             "Received: pooling=None")
        if num_classes == 1 and classifier_activation == "softmax":
            raise ValueError("A softmax over one class is always 1.0: use num_classes=2, or "
                             "classifier_activation='sigmoid' (or None) for one binary output. "
                             f"{received('num_classes', num_classes)}")
    if dropout is not None:
        check_fraction("dropout", dropout)
    if classifier_activation is not None and not (isinstance(classifier_activation, str) or
                                                  callable(classifier_activation)):
        raise TypeError(f"`classifier_activation` must be a string, a callable or None. "
                        f"{received('classifier_activation', classifier_activation)}")


def _check_overrides(entry: ModelEntry, overrides: dict) -> None:
    params = inspect.signature(entry.builder).parameters
    allowed = [p for p in params if p not in ("x", "spec", "include_top", "num_classes", "pooling", "dropout",
                                              "classifier_activation")]
    for key, value in overrides.items():
        if key not in allowed:
            raise TypeError(f"{entry.name!r} has no option {key!r} (options: {', '.join(allowed) or 'none'}). "
                            f"{received(key, value)}")
        if key in entry.fixed and value != entry.defaults[key]:
            general = [n for n, e in _REGISTRY.items() if e.family == entry.family and key not in e.fixed]
            hint = (f"use {general[0]!r} with {key}={value!r}" if general else
                    f"pick the variant you want from cnnzoo.list_models({entry.family + '*'!r})")
            raise ValueError(f"{entry.name!r} fixes {key}={entry.defaults[key]!r} (it is what the name means), so "
                             f"another {key} would build a model under a wrong name; {hint}. {received(key, value)}")


def _check_channels(channels: int, preprocessing, entry: ModelEntry, input_shape) -> None:
    if preprocessing is None or preprocessing.supports_channels(channels):
        return
    constants = len(preprocessing.channel_constants())
    raise ValueError(f"The preprocessing of {entry.name!r} (mode {preprocessing.mode!r}) normalizes each of "
                     f"{constants} channels with its own constants, so the input needs 1 or {constants} channels, "
                     f"not {channels}; pass preprocessing=None (and normalize the input yourself) or a "
                     f"cnnzoo.layers.Preprocessing with {channels} means and stds. "
                     f"{received('input_shape', input_shape)}")


def create_model(name: str, *, num_classes: int = 1000, input_shape=None, include_top: bool = True,
                 pooling: str | None = "avg", dropout: float | None = None, classifier_activation="softmax",
                 weights: str | None = None, preprocessing="default", features_only: bool = False,
                 out_indices=DEFAULT_OUT_INDICES, **overrides) -> keras.Model:
    """Build a registered model with keras.applications' contract.

    Args:
        name: str, a name from `list_models()`.
        num_classes: int, classifier width (with `include_top=True`).
        input_shape: (height, width, channels); None means the model's default size, 3 channels. Height and width
            may be None when `include_top=False` (and for any global-pooling head).
        include_top: bool, whether to add the classifier.
        pooling: "avg", "max", None (4D features, only without top) or a global pooling of `cnnzoo.layers`
            (e.g. "spp").
        dropout: float or None (the family's default: EfficientNet's 0.2-0.5, else none) before the classifier.
        classifier_activation: "softmax", None (logits) or any Keras activation. Always computed in float32.
        weights: None, a weights file (.weights.h5 or a keras.applications legacy .h5) or "imagenet".
        preprocessing: "default" puts the model's `Preprocessing` layer first (the model takes raw 0..255
            pixels); None leaves it out; a `Preprocessing` layer uses that one.
        features_only: bool, return the backbone's stage feature maps instead (a list, strides of
            `out_indices`) with `.feature_info` (see `feature_info`); the head arguments are then unused.
        out_indices: with `features_only`, the levels to output: 0 (stride 2) ... 4 (stride 32).
        **overrides: family options (e.g. `alpha=0.5`, `drop_connect_rate=0.1`, `bn_momentum=0.9`); None values
            are dropped.

    Example:
        >>> model = create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 10)
        >>> backbone = create_model("resnet50", features_only=True, input_shape=(None, None, 3))
        >>> [f.layer for f in backbone.feature_info]
        ['conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out', 'conv5_block3_out']
    """
    entry = get_entry(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_overrides(entry, overrides)
    check_choice("features_only", features_only, (True, False))
    if features_only:
        _check_out_indices(out_indices, None, entry.name)
        include_top, pooling = False, None
    _check_head_args(num_classes=num_classes, include_top=include_top, pooling=pooling, dropout=dropout,
                     classifier_activation=classifier_activation)
    shape = _check_input_shape(input_shape, entry, include_top)
    if not (weights is None or isinstance(weights, str)):
        raise TypeError(f"`weights` must be None, 'imagenet' or a file path. {received('weights', weights)}")
    if not (preprocessing in ("default", None) or isinstance(preprocessing, Preprocessing)):
        raise ValueError("`preprocessing` must be 'default', None or a cnnzoo.layers.Preprocessing layer. "
                         f"{received('preprocessing', preprocessing)}")
    if weights == "imagenet" and entry.imagenet is None:
        raise ValueError(f"{entry.name!r} has no ImageNet weights in keras.applications; pass a weights file or None. "
                         f"{received('weights', weights)}")
    if weights == "imagenet" and shape[2] != 3:
        raise ValueError(f"ImageNet weights need 3 input channels. {received('input_shape', input_shape)}")
    if preprocessing == "default":
        # ImageNet weights bring the preprocessing they were trained with (their metadata says which).
        config = entry.imagenet.preprocessing if weights == "imagenet" else entry.preprocessing
        preprocessing = Preprocessing(**config, name="preprocessing")
    _check_channels(shape[2], preprocessing, entry, input_shape)

    def build(options: dict, layer) -> keras.Model:
        inputs = keras.Input(shape, name="images")
        x = inputs if layer is None else layer(inputs)
        outputs = entry.builder(x, include_top=include_top, num_classes=num_classes, pooling=pooling,
                                dropout=dropout, classifier_activation=classifier_activation, **options)
        return keras.Model(inputs, outputs, name=entry.name)

    kwargs = {**entry.defaults, **overrides}
    model = build(kwargs, preprocessing)
    if weights is not None:
        from cnnzoo import weights as weights_lib

        path = weights_lib.imagenet_file(entry, include_top, shape, kwargs) if weights == "imagenet" else weights
        classifier = entry.imagenet.classifier if entry.imagenet else "predictions"
        # Stochastic depth adds Dropout layers, which reorder `model.layers`: the order Keras 3 files (and legacy
        # files of auto-named layers) are matched by. Load into a twin with the family's default rates (the
        # keras.applications layout), then copy by layer name.
        plain = {**entry.defaults, **{k: v for k, v in overrides.items() if k not in STOCHASTIC_DEPTH_OPTIONS}}
        if plain == kwargs:
            weights_lib.load_weights(model, path, classifier=classifier)
        else:
            twin_layer = None if preprocessing is None else type(preprocessing).from_config(preprocessing.get_config())
            twin = build(plain, twin_layer)
            weights_lib.load_weights(twin, path, classifier=classifier)
            for layer in twin.layers:
                if layer.weights:
                    model.get_layer(layer.name).set_weights(layer.get_weights())
    if features_only:
        return _features_model(model, entry, out_indices, kwargs)
    return model


@functools.lru_cache(maxsize=None)
def model_info(name: str) -> ModelInfo:
    """Parameters and multiply-adds at the model's default input size, with its family and paper.

    Example:
        >>> cnnzoo.model_info("resnet18").params
        11689512
    """
    from cnnzoo.profiling import profile

    entry = get_entry(name)
    model = create_model(name, preprocessing=None)
    prof = profile(model)
    return ModelInfo(name=name, family=entry.family, params=prof.params, macs=prof.macs,
                     default_input_size=entry.default_input_size, paper=entry.paper)


# Task models (segmenters, detectors) name their new layers `neck_*` and `head_*` on top of a zoo backbone.
_TASK_GROUPS = (("neck_", "neck"), ("head_", "head"))


def _task_group(name: str) -> str | None:
    if name == "probabilities":
        return "head"
    return next((group for prefix, group in _TASK_GROUPS if name.startswith(prefix)), None)


def finetune_groups(model: keras.Model) -> "OrderedDict[str, list[keras.layers.Layer]]":
    """Split a zoo model's layers into fine-tuning groups, input to output: "stem", "stage1".., ["neck"], "head".

    Groups come from the architecture's layer names (registered with the family), not from layer indices, so
    they survive a `.keras` round trip. Layers without weights that belong to no group (input, preprocessing)
    are left out.

    Example:
        >>> list(finetune_groups(cnnzoo.create_model("resnet18", input_shape=(32, 32, 3))))
        ['stem', 'stage1', 'stage2', 'stage3', 'stage4', 'head']
    """
    candidates = []
    if model.name in _REGISTRY:
        candidates.append(_REGISTRY[model.name])
    seen_families = {c.family for c in candidates}
    for entry in _REGISTRY.values():
        if entry.family not in seen_families:
            seen_families.add(entry.family)
            candidates.append(entry)
    for entry in candidates:
        groups: OrderedDict = OrderedDict()
        ok = True
        for layer in model.layers:
            if isinstance(layer, (keras.layers.InputLayer, Preprocessing)):
                continue
            group = _task_group(layer.name) or entry.group_of(layer.name)
            if group is None:
                ok = False
                break
            groups.setdefault(group, []).append(layer)
        if ok and groups:
            order = (["stem"] + sorted((g for g in groups if g.startswith("stage")), key=_natural_key)
                     + ["neck", "head"])
            return OrderedDict((g, groups[g]) for g in order if g in groups)
    _check_zoo_loaded("finetune_groups")
    raise ValueError("Cannot find fine-tuning groups: the model's layer names match no cnnzoo architecture. "
                     f"Build it with cnnzoo.create_model. Received: model.name={model.name!r}")



def _levels_of(model: keras.Model, entry: ModelEntry) -> tuple:
    """Every level `model` (an any-size backbone, no head) has: the last tap candidate at each stride."""
    import math

    if not entry.feature_taps:
        raise ValueError(f"{entry.name!r} registers no feature taps (ModelEntry.feature_taps). "
                         f"{received('name', entry.name)}")
    pattern = re.compile(entry.feature_taps)
    candidates = [layer for layer in model.layers if pattern.fullmatch(layer.name) and len(layer.output.shape) == 4]
    probe = keras.Model(model.inputs, [layer.output for layer in candidates])
    channels = model.inputs[0].shape[-1]
    specs = probe.compute_output_spec(keras.KerasTensor((1, _PROBE_SIZE, _PROBE_SIZE, channels)))
    levels = {}
    for layer, spec in zip(candidates, specs):
        reduction = 2 ** round(math.log2(_PROBE_SIZE / spec.shape[1]))
        index = int(math.log2(reduction)) - 1
        if 0 <= index < FEATURE_LEVELS:   # later candidates at a stride replace earlier ones: the last one taps
            levels[index] = FeatureLevel(index=index, name=f"C{index + 1}", channels=int(layer.output.shape[-1]),
                                         reduction=reduction, layer=layer.name)
    return tuple(levels[i] for i in sorted(levels))


def _backbone(entry: ModelEntry, channels: int, options: dict) -> keras.Model:
    inputs = keras.Input((None, None, channels), name="images")
    outputs = entry.builder(inputs, include_top=False, num_classes=1, pooling=None, dropout=None,
                            classifier_activation=None, **options)
    return keras.Model(inputs, outputs, name=entry.name)


@functools.lru_cache(maxsize=None)
def _cached_levels(name: str, options: tuple) -> tuple:
    entry = get_entry(name)
    model = _backbone(entry, 3, dict(options))
    try:
        return _levels_of(model, entry)
    finally:
        del model


def feature_info(model_or_name, **overrides) -> tuple:
    """The feature levels of a zoo model: `FeatureLevel(index, name, channels, reduction, layer)` per level.

    A name (with family options) gives every level the architecture has; a features model (from
    `create_model(..., features_only=True)`, also after a `.keras` round trip) gives the levels it outputs.

    Example:
        >>> [(f.name, f.reduction, f.layer) for f in cnnzoo.registry.feature_info("resnet18")][1:3]
        [('C2', 4, 'conv2_block2_out'), ('C3', 8, 'conv3_block2_out')]
    """
    if isinstance(model_or_name, keras.Model):
        model = model_or_name
        if getattr(model, "feature_info", None):
            return tuple(model.feature_info)
        names = [tensor._keras_history.operation.name for tensor in model.outputs]
        levels = {level.layer: level for level in feature_info(model.name)} if model.name in _REGISTRY else {}
        if not names or not all(n in levels for n in names):
            raise ValueError("feature_info needs a zoo name or a features model of cnnzoo.create_model(..., "
                             f"features_only=True). {received('model', model.name)}")
        return tuple(levels[n] for n in names)
    entry = get_entry(model_or_name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_overrides(entry, overrides)
    options = {**entry.defaults, **overrides}
    return _cached_levels(entry.name, tuple(sorted(options.items(), key=lambda kv: kv[0])))


def _check_out_indices(out_indices, levels: tuple | None, name: str) -> tuple:
    """`out_indices` as a tuple of ints, each a level `levels` has (with `levels=None`: each in 0..4)."""
    try:
        wanted = tuple(out_indices)
    except TypeError:
        wanted = None
    if (not wanted or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in wanted)
            or len(set(wanted)) != len(wanted) or list(wanted) != sorted(wanted)
            or not all(0 <= i < FEATURE_LEVELS for i in wanted)):
        raise ValueError("`out_indices` must be distinct increasing level indices (0: stride 2 ... 4: stride 32). "
                         f"{received('out_indices', out_indices)}")
    if levels is None:
        return tuple(int(i) for i in wanted)
    indices = [level.index for level in levels]
    missing = [i for i in wanted if i not in indices]
    if missing:
        raise ValueError(f"{name!r} has feature levels {indices} (strides "
                         f"{[level.reduction for level in levels]}); no level {missing}. "
                         f"{received('out_indices', out_indices)}")
    return tuple(int(i) for i in wanted)


def _features_model(model: keras.Model, entry: ModelEntry, out_indices, options: dict) -> keras.Model:
    """`model` (a backbone without head) cut at the taps of `out_indices`; `.feature_info` set on it."""
    if None in model.inputs[0].shape[1:3]:
        levels = _levels_of(model, entry)
    else:
        levels = feature_info(entry.name, **options)
    wanted = _check_out_indices(out_indices, levels, entry.name)
    chosen = tuple(level for level in levels if level.index in wanted)
    features = keras.Model(model.inputs[0], [model.get_layer(level.layer).output for level in chosen],
                           name=entry.name)
    features.feature_info = chosen
    return features
