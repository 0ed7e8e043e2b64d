"""`cnnzoo.export(...)`: write every deployment format from one call, parity-checked before anything is final.

Everything is written to a hidden staging directory inside `out_dir` (TF Serving ignores non-numeric names) and
renamed to `out_dir/<version>/` only after every format has been reloaded, run and compared with the Keras model.
Staging directories a killed export left behind are removed by the next export into the same `out_dir`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_choice, check_directory, check_int, received
from cnnzoo.export import card as card_lib
from cnnzoo.export import parity as parity_lib
from cnnzoo.export.prepare import augmentation_layers, inference_model
from cnnzoo.export.report import ExportReport
from cnnzoo.export.runners import CARD_FILE, KerasRunner, load_runner, measure_latency
from cnnzoo.export.samples import Samples, calibration_and_holdout, collect
from cnnzoo.export.serving import FITS, RawImageModel, input_size_of
from cnnzoo.introspect import has_classifier, is_mixed_precision, is_multilabel, is_segmenter
from cnnzoo.options import DEFAULT_EXPORT_FORMATS, EXPORT_FORMATS, TFLITE_FORMATS

FORMATS, DEFAULT_FORMATS = EXPORT_FORMATS, DEFAULT_EXPORT_FORMATS
KERAS_FILE = "model.keras"
log = logging.getLogger("cnnzoo.export")


def export(model, out_dir, *, formats: Sequence[str] | str = DEFAULT_FORMATS, class_names: Sequence[str] | None = None,
           representative_data=None, version: int | None = None, parity: bool | str = True,
           parity_data=None, top_k: int = 5,
           opset: int = 17, input_size: tuple[int, int] | None = None, fit: str = "stretch",
           name: str | None = None, metrics: dict | None = None, calibration_images: int = 200,
           holdout_images: int = 256, latency_repeats: int = 20, thresholds=None, tta=None) -> ExportReport:
    """Export `model` for deployment; every format takes raw uint8 RGB images.

    Args:
        model: keras.Model whose input is 0..255 pixels (cnnzoo models: a Preprocessing layer first).
        out_dir: str or Path, the TF Serving model base path; this export becomes `out_dir/<version>/`.
        formats: str or sequence from "saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic",
            "tflite_int8", "onnx", "keras".
        class_names: list of str, one per class. Default: `representative_data.class_names` for an ImageData,
            else "0", "1", ...
        representative_data: ImageData, tf.data.Dataset of images or (images, labels), an image array or an
            (images, labels) pair. Calibrates int8 (first `calibration_images`) and provides the held-out
            parity batch (ImageData.val, else the images after the calibration set). Required for tflite_int8.
        version: int, the version directory; default the next integer. An existing version is never overwritten.
        parity: True (a failed check raises ParityError and writes nothing), "warn" (write and record the
            failure in the card), or False (skip the checks; recorded as skipped).
        parity_data: held-out images for the parity checks, in any form `representative_data` takes; with
            labels, the int8 accuracy drop is checked too. Default: drawn from `representative_data`.
        top_k: int, classes returned by the SavedModel's `class_ids` / `class_names` outputs.
        opset: int, ONNX opset.
        input_size: (height, width) to export at when the model accepts any size; default the model's size.
        fit: str, how the training pipeline fitted images to the size: "stretch", "crop" or "pad" (cnnzoo.data's
            `fit`); the SavedModel resizes other sizes the same way (bilinear, rounded to uint8).
        name: str, model name for the card and warmup requests (default `model.name`).
        metrics: dict, evaluation figures to record in the card.
        calibration_images, holdout_images: int, sizes of the int8 calibration set and the parity batch.
        latency_repeats: int, timed batch-1 runs per format for the card.
        thresholds: a multi-label (sigmoid) model's per-class decision thresholds for the `labels` output:
            None (tuned for the best F1 of each class on the labelled held-out batch, up to `holdout_images` of
            an ImageData's validation split or of `parity_data`, if it has such labels; else 0.5), "tune" (the same, and an error without labels), a
            number, one per class, or {class name: threshold}. Recorded in the card and every artifact.
        tta: None or "flip": every format returns the mean of the image's and its mirror's probabilities (the
            view runs inside the graph, parity-checked like the rest; recorded in the card). Only for classes that
            survive a mirror image.

    Returns:
        ExportReport with .paths .parity .sizes .latency .card.

    Example:
        >>> report = cnnzoo.export(model, "exported/digits", formats=("saved_model", "tflite_int8", "onnx"),
        ...                        representative_data=data)                                  # doctest: +SKIP
        >>> print(report.summary())                                                         # doctest: +SKIP
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', type(model).__name__)}")
    _check_classifier(model)
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise TypeError(f"`out_dir` must be a directory path. {received('out_dir', out_dir)}")
    formats = _check_formats(formats)
    if parity not in (True, False, "warn"):
        raise ValueError(f"`parity` must be True, False or 'warn'. {received('parity', parity)}")
    top_k = check_int("top_k", top_k, minimum=1)
    opset = check_int("opset", opset, minimum=9, maximum=23)
    check_choice("fit", fit, FITS)
    calibration_images = check_int("calibration_images", calibration_images, minimum=1)
    holdout_images = check_int("holdout_images", holdout_images, minimum=1)
    latency_repeats = check_int("latency_repeats", latency_repeats, minimum=1)
    if metrics is not None and not isinstance(metrics, dict):
        raise TypeError(f"`metrics` must be a dict. {received('metrics', metrics)}")
    if "tflite_int8" in formats and representative_data is None:
        raise ValueError("`representative_data` is required to calibrate tflite_int8 (an ImageData, a dataset or "
                         "an array of training images). Received: representative_data=None")

    out_dir = Path(check_directory("out_dir", out_dir))
    version = _next_version(out_dir, version)
    stripped = augmentation_layers(model)
    clean = inference_model(model)
    recast = clean is not model and is_mixed_precision(model)
    if input_size is None and _dynamic(clean):
        input_size = getattr(representative_data, "image_size", None)
    size = input_size_of(clean, input_size)
    names = _class_names(clean, class_names, representative_data)
    multilabel = is_multilabel(clean)
    if thresholds is not None and not multilabel:
        raise ValueError("`thresholds` are the decision thresholds of a multi-label (sigmoid) model. "
                         + received("thresholds", thresholds))
    model_name = name or model.name

    if representative_data is not None:
        calibration, holdout, disjoint = calibration_and_holdout(
            representative_data, input_size=size, calibration=calibration_images, holdout=holdout_images, fit=fit,
            multi_hot=multilabel)
    else:
        calibration, holdout, disjoint = None, Samples(_synthetic_images(size, min(holdout_images, 32))), False
    if parity_data is not None:
        holdout, disjoint = collect(parity_data, holdout_images, size, "parity_data", fit, multilabel), True
    threshold_source = None
    if multilabel:
        thresholds, threshold_source = _decision_thresholds(thresholds, clean, holdout, names, size, fit, tta)
    wrapped = RawImageModel(clean, input_size=size, class_names=names, top_k=top_k, fit=fit, thresholds=thresholds,
                            tta=tta)

    check_directory("out_dir", out_dir, create=True)
    remove_stale_staging(out_dir)
    staging = out_dir / _staging_name(version)
    staging.mkdir()
    try:
        report = _write_and_check(
            wrapped, staging, formats, model_name=model_name, calibration=calibration, holdout=holdout,
            opset=opset, parity=parity, latency_repeats=latency_repeats)
        report.card = card_lib.build_card(
            name=model_name, version=version, model=clean, class_names=names, input_size=size,
            fit=fit, top_k=wrapped.top_k,
            formats={fmt: {"path": str(report.paths[fmt].relative_to(staging)) or ".",
                           "size_bytes": report.sizes[fmt], "latency_batch1": report.latency.get(fmt),
                           "parity_passed": report.parity.get(fmt, {}).get("passed")} for fmt in report.paths},
            parity=report.parity, metrics=metrics, held_out=disjoint, holdout_images=len(holdout),
            calibration_images=None if calibration is None else len(calibration), stripped=stripped,
            recast=recast, opset=opset if "onnx" in formats else None, softmax_added=wrapped.adds_softmax,
            task=wrapped.task,
            thresholds=None if wrapped.thresholds is None else dict(zip(names, wrapped.thresholds)))
        if threshold_source is not None:
            report.card["thresholds_source"] = threshold_source
        if wrapped.tta:
            report.card["tta"] = list(wrapped.tta)
        report.card["parity"]["checked"] = parity is not False
        report.card["parity"]["synthetic_images"] = representative_data is None and parity_data is None
        report.card["latency_batch1_keras_reference"] = report.latency.pop("keras_reference", None)
        card_lib.write_card(report.card, staging / CARD_FILE)
        final = out_dir / str(version)
        if final.exists():
            raise FileExistsError(f"Version {version} appeared in {out_dir} during export; nothing was "
                                  f"overwritten. {received('version', version)}")
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    report.directory = final
    report.version = version
    report.paths = {fmt: final / path.relative_to(staging) for fmt, path in report.paths.items()}
    return report


def _decision_thresholds(thresholds, model, holdout: Samples, names, size, fit, tta):
    """(per-class thresholds, how they were chosen) for a multi-label export."""
    from cnnzoo.evaluate.multilabel import best_f1_thresholds, check_thresholds

    labelled = holdout.labels is not None and holdout.labels.ndim == 2
    if thresholds is None or (isinstance(thresholds, str) and thresholds == "tune"):
        if not labelled:
            if thresholds == "tune":
                raise ValueError("thresholds='tune' needs labelled held-out images (an ImageData with a validation "
                                 "split, or parity_data with multi-hot labels). Received: thresholds='tune'")
            return None, "0.5 for every class (no labelled validation images to tune on)"
        probabilities = KerasRunner(model, class_names=names, input_size=size, fit=fit, tta=tta).predict(
            holdout.images)
        tuned = best_f1_thresholds(holdout.labels, probabilities)
        return [float(t) for t in tuned], (f"tuned for the best F1 of each class on {len(holdout)} labelled "
                                           "validation images")
    if isinstance(thresholds, str):
        raise ValueError(f"`thresholds` must be None, 'tune', a number, a list or a dict. "
                         f"{received('thresholds', thresholds)}")
    return [float(t) for t in check_thresholds(thresholds, names)], "given"


# Staging directories: ".cnnzoo-export-<version>-<random>.<pid>@<host>" (TF Serving skips names that are not
# numbers). The writer's pid and host let the next export remove what a killed export left behind, and only that.
STAGING_PREFIX = ".cnnzoo-export-"
STALE_AFTER_S = 24 * 3600   # a staging dir of another host (or an unnamed writer) untouched this long is stale
_STAGING = re.compile(r"^\.cnnzoo-export-\d+-[0-9a-f]{8}(?:\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+))?$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _staging_name(version: int) -> str:
    return f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}.{os.getpid()}@{_host()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process
        return True
    return True


def remove_stale_staging(out_dir, *, stale_after_s: float = STALE_AFTER_S) -> list[str]:
    """Delete the staging directories in `out_dir` that killed exports left: those whose writer (a process of
    this host) is gone, and those of other hosts or unknown writers untouched for `stale_after_s` seconds. The
    staging directory of an export still running, in this process or another, is kept. Returns the names removed.
    """
    removed = []
    for entry in Path(out_dir).iterdir() if Path(out_dir).is_dir() else ():
        match = _STAGING.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        if match["pid"] and match["host"] == _host() and os.name == "posix":
            stale = not _alive(int(match["pid"]))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > stale_after_s
            except OSError:   # removed meanwhile
                continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
            log.info("removed %s, left in %s by an export that did not finish", entry.name, out_dir)
    return removed


def _write_and_check(wrapped: RawImageModel, staging: Path, formats: list[str], *, model_name: str,
                     calibration: Samples | None, holdout: Samples, opset: int, parity,
                     latency_repeats: int) -> ExportReport:
    from cnnzoo.export import onnx as onnx_lib
    from cnnzoo.export import tflite as tflite_lib
    from cnnzoo.export.saved_model import write_saved_model

    report = ExportReport(directory=staging, version=0)
    metadata = {"name": model_name}
    clock = _Clock()
    if "saved_model" in formats:
        with clock("saved_model"):
            write_saved_model(wrapped, staging, model_name=model_name, metadata=metadata,
                              warmup_images=holdout.images[:1])
        report.paths["saved_model"] = staging
        report.sizes["saved_model"] = _saved_model_bytes(staging)
    wanted_tflite = [fmt for fmt in formats if fmt in TFLITE_FORMATS]
    if wanted_tflite:
        with tflite_lib.TFLiteConverter(wrapped) as converter:
            for fmt in wanted_tflite:
                with clock(fmt):
                    data = converter.convert(fmt, metadata=metadata,
                                             representative=None if calibration is None else calibration.images)
                report.paths[fmt] = _write(staging / tflite_lib.FILE_NAMES[fmt], data)
    if "onnx" in formats:
        with clock("onnx"):
            data = onnx_lib.convert(wrapped, opset=opset, metadata=metadata)
        report.paths["onnx"] = _write(staging / onnx_lib.FILE_NAME, data)
    if "keras" in formats:
        with clock("keras"):
            wrapped.model.save(staging / KERAS_FILE)
        report.paths["keras"] = staging / KERAS_FILE
    for fmt, path in report.paths.items():
        report.sizes.setdefault(fmt, path.stat().st_size)

    with _exact_float32():
        _check(report, wrapped, holdout, parity, latency_repeats, clock)
    return report


@contextlib.contextmanager
def _exact_float32():
    # On Ampere+ GPUs TensorFlow runs float32 convolutions in TF32 (10-bit mantissa): the Keras reference would
    # then differ from the CPU runtimes (TFLite, ONNX) by ~1e-3 and fail a 1e-4 parity check that is not the
    # artifact's fault. Compare in true float32.
    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(enabled)


def _check(report: ExportReport, wrapped: RawImageModel, holdout: Samples, parity, latency_repeats: int,
           clock) -> None:
    reference_runner = KerasRunner(wrapped.model, class_names=wrapped.class_names, input_size=wrapped.input_size,
                                   fit=wrapped.fit, thresholds=wrapped.thresholds, tta=wrapped.tta)
    reference = reference_runner.predict(holdout.images, batch_size=64)
    report.latency["keras_reference"] = measure_latency(reference_runner, holdout.images[:1],
                                                        repeats=latency_repeats)
    results = {}
    for fmt, path in report.paths.items():
        with clock(f"{fmt} check"):
            runner = load_runner(path) if fmt != "keras" else load_runner(
                path, class_names=wrapped.class_names, input_size=wrapped.input_size, fit=wrapped.fit,
                thresholds=wrapped.thresholds, tta=wrapped.tta)
            if parity is not False:
                results[fmt] = parity_lib.compare(fmt, runner, reference, holdout)
            report.latency[fmt] = measure_latency(runner, holdout.images[:1], repeats=latency_repeats)
            del runner
    report.parity = {fmt: result.to_dict() for fmt, result in results.items()}
    if parity is True:
        parity_lib.raise_on_failure(results)
    elif parity == "warn" and not all(result.passed for result in results.values()):
        failed = ", ".join(fmt for fmt, result in results.items() if not result.passed)
        warnings.warn(f"Parity failed for {failed}; written anyway (parity='warn'), see model_card.json.",
                      stacklevel=4)


class _Clock:
    """Logs how long each step takes (logger "cnnzoo.export", level INFO)."""

    def __call__(self, step: str):
        self.step = step
        return self

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        if exc[0] is None:
            log.info("%s: %.1f s", self.step, time.perf_counter() - self.start)


def _check_formats(formats) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, (list, tuple)) or not formats:
        raise ValueError(f"`formats` must be a non-empty list of format names. {received('formats', formats)}")
    unique = []
    for fmt in formats:
        if fmt not in FORMATS:
            shown = ", ".join(repr(f) for f in FORMATS)
            raise ValueError(f"`formats` entries must be among {shown}. {received('formats', list(formats))}")
        if fmt not in unique:
            unique.append(fmt)
    return unique


def _next_version(out_dir: Path, version) -> int:
    existing = sorted(int(p.name) for p in out_dir.iterdir() if p.is_dir() and p.name.isdigit()) \
        if out_dir.is_dir() else []
    if version is None:
        return (existing[-1] + 1) if existing else 1
    version = check_int("version", version, minimum=1)
    if (out_dir / str(version)).exists():
        raise FileExistsError(f"`version` {version} already exists in {out_dir}; exports never overwrite a "
                              f"version (omit `version` for the next one, {existing[-1] + 1 if existing else 1}). "
                              f"{received('version', version)}")
    return version


def _class_names(model, class_names, data) -> list[str]:
    classes = int(model.output_shape[-1])
    if class_names is None:
        from cnnzoo.data.imagedata import ImageData

        class_names = (isinstance(data, ImageData) and data.class_names) or [str(i) for i in range(classes)]
    if isinstance(class_names, str) or not all(isinstance(c, str) and c for c in class_names):
        raise TypeError(f"`class_names` must be a list of non-empty strings. {received('class_names', class_names)}")
    class_names = list(class_names)
    if len(class_names) != classes:
        raise ValueError(f"`class_names` must have one name per model output ({classes}). "
                         f"Received: len(class_names)={len(class_names)}")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"`class_names` must be unique. {received('class_names', class_names)}")
    if any("\n" in c for c in class_names):
        raise ValueError(f"`class_names` must not contain newlines (labels.txt is one per line). "
                         f"{received('class_names', class_names)}")
    return class_names


def _check_classifier(model) -> None:
    """Export writes classifiers (probabilities, class ids, class names) and segmenters (per-pixel probabilities
    and masks); refuse a feature extractor, whose "probabilities" would be raw features and whose labels.txt
    would name every feature channel."""
    if not getattr(model, "outputs", None) or has_classifier(model):
        return      # an unbuilt model is refused by inference_model, with its own message
    if len(model.outputs) == 1 and is_segmenter(model) and _ends_in_softmax(model):
        return
    shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else [tuple(t.shape) for t in model.outputs]
    raise ValueError(
        "`model` is neither a classifier nor a segmenter: its output is not class scores from a Dense/softmax head "
        "nor per-pixel softmax probabilities (output shape "
        f"{shape}; a feature extractor such as create_model(..., include_top=False) or features_only=True). "
        "cnnzoo.export writes classifiers and segmenters only: add a head first (create_model(name, "
        "num_classes=N), keras.layers.Dense(N, activation='softmax') on the features, or "
        f"create_segmenter(backbone, num_classes=N)) and train it. {received('model', model.name)}")


def _ends_in_softmax(model) -> bool:
    """A segmenter's output layer is a softmax (create_segmenter's "probabilities"): per-pixel class scores."""
    layer = model.outputs[0]._keras_history[0] if hasattr(model.outputs[0], "_keras_history") else None
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "softmax" or type(layer).__name__ == "Softmax"


def _dynamic(model) -> bool:
    shape = model.input_shape
    shape = shape[0] if isinstance(shape, list) else shape
    return len(shape) == 4 and (shape[1] is None or shape[2] is None)


def _synthetic_images(size: tuple[int, int], count: int) -> np.ndarray:
    # Smooth gradients with noise: a deterministic numeric check when the user gives no data.
    rng = np.random.default_rng(0)
    height, width = size
    y, x = np.mgrid[0:height, 0:width]
    images = []
    for i in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        base = np.stack([np.sin(x / width * np.pi * (1 + i % 3) + p) * np.cos(y / height * np.pi + p)
                         for p in phase], -1)
        images.append(np.clip(127.5 + 100 * base + rng.normal(0, 12, base.shape), 0, 255))
    return np.asarray(images, np.uint8)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _saved_model_bytes(directory: Path) -> int:
    files = [directory / "saved_model.pb", *(directory / "variables").glob("*"), *(directory / "assets").glob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())
