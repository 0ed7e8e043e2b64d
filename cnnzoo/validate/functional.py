"""Functional checks: golden cases, accuracy per class, and consistency under small perturbations.

- Golden cases are examples the model must get right (a folder of class subfolders or arrays); every miss is
  listed with its file, expected and predicted class.
- Consistency is the top-1 agreement between each image and a perturbed copy, per perturbation: brightness
  +-10 % (added, as `keras.layers.RandomBrightness` does), a +-5 degree rotation, a 90 % centre crop, and
  mirror flips where they keep the class (`"hflip"`: photos yes, digits and text no, so not by default).

Example:
    >>> x_gold, y_gold = pick_golden(model, (x_val, y_val), per_class=5)                     # doctest: +SKIP
    >>> cnnzoo.validate("exported/digits", data, golden=(x_gold, y_gold)).functional["golden"]  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from cnnzoo._checks import check_float, check_int, received


# ------------------------------------------------------------------------------------------- perturbations

@dataclasses.dataclass(frozen=True)
class Perturbation:
    """A named change to uint8 images [N, H, W, 3] that should not change the predicted class."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fn(images))
        if out.shape != images.shape or out.dtype != np.uint8:
            raise ValueError(f"Perturbation {self.name!r} must return uint8 images of the input's shape. "
                             f"Received: shape={out.shape}, dtype={out.dtype}")
        return out


def brightness(delta: float) -> Perturbation:
    """Add `delta` of the full range (0.1 = +25.5 levels) to every pixel, clipped to 0..255."""
    delta = check_float("delta", delta, minimum=-1.0, maximum=1.0)

    def fn(images):
        return np.clip(np.round(images.astype(np.float32) + 255.0 * delta), 0, 255).astype(np.uint8)
    return Perturbation(f"brightness{delta * 100:+.0f}%", fn)


def rotate(degrees: float) -> Perturbation:
    """Rotate about the centre (reflect fill, as `keras.layers.RandomRotation`), bilinear."""
    degrees = check_float("degrees", degrees, minimum=-180.0, maximum=180.0)

    def fn(images):
        import tensorflow as tf

        from cnnzoo.data.transforms import rotation_matrix, warp

        batch = tf.cast(images, tf.float32)
        height, width = images.shape[1:3]
        angle = tf.fill([len(images)], math.radians(degrees))
        out = warp(batch, rotation_matrix(angle, height, width), fill_mode="reflect")
        return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)
    return Perturbation(f"rotate{degrees:+g}", fn)


def crop(fraction: float) -> Perturbation:
    """Keep the central `fraction` of each side and resize back (bilinear): a small zoom in."""
    fraction = check_float("fraction", fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)

    def fn(images):
        import tensorflow as tf

        height, width = images.shape[1:3]
        h, w = max(1, round(height * fraction)), max(1, round(width * fraction))
        top, left = (height - h) // 2, (width - w) // 2
        window = tf.cast(images[:, top:top + h, left:left + w], tf.float32)
        return np.clip(np.round(tf.image.resize(window, (height, width)).numpy()), 0, 255).astype(np.uint8)
    return Perturbation(f"crop{fraction * 100:.0f}%", fn)


def hflip() -> Perturbation:
    return Perturbation("hflip", lambda images: np.ascontiguousarray(images[:, :, ::-1]))


def vflip() -> Perturbation:
    return Perturbation("vflip", lambda images: np.ascontiguousarray(images[:, ::-1]))


DEFAULT_PERTURBATIONS = (brightness(0.1), brightness(-0.1), rotate(5), rotate(-5), crop(0.9))
NAMED_PERTURBATIONS = {p.name: p for p in (*DEFAULT_PERTURBATIONS, hflip(), vflip())}


def resolve_perturbations(perturbations) -> list[Perturbation]:
    """"default" (or None) -> the defaults; else a list of names from NAMED_PERTURBATIONS and Perturbations."""
    if perturbations is None or (isinstance(perturbations, str) and perturbations == "default"):
        return list(DEFAULT_PERTURBATIONS)
    if isinstance(perturbations, (str, Perturbation)):
        perturbations = [perturbations]
    out = []
    for item in perturbations:
        if isinstance(item, Perturbation):
            out.append(item)
        elif isinstance(item, str) and item in NAMED_PERTURBATIONS:
            out.append(NAMED_PERTURBATIONS[item])
        elif item == "default":
            out.extend(DEFAULT_PERTURBATIONS)
        else:
            names = ", ".join(repr(n) for n in ["default", *NAMED_PERTURBATIONS])
            raise ValueError(f"`perturbations` items must be a Perturbation or one of {names}. "
                             f"{received('perturbations', item)}")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"`perturbations` names must be unique. {received('perturbations', names)}")
    return out


# ------------------------------------------------------------------------------------------- checks

def golden_check(runner, images: np.ndarray, labels: np.ndarray, *, class_names: Sequence[str], paths=None,
                 skipped=(), probabilities=None) -> dict:
    """Run the golden cases; list every miss (index, file, expected, predicted, confidences)."""
    probabilities = runner.predict(images) if probabilities is None else probabilities
    predicted = probabilities.argmax(1)
    misses = []
    for i in np.flatnonzero(predicted != labels):
        misses.append({"index": int(i), "path": None if paths is None else str(paths[i]),
                       "expected": str(class_names[labels[i]]), "predicted": str(class_names[predicted[i]]),
                       "confidence": float(probabilities[i, predicted[i]]),
                       "expected_probability": float(probabilities[i, labels[i]])})
    n = len(labels)
    return {"n": int(n), "correct": int(n - len(misses)), "accuracy": float((n - len(misses)) / n),
            "misses": misses, "skipped": [{"path": str(p), "reason": r} for p, r in skipped]}


def accuracy_check(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> tuple[dict, object]:
    """Accuracy and per-class accuracy (recall) through `cnnzoo.evaluate`'s EvalReport; returns (dict, report)."""
    from cnnzoo.evaluate.report import EvalReport

    report = EvalReport.from_outputs(labels, probabilities, class_names=list(class_names), top_k=(1,))
    table = report.per_class
    per_class = {str(name): {"accuracy": float(row["recall"]), "support": int(row["support"])}
                 for name, row in table.iterrows()}
    present = [v["accuracy"] for v in per_class.values() if v["support"] > 0]
    return {"n": int(len(labels)), "accuracy": report.accuracy, "per_class": per_class,
            "min_class_accuracy": float(min(present)) if present else None,
            "confusion_matrix": report.confusion_matrix.tolist()}, report


def consistency_check(runner, images: np.ndarray, perturbations: Sequence[Perturbation], *,
                      predictions: np.ndarray | None = None) -> dict:
    """Top-1 agreement between each image and its perturbed copy, per perturbation.

    Returns {name: {"agreement": float, "changed": int, "n": int, "changed_indices": first 20}}.
    """
    if predictions is None:
        predictions = runner.predict(images).argmax(1)
    out = {}
    for perturbation in perturbations:
        moved = runner.predict(perturbation(images)).argmax(1)
        changed = np.flatnonzero(moved != predictions)
        out[perturbation.name] = {"agreement": float(1.0 - len(changed) / len(images)), "changed": int(len(changed)),
                                  "n": int(len(images)), "changed_indices": changed[:20].tolist()}
    return out


def pick_golden(model, data, *, per_class: int = 5, min_confidence: float = 0.0):
    """Golden cases from a trusted model: per class, the `per_class` most confident correct examples.

    Args:
        model: keras.Model, export path or runner.
        data: (images, labels), ImageData (val split), folder or tf.data.Dataset with labels.
        per_class: int, examples per class (fewer where the model gets fewer right).
        min_confidence: float in [0, 1], skip examples the model is less sure of.

    Returns:
        (images uint8 [M, H, W, 3], labels int [M]).

    Example:
        >>> golden = pick_golden(model, (x_val, y_val), per_class=3)   # doctest: +SKIP
    """
    from cnnzoo.validate import inputs

    check_int("per_class", per_class, minimum=1)
    check_float("min_confidence", min_confidence, minimum=0.0, maximum=1.0)
    runner = inputs.runner_for(model)
    sample = inputs.images_from(data, name="data", class_names=runner.class_names)
    if sample.labels is None:
        raise ValueError(f"`data` must have labels to pick golden cases. {received('data', type(data).__name__)}")
    probabilities = runner.predict(sample.images)
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    chosen = []
    for label in np.unique(sample.labels):
        good = np.flatnonzero((sample.labels == label) & (predicted == label) & (confidence >= min_confidence))
        chosen += good[np.argsort(-confidence[good], kind="stable")][:per_class].tolist()
    chosen = np.sort(np.asarray(chosen, np.int64))
    return sample.images[chosen], sample.labels[chosen]
