"""Evaluation: `cnnzoo.evaluate(model, data)` -> `EvalReport` (accuracy, top-k, per-class metrics, confusion
matrix, ECE, temperature scaling); Grad-CAM lives in `cnnzoo.explain`.

Example:
    >>> report = cnnzoo.evaluate(model, data)
    >>> report.per_class, report.calibrate(data.val)
"""
from cnnzoo._callable import make_module_callable
from cnnzoo.evaluate.report import (CalibrationResult, EvalReport, evaluate, expected_calibration_error,
                                    fit_temperature)
from cnnzoo.evaluate.multilabel import MultiLabelReport
from cnnzoo.evaluate.segmentation import SegmentationReport

__all__ = ["evaluate", "EvalReport", "CalibrationResult", "expected_calibration_error", "fit_temperature", "SegmentationReport",
           "MultiLabelReport"]

# `cnnzoo.evaluate(model, data)` calls `evaluate`, while `cnnzoo.evaluate.report` stays a module.
make_module_callable(__name__, evaluate)
