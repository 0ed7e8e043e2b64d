"""Make a subpackage callable, so `cnnzoo.export(...)` and `cnnzoo.export.tflite` can both exist.

A plain function bound as `cnnzoo.export` would be replaced by the subpackage the first time any
`cnnzoo.export.<module>` is imported (Python binds submodules on their parent). Giving the module object a
`__call__` keeps one name for both the verb and its home.
"""
from __future__ import annotations

import sys
import types
from typing import Callable


def make_module_callable(module_name: str, func: Callable) -> None:
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return func(*args, **kwargs)

    module.__class__ = _CallableModule
