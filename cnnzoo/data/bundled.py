"""Real images that ship with a dependency, for demos, notebooks and tests that must not download."""
from __future__ import annotations

import numpy as np

from cnnzoo._checks import check_int


def digits_rgb(image_size: int = 32, digits=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 1,797 handwritten digits (8x8, 0..16) as uint8 RGB images, upsampled bilinearly.

    Args:
        image_size: int >= 8, output height and width.
        digits: optional iterable of digits to keep (labels stay the digit values' positions in it).

    Returns:
        (images uint8 [N, image_size, image_size, 3], labels int32 [N], class names)

    Example:
        >>> x, y, names = digits_rgb(32)
        >>> x.shape, names[:3]
        ((1797, 32, 32, 3), ['0', '1', '2'])
    """
    import tensorflow as tf
    from sklearn.datasets import load_digits

    image_size = check_int("image_size", image_size, minimum=8)
    data = load_digits()
    images = data.images.astype("float32") * (255.0 / 16.0)
    labels = data.target.astype("int32")
    keep = list(range(10)) if digits is None else [int(d) for d in digits]
    if not keep or any(d < 0 or d > 9 for d in keep) or len(set(keep)) != len(keep):
        raise ValueError(f"`digits` must be distinct values in 0..9. Received: digits={digits!r}")
    mask = np.isin(labels, keep)
    images, labels = images[mask], labels[mask]
    labels = np.searchsorted(np.array(sorted(keep)), labels).astype("int32")
    resized = tf.image.resize(images[..., None], (image_size, image_size), method="bilinear").numpy()
    rgb = np.repeat(np.clip(np.round(resized), 0, 255).astype("uint8"), 3, axis=-1)
    return rgb, labels, [str(d) for d in sorted(keep)]
