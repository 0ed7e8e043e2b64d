"""Segmentation masks: find image/mask pairs, read and check masks, resize them without new class values.

A mask is a PNG of class indices with its image's size: gray ("L") or palette ("P", the palette *indices* are
the classes, as in Pascal VOC), 1-bit or 16-bit gray also read; 255 means "ignore" (no loss, no metric).
Colour (RGB) masks are refused with a reason: a colour-to-class table is the user's to apply. Masks the
pipeline's PNG decoder would read differently from Pillow (palette, 1-bit, 16-bit) get an 8-bit gray copy.
"""
from __future__ import annotations

import concurrent.futures
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from cnnzoo.data.images import IMAGE_EXTENSIONS, centre_crop

IGNORE = 255                 #: the mask value that marks pixels without a label
MASK_EXTENSIONS = (".png",)
CLASSES_FILE = "classes.txt"
_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L")
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class MaskInfo:
    """A mask that passed the checks: `source` is the 8-bit gray PNG the pipeline reads (the file or a copy);
    `counts` the pixels of each value 0..255; `top` the largest class index (-1 if every pixel is ignored)."""

    path: str
    source: str
    counts: np.ndarray
    top: int


def _walk(folder: str, extensions: tuple[str, ...], what: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """{stem (path below `folder` without extension, "/"-separated): file} and the files reported instead."""
    found, skipped = {}, []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=lambda e: skipped.append(
            (e.filename, f"cannot read folder: {e.strerror}"))):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            full = os.path.join(dirpath, name)
            stem, ext = os.path.splitext(os.path.relpath(full, folder))
            stem = stem.replace(os.sep, "/")
            if ext.lower() not in extensions:
                skipped.append((full, f"not {what} extension {ext!r} (expected {' '.join(extensions)})"))
            elif stem in found:
                skipped.append((full, f"duplicate stem {stem!r} (the same name as {found[stem]!r}, which is used)"))
            else:
                found[stem] = full
    return found, skipped


def pair_files(images_dir: str, masks_dir: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Image and mask files paired by stem (sorted), and every file left over with its reason.

    Stems are paths below `images/` and `masks/` without the extension, so `images/a/b.jpg` pairs with
    `masks/a/b.png`. Hidden files and folders are ignored.
    """
    images, skipped = _walk(images_dir, IMAGE_EXTENSIONS, "an image")
    masks, mask_skipped = _walk(masks_dir, MASK_EXTENSIONS, "a mask")
    skipped += mask_skipped
    pairs = []
    for stem in sorted(images):
        if stem in masks:
            pairs.append((images[stem], masks[stem]))
        else:
            skipped.append((images[stem], f"no mask (expected {os.path.join(masks_dir, stem)}.png)"))
    skipped += [(masks[s], "mask without an image (no file of that stem in images/)")
                for s in sorted(set(masks) - set(images))]
    return pairs, skipped


def read_classes(path: str) -> list[str] | None:
    """Class names from `classes.txt` (one per line, the line number is the index), or None if there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f.read().splitlines()]
    while names and not names[-1]:
        names.pop()
    empty = [i for i, name in enumerate(names) if not name]
    if empty:
        raise ValueError(f"{path} has an empty line at class index {empty[0]}: every line up to the last names a "
                         f"class. Received: classes.txt={names!r}")
    if len(names) > IGNORE:
        raise ValueError(f"{path} names {len(names)} classes; masks hold at most 255 (0..254, 255 is ignore). "
                         f"Received: classes.txt has {len(names)} lines")
    return names


def read_mask(path: str) -> np.ndarray:
    """A mask file -> int array [H, W] of class indices (palette indices for a palette PNG); ValueError if not."""
    from PIL import Image

    with Image.open(path) as image:
        if image.format != "PNG":
            raise ValueError(f"not a PNG (Pillow reads it as {image.format})")
        if image.mode not in _MODES:
            raise ValueError(f"mask mode {image.mode!r} is not class indices (expected a gray 'L' or palette 'P' "
                             "PNG; colour masks need a colour-to-class table first)")
        array = np.asarray(image).astype(np.int64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"empty or not 2-D mask of shape {array.shape}")
    if array.min() < 0 or array.max() > IGNORE:
        raise ValueError(f"mask values must be class indices 0..254 or 255 (ignore); this one has "
                         f"{int(array.min())}..{int(array.max())}")
    return array


def palette(classes: int) -> list[int]:
    """A flat RGB palette for `classes` class indices: 0 (background) black, then matplotlib's tab20 colours
    (repeating), 255 (ignore) white."""
    import matplotlib

    colours = [(0, 0, 0)] + [tuple(int(round(255 * c)) for c in matplotlib.colormaps["tab20"](i % 20)[:3])
                             for i in range(max(classes - 1, 0))]
    colours = (colours + [(0, 0, 0)] * 256)[:255] + [(255, 255, 255)]
    return [value for colour in colours for value in colour]


def write_mask(path, mask, classes: int) -> str:
    """Write class ids [H, W] as a palette PNG (indices are the classes, as `read_mask` and
    `from_directory(task="segmentation")` read them; the palette only colours them for viewers). Returns `path`.

    Example:
        >>> write_mask("out/scene_mask.png", np.array([[0, 1], [2, 2]]), classes=3)   # doctest: +SKIP
    """
    from PIL import Image

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0 or mask.min() < 0 or mask.max() > IGNORE:
        raise ValueError(f"`mask` must be class ids [H, W] in 0..255. Received: mask of shape {mask.shape}")
    mask = np.ascontiguousarray(mask, np.uint8)
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    image.putpalette(palette(classes))
    image.save(os.fspath(path), format="PNG")
    return os.fspath(path)


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image as the decode rule shows it: JPEGs turned by their EXIF orientation."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        if image.format in ("JPEG", "MPO") and image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width
    return height, width


def check_mask(image_path: str, mask_path: str, index: int, out_dir) -> tuple[MaskInfo | None, str | None]:
    """(MaskInfo, None) for a readable mask of its image's size, or (None, the reason it is skipped).

    `out_dir()` gives the folder for 8-bit gray copies of masks that are not plain 8-bit gray PNGs.
    """
    from PIL import Image

    try:
        with Image.open(mask_path) as image:
            plain = image.mode == "L"
        mask = read_mask(mask_path)
    except ValueError as error:
        return None, str(error)
    except Exception as error:  # noqa: BLE001 - any decoder failure means "skip this mask", with its reason
        return None, f"cannot read mask: {error}"
    try:
        size = image_size(image_path)
    except Exception as error:  # noqa: BLE001 - scan_files kept the image, but Pillow cannot size it
        return None, f"cannot read the size of its image {image_path!r}: {error}"
    if mask.shape != size:
        return None, (f"mask size differs from its image: {mask.shape[0]}x{mask.shape[1]} against "
                      f"{size[0]}x{size[1]} (height x width) of {image_path}")
    source = mask_path
    if not plain:
        source = os.path.join(out_dir(), f"{index:07d}.png")
        Image.fromarray(mask.astype(np.uint8), mode="L").save(source, compress_level=1)
    counts = np.bincount(mask.reshape(-1), minlength=IGNORE + 1)
    labelled = np.flatnonzero(counts[:IGNORE])
    return MaskInfo(mask_path, source, counts, int(labelled[-1]) if labelled.size else -1), None


def check_masks(pairs: list[tuple[str, str]], out_dir, workers: int | None = None
                ) -> list[tuple[MaskInfo | None, str | None]]:
    """`check_mask` for every (image, mask) pair, in threads (Pillow decodes without the GIL)."""
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda item: check_mask(item[1][0], item[1][1], item[0], out_dir), enumerate(pairs)))


def resize_mask(mask: tf.Tensor, size: tuple[int, int], fit: str = "stretch") -> tf.Tensor:
    """Resize uint8 masks [H, W] (or [B, H, W]) to `size` with nearest neighbour; returns uint8.

    The geometry of `cnnzoo.data.images.resize` with the same `fit` (so a mask stays on its image), but no new
    values: "crop" takes the same centre window, "pad" pads with 255 (ignore) where the image gets black.
    """
    height, width = size
    labels = tf.cast(mask, tf.int32)[..., None]
    if fit == "crop":   # the image's window (cnnzoo.data.images.centre_crop), resized nearest
        out = tf.image.resize(centre_crop(labels, size), size, method="nearest")
    elif fit == "pad":   # shift by one so the zero padding becomes -1, then ignore
        out = tf.image.resize_with_pad(labels + 1, height, width, method="nearest") - 1
        out = tf.where(out < 0, IGNORE, out)
    else:
        out = tf.image.resize(labels, size, method="nearest")
    return tf.cast(out[..., 0], tf.uint8)


def load_mask(source: tf.Tensor, size: tuple[int, int], fit: str = "stretch") -> tf.Tensor:
    """Read an 8-bit gray mask PNG (a MaskInfo's `source`) and resize it to uint8 [*size]."""
    mask = tf.io.decode_png(tf.io.read_file(source), channels=1)[..., 0]
    mask = resize_mask(mask, size, fit)
    mask.set_shape([size[0], size[1]])
    return mask
