"""Width, depth and resolution rounding, written once for MobileNetV2 width multipliers and EfficientNet.

Example:
    >>> make_divisible(32 * 0.35)
    16
    >>> round_repeats(3, depth=1.4)
    5
"""
from __future__ import annotations

import math

from cnnzoo._checks import check_float, check_int


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round `value` to the nearest multiple of `divisor`, never going below `round_limit` of it.

    This is the rule MobileNetV2 and EfficientNet (and their keras.applications ports) use for channel counts:
    round half up to a multiple of `divisor`, at least `min_value` (default `divisor`), and if rounding lost more
    than 10 % add one more `divisor`.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return int(new_value)


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels after a width multiplier (EfficientNet's `round_filters`)."""
    return make_divisible(filters * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks in a stage after a depth multiplier; always rounds up (EfficientNet's `round_repeats`)."""
    return int(math.ceil(depth * repeats))


def compound_coefficients(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15,
                          base_resolution: int = 224, resolution_divisor: int = 8) -> tuple[float, float, int]:
    """EfficientNet compound scaling: depth = alpha**phi, width = beta**phi, resolution = gamma**phi * base.

    The paper constrains alpha * beta**2 * gamma**2 ~= 2 so each unit of phi doubles the FLOPs. The resolution is
    rounded to a multiple of `resolution_divisor` so every stride-32 feature map has integer size.

    Returns:
        (depth_coefficient, width_coefficient, resolution)

    Example:
        >>> compound_coefficients(0)
        (1.0, 1.0, 224)
    """
    phi = check_float("phi", phi, minimum=0.0)
    alpha = check_float("alpha", alpha, minimum=1.0)
    beta = check_float("beta", beta, minimum=1.0)
    gamma = check_float("gamma", gamma, minimum=1.0)
    base_resolution = check_int("base_resolution", base_resolution, minimum=32)
    depth, width = alpha ** phi, beta ** phi
    resolution = int(round(base_resolution * gamma ** phi / resolution_divisor)) * resolution_divisor
    return depth, width, resolution
