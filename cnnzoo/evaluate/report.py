"""`EvalReport`: accuracy, top-k, per-class precision/recall/F1, confusion matrix, calibration (ECE) and
temperature scaling for a classifier on a labelled stream.

- ECE (15 equal-width confidence bins, Guo et al. 2017): `sum_m |B_m| / N * |acc(B_m) - conf(B_m)|`, bin m
  holding the predictions with confidence in `(m / M, (m + 1) / M]`.
- temperature scaling: `softmax(z / T)` with the one `T > 0` that minimises the negative log-likelihood of
  validation labels; it changes confidence, never the predicted class.

Example:
    >>> report = cnnzoo.evaluate(model, data)
    >>> report.accuracy, report.top_k[5], report.ece
    >>> report.per_class            # pandas DataFrame: precision, recall, f1, support
    >>> report.calibrate(data)      # CalibrationResult(temperature=1.8, ece_before=0.071, ece_after=0.012)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_int, received

__all__ = ["EvalReport", "CalibrationResult", "evaluate", "expected_calibration_error", "reliability_table",
           "fit_temperature", "predict_probabilities"]

_EPS = 1e-12


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def reliability_table(probabilities, labels, n_bins: int = 15):
    """Per confidence bin: bounds, count, mean confidence and accuracy (pandas DataFrame)."""
    import pandas as pd

    probabilities = np.asarray(probabilities, dtype="float64")
    labels = np.asarray(labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin m holds (edges[m], edges[m + 1]]; confidence 0 (impossible for a softmax) joins the first bin.
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = []
    for m in range(n_bins):
        mask = index == m
        count = int(mask.sum())
        rows.append({"lower": edges[m], "upper": edges[m + 1], "count": count,
                     "confidence": float(confidence[mask].mean()) if count else np.nan,
                     "accuracy": float(correct[mask].mean()) if count else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(probabilities, labels, n_bins: int = 15) -> float:
    """ECE over `n_bins` equal-width confidence bins.

    Example:
        >>> expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1])   # 0.5 * 0.1 + 0.5 * 0.6 = 0.35
    """
    check_int("n_bins", n_bins, minimum=1)
    table = reliability_table(probabilities, labels, n_bins)
    used = table[table["count"] > 0]
    total = used["count"].sum()
    if total == 0:
        return float("nan")
    return float((used["count"] / total * (used["accuracy"] - used["confidence"]).abs()).sum())


def _nll(logits, labels, temperature=1.0) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels) -> float:
    """The temperature `T` in [0.05, 20] minimising the NLL of `softmax(logits / T)` (1-D bounded search on
    log T; the NLL is convex in 1/T).

    Example:
        >>> fit_temperature(3.0 * calibrated_logits, labels)   # about 3
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype="float64")
    labels = np.asarray(labels).astype(int)
    result = minimize_scalar(lambda log_t: _nll(logits, labels, np.exp(log_t)), bounds=(np.log(0.05), np.log(20.0)),
                             method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def _stream(data, split: str):
    """A tf.data stream of (images, labels) batches (cnnzoo.data.adapt), and class names when the data knows them."""
    from cnnzoo.data.adapt import stream

    return stream(data, name="data", split=split, labels=True, batch_size=64), _class_names(data)


def _class_names(data):
    from cnnzoo.data.imagedata import ImageData

    return list(data.class_names) if isinstance(data, ImageData) else None


def _class_outputs(model, images, views, outputs_probabilities):
    """The model's outputs, or with `views` its probabilities averaged over them."""
    from cnnzoo.evaluate.tta import average_views

    if not views:
        return model(images, training=False)  # training=False: Keras 3.15 preprocessing layers leak training

    def probabilities_of(x):
        out = model(x, training=False)
        return out if outputs_probabilities else tf.nn.softmax(out, axis=-1)

    return average_views(probabilities_of, images, views)


def predict_probabilities(model, data, *, split: str = "val", tta: tuple = ()):
    """(probabilities [N, C], logits [N, C], labels [N]) of `model` on `data`, inference mode; with `tta` views
    (cnnzoo.evaluate.tta) the probabilities averaged over them.

    For a softmax head the logits are `log(p)` (they equal the pre-softmax logits up to a per-row shift, which
    softmax ignores).
    """
    from cnnzoo.evaluate.tta import traced
    from cnnzoo.introspect import outputs_probabilities

    stream, _ = _stream(data, split)
    probs_out = outputs_probabilities(model) or bool(tta)
    infer = traced(model, _class_outputs, tuple(tta), outputs_probabilities(model))

    outputs, labels = [], []
    for batch in stream:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("`data` must yield (images, labels) batches. " + received("data", batch))
        images, y = batch[0], batch[1]
        outputs.append(np.asarray(infer(images), dtype="float64"))
        y = np.asarray(y)
        labels.append(y.argmax(axis=-1) if y.ndim == 2 else y.reshape(-1))
    if not outputs:
        raise ValueError("`data` gave no batches. " + received("data", data))
    raw = np.concatenate(outputs)
    labels = np.concatenate(labels).astype(int)
    if probs_out:
        probabilities = raw / raw.sum(axis=1, keepdims=True)
        logits = np.log(np.clip(probabilities, _EPS, 1.0))
    else:
        logits = raw
        probabilities = _softmax(raw)
    return probabilities, logits, labels


@dataclasses.dataclass
class CalibrationResult:
    """Temperature scaling fitted on validation logits, with ECE and NLL before/after on the report's data."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    report: "EvalReport" = dataclasses.field(repr=False)

    def apply(self, probabilities_or_logits, *, logits: bool = False) -> np.ndarray:
        """Calibrated probabilities for new outputs of the same model."""
        values = np.asarray(probabilities_or_logits, dtype="float64")
        z = values if logits else np.log(np.clip(values, _EPS, 1.0))
        return _softmax(z / self.temperature)


@dataclasses.dataclass
class EvalReport:
    """Evaluation of a classifier: build it with `cnnzoo.evaluate(model, data)` (or `EvalReport.from_outputs`).

    Attributes: `accuracy`, `balanced_accuracy` (mean recall over the classes present), `macro_f1` (unweighted
    mean F1 over the classes), `top_k` ({k: accuracy}), `per_class` (DataFrame of precision, recall, f1, support
    indexed by class name), `confusion_matrix` (counts, rows = true class), `confusion_matrix_normalized` (rows
    sum to 1), `ece`, `reliability` (per-bin table), `nll`, `labels`, `probabilities`, `predictions`.
    """

    labels: np.ndarray
    logits: np.ndarray = dataclasses.field(repr=False)
    class_names: list
    k_values: tuple = (5,)
    n_bins: int = 15
    model: object = dataclasses.field(default=None, repr=False)
    tta: tuple = ()                                  # the test-time augmentation views the scores include
    accuracy_without_tta: float | None = None        # the same model and images without them

    def __post_init__(self):
        self.labels = np.asarray(self.labels).astype(int)
        self.logits = np.asarray(self.logits, dtype="float64")
        if self.logits.ndim != 2 or len(self.logits) != len(self.labels):
            raise ValueError("`logits` must be [N, num_classes] with one row per label. "
                             f"Received: logits.shape={self.logits.shape}, labels.shape={self.labels.shape}")
        if self.class_names is None:
            self.class_names = [str(i) for i in range(self.logits.shape[1])]
        self.class_names = list(self.class_names)
        if len(self.class_names) != self.logits.shape[1]:
            raise ValueError(f"{len(self.class_names)} class names for {self.logits.shape[1]} outputs. "
                             + received("class_names", self.class_names))
        self.probabilities = _softmax(self.logits)

    @classmethod
    def from_outputs(cls, labels, outputs, *, class_names=None, probabilities: bool = True, top_k=(5,),
                     n_bins: int = 15) -> "EvalReport":
        """A report from labels and model outputs (probabilities, or logits with `probabilities=False`)."""
        outputs = np.asarray(outputs, dtype="float64")
        logits = np.log(np.clip(outputs, _EPS, 1.0)) if probabilities else outputs
        return cls(labels=labels, logits=logits, class_names=class_names, k_values=tuple(top_k), n_bins=n_bins)

    # -- metrics ---------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes that occur in the labels (scikit-learn's `balanced_accuracy_score`): on
        imbalanced data it shows what plain accuracy hides."""
        from sklearn.metrics import balanced_accuracy_score

        return float(balanced_accuracy_score(self.labels, self.predictions))

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 over the classes in the labels or the predictions (scikit-learn's
        `f1_score(average="macro")`)."""
        from sklearn.metrics import f1_score

        return float(f1_score(self.labels, self.predictions, average="macro", zero_division=0))

    @property
    def top_k(self) -> dict:
        """{k: fraction of samples whose label is among the k most probable classes}."""
        order = np.argsort(-self.probabilities, axis=1, kind="stable")
        out = {}
        for k in self.k_values:
            k_eff = min(int(k), self.num_classes)
            out[int(k)] = float((order[:, :k_eff] == self.labels[:, None]).any(axis=1).mean())
        return out

    @property
    def per_class(self):
        import pandas as pd
        from sklearn.metrics import precision_recall_fscore_support

        precision, recall, f1, support = precision_recall_fscore_support(
            self.labels, self.predictions, labels=np.arange(self.num_classes), zero_division=0)
        return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                            index=pd.Index(self.class_names, name="class"))

    @property
    def confusion_matrix(self) -> np.ndarray:
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predictions, labels=np.arange(self.num_classes))

    @property
    def confusion_matrix_normalized(self) -> np.ndarray:
        """Rows (true classes) sum to 1; a class absent from the data gives a row of zeros."""
        counts = self.confusion_matrix.astype("float64")
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.probabilities, self.labels, self.n_bins)

    @property
    def reliability(self):
        return reliability_table(self.probabilities, self.labels, self.n_bins)

    @property
    def nll(self) -> float:
        return _nll(self.logits, self.labels)

    def to_dict(self) -> dict:
        extra = {"tta": list(self.tta), "accuracy_without_tta": self.accuracy_without_tta} if self.tta else {}
        return {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1,
                **extra, "top_k": self.top_k, "ece": self.ece, "nll": self.nll,
                "num_samples": int(len(self.labels)), "class_names": self.class_names,
                "per_class": self.per_class.reset_index().to_dict(orient="records"),
                "confusion_matrix": self.confusion_matrix.tolist()}

    def __repr__(self):
        top = ", ".join(f"top{k}={v:.4f}" for k, v in self.top_k.items())
        return (f"EvalReport(n={len(self.labels)}, accuracy={self.accuracy:.4f}, "
                f"balanced_accuracy={self.balanced_accuracy:.4f}, macro_f1={self.macro_f1:.4f}, {top}, "
                f"ece={self.ece:.4f}, classes={self.num_classes})")

    # -- calibration -----------------------------------------------------------------------------------------
    def calibrate(self, val_data=None, *, split: str = "val", logits=None, labels=None) -> CalibrationResult:
        """Fit a temperature on validation logits and report ECE/NLL before and after on this report's data.

        Args:
            val_data: ImageData (its `split`), a tf.data.Dataset of (images, labels), or (images, labels)
                arrays, run through the report's model.
            logits, labels: validation logits [N, C] and labels [N] already computed (instead of `val_data`).

        Example:
            >>> report.calibrate(data.val).temperature
        """
        if logits is not None or labels is not None:
            if logits is None or labels is None or val_data is not None:
                raise ValueError("Give either `val_data`, or both `logits` and `labels`. "
                                 + received("val_data", type(val_data).__name__))
            val_logits, val_labels = np.asarray(logits, dtype="float64"), np.asarray(labels).astype(int)
        else:
            if val_data is None or self.model is None:
                raise ValueError("Give `val_data` (with a report from `evaluate`, which keeps the model) or "
                                 "`logits` and `labels`. " + received("val_data", val_data))
            _, val_logits, val_labels = predict_probabilities(self.model, val_data, split=split)
        if val_logits.shape[1] != self.num_classes:
            raise ValueError(f"Validation outputs have {val_logits.shape[1]} classes, the report "
                             f"{self.num_classes}. " + received("val_data", type(val_data).__name__))
        temperature = fit_temperature(val_logits, val_labels)
        calibrated = EvalReport(labels=self.labels, logits=self.logits / temperature, class_names=self.class_names,
                                k_values=self.k_values, n_bins=self.n_bins, model=self.model)
        return CalibrationResult(temperature=temperature, ece_before=self.ece, ece_after=calibrated.ece,
                                 nll_before=self.nll, nll_after=calibrated.nll, report=calibrated)

    # -- plots -----------------------------------------------------------------------------------------------
    def plot_confusion_matrix(self, *, normalize: bool = True, ax=None):
        """Heatmap of the confusion matrix (row-normalised by default, counts annotated); returns the Figure."""
        fig, ax = _axes(ax, size=(1.0 + 0.5 * self.num_classes, 0.8 + 0.5 * self.num_classes))
        matrix = self.confusion_matrix_normalized if normalize else self.confusion_matrix
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        fig.colorbar(image, ax=ax)
        ticks = np.arange(self.num_classes)
        ax.set_xticks(ticks, self.class_names, rotation=45, ha="right")
        ax.set_yticks(ticks, self.class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        counts = self.confusion_matrix
        if self.num_classes <= 30:
            threshold = matrix.max() / 2 if matrix.size else 0
            for i in range(self.num_classes):
                for j in range(self.num_classes):
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > threshold else "black")
        ax.set_title(f"accuracy {self.accuracy:.3f}")
        return fig

    def plot_reliability(self, *, ax=None):
        """Reliability diagram: accuracy per confidence bin against the diagonal, ECE in the title."""
        fig, ax = _axes(ax, size=(5, 5))
        table = self.reliability
        width = 1.0 / self.n_bins
        centers = (table["lower"] + table["upper"]) / 2
        ax.bar(centers, table["accuracy"].fillna(0.0), width=width, edgecolor="black", label="accuracy")
        ax.bar(centers, (table["confidence"] - table["accuracy"]).fillna(0.0), bottom=table["accuracy"].fillna(0.0),
               width=width, color="red", alpha=0.3, label="gap")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"ECE {self.ece:.4f} ({self.n_bins} bins)")
        ax.legend(loc="upper left")
        return fig


def _axes(ax, size):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure  # no pyplot: works headless and displays inline in notebooks

    fig = Figure(figsize=size)
    return fig, fig.subplots()


def evaluate(model, data, *, split: str = "val", top_k=(5,), n_bins: int = 15, class_names=None,
             thresholds=None, tta=None) -> EvalReport:
    """Evaluate a classifier on labelled data (inference mode) and return an `EvalReport`; a segmenter gets a
    `SegmentationReport` (`.miou`, `.per_class_iou`, `.pixel_accuracy`, `.confusion`, `.plot_predictions()`), a
    multi-label classifier (sigmoid head) a `MultiLabelReport` (`.map`, `.macro_f1`, `.per_label`,
    `.tune_thresholds()`; `thresholds`: per-label decision thresholds, 0.5 by default).

    `tta`: None, "flip", "crops" or ("flip", "crops"): test-time augmentation, probabilities averaged over the
    views (`cnnzoo.evaluate.tta`; segmenters take "flip"). A classifier's report then also holds
    `accuracy_without_tta`, the change TTA made.

    Args:
        model: keras.Model with a softmax or logits head.
        data: ImageData (its `split`, "val" by default), a tf.data.Dataset of (images, labels) batches, or
            (images, labels) arrays.
        top_k: ks for top-k accuracy. n_bins: confidence bins for ECE (15).
        class_names: names for the report (default: the data's, else "0", "1", ...).

    Example:
        >>> report = cnnzoo.evaluate(model, data)
        >>> report.plot_confusion_matrix().savefig("cm.png")
    """
    from cnnzoo.data.imagedata import ImageData
    from cnnzoo.evaluate.tta import check_tta
    from cnnzoo.introspect import is_multilabel, is_segmenter, num_outputs

    split = split if split in ("val", "train") else _bad_split(split)
    views = check_tta(tta, per_pixel=is_segmenter(model))
    if is_segmenter(model):
        from cnnzoo.evaluate.segmentation import evaluate_segmenter

        return evaluate_segmenter(model, data, split=split, class_names=class_names, tta=views)
    if is_multilabel(model):
        from cnnzoo.evaluate.multilabel import evaluate_multilabel

        return evaluate_multilabel(model, data, split=split, class_names=class_names, thresholds=thresholds,
                                   tta=views)
    if isinstance(data, ImageData) and data.task == "multilabel":
        raise ValueError("The data is multi-label but the model's head is not a sigmoid: its scores would be "
                         "read as one class per image. Evaluate a model built with classifier_activation="
                         "'sigmoid'. " + received("data.task", data.task))
    if thresholds is not None:
        raise ValueError("`thresholds` are per-label decision thresholds of a multi-label (sigmoid) model. "
                         + received("thresholds", thresholds))
    check_int("n_bins", n_bins, minimum=1)
    ks = (top_k,) if isinstance(top_k, int) else tuple(top_k)
    for k in ks:
        check_int("top_k", k, minimum=1)
    names = class_names or _class_names(data)
    if names is not None and len(names) != num_outputs(model):
        raise ValueError(f"The data has {len(names)} classes but the model's head has {num_outputs(model)} "
                         f"outputs. Received: data.num_classes={len(names)}")
    _, logits, labels = predict_probabilities(model, data, split=split, tta=views)
    if labels.max(initial=0) >= logits.shape[1] or labels.min(initial=0) < 0:
        raise ValueError(f"Labels must lie in [0, {logits.shape[1]}). Received: labels in "
                         f"[{labels.min()}, {labels.max()}]")
    report = EvalReport(labels=labels, logits=logits, class_names=names, k_values=ks, n_bins=n_bins, model=model,
                        tta=views)
    if views:
        plain, _, _ = predict_probabilities(model, data, split=split)
        report.accuracy_without_tta = float(np.mean(plain.argmax(1) == labels))
    return report


def _bad_split(split):
    raise ValueError(f"`split` must be 'val' or 'train'. {received('split', split)}")
