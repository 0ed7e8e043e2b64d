"""The names several parts of cnnzoo accept, each list defined once and imported everywhere else.

Plain tuples, no imports: the command line reads them for `choices=` and `--help` without loading TensorFlow.

Example:
    >>> from cnnzoo.options import OPTIMIZER_NAMES
    >>> OPTIMIZER_NAMES
    ('adamw', 'sgd', 'adam')
"""
from __future__ import annotations

__all__ = ["OPTIMIZER_NAMES", "DEFAULT_WEIGHT_DECAY", "DECAYING_OPTIMIZERS", "SCHEDULE_NAMES",
           "AUGMENT_POLICIES", "EXPORT_FORMATS", "TFLITE_FORMATS", "DEFAULT_EXPORT_FORMATS", "FITS", "TUNERS",
           "VALIDATION_SECTIONS", "TTA_VIEWS", "EXPORT_TTA_VIEWS"]

#: `optimizer=` names (cnnzoo.train.fit, finetune, lr_find, tune) and the weight decay "default" means for each.
OPTIMIZER_NAMES = ("adamw", "sgd", "adam")
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05, "sgd": 5e-4, "adam": None}
DECAYING_OPTIMIZERS = tuple(name for name in OPTIMIZER_NAMES if DEFAULT_WEIGHT_DECAY[name] is not None)

#: `schedule=` names (cnnzoo.train.schedules.get; "plateau" is a callback).
SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine", "cosine_restarts", "one_cycle", "plateau")

#: Augmentation policy names (cnnzoo.data.augmentation), mildest first.
AUGMENT_POLICIES = ("none", "light", "standard", "heavy")

#: `formats=` names of cnnzoo.export, in the order they are written.
TFLITE_FORMATS = ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")
EXPORT_FORMATS = ("saved_model", *TFLITE_FORMATS, "onnx", "keras")
DEFAULT_EXPORT_FORMATS = ("saved_model", "tflite_int8", "onnx")

#: How images are fitted to the model size (cnnzoo.data `fit=`, the exported graphs).
FITS = ("stretch", "crop", "pad")

#: KerasTuner tuners cnnzoo.tune.search runs.
TUNERS = ("hyperband", "bayesian", "random")

#: Sections of cnnzoo.validate, in the order they run.
VALIDATION_SECTIONS = ("functional", "performance", "calibration", "drift")

#: Test-time augmentation views (cnnzoo.evaluate `tta=`); exported graphs take "flip" (cnnzoo.export `tta=`).
TTA_VIEWS = ("flip", "crops")
EXPORT_TTA_VIEWS = ("flip",)
