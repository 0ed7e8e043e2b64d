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


TEXTURES = ("brick", "grass", "gravel")
SCENE_SPLITS = ("all", "train", "test")


def _digit_pool(split: str):
    """scikit-learn's digits (0..16 floats) and labels; "train"/"test" are the first/second half after a fixed
    shuffle, so scenes built from them never share a handwritten sample."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(1234).permutation(len(data.target))
    half = len(order) // 2
    keep = {"all": order, "train": order[:half], "test": order[half:]}[split]
    return data.images[keep].astype("float32") / 16.0, data.target[keep].astype("int32")


def _textures() -> list[np.ndarray]:
    import skimage.data

    return [getattr(skimage.data, name)().astype("float32") for name in TEXTURES]


def _background(textures, size: int, rng) -> np.ndarray:
    """A random crop (rescaled 0.5-1.5x) of a random texture photograph, tinted to RGB, float 0..255."""
    texture = textures[rng.integers(len(textures))]
    crop = int(min(texture.shape) * 0.25 * rng.uniform(0.5, 1.5))
    crop = max(size // 2, min(crop, min(texture.shape)))
    top, left = rng.integers(0, texture.shape[0] - crop + 1), rng.integers(0, texture.shape[1] - crop + 1)
    patch = _resize(texture[top:top + crop, left:left + crop], size)
    tint = rng.uniform(0.6, 1.0, 3)
    return patch[..., None] * tint


def digit_scenes(n: int, size: int = 96, seed: int = 0, *, digits_per_scene=(1, 4), scale=(16, 40),
                 split: str = "all") -> dict:
    """Scenes of real handwritten digits on real texture photographs, with per-pixel masks and boxes.

    scikit-learn's 8x8 digits are upsampled (bilinear) to a random size in `scale` px, coloured to stand out from
    the local background, and alpha-blended at random non-overlapping places onto a crop of scikit-image's brick,
    grass or gravel photograph. Nothing downloads.

    Args:
        n: int, number of scenes.
        size: int >= 32, height and width.
        seed: int, the scenes are a function of (n, size, seed, ...).
        digits_per_scene: (min, max) digits per scene, both inclusive.
        scale: (min, max) digit height/width in pixels.
        split: "all", or "train" / "test": disjoint halves of the handwritten samples, for honest held-out scenes.

    Returns:
        {"images": uint8 [n, size, size, 3], "masks": uint8 [n, size, size] (0 background, digit + 1 on the
        digit's strokes), "boxes": list of n float32 arrays [k, 5] of (x0, y0, x1, y1, label) in pixels (x1, y1
        exclusive; label = the digit 0..9), "class_names": ["background", "0", ..., "9"]}

    Example:
        >>> scenes = digit_scenes(8, size=64, seed=1)
        >>> scenes["images"].shape, scenes["masks"].max() <= 10, scenes["boxes"][0].shape[1]
        ((8, 64, 64, 3), True, 5)
    """
    n = check_int("n", n, minimum=1)
    size = check_int("size", size, minimum=32)
    seed = check_int("seed", seed, minimum=0)
    low, high = _int_range("digits_per_scene", digits_per_scene, minimum=1)
    smallest, largest = _int_range("scale", scale, minimum=8)
    if largest > size:
        raise ValueError(f"`scale` must not exceed `size` ({size}). Received: scale={scale!r}")
    if split not in SCENE_SPLITS:
        raise ValueError(f"`split` must be one of {SCENE_SPLITS}. Received: split={split!r}")
    pool, labels = _digit_pool(split)
    textures = _textures()
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    boxes = []
    for i in range(n):
        canvas = _background(textures, size, rng)
        placed: list[np.ndarray] = []
        for _ in range(int(rng.integers(low, high + 1))):
            for _attempt in range(20):   # rejection sampling: digits never overlap, so boxes and masks agree
                side = int(rng.integers(smallest, largest + 1))
                y0, x0 = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
                if all(x0 >= b[2] or x0 + side <= b[0] or y0 >= b[3] or y0 + side <= b[1] for b in placed):
                    break
            else:
                continue
            k = int(rng.integers(len(labels)))
            alpha = np.clip(_resize(pool[k], side), 0.0, 1.0)
            strokes = alpha > 0.5
            if not strokes.any():
                continue
            region = canvas[y0:y0 + side, x0:x0 + side]
            # a colour far from the local background: dark on bright texture, bright on dark
            colour = rng.uniform(0, 70, 3) if region.mean() > 110 else rng.uniform(185, 255, 3)
            canvas[y0:y0 + side, x0:x0 + side] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
            masks[i, y0:y0 + side, x0:x0 + side][strokes] = labels[k] + 1
            rows, cols = np.nonzero(strokes)
            box = np.array([x0 + cols.min(), y0 + rows.min(), x0 + cols.max() + 1, y0 + rows.max() + 1,
                            labels[k]], np.float32)
            placed.append(np.array([x0, y0, x0 + side, y0 + side]))
            boxes.append((i, box))
        images[i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    per_image = [np.array([b for j, b in boxes if j == i], np.float32).reshape(-1, 5) for i in range(n)]
    return {"images": images, "masks": masks, "boxes": per_image,
            "class_names": ["background"] + [str(d) for d in range(10)]}


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of a float 2-D array to side x side (Pillow's "F" mode keeps the floats)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((side, side), Image.BILINEAR))


def _int_range(name: str, value, *, minimum: int) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (min, max) of ints. Received: {name}={value!r}") from None
    if low < minimum or high < low:
        raise ValueError(f"`{name}` must be (min, max) with {minimum} <= min <= max. Received: {name}={value!r}")
    return low, high
