"""Export for deployment: TF Serving SavedModel, TFLite (fp32/fp16/dynamic/int8), ONNX; raw images in, parity checked.

`cnnzoo.export(model, out_dir, ...)` is this module called as a function (see cnnzoo/_callable.py), so
`cnnzoo.export.tflite`, `cnnzoo.export.runners`, ... stay importable submodules.

Example:
    >>> report = cnnzoo.export(model, "exported/digits", representative_data=data)   # doctest: +SKIP
    >>> report.paths                                                                  # doctest: +SKIP
    {'saved_model': PosixPath('exported/digits/1'), 'tflite_int8': ..., 'onnx': ...}
"""
from __future__ import annotations

from cnnzoo._callable import make_module_callable
from cnnzoo.export.exporter import DEFAULT_FORMATS, FORMATS, export
from cnnzoo.export.parity import ParityError
from cnnzoo.export.prepare import inference_model, is_augmentation
from cnnzoo.export.report import ExportReport
from cnnzoo.data.adapt import as_rgb_uint8
from cnnzoo.export.runners import Runner, load_runner, measure_latency

__all__ = ["export", "ExportReport", "ParityError", "FORMATS", "DEFAULT_FORMATS", "load_runner", "Runner",
           "as_rgb_uint8", "measure_latency", "inference_model", "is_augmentation"]

make_module_callable(__name__, export)
