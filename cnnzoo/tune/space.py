"""The search space: which hyperparameters cnnzoo tunes, their default ranges, and how `space=` narrows them.

Every hyperparameter has a default spec. `space={name: value}` replaces it:

    3e-3                 fixed (a `Fixed` hyperparameter: recorded, never searched)
    [1e-4, 3e-3]         a choice among these values
    (1e-5, 1e-2)         a range; log-uniform for `learning_rate` and `weight_decay`, uniform otherwise
    (0.0, 0.5, 0.1)      a range with a step; (lo, hi, "log") or (lo, hi, "linear") picks the sampling

Conditional hyperparameters are declared only where their parent can take the triggering value: `alpha`
(MobileNetV2 width) when "mobilenet_v2" is a candidate model, `phi` (EfficientNet compound coefficient) when
"efficientnet" is, `weight_decay` for AdamW/SGD, `augment_strength` for any augmentation but "none", and
`unfreeze` only for pretrained backbones (`weights=` given). The candidate architectures are the `models=`
argument, never a `space` key (`ARGUMENTS` lists the settings `space` refuses).

The training recipe for real data is tunable too, fixed unless `space` opens it: `class_weight` ("none" or
"balanced"), `loss` ("auto" or "focal") and `ema` (0.0 = off, or an EMA momentum such as 0.99), e.g.
`space={"class_weight": ["none", "balanced"], "loss": ["auto", "focal"], "ema": [0.0, 0.99]}`.

Example:
    >>> specs = resolve_space({"learning_rate": [1e-4, 3e-3], "dropout": 0.2}, models=("resnet18",))
    >>> specs["learning_rate"]
    Spec(kind='choice', values=(0.0001, 0.003), low=None, high=None, step=None, sampling=None)
"""
from __future__ import annotations

import ast
import dataclasses
import numbers
from typing import Any, Iterable

from cnnzoo._checks import check_choice, check_float, check_int, received
from cnnzoo.options import AUGMENT_POLICIES, DECAYING_OPTIMIZERS, OPTIMIZER_NAMES

# The pseudo-model name for `cnnzoo.models.efficientnet(phi=...)`; the registered b0..b7 names fix phi.
EFFICIENTNET = "efficientnet"
DEFAULT_MODELS = ("mobilenet_v2", "resnet18", EFFICIENTNET)

BUILD_PARAMS = ("model", "alpha", "phi", "dropout", "optimizer", "learning_rate", "weight_decay",
                "label_smoothing")
FIT_PARAMS = ("batch_size", "augment", "augment_strength", "unfreeze", "class_weight", "loss", "ema")
CLASS_WEIGHTS = ("none", "balanced")
TUNED_LOSSES = ("auto", "focal")
PARAMS = BUILD_PARAMS + FIT_PARAMS
# Settings that are arguments of `search` / `CnnZooHyperModel`, never `space` keys: the candidate models come
# from `models=` only, so a space entry can neither override nor silently contradict it.
ARGUMENTS = {"model": "models", "models": "models", "weights": "weights", "epochs": "epochs", "seed": "seed",
             "early_stopping": "early_stopping", "objective": "objective", "tuner": "tuner",
             "max_trials": "max_trials", "num_classes": "num_classes", "input_shape": "input_shape"}
SPACE_KEYS = tuple(p for p in PARAMS if p not in ARGUMENTS)

_TYPES = {"model": str, "alpha": float, "phi": float, "dropout": float, "optimizer": str, "learning_rate": float,
          "weight_decay": float, "label_smoothing": float, "batch_size": int, "augment": str,
          "augment_strength": float, "unfreeze": int, "class_weight": str, "loss": str, "ema": float}
_LOG_SCALE = {"learning_rate", "weight_decay"}
# Bounds every value must respect: (minimum, maximum, exclusive minimum).
_BOUNDS = {"alpha": (0.0, None, True), "phi": (0.0, 8.0, False), "dropout": (0.0, 0.95, False),
           "learning_rate": (0.0, 10.0, True), "weight_decay": (0.0, 1.0, False),
           "label_smoothing": (0.0, 0.99, False), "batch_size": (1, None, False),
           "augment_strength": (0.0, 4.0, False), "unfreeze": (1, None, False), "ema": (0.0, 0.9999, False)}
# Conditional hyperparameters: name -> (parent, parent values that activate it).
CONDITIONS = {"alpha": ("model", ("mobilenet_v2",)), "phi": ("model", (EFFICIENTNET,)),
              "weight_decay": ("optimizer", DECAYING_OPTIMIZERS),
              "augment_strength": ("augment", tuple(p for p in AUGMENT_POLICIES if p != "none"))}


@dataclasses.dataclass(frozen=True)
class Spec:
    """One hyperparameter's domain: kind "fixed" (values[0]), "choice" (values), "float" or "int" (a range)."""

    kind: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    sampling: str | None = None

    def candidates(self) -> tuple | None:
        """The values it can take when finite (fixed, choice), else None."""
        return self.values if self.kind in ("fixed", "choice") else None

    def declare(self, hp, name: str, parent_name: str | None = None, parent_values=None):
        """Register the hyperparameter on a `keras_tuner.HyperParameters` and return its current value."""
        scope = dict(parent_name=parent_name, parent_values=list(parent_values) if parent_values else None)
        if self.kind == "fixed":
            return hp.Fixed(name, self.values[0], **scope)
        if self.kind == "choice":
            ordered = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in self.values)
            return hp.Choice(name, list(self.values), ordered=ordered, **scope)
        factory = hp.Int if self.kind == "int" else hp.Float
        return factory(name, self.low, self.high, step=self.step, sampling=self.sampling or "linear", **scope)


def _defaults(models: tuple, pretrained: bool) -> dict[str, Spec]:
    specs = {
        "model": Spec("choice", tuple(models)) if len(models) > 1 else Spec("fixed", tuple(models)),
        "alpha": Spec("choice", (0.35, 0.5, 0.75, 1.0)),
        "phi": Spec("choice", (0.0, 0.5, 1.0)),
        "dropout": Spec("float", low=0.0, high=0.5, step=0.1),
        "optimizer": Spec("fixed", ("adamw",)),
        "learning_rate": Spec("float", low=1e-4, high=1e-2, sampling="log"),
        "weight_decay": Spec("float", low=1e-5, high=1e-1, sampling="log"),
        "label_smoothing": Spec("float", low=0.0, high=0.2, step=0.1),
        "batch_size": Spec("choice", (16, 32, 64)),
        "augment": Spec("choice", AUGMENT_POLICIES),
        "augment_strength": Spec("float", low=0.5, high=1.5, step=0.25),
        "class_weight": Spec("fixed", ("none",)),
        "loss": Spec("fixed", ("auto",)),
        "ema": Spec("fixed", (0.0,)),
    }
    if pretrained:
        specs["unfreeze"] = Spec("int", low=1, high=4)
    return specs


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _TYPES[name]
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"`space[{name!r}]` values must be strings. {received(where, value)}")
        if name == "optimizer":
            check_choice(where, value, OPTIMIZER_NAMES)
        elif name == "augment":
            check_choice(where, value, AUGMENT_POLICIES)
        elif name == "class_weight":
            check_choice(where, value, CLASS_WEIGHTS)
        elif name == "loss":
            check_choice(where, value, TUNED_LOSSES)
        return value
    low, high, exclusive = _BOUNDS[name]
    if kind is int:
        return check_int(where, value, minimum=low, maximum=high)
    return check_float(where, value, minimum=low, maximum=high, exclusive_minimum=exclusive)


def parse_spec(name: str, value: Any, default: Spec | None = None) -> Spec:
    """Turn one `space[name]` entry (scalar, list or tuple) into a Spec, checking every value."""
    where = f"space[{name!r}]"
    if isinstance(value, list) or (isinstance(value, tuple) and _TYPES[name] is str):
        if not value:
            raise ValueError(f"`{where}` must list at least one value. {received(where, value)}")
        values = tuple(dict.fromkeys(_coerce(name, v, where) for v in value))
        return Spec("fixed", values) if len(values) == 1 else Spec("choice", values)
    if isinstance(value, tuple):
        if len(value) not in (2, 3):
            raise ValueError(f"A range in `{where}` is (low, high) or (low, high, step or 'log'/'linear'). "
                             f"{received(where, value)}")
        low, high = (_coerce(name, v, where) for v in value[:2])
        if not low < high:
            raise ValueError(f"A range in `{where}` needs low < high. {received(where, value)}")
        step, sampling = None, "log" if name in _LOG_SCALE else "linear"
        if len(value) == 3:
            if isinstance(value[2], str):
                sampling = check_choice(f"{where}[2]", value[2], ("log", "linear"))
            else:
                step = (check_int if _TYPES[name] is int else check_float)(f"{where}[2]", value[2], minimum=0)
                sampling = "linear"
        if sampling == "log" and low <= 0:
            raise ValueError(f"A log range in `{where}` needs low > 0. {received(where, value)}")
        return Spec("int" if _TYPES[name] is int else "float", low=low, high=high, step=step, sampling=sampling)
    return Spec("fixed", (_coerce(name, value, where),))


def resolve_space(space: dict | None, *, models: Iterable[str] = DEFAULT_MODELS,
                  pretrained: bool = False) -> dict[str, Spec]:
    """The full space: defaults for `models` and `pretrained`, overridden by `space`, ordered as PARAMS."""
    if space is None:
        space = {}
    if not isinstance(space, dict):
        raise TypeError(f"`space` must be a dict of hyperparameter name -> value, list or range. "
                        f"{received('space', space)}")
    arguments = [k for k in space if k in ARGUMENTS]
    if arguments:
        key = arguments[0]
        raise ValueError(f"`space` cannot set {key!r}: it is the `{ARGUMENTS[key]}=` argument (pass it there); "
                         f"`space` holds only {', '.join(SPACE_KEYS)}. {received('space', space)}")
    unknown = [k for k in space if k not in SPACE_KEYS]
    if unknown:
        raise ValueError(f"Unknown hyperparameter {unknown[0]!r} in `space`; known: {', '.join(SPACE_KEYS)}. "
                         f"{received('space', space)}")
    if "unfreeze" in space and not pretrained:
        raise ValueError("`unfreeze` is tuned only for pretrained backbones; pass `weights=` (e.g. 'imagenet'). "
                         f"{received('space', space)}")
    specs = _defaults(tuple(models), pretrained)
    for name, value in space.items():
        specs[name] = parse_spec(name, value)
    return {name: specs[name] for name in PARAMS if name in specs}


def parse_space(items: Iterable[str]) -> dict:
    """Parse command-line `name=value` strings into a `space` dict (values are Python literals).

    Example:
        >>> parse_space(["learning_rate=[1e-4, 3e-3]", "dropout=(0.0, 0.5)", "augment=[none, light]"])
        {'learning_rate': [0.0001, 0.003], 'dropout': (0.0, 0.5), 'augment': ['none', 'light']}
    """
    space = {}
    for item in items:
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"A space entry must look like name=value. Received: space={item!r}")
        space[name.strip()] = _literal(text.strip())
    return space


def _literal(text: str):
    """A Python literal; bare words are strings, also inside [...] and (...): `[none, light]`."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if len(text) >= 2 and (text[0], text[-1]) in (("[", "]"), ("(", ")")):
        items = [_literal(part.strip()) for part in text[1:-1].split(",") if part.strip()]
        return items if text[0] == "[" else tuple(items)
    return text
