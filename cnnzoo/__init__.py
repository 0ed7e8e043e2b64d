"""cnnzoo: a Keras 3 / TensorFlow CNN model zoo and transfer-learning toolkit.

Example:
    >>> import cnnzoo
    >>> model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The layers register themselves with Keras on import, so `keras.saving.load_model("model.keras")` works after a
# plain `import cnnzoo`; everything else (tf2onnx, KerasTuner, scikit-learn) loads on first use.
from cnnzoo import layers  # noqa: E402,F401

try:
    from cnnzoo.data import transforms as _augmentation_layers  # noqa: E402,F401
except ModuleNotFoundError as error:
    # The zoo and its layers use keras.ops only, so models build on any Keras 3 backend (JAX on a GPU box
    # without TensorFlow, say); data, training and export need TensorFlow and say so when imported.
    if error.name != "tensorflow":
        raise

_LAZY = {
    "create_model": ("cnnzoo.registry", "create_model"),
    "list_models": ("cnnzoo.registry", "list_models"),
    "model_info": ("cnnzoo.registry", "model_info"),
    "register_model": ("cnnzoo.registry", "register_model"),
    "profile": ("cnnzoo.profiling", "profile"),
    "finetune": ("cnnzoo.train", "finetune"),
    "Stage": ("cnnzoo.train", "Stage"),
    "models": ("cnnzoo.models", None),
    "data": ("cnnzoo.data", None),
    "registry": ("cnnzoo.registry", None),
    "train": ("cnnzoo.train", None),
    "evaluate": ("cnnzoo.evaluate", None),
    "explain": ("cnnzoo.explain", None),
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


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__", "layers", *_LAZY]
