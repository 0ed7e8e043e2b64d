"""Argument checks shared by every public entry point.

Every error names the argument and ends with "Received: name=value", the KerasHub convention, so a user sees
at once which argument is wrong and what was passed.
"""
from __future__ import annotations

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
                exclusive_minimum: bool = False) -> float:
    """Return `value` as float if it is a real number in range, else raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. {received(name, value)}")
    value = float(value)
    if value != value:  # NaN compares unequal to itself
        raise ValueError(f"`{name}` must not be NaN. {received(name, value)}")
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ValueError(f"`{name}` must be > {minimum}. {received(name, value)}")
        if not exclusive_minimum and value < minimum:
            raise ValueError(f"`{name}` must be >= {minimum}. {received(name, value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. {received(name, value)}")
    return value
