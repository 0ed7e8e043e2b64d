"""Argument helpers shared by the toolbox layers and the convolution arithmetic."""
from __future__ import annotations

from typing import Any

import keras

from cnnzoo._checks import check_choice, check_int, received


def to_pair(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """`value` (int or pair of ints) as a (height, width) pair, each checked against `minimum`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int or a pair of ints. {received(name, value)}")
        pair = tuple(value)
    else:
        pair = (value, value)
    for item in pair:
        try:
            check_int(name, item, minimum=minimum)
        except (TypeError, ValueError) as error:
            # Re-raise with the whole value, which is what the user passed.
            raise type(error)(f"`{name}` must be an int or a pair of ints, each >= {minimum}. "
                              f"{received(name, value)}") from None
    return int(pair[0]), int(pair[1])


def data_format(value: str | None) -> str:
    """`value`, or Keras' configured image data format when None."""
    if value is None:
        return keras.config.image_data_format()
    return check_choice("data_format", value, ("channels_last", "channels_first"))
