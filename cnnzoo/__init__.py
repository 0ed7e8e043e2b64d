"""cnnzoo: a Keras 3 / TensorFlow CNN model zoo and transfer-learning toolkit.

Example:
    >>> import cnnzoo
    >>> model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
"""
from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"


def _register_layers() -> None:
    """Import the modules whose Keras layers register themselves (idempotent), so `keras.saving.load_model`
    finds them."""
    importlib.import_module("cnnzoo.layers")
    try:
        importlib.import_module("cnnzoo.data.transforms")
    except ModuleNotFoundError as error:
        # The zoo and its layers use keras.ops only, so models build on any Keras 3 backend (JAX on a GPU box
        # without TensorFlow, say); data, training and export need TensorFlow and say so when imported.
        if error.name != "tensorflow":
            raise


class _RegisterWhenKerasLoads:
    """A one-shot import hook: once Keras has finished importing (and TensorFlow, which imports Keras itself),
    register cnnzoo's layers. `import cnnzoo` then stays light (the CLI's --help loads no TensorFlow) while
    `import cnnzoo, keras; keras.saving.load_model("model.keras")` still finds cnnzoo's layers."""

    WATCHED = ("keras", "tensorflow")

    def find_spec(self, name, path=None, target=None):
        if name not in self.WATCHED:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = None if finder is self or find is None else find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            try:
                run(module)
            finally:
                loader.__dict__.pop("exec_module", None)
            if any(_initializing(sys.modules.get(other)) for other in self.WATCHED if other != name):
                return   # the outer import (TensorFlow importing Keras, or the reverse) ends later: wait for it
            if "keras" in sys.modules and self in sys.meta_path:
                sys.meta_path.remove(self)
                _register_layers()

        loader.exec_module = exec_module
        return spec


def _initializing(module) -> bool:
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


# Everything heavy (Keras, TensorFlow, tf2onnx, KerasTuner, scikit-learn) loads on first use.
if "keras" in sys.modules and not any(_initializing(sys.modules.get(n)) for n in _RegisterWhenKerasLoads.WATCHED):
    _register_layers()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())

_LAZY = {
    "layers": ("cnnzoo.layers", None),
    # The zoo's functions come through cnnzoo.models, whose import registers the families first.
    "create_model": ("cnnzoo.models", "create_model"),
    "list_models": ("cnnzoo.models", "list_models"),
    "model_info": ("cnnzoo.models", "model_info"),
    "register_model": ("cnnzoo.models", "register_model"),
    "create_segmenter": ("cnnzoo.models", "create_segmenter"),
    "profile": ("cnnzoo.profiling", "profile"),
    "finetune": ("cnnzoo.train", "finetune"),
    "Stage": ("cnnzoo.train", "Stage"),
    "models": ("cnnzoo.models", None),
    "data": ("cnnzoo.data", None),
    "registry": ("cnnzoo.models", "registry"),
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


__all__ = ["__version__", *_LAZY]
