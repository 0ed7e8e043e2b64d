"""Validation of a model before and after it ships: golden cases, accuracy, consistency, latency, throughput,
stress, calibration and drift, on the runner that will be deployed (Keras, SavedModel, TFLite or ONNX).

`cnnzoo.validate(model_or_export, data, ...)` is this module called as a function (see cnnzoo/_callable.py), so
`cnnzoo.validate.reference_stats`, `cnnzoo.validate.drift`, ... stay reachable.

Example:
    >>> cnnzoo.validate.reference_stats("exported/digits", train_data)        # doctest: +SKIP
    >>> report = cnnzoo.validate("exported/digits", new_data, golden="golden/")   # doctest: +SKIP
    >>> report.passed, report.drift["significant"]                            # doctest: +SKIP
    >>> report.save("validation/")                                            # doctest: +SKIP
"""
from __future__ import annotations

from cnnzoo._callable import make_module_callable
from cnnzoo.validate.drift import ReferenceStats, compare, psi, reference_stats
from cnnzoo.validate.functional import (DEFAULT_PERTURBATIONS, Perturbation, brightness, crop, hflip, pick_golden,
                                        rotate, vflip)
from cnnzoo.validate.performance import fit_batch_time, latency, stress, throughput
from cnnzoo.validate.report import Thresholds, ValidationReport
from cnnzoo.validate.validator import validate

__all__ = ["validate", "reference_stats", "ReferenceStats", "ValidationReport", "Thresholds", "pick_golden",
           "Perturbation", "DEFAULT_PERTURBATIONS", "brightness", "rotate", "crop", "hflip", "vflip", "psi",
           "compare", "latency", "throughput", "stress", "fit_batch_time"]

make_module_callable(__name__, validate)
