"""Drift: how far new data (and the model's answers to it) moved from reference data.

Statistics, each with the same verdict rule (PSI <= 0.1 none, <= 0.2 moderate, > 0.2 significant by default):

- per-channel pixel intensity (R, G, B): PSI over 10 reference-decile bins and the two-sample
  Kolmogorov-Smirnov statistic `D = sup |F_ref(x) - F_new(x)|`, both computed exactly from 256-bin histograms;
- penultimate-layer embeddings: PSI per feature (10 reference-decile bins), averaged over the features;
- prediction entropy `H = -sum p log2 p`: PSI over 10 reference-decile bins, and the mean;
- predicted class distribution: PSI over the classes, and the total variation distance.

`PSI = sum_i (p_new,i - p_ref,i) * ln(p_new,i / p_ref,i)`, with proportions floored at 1e-4 so an empty bin
gives a large, finite term. The reference side is stored compactly (histograms, bin edges and proportions) in
a `ReferenceStats`, saved as JSON beside an export so production data can be checked later without the
training set.

Example:
    >>> stats = cnnzoo.validate.reference_stats("exported/digits", train_data)   # doctest: +SKIP
    >>> stats.path                                          # exported/digits/1/reference_stats.json
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from cnnzoo._checks import check_float, received
from cnnzoo.introspect import all_layers, classifier_layer

STATS_FILE = "reference_stats.json"
STATS_VERSION = 1
CHANNELS = ("R", "G", "B")
PSI_BINS = 10
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.2
_FLOOR = 1e-4


# ------------------------------------------------------------------------------------------- statistics

def psi(reference, new, *, floor: float = _FLOOR) -> float:
    """Population Stability Index between two binned distributions (counts or proportions, same bins).

    Example:
        >>> round(psi([50, 50], [60, 40]), 4)     # (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5)
        0.0405
    """
    reference = np.asarray(reference, np.float64)
    new = np.asarray(new, np.float64)
    if reference.shape != new.shape or reference.ndim != 1:
        raise ValueError(f"`reference` and `new` must be 1-D with the same bins. "
                         f"Received: reference.shape={reference.shape}, new.shape={new.shape}")
    if reference.sum() <= 0 or new.sum() <= 0:
        raise ValueError(f"Both distributions need some mass. Received: reference.sum()={reference.sum()}, "
                         f"new.sum()={new.sum()}")
    p_ref = np.maximum(reference / reference.sum(), floor)
    p_new = np.maximum(new / new.sum(), floor)
    return float(np.sum((p_new - p_ref) * np.log(p_new / p_ref)))


def decile_edges(values, n_bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference quantiles 1/n .. (n-1)/n; repeated edges (ties) are merged."""
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))


def bin_counts(values, edges) -> np.ndarray:
    """Counts in the bins (-inf, e1], (e1, e2], ..., (e_k, inf)."""
    index = np.searchsorted(np.asarray(edges, np.float64), np.asarray(values, np.float64).reshape(-1), side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def channel_histograms(images: np.ndarray) -> np.ndarray:
    """[3, 256] int64 pixel counts per RGB channel of uint8 images [N, H, W, 3]."""
    images = np.asarray(images)
    return np.stack([np.bincount(images[..., c].reshape(-1), minlength=256) for c in range(3)]).astype(np.int64)


def histogram_deciles(histogram, n_bins: int = PSI_BINS) -> np.ndarray:
    """Inner decile edges (integer intensities) of the distribution a 256-bin histogram describes."""
    cdf = np.cumsum(histogram) / np.sum(histogram)
    quantiles = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.unique(np.searchsorted(cdf, quantiles - 1e-12, side="left")).astype(np.float64)


def histogram_bin_counts(histogram, edges) -> np.ndarray:
    """Regroup a 256-bin intensity histogram into the bins of `edges` (see `bin_counts`)."""
    index = np.searchsorted(np.asarray(edges, np.float64), np.arange(256), side="left")
    return np.bincount(index, weights=np.asarray(histogram, np.float64), minlength=len(edges) + 1)


def ks_from_histograms(reference, new, *, n_reference: int, n_new: int) -> dict:
    """Two-sample KS statistic of two 256-bin intensity histograms, with an asymptotic p-value.

    The statistic is exact (intensities are integers, so the CDFs only step at 0..255). Pixels of one image
    are not independent, so the p-value takes the image counts as the sample sizes: it is conservative,
    where pixel counts would call every tiny shift significant.
    """
    from scipy.special import kolmogorov

    f_ref = np.cumsum(reference) / np.sum(reference)
    f_new = np.cumsum(new) / np.sum(new)
    statistic = float(np.max(np.abs(f_ref - f_new)))
    n_eff = n_reference * n_new / max(n_reference + n_new, 1)
    return {"statistic": statistic, "p_value": float(kolmogorov(np.sqrt(n_eff) * statistic))}


def entropy_bits(probabilities) -> np.ndarray:
    """Prediction entropy in bits per row: `-sum p log2 p` (0 for a one-hot row)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    return -(p * np.log2(p)).sum(axis=1)


def level(value: float, threshold: float = PSI_SIGNIFICANT) -> str:
    """"none", "moderate" or "significant" for a PSI value (moderate from half the threshold)."""
    if value > threshold:
        return "significant"
    return "moderate" if value > min(PSI_MODERATE, threshold / 2) else "none"


# ------------------------------------------------------------------------------------------- embeddings

def penultimate_model(model):
    """A keras.Model from `model`'s inputs to the input of its classifier Dense (the penultimate features).

    The classifier is the layer named "predictions", else the last Dense; it may sit inside a nested model
    (Input -> augmentation -> zoo model) that is the outer model's last layer. Returns None otherwise.
    """
    import keras

    head = classifier_layer(model)
    if head is None:
        return None
    if any(layer is head for layer in model.layers):
        return keras.Model(model.inputs, head.input, name=f"{model.name}_embeddings")
    for layer in model.layers:
        if isinstance(layer, keras.Model) and any(sub is head for sub in all_layers(layer)):
            inner = penultimate_model(layer)
            if inner is None or layer is not model.layers[-1]:
                return None
            # Rebuild the outer graph with the nested model swapped for its own penultimate model.
            return keras.models.clone_model(model, clone_function=lambda other: inner if other is layer else other)
    return None


_EMBEDDERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def embedding_function(runner) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str | None]:
    """(function uint8 images -> float32 penultimate features [N, D], None), or (None, why not).

    Keras runners use the model's penultimate layer, through the same resize the runner applies. A SavedModel
    gives embeddings only if its `serving_default` has an `embeddings` output; TFLite and ONNX files carry
    only probabilities.
    """
    import tensorflow as tf

    fmt = getattr(runner, "format", None)
    if fmt == "keras":
        if runner not in _EMBEDDERS:    # one traced function per runner: validate may ask many times
            embed = penultimate_model(runner.model)
            if embed is None:
                return None, "the Keras model has no Dense classifier to take the penultimate layer from"
            resize = runner.wrapped.resize
            _EMBEDDERS[runner] = tf.function(
                lambda x: tf.cast(embed(tf.cast(resize(x), tf.float32), training=False), tf.float32),
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        fn = _EMBEDDERS[runner]
        return (lambda images: _batched(fn, images)), None
    if fmt == "saved_model":
        signature = runner.loaded.signatures["serving_default"]
        if "embeddings" in signature.structured_outputs:
            return (lambda images: _batched(lambda x: signature(images=x)["embeddings"], images)), None
        return None, ("this SavedModel's serving_default has no `embeddings` output; validate the Keras model "
                      "(or .keras file) for embedding drift")
    return None, (f"a {fmt} file carries only probabilities; embedding drift needs the Keras model or a "
                  "SavedModel with an `embeddings` output")


def _batched(fn, images, batch_size: int = 64) -> np.ndarray:
    parts = [np.asarray(fn(images[i:i + batch_size]), np.float32) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).reshape(len(images), -1) if parts else np.zeros((0, 0), np.float32)


# ------------------------------------------------------------------------------------------- the reference

@dataclasses.dataclass
class Observation:
    """What drift needs from one data set: pixel histograms, probabilities, entropies, embeddings."""

    n_images: int
    histograms: np.ndarray                 # [3, 256]
    probabilities: np.ndarray | None       # [N, C]
    embeddings: np.ndarray | None          # [N, D]
    embedding_reason: str | None = None

    @property
    def entropy(self) -> np.ndarray | None:
        return None if self.probabilities is None else entropy_bits(self.probabilities)


def observe(images: np.ndarray, runner=None, *, probabilities=None, embed: bool = True) -> Observation:
    """Measure `images` (uint8 [N, H, W, 3]); `probabilities` may be passed when already computed."""
    if runner is not None and probabilities is None:
        probabilities = runner.predict(images)
    embeddings, reason = None, "no model given"
    if runner is not None and embed:
        fn, reason = embedding_function(runner)
        embeddings = None if fn is None else fn(images)
    elif runner is not None:
        reason = "embedding drift not requested"
    return Observation(n_images=len(images), histograms=channel_histograms(images),
                       probabilities=None if probabilities is None else np.asarray(probabilities, np.float64),
                       embeddings=embeddings, embedding_reason=None if embeddings is not None else reason)


@dataclasses.dataclass
class ReferenceStats:
    """Reference-side drift statistics (JSON-serialisable); build with `reference_stats` or `from_observation`.

    Attributes:
        n_images: int, images measured.
        histograms: int array [3, 256], pixel counts per RGB channel.
        class_names: list of str or None.
        class_counts: int array [C] of predicted classes, or None without a model.
        entropy_edges, entropy_proportions: the entropy deciles and the share of reference images in each bin.
        entropy_mean: float, bits.
        embedding_edges, embedding_proportions: per feature, decile edges and bin shares (None if unavailable).
        model: dict describing the model that produced the prediction and embedding statistics.
        path: Path the statistics were saved to or loaded from, if any.
    """

    n_images: int
    histograms: np.ndarray
    class_names: list | None = None
    class_counts: np.ndarray | None = None
    entropy_edges: np.ndarray | None = None
    entropy_proportions: np.ndarray | None = None
    entropy_mean: float | None = None
    embedding_edges: list | None = None
    embedding_proportions: list | None = None
    embedding_reason: str | None = None
    model: dict = dataclasses.field(default_factory=dict)
    created: str = ""
    path: Path | None = None

    @classmethod
    def from_observation(cls, obs: Observation, *, class_names=None, model: dict | None = None) -> "ReferenceStats":
        stats = cls(n_images=obs.n_images, histograms=np.asarray(obs.histograms, np.int64),
                    class_names=None if class_names is None else [str(c) for c in class_names],
                    embedding_reason=obs.embedding_reason, model=dict(model or {}),
                    created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        if obs.probabilities is not None:
            num_classes = obs.probabilities.shape[1]
            stats.class_counts = np.bincount(obs.probabilities.argmax(1), minlength=num_classes).astype(np.int64)
            entropy = obs.entropy
            stats.entropy_edges = decile_edges(entropy)
            stats.entropy_proportions = _proportions(bin_counts(entropy, stats.entropy_edges))
            stats.entropy_mean = float(entropy.mean())
        if obs.embeddings is not None:
            edges = [decile_edges(column) for column in obs.embeddings.T]
            stats.embedding_edges = edges
            stats.embedding_proportions = [_proportions(bin_counts(column, e))
                                           for column, e in zip(obs.embeddings.T, edges)]
        return stats

    def to_dict(self) -> dict:
        def floats(values):
            return None if values is None else [float(np.float32(v)) for v in values]

        return {
            "version": STATS_VERSION, "created": self.created, "n_images": int(self.n_images),
            "model": self.model, "class_names": self.class_names,
            "pixels": {name: self.histograms[c].tolist() for c, name in enumerate(CHANNELS)},
            "predictions": None if self.class_counts is None else {
                "class_counts": self.class_counts.tolist(), "entropy_mean": self.entropy_mean,
                "entropy_edges": floats(self.entropy_edges), "entropy_proportions": floats(self.entropy_proportions)},
            "embeddings": {"reason": self.embedding_reason} if self.embedding_edges is None else {
                "dim": len(self.embedding_edges), "edges": [floats(e) for e in self.embedding_edges],
                "proportions": [floats(p) for p in self.embedding_proportions]},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ReferenceStats":
        if not isinstance(data, dict) or data.get("version") != STATS_VERSION or "pixels" not in data:
            raise ValueError(f"Not cnnzoo reference statistics (version {STATS_VERSION}). "
                             f"Received: data keys={sorted(data) if isinstance(data, dict) else type(data).__name__}")
        histograms = np.array([data["pixels"][c] for c in CHANNELS], np.int64)
        stats = cls(n_images=int(data["n_images"]), histograms=histograms,
                    class_names=data.get("class_names"), model=data.get("model") or {},
                    created=data.get("created", ""))
        predictions = data.get("predictions")
        if predictions:
            stats.class_counts = np.asarray(predictions["class_counts"], np.int64)
            stats.entropy_mean = predictions["entropy_mean"]
            stats.entropy_edges = np.asarray(predictions["entropy_edges"], np.float64)
            stats.entropy_proportions = np.asarray(predictions["entropy_proportions"], np.float64)
        embeddings = data.get("embeddings") or {}
        if "edges" in embeddings:
            stats.embedding_edges = [np.asarray(e, np.float64) for e in embeddings["edges"]]
            stats.embedding_proportions = [np.asarray(p, np.float64) for p in embeddings["proportions"]]
        else:
            stats.embedding_reason = embeddings.get("reason")
        return stats

    def save(self, path) -> Path:
        """Write the statistics as JSON to `path` (a file, or a directory to hold reference_stats.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / STATS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()) + "\n", encoding="utf-8")
        self.path = path
        return path

    @classmethod
    def load(cls, path) -> "ReferenceStats":
        """Read statistics saved by `save` (a file, or a directory holding reference_stats.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / STATS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No reference statistics at {str(path)!r}. {received('reference', str(path))}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"Reference statistics are not valid JSON ({error}). "
                             f"{received('reference', str(path))}") from None
        stats = cls.from_dict(data)
        stats.path = path
        return stats

    def __repr__(self) -> str:
        classes = None if self.class_counts is None else len(self.class_counts)
        dim = None if self.embedding_edges is None else len(self.embedding_edges)
        return f"ReferenceStats(n_images={self.n_images}, classes={classes}, embedding_dim={dim}, path={self.path})"


def _proportions(counts) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    return counts / max(counts.sum(), 1.0)


def stats_path_beside(runner) -> Path | None:
    """Where reference statistics live beside an export: the version directory (or the file's folder)."""
    if getattr(runner, "path", None) is None:
        return None
    path = Path(runner.path)
    return (path if path.is_dir() else path.parent) / STATS_FILE


def reference_stats(model, data, *, path=None, split: str = "train", max_images: int | None = 5000,
                    embeddings: bool = True, class_names=None) -> ReferenceStats:
    """Measure reference data (usually the training set) for later drift checks, and save it beside an export.

    Args:
        model: a keras.Model, a .keras file, an export directory (SavedModel) or a .tflite / .onnx file; its
            predictions (and penultimate features, for Keras models) on `data` become the reference.
        data: ImageData (its `split`), a folder of class subfolders, a tf.data.Dataset, (images, labels), or
            uint8 images [N, H, W, 3].
        path: where to write the JSON (file or directory). None: beside the export (the SavedModel version
            directory, or the folder of a .tflite/.onnx/.keras file); not written for an in-memory model.
        split: "train" or "val", the ImageData split to use.
        max_images: int or None, measure at most this many images (a seeded uniform sample).
        embeddings: bool, also store penultimate-feature statistics (Keras models only).

    Example:
        >>> stats = cnnzoo.validate.reference_stats("exported/digits", data)   # doctest: +SKIP
        >>> report = cnnzoo.validate("exported/digits", new_data)   # finds the saved statistics   # doctest: +SKIP
    """
    from cnnzoo.validate import inputs

    runner = inputs.runner_for(model)
    sample = inputs.images_from(data, name="data", split=split, max_images=max_images, size=runner.input_size,
                                class_names=class_names or runner.class_names, fit=runner.fit)
    obs = observe(sample.images, runner, embed=embeddings)
    stats = ReferenceStats.from_observation(obs, class_names=runner.class_names, model=inputs.describe(runner))
    target = path if path is not None else stats_path_beside(runner)
    if target is not None:
        stats.save(target)
    return stats


def load_reference(reference, runner, *, split: str = "train", max_images: int | None = 5000,
                   embeddings: bool = True) -> ReferenceStats | None:
    """A ReferenceStats from what `validate(reference=...)` accepts; None when there is none to be found.

    None looks for reference_stats.json beside the export; a path to a .json file (or a directory holding
    reference_stats.json and no images) loads it; anything else is reference data measured with `runner`.
    """
    from cnnzoo.validate import inputs

    if reference is None:
        beside = stats_path_beside(runner)
        return ReferenceStats.load(beside) if beside is not None and beside.is_file() else None
    if isinstance(reference, ReferenceStats):
        return reference
    if isinstance(reference, dict):
        return ReferenceStats.from_dict(reference)
    if isinstance(reference, (str, os.PathLike)):
        path = Path(reference)
        if path.suffix.lower() == ".json":
            return ReferenceStats.load(path)
        if path.is_dir():   # a folder holding the statistics, or an export root: its newest version's
            versions = sorted((int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
            for folder in [path] + [path / str(v) for v in versions[:1]]:
                if (folder / STATS_FILE).is_file():
                    return ReferenceStats.load(folder)
    sample = inputs.images_from(reference, name="reference", split=split, max_images=max_images,
                                size=runner.input_size, class_names=runner.class_names, fit=runner.fit)
    obs = observe(sample.images, runner, embed=embeddings)
    return ReferenceStats.from_observation(obs, class_names=runner.class_names, model=inputs.describe(runner))


# ------------------------------------------------------------------------------------------- comparison

def compare(reference: ReferenceStats, new: Observation, *, psi_threshold: float = PSI_SIGNIFICANT,
            max_ks: float | None = None) -> dict:
    """The drift section of a validation report: statistics, their levels and a verdict.

    Returns a dict with "significant" (bool), "level", "reasons" (list of str), "psi" (name -> value for
    R, G, B, embedding, entropy, class_distribution; None when not measured), "ks" (channel -> statistic and
    p-value) and details per statistic.
    """
    psi_threshold = check_float("psi_threshold", psi_threshold, minimum=0.0, exclusive_minimum=True)
    if max_ks is not None:
        max_ks = check_float("max_ks", max_ks, minimum=0.0, maximum=1.0)
    values: dict[str, float | None] = {}
    ks: dict[str, dict] = {}
    channels = {}
    for c, name in enumerate(CHANNELS):
        edges = histogram_deciles(reference.histograms[c])
        values[name] = psi(histogram_bin_counts(reference.histograms[c], edges),
                           histogram_bin_counts(new.histograms[c], edges))
        ks[name] = ks_from_histograms(reference.histograms[c], new.histograms[c],
                                      n_reference=reference.n_images, n_new=new.n_images)
        channels[name] = {"reference_mean": _hist_mean(reference.histograms[c]),
                          "new_mean": _hist_mean(new.histograms[c]), "psi": values[name], "ks": ks[name]}

    embedding = _embedding_drift(reference, new, psi_threshold)
    values["embedding"] = embedding.get("psi_mean")

    entropy, classes = None, None
    if reference.class_counts is not None and new.probabilities is not None:
        if len(reference.class_counts) != new.probabilities.shape[1]:
            raise ValueError(f"The reference statistics describe {len(reference.class_counts)} classes, the model "
                             f"{new.probabilities.shape[1]}: they come from another model. "
                             f"Received: reference.model={reference.model}")
        h = new.entropy
        entropy = {"reference_mean": reference.entropy_mean, "new_mean": float(h.mean()),
                   "delta": float(h.mean() - reference.entropy_mean),
                   "max_bits": float(np.log2(new.probabilities.shape[1])),
                   "psi": psi(reference.entropy_proportions, bin_counts(h, reference.entropy_edges))}
        new_counts = np.bincount(new.probabilities.argmax(1), minlength=len(reference.class_counts))
        p_ref, p_new = _proportions(reference.class_counts), _proportions(new_counts)
        names = reference.class_names or [str(i) for i in range(len(p_ref))]
        classes = {"reference": dict(zip(names, p_ref.round(4).tolist())),
                   "new": dict(zip(names, p_new.round(4).tolist())),
                   "total_variation": float(0.5 * np.abs(p_ref - p_new).sum()),
                   "psi": psi(reference.class_counts, new_counts)}
    values["entropy"] = None if entropy is None else entropy["psi"]
    values["class_distribution"] = None if classes is None else classes["psi"]

    reasons = [f"PSI {name} = {value:.3f} > {psi_threshold:g}" for name, value in values.items()
               if value is not None and value > psi_threshold]
    if max_ks is not None:
        reasons += [f"KS {name} = {v['statistic']:.3f} > {max_ks:g}" for name, v in ks.items()
                    if v["statistic"] > max_ks]
    measured = [v for v in values.values() if v is not None]
    worst = max(measured) if measured else 0.0
    return {"significant": bool(reasons), "level": "significant" if reasons else level(worst, psi_threshold),
            "reasons": reasons, "threshold": psi_threshold, "max_ks": max_ks, "psi": values, "ks": ks,
            "channels": channels, "embedding": embedding, "entropy": entropy, "class_distribution": classes,
            "n_reference": int(reference.n_images), "n_new": int(new.n_images),
            "reference": {"path": None if reference.path is None else str(reference.path), "model": reference.model,
                          "created": reference.created}}


def _hist_mean(histogram) -> float:
    return float(np.dot(np.arange(256), histogram) / max(np.sum(histogram), 1))


def _embedding_drift(reference: ReferenceStats, new: Observation, threshold: float) -> dict:
    if new.embeddings is None:
        return {"available": False, "reason": new.embedding_reason or "not measured"}
    if reference.embedding_edges is None:
        return {"available": False, "reason": f"the reference statistics hold no embeddings "
                                              f"({reference.embedding_reason or 'not measured'})"}
    if new.embeddings.shape[1] != len(reference.embedding_edges):
        return {"available": False, "reason": f"the reference has {len(reference.embedding_edges)} features, "
                                              f"this model {new.embeddings.shape[1]}: another model"}
    per_feature = []
    for column, edges, proportions in zip(new.embeddings.T, reference.embedding_edges,
                                          reference.embedding_proportions):
        if len(edges) == 0:       # a constant feature on the reference: nothing to bin
            continue
        per_feature.append(psi(proportions, bin_counts(column, edges)))
    if not per_feature:
        return {"available": False, "reason": "every reference feature is constant"}
    per_feature = np.asarray(per_feature)
    return {"available": True, "dim": len(reference.embedding_edges), "features_used": int(per_feature.size),
            "psi_mean": float(per_feature.mean()), "psi_median": float(np.median(per_feature)),
            "psi_max": float(per_feature.max()), "share_above_threshold": float((per_feature > threshold).mean())}


__all__ = ["ReferenceStats", "Observation", "reference_stats", "load_reference", "observe", "compare", "psi",
           "decile_edges", "bin_counts", "channel_histograms", "ks_from_histograms", "entropy_bits",
           "penultimate_model", "embedding_function", "STATS_FILE", "PSI_SIGNIFICANT"]
