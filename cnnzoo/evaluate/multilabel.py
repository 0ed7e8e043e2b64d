"""Evaluating a multi-label classifier (a sigmoid per class): per-label precision, recall, F1 and average precision,
mAP over the labels, and per-label decision thresholds tuned on validation data.

Scores come from scikit-learn: `average_precision_score` (AP: the precision-recall curve's step-wise area, the
reference definition), `precision_recall_fscore_support`, `f1_score`, `accuracy_score` (subset accuracy: every
label of an image right). A label with no positive image has no AP; mAP averages the labels that have one.

Example:
    >>> val = cnnzoo.evaluate(model, data)                         # data.val, thresholds 0.5
    >>> thresholds = val.tune_thresholds()                         # per label, best F1 on validation
    >>> test = cnnzoo.evaluate(model, test_data, thresholds=thresholds)
    >>> test.map, test.macro_f1, test.per_label
"""
from __future__ import annotations

import dataclasses

import numpy as np

from cnnzoo._checks import received

__all__ = ["MultiLabelReport", "evaluate_multilabel", "check_thresholds", "best_f1_thresholds"]


def check_thresholds(thresholds, class_names) -> np.ndarray:
    """Per-label thresholds in (0, 1) as float64 [K]: one number for all, a sequence, or {class name: t}
    (others 0.5)."""
    k = len(class_names)
    if thresholds is None:
        return np.full(k, 0.5)
    if isinstance(thresholds, dict):
        unknown = sorted(set(map(str, thresholds)) - set(map(str, class_names)))
        if unknown:
            raise ValueError(f"`thresholds` names classes {unknown} that the model does not have. "
                             + received("thresholds", thresholds))
        values = np.array([float(thresholds.get(name, 0.5)) for name in class_names])
    elif np.ndim(thresholds) == 0:
        values = np.full(k, float(thresholds))
    else:
        values = np.asarray(thresholds, dtype="float64").reshape(-1)
        if values.size != k:
            raise ValueError(f"`thresholds` needs one value per class ({k}). "
                             f"Received: thresholds of length {values.size}")
    if not np.all((values > 0) & (values < 1)):
        raise ValueError(f"`thresholds` must lie in (0, 1). {received('thresholds', thresholds)}")
    return values


def best_f1_thresholds(labels: np.ndarray, probabilities: np.ndarray, *, default: float = 0.5) -> np.ndarray:
    """Per label, the threshold with the best F1 on these labels (scikit-learn's `precision_recall_curve`; the
    midpoint to the next lower score, so a score equal to it is in); `default` for a label without positives."""
    from sklearn.metrics import precision_recall_curve

    out = np.full(labels.shape[1], default)
    for j in range(labels.shape[1]):
        if labels[:, j].sum() == 0:
            continue
        precision, recall, cuts = precision_recall_curve(labels[:, j], probabilities[:, j])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = int(np.argmax(f1))
        lower = probabilities[:, j][probabilities[:, j] < cuts[best]]
        cut = (cuts[best] + lower.max()) / 2 if lower.size else cuts[best] / 2
        out[j] = float(np.clip(cut, 1e-6, 1 - 1e-6))
    return out


@dataclasses.dataclass
class MultiLabelReport:
    """Scores of a multi-label classifier on labelled images (`cnnzoo.evaluate` of a sigmoid-head model).

    Attributes: `map` (mean AP over labels with positives), `macro_f1`, `micro_f1`, `subset_accuracy`,
    `per_label` (DataFrame: precision, recall, f1 at the thresholds, ap, support, threshold), `thresholds`,
    `labels` [N, K] 0/1, `probabilities` [N, K], `predictions` [N, K] bool.
    """

    labels: np.ndarray
    probabilities: np.ndarray = dataclasses.field(repr=False)
    class_names: list
    thresholds: np.ndarray = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels).astype(int)
        self.probabilities = np.asarray(self.probabilities, dtype="float64")
        if self.labels.shape != self.probabilities.shape or self.labels.ndim != 2:
            raise ValueError("`labels` and `probabilities` must both be [N, classes]. Received: "
                             f"labels.shape={self.labels.shape}, probabilities.shape={self.probabilities.shape}")
        self.class_names = list(self.class_names or [str(i) for i in range(self.labels.shape[1])])
        self.thresholds = check_thresholds(self.thresholds, self.class_names)

    task = "multilabel"

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities >= self.thresholds

    @property
    def average_precision(self) -> np.ndarray:
        """AP per label (NaN for a label without positive images)."""
        from sklearn.metrics import average_precision_score

        return np.array([average_precision_score(self.labels[:, j], self.probabilities[:, j])
                         if self.labels[:, j].any() else np.nan for j in range(self.labels.shape[1])])

    @property
    def map(self) -> float:
        ap = self.average_precision
        return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")

    @property
    def macro_f1(self) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(self.labels, self.predictions, average="macro", zero_division=0))

    @property
    def micro_f1(self) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(self.labels, self.predictions, average="micro", zero_division=0))

    @property
    def subset_accuracy(self) -> float:
        """Share of images whose every label is right."""
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(self.labels, self.predictions))

    @property
    def per_label(self):
        import pandas as pd
        from sklearn.metrics import precision_recall_fscore_support

        precision, recall, f1, support = precision_recall_fscore_support(self.labels, self.predictions,
                                                                         zero_division=0)
        return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "ap": self.average_precision,
                             "support": support, "threshold": self.thresholds},
                            index=pd.Index(self.class_names, name="class"))

    def tune_thresholds(self) -> np.ndarray:
        """Per-label thresholds with the best F1 on this report's images: tune on validation data, then pass them
        to `cnnzoo.evaluate(..., thresholds=)` and `cnnzoo.export(..., thresholds=)`."""
        return best_f1_thresholds(self.labels, self.probabilities)

    def with_thresholds(self, thresholds) -> "MultiLabelReport":
        return MultiLabelReport(self.labels, self.probabilities, self.class_names, thresholds)

    def to_dict(self) -> dict:
        return {"task": "multilabel", "map": self.map, "macro_f1": self.macro_f1, "micro_f1": self.micro_f1,
                "subset_accuracy": self.subset_accuracy, "num_samples": int(len(self.labels)),
                "class_names": self.class_names, "thresholds": self.thresholds.tolist(),
                "per_label": self.per_label.reset_index().to_dict(orient="records")}

    def summary(self) -> str:
        lines = [f"{len(self.labels)} images, {len(self.class_names)} labels: mAP {self.map:.4f}, "
                 f"macro-F1 {self.macro_f1:.4f}, micro-F1 {self.micro_f1:.4f}, subset accuracy "
                 f"{self.subset_accuracy:.4f}"]
        table = self.per_label
        for name, row in table.iterrows():
            lines.append(f"  {name:>12}: AP {row['ap']:.3f}  F1 {row['f1']:.3f}  P {row['precision']:.3f}  "
                         f"R {row['recall']:.3f}  t {row['threshold']:.2f}  n {int(row['support'])}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"MultiLabelReport(n={len(self.labels)}, map={self.map:.4f}, macro_f1={self.macro_f1:.4f}, "
                f"micro_f1={self.micro_f1:.4f}, classes={len(self.class_names)})")


def _mean_probabilities(model, images, views):
    from cnnzoo.evaluate.tta import average_views

    return average_views(lambda x: model(x, training=False), images, views)


def predict_multilabel(model, data, *, split: str = "val", batch_size: int = 64, tta: tuple = ()):
    """(probabilities [N, K], labels [N, K]) of a multi-label model on labelled data, inference mode (averaged
    over `tta` views)."""
    import tensorflow as tf

    from cnnzoo.data.adapt import stream

    source = stream(data, name="data", split=split, labels=True, batch_size=batch_size, multi_hot=True)

    from cnnzoo.evaluate.tta import traced

    infer = traced(model, _mean_probabilities, tuple(tta))

    outputs, labels = [], []
    for batch in source:
        y = np.asarray(batch[1])
        if y.ndim != 2:
            raise ValueError("A multi-label model is scored on multi-hot labels [N, classes]; these are class ids. "
                             + received("data", data))
        outputs.append(np.asarray(infer(batch[0]), dtype="float64"))
        labels.append(y)
    if not outputs:
        raise ValueError("`data` gave no batches. " + received("data", data))
    return np.concatenate(outputs), np.concatenate(labels)


def evaluate_multilabel(model, data, *, split: str = "val", class_names=None, thresholds=None,
                        tta: tuple = ()) -> MultiLabelReport:
    """See `cnnzoo.evaluate`: the report of a sigmoid-head model on multi-hot labelled data."""
    from cnnzoo.data.imagedata import ImageData

    names = class_names or (list(data.class_names) if isinstance(data, ImageData) else None)
    probabilities, labels = predict_multilabel(model, data, split=split, tta=tta)
    if labels.shape[1] != probabilities.shape[1]:
        raise ValueError(f"The labels have {labels.shape[1]} classes, the model {probabilities.shape[1]}. "
                         + received("data", data))
    return MultiLabelReport(labels, probabilities, names or [str(i) for i in range(labels.shape[1])],
                            check_thresholds(thresholds, names or [str(i) for i in range(labels.shape[1])]))
