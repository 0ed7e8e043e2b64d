"""`cnnzoo.validate(model_or_export, data, ...)`: run the functional, performance, calibration and drift checks on
the runner that will be deployed and gather them in one `ValidationReport`."""
from __future__ import annotations

import sys
from typing import Sequence

from cnnzoo._checks import check_choice, check_float, check_int, received
from cnnzoo.validate import drift as drift_lib
from cnnzoo.validate import functional as functional_lib
from cnnzoo.validate import inputs
from cnnzoo.validate import performance as perf
from cnnzoo.validate.report import SECTIONS, Thresholds, ValidationReport


def validate(source, data, *, reference=None, golden=None, thresholds=None, checks: Sequence[str] = SECTIONS,
             perturbations="default", split: str = "val", max_images: int | None = 1000,
             consistency_images: int = 256, latency_runs: int = 50, warmup: int = 5,
             batch_sizes: Sequence[int] = perf.DEFAULT_BATCH_SIZES, throughput_repeats: int = 3,
             stress_rate: float = 20.0, stress_seconds: float = 3.0, stress_workers: int = 4,
             embeddings: bool = True, verbose: bool = False) -> ValidationReport:
    """Validate a model the way it will ship: golden, accuracy, consistency, latency, calibration and drift.

    Args:
        source: keras.Model, .keras file, export directory (its newest version), SavedModel directory, .tflite
            or .onnx file, or a runner from `cnnzoo.export.load_runner`.
        data: the new or held-out data: ImageData (its `split`), a folder of class subfolders, a
            tf.data.Dataset, (uint8 images, labels), or uint8 images alone (then accuracy and calibration are
            skipped).
        reference: drift reference: None (reference_stats.json beside the export, if any), a statistics file
            or `ReferenceStats`, or reference data in any form `data` takes (its "train" split).
        golden: golden cases: a folder of class subfolders or (images, labels); every miss is listed.
        thresholds: dict or `Thresholds`: the pass/fail limits (defaults: all golden right, no stress errors,
            no PSI above 0.2).
        checks: which sections run, from "functional", "performance", "calibration", "drift".
        perturbations: "default" (brightness +-10 %, rotation +-5 degrees, 90 % crop), or a list of names
            ("hflip", "vflip", "brightness+10%", ...) and `functional.Perturbation`s.
        split: "val" or "train", the ImageData split `data` is read from.
        max_images: int or None, at most this many images of `data` (a seeded uniform sample).
        consistency_images: int, images used for the consistency check (each is run once per perturbation).
        latency_runs, warmup: batch-1 latency runs after warm-up runs.
        batch_sizes: batch sizes for the throughput curve and the T(B) fit.
        throughput_repeats: timed calls per batch size (the median counts).
        stress_rate, stress_seconds, stress_workers: the stress run (requests/s, seconds, threads); 0 seconds
            skips it.
        embeddings: bool, measure penultimate-layer drift (Keras models; SavedModels with an `embeddings` output).
        verbose: bool, print progress to stderr.

    Returns:
        ValidationReport; `.passed` gates a deployment, `.save(dir)` writes JSON, Markdown and plots.

    Example:
        >>> report = cnnzoo.validate("exported/digits", "incoming/", golden="golden/",
        ...                          thresholds={"max_latency_p99_ms": 25, "min_consistency": 0.95})  # doctest: +SKIP
        >>> report.passed, report.drift["significant"], report.performance["latency"]["p99_ms"]  # doctest: +SKIP
    """
    thresholds = Thresholds.coerce(thresholds)
    if isinstance(checks, str):
        checks = [checks]
    checks = [check_choice("checks", c, SECTIONS) for c in checks]
    if not checks:
        raise ValueError(f"`checks` must name at least one of {SECTIONS}. {received('checks', checks)}")
    check_int("consistency_images", consistency_images, minimum=1)
    check_int("latency_runs", latency_runs, minimum=1)
    check_int("warmup", warmup, minimum=0)
    check_int("throughput_repeats", throughput_repeats, minimum=1)
    sizes = perf._batch_sizes(batch_sizes)
    check_float("stress_rate", stress_rate, minimum=0.0, exclusive_minimum=True)
    check_float("stress_seconds", stress_seconds, minimum=0.0)
    check_int("stress_workers", stress_workers, minimum=1)
    perturbation_list = functional_lib.resolve_perturbations(perturbations)

    def say(message):
        if verbose:
            print(f"validate: {message}", file=sys.stderr, flush=True)

    say("loading the model")
    runner = inputs.runner_for(source)
    names = runner.class_names
    say("reading data")
    sample = inputs.images_from(data, name="data", split=split, max_images=max_images, size=runner.input_size,
                                class_names=names, fit=runner.fit)
    probabilities = runner.predict(sample.images)
    if names is None:
        names = [str(i) for i in range(probabilities.shape[1])]
    report_args = {"model": inputs.describe(runner), "thresholds": thresholds, "notes": list(sample.notes),
                   "skipped": {}, "data": {"n_images": len(sample), "labelled": sample.labels is not None,
                                           "skipped_files": [{"path": str(p), "reason": r} for p, r in sample.skipped]}}
    skipped = report_args["skipped"]
    for section in SECTIONS:
        if section not in checks:
            skipped[section] = "not requested"

    eval_report, accuracy = None, None
    if sample.labels is not None and ("functional" in checks or "calibration" in checks):
        accuracy, eval_report = functional_lib.accuracy_check(sample.labels, probabilities, names)
    if "functional" in checks:
        say("functional: accuracy, golden cases, consistency")
        functional = {"accuracy": accuracy}
        if sample.labels is None:
            report_args["notes"].append("data has no labels: accuracy and calibration were not measured")
        if golden is not None:
            gold = inputs.images_from(golden, name="golden", size=runner.input_size, class_names=names,
                                      fit=runner.fit)
            if gold.labels is None:
                raise ValueError(f"`golden` must carry labels (class subfolders or (images, labels)). "
                                 f"{received('golden', type(golden).__name__)}")
            functional["golden"] = functional_lib.golden_check(runner, gold.images, gold.labels, class_names=names,
                                                               paths=gold.paths, skipped=gold.skipped)
            report_args["notes"] += gold.notes
        subset = slice(0, consistency_images)
        functional["consistency"] = functional_lib.consistency_check(
            runner, sample.images[subset], perturbation_list, predictions=probabilities[subset].argmax(1))
        report_args["functional"] = functional

    if "calibration" in checks:
        if eval_report is None:
            skipped["calibration"] = "data has no labels"
        else:
            table = eval_report.reliability
            report_args["calibration"] = {"ece": eval_report.ece, "n_bins": eval_report.n_bins,
                                          "n": int(len(sample.labels)), "nll": eval_report.nll,
                                          "reliability": table.to_dict(orient="records")}
            report_args["eval_report"] = eval_report

    if "drift" in checks:
        say("drift: reference statistics")
        stats = drift_lib.load_reference(reference, runner, embeddings=embeddings)
        if stats is None:
            skipped["drift"] = ("no reference: pass reference= (data or a statistics file) or save "
                                "reference_stats.json beside the export with cnnzoo.validate.reference_stats")
        else:
            say("drift: comparing")
            observation = drift_lib.observe(sample.images, runner, probabilities=probabilities, embed=embeddings)
            psi_limit = thresholds.max_psi if thresholds.max_psi is not None else drift_lib.PSI_SIGNIFICANT
            report_args["drift"] = drift_lib.compare(stats, observation, psi_threshold=psi_limit,
                                                     max_ks=thresholds.max_ks)
            report_args["histograms"] = (stats.histograms, observation.histograms)

    if "performance" in checks:
        image = sample.images[:1]
        say(f"performance: cold start, latency ({latency_runs} runs), throughput {sizes}")
        section = {"cold_start": perf.cold_start(runner, image)}
        with perf.MemoryPeak() as peak:
            section["latency"] = perf.latency(runner, image, runs=latency_runs, warmup=warmup)
            section["throughput"] = perf.throughput(runner, sample.images[:max(sizes)], batch_sizes=sizes,
                                                    repeats=throughput_repeats)
        section["memory"] = peak.result()
        if stress_seconds > 0:
            say(f"performance: stress {stress_rate:g} requests/s for {stress_seconds:g} s")
            section["stress"] = perf.stress(runner, image, rate=stress_rate, duration=stress_seconds,
                                            workers=stress_workers)
        report_args["performance"] = section

    report = ValidationReport(**report_args)
    say("PASSED" if report.passed else f"FAILED: {', '.join(c['name'] for c in report.failures)}")
    return report

