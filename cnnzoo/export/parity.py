"""Prove an exported artifact computes what the Keras model computes, before it is written.

Each format is run on a held-out batch of raw uint8 images and compared with the Keras model:

- float formats (SavedModel, ONNX, TFLite fp32): max |p - p_keras| <= 1e-4 on probabilities;
- TFLite fp16: max |p - p_keras| <= 1e-2;
- quantized formats (TFLite int8, dynamic range): top-1 agreement >= 97 %, and with labels, accuracy at most
  1 point below the Keras model's.

A segmenter is judged per pixel on its probabilities [N, H, W, classes]: the same float tolerances, and for the
quantized formats per-pixel agreement of the masks >= 97 % and, with true masks, mIoU at most 1 point below the
Keras model's.

A multi-label classifier is judged on its per-class decisions at the exported thresholds: the same float
tolerances on probabilities, and for the quantized formats >= 97 % of (image, class) decisions agreeing and, with
true labels, mAP at most 1 point below the Keras model's.

Every format must also be batch independent: an image run alone and inside a batch of 8 gives the same
probabilities (|diff| <= 1e-4). A model whose BatchNorm runs in training mode fails exactly this check.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from cnnzoo.export.runners import Runner
from cnnzoo.export.samples import Samples

FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 1e-2
MIN_AGREEMENT = 0.97
MAX_ACCURACY_DROP = 1.0        # percentage points
BATCH_TOLERANCE = 1e-4
BATCH = 8

#: How each format is judged: "float" (max abs diff), or "quantized" (agreement and accuracy drop).
KINDS = {"keras": ("float", FLOAT32_TOLERANCE), "saved_model": ("float", FLOAT32_TOLERANCE),
         "onnx": ("float", FLOAT32_TOLERANCE), "tflite_fp32": ("float", FLOAT32_TOLERANCE),
         "tflite_fp16": ("float", FLOAT16_TOLERANCE), "tflite_dynamic": ("quantized", None),
         "tflite_int8": ("quantized", None)}


class ParityError(RuntimeError):
    """An exported format disagrees with the Keras model beyond its tolerance."""


@dataclass
class ParityResult:
    """Figures from comparing one format with the Keras model on the held-out batch."""

    format: str
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float          # a segmenter's: per-pixel agreement of the masks; multi-label: of the decisions
    batch_max_diff: float
    accuracy: float | None = None
    reference_accuracy: float | None = None
    accuracy_drop_points: float | None = None
    miou: float | None = None
    reference_miou: float | None = None
    miou_drop_points: float | None = None
    map: float | None = None
    reference_map: float | None = None
    map_drop_points: float | None = None
    per_pixel: bool = False                # a segmenter's figures (per-pixel probabilities and masks)
    tolerance: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def compare(format: str, runner: Runner, reference: np.ndarray, holdout: Samples) -> ParityResult:
    """Compare `runner` with the Keras `reference` probabilities on `holdout`; failures are listed, not raised.

    Example:
        >>> result = compare("tflite_int8", load_runner("1/model_int8.tflite"), keras_probs, holdout)  # doctest: +SKIP
        >>> result.passed, result.top1_agreement                                                     # doctest: +SKIP
    """
    kind, tolerance = KINDS.get(format, ("float", FLOAT32_TOLERANCE))
    probabilities = runner.predict(holdout.images, batch_size=64)
    diff = np.abs(probabilities - reference)
    multilabel = getattr(runner, "task", "classification") == "multilabel"  # any object with .predict is a runner
    if multilabel:
        agreement = np.mean((probabilities >= runner.thresholds) == (reference >= runner.thresholds))
    else:
        agreement = np.mean(probabilities.argmax(-1) == reference.argmax(-1))
    result = ParityResult(
        format=format, images=len(holdout), max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        top1_agreement=float(agreement), batch_max_diff=batch_dependence(runner, holdout.images))
    per_pixel = result.per_pixel = probabilities.ndim == 4
    if holdout.labels is not None and multilabel:
        from cnnzoo.evaluate.multilabel import MultiLabelReport

        result.reference_map = MultiLabelReport(holdout.labels, reference, runner.class_names).map
        result.map = MultiLabelReport(holdout.labels, probabilities, runner.class_names).map
        result.map_drop_points = 100.0 * (result.reference_map - result.map)
    elif holdout.labels is not None and per_pixel:
        from cnnzoo.evaluate.segmentation import mean_iou

        classes = probabilities.shape[-1]
        result.reference_miou = mean_iou(holdout.labels, reference.argmax(-1), classes)
        result.miou = mean_iou(holdout.labels, probabilities.argmax(-1), classes)
        result.miou_drop_points = 100.0 * (result.reference_miou - result.miou)
    elif holdout.labels is not None:
        result.reference_accuracy = float(np.mean(reference.argmax(-1) == holdout.labels))
        result.accuracy = float(np.mean(probabilities.argmax(-1) == holdout.labels))
        result.accuracy_drop_points = 100.0 * (result.reference_accuracy - result.accuracy)
    if kind == "float":
        result.tolerance = {"max_abs_diff": tolerance}
        if result.max_abs_diff > tolerance:
            result.failures.append(f"max |probability difference| {result.max_abs_diff:.3g} > {tolerance:g}")
    else:
        drop = "miou_drop_points" if per_pixel else "map_drop_points" if multilabel else "accuracy_drop_points"
        result.tolerance = {"top1_agreement": MIN_AGREEMENT, drop: MAX_ACCURACY_DROP}
        if result.top1_agreement < MIN_AGREEMENT:
            what = ("per-pixel mask agreement" if per_pixel else "per-class decision agreement" if multilabel
                    else "top-1 agreement")
            result.failures.append(f"{what} {result.top1_agreement:.1%} < {MIN_AGREEMENT:.0%}")
        if result.miou_drop_points is not None and result.miou_drop_points > MAX_ACCURACY_DROP + 1e-9:
            result.failures.append(f"mIoU drop {result.miou_drop_points:.2f} points > {MAX_ACCURACY_DROP:g} "
                                   f"({result.reference_miou:.4f} -> {result.miou:.4f})")
        if result.map_drop_points is not None and result.map_drop_points > MAX_ACCURACY_DROP + 1e-9:
            result.failures.append(f"mAP drop {result.map_drop_points:.2f} points > {MAX_ACCURACY_DROP:g} "
                                   f"({result.reference_map:.4f} -> {result.map:.4f})")
        # (a drop of exactly 1 point, e.g. 2 of 200 images, computes as 1.0000000000000009: not a failure)
        if result.accuracy_drop_points is not None and result.accuracy_drop_points > MAX_ACCURACY_DROP + 1e-9:
            result.failures.append(f"accuracy drop {result.accuracy_drop_points:.2f} points > "
                                   f"{MAX_ACCURACY_DROP:g} ({result.reference_accuracy:.1%} -> "
                                   f"{result.accuracy:.1%})")
    result.tolerance["batch_max_diff"] = BATCH_TOLERANCE
    if result.batch_max_diff > BATCH_TOLERANCE:
        result.failures.append(f"outputs depend on batch composition: an image alone vs in a batch of {BATCH} "
                               f"differs by {result.batch_max_diff:.3g} > {BATCH_TOLERANCE:g}")
    return result


def batch_dependence(runner: Runner, images: np.ndarray) -> float:
    """Max |p(image alone) - p(image inside a batch of 8 different images)| over 8 images."""
    batch = images[:BATCH]
    if len(batch) < BATCH:  # too few images: pad with flipped copies so the batch still varies
        extra = np.flip(images, axis=2)
        batch = np.concatenate([batch, np.resize(extra, (BATCH - len(batch), *images.shape[1:]))])
    together = runner.predict(batch, batch_size=BATCH)
    alone = runner.predict(batch, batch_size=1)
    return float(np.abs(together - alone).max())


def raise_on_failure(results: dict[str, ParityResult]) -> None:
    """Raise ParityError naming every failed format and check."""
    failed = {name: result for name, result in results.items() if not result.passed}
    if failed:
        lines = [f"{name}: " + "; ".join(result.failures) for name, result in failed.items()]
        raise ParityError("Exported formats disagree with the Keras model, nothing was written "
                          "(pass parity='warn' to write anyway and record it):\n  " + "\n  ".join(lines))
