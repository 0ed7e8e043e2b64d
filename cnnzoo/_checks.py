"""Argument checks shared by every public entry point.

Every error names the argument and ends with "Received: name=value", the KerasHub convention, so a user sees
at once which argument is wrong and what was passed.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable


def received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return `value` if it is one of `choices`, else raise ValueError naming `name`."""
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {shown}. {received(name, value)}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return `value` as int if it is an integer in [minimum, maximum], else raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer. {received(name, value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. {received(name, value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. {received(name, value)}")
    return int(value)


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                exclusive_minimum: bool = False, finite: bool = False) -> float:
    """Return `value` as float if it is a real number in range, else raise naming `name`.

    `finite=True` also rejects +-inf (rates, decays and other sizes that must be real numbers).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. {received(name, value)}")
    value = float(value)
    if value != value:  # NaN compares unequal to itself
        raise ValueError(f"`{name}` must not be NaN. {received(name, value)}")
    if finite and value in (math.inf, -math.inf):
        raise ValueError(f"`{name}` must be finite. {received(name, value)}")
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ValueError(f"`{name}` must be > {minimum}. {received(name, value)}")
        if not exclusive_minimum and value < minimum:
            raise ValueError(f"`{name}` must be >= {minimum}. {received(name, value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. {received(name, value)}")
    return value


def check_positive_finite(name: str, value: Any) -> float:
    """Return `value` as float if it is a finite number > 0 (a learning rate, a clip norm), else raise."""
    return check_float(name, value, minimum=0.0, exclusive_minimum=True, finite=True)


def check_fraction(name: str, value: Any) -> float:
    """Return `value` as float if it is in [0, 1) (a dropout or drop-connect rate, a BatchNorm momentum)."""
    checked = check_float(name, value)
    if not 0.0 <= checked < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). {received(name, value)}")
    return checked


def check_directory(name: str, path: Any, *, create: bool = False) -> str:
    """Return `path` (str) if it is, or can become, the directory argument `name`; with `create`, make it.

    An existing file at `path` or on the way to it raises ValueError naming `name` (not the OS's
    FileExistsError / NotADirectoryError); a directory that cannot be made raises the OS error, naming `name`.
    """
    import os

    path = os.fspath(path)
    existing = path
    while existing and not os.path.lexists(existing):   # the nearest part of the path that exists
        parent = os.path.dirname(existing.rstrip(os.sep))
        existing = parent if parent != existing else ""
    if existing and not os.path.isdir(existing):
        where = "is a file" if existing == path else f"goes through the file {existing!r}"
        raise ValueError(f"`{name}` must be a directory, but the path {where}. {received(name, path)}")
    if create:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:   # PermissionError, a read-only file system, ...: same type, naming the argument
            raise type(error)(error.errno, f"`{name}` cannot be created ({error.strerror}). "
                                           f"{received(name, path)}") from None
    return path
