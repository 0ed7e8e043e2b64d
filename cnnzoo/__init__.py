"""cnnzoo: a Keras 3 / TensorFlow CNN model zoo and transfer-learning toolkit.

Example:
    >>> import cnnzoo
    >>> model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from cnnzoo.registry import create_model, list_models, model_info, register_model  # noqa: E402
from cnnzoo.profiling import profile  # noqa: E402
from cnnzoo import layers, models, data  # noqa: E402,F401

# Heavier parts (tf2onnx, KerasTuner, sklearn) load on first use, keeping `import cnnzoo` fast.
_LAZY = {
    "finetune": ("cnnzoo.train", "finetune"),
    "Stage": ("cnnzoo.train", "Stage"),
    "train": ("cnnzoo.train", None),
    "evaluate": ("cnnzoo.evaluate", None),
    "explain": ("cnnzoo.evaluate.explain", None),
    "export": ("cnnzoo.export", None),
    "serving": ("cnnzoo.serving", None),
    "tune": ("cnnzoo.tune", None),
    "validate": ("cnnzoo.validate", None),
}


def __getattr__(name):
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")


__all__ = ["__version__", "create_model", "list_models", "model_info", "register_model", "profile",
           "layers", "models", "data", *_LAZY]
