"""Convolution arithmetic: the output size of a convolution or pooling window along one axis.

Receptive fields, which walk a model built of these layers, are in `cnnzoo.layers.receptive`.

Example:
    >>> conv_output_size(32, kernel=3, stride=2, padding=1)
    16
"""
from __future__ import annotations

from cnnzoo._checks import check_choice, check_int
from cnnzoo.layers._args import to_pair

__all__ = ["conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | str | tuple = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis.

    `floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1`.

    Args:
        size: int, input length (>= 1).
        kernel: int, window length (>= 1).
        stride: int, step between windows (>= 1).
        padding: int (each side), a pair `(before, after)`, or Keras' `"valid"` (no padding) /
            `"same"` (`ceil(size / stride)`, whatever the kernel).
        dilation: int, spacing between kernel taps (>= 1); the window spans `dilation * (kernel - 1) + 1`.

    Returns:
        int, the output length.

    Raises:
        ValueError: an argument is out of range, or the window is longer than the padded input.

    Example:
        >>> [conv_output_size(32, 3, stride=s, padding=p) for p, s in [(0, 1), (1, 1), (0, 2), (1, 2)]]
        [30, 32, 15, 16]
    """
    size = check_int("size", size, minimum=1)
    kernel = check_int("kernel", kernel, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    dilation = check_int("dilation", dilation, minimum=1)
    if isinstance(padding, str):
        check_choice("padding", padding, ("valid", "same"))
        if padding == "same":
            return -(-size // stride)
        before = after = 0
    elif isinstance(padding, (tuple, list)):
        before, after = to_pair("padding", padding, minimum=0)
    else:
        before = after = check_int("padding", padding, minimum=0)
    span = dilation * (kernel - 1) + 1
    padded = size + before + after
    if span > padded:
        raise ValueError(f"The window ({span} wide: kernel={kernel}, dilation={dilation}) is longer than the "
                         f"padded input ({padded}). Received: size={size}, padding={padding!r}")
    return (padded - span) // stride + 1
