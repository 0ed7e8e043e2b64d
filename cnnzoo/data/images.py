"""Image files: find them, check them, convert the ones TensorFlow would misread, decode and resize.

The tf.data pipeline must never meet a file it cannot decode (one bad JPEG would end an epoch with an
exception), and must never decode a file wrongly without a word. So every file is judged before it enters the
pipeline, in three steps:

1. Pillow reads the header: zero-byte files and files Pillow cannot identify are skipped with the reason.
2. Files TensorFlow misreads or may misread are converted to RGB PNG copies by Pillow: palette or 1/4/8-bit
   BMPs (TF decodes the palette indices as pixels, silently), JPEGs with an EXIF rotation (TF ignores it),
   CMYK/YCCK JPEGs (whether the inks are stored inverted depends on an Adobe marker; Pillow's conversion is
   the reference), and formats TF has no decoder for (e.g. a TIFF named .png).
3. TensorFlow decodes every remaining file once (parallel, in C++). A file it fails on (a truncated JPEG or
   PNG, say) goes to Pillow; if Pillow cannot read it either it is skipped with Pillow's reason.

16-bit PNGs, grayscale, gray+alpha, RGBA and palette PNGs, GIFs (first frame) and WebP decode correctly in TF
(`channels=3` drops alpha, expands gray and palettes, and takes the high byte of 16-bit samples), so they stay
on the fast path.
"""
from __future__ import annotations

import atexit
import math
import concurrent.futures
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
FITS = ("stretch", "crop", "pad")

# (format, mode) pairs Pillow reports that TF's decoders read correctly with channels=3.
_TF_SAFE_MODES = {
    "JPEG": {"L", "RGB"},
    "PNG": {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L"},
    "GIF": None,   # any mode: TF's GIF decoder always returns RGB frames
    "WEBP": None,
    "BMP": {"RGB", "RGBA"},
}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ScannedFile:
    """One image that will reach the pipeline: `source` is the file TF reads (the original or a copy).

    `scale` (1, 2, 4 or 8) is the DCT downscale to decode a large JPEG with; 1 for every other file.
    """

    path: str
    source: str
    label: int
    scale: int = 1


def list_class_files(root: str) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """Class names (sorted subfolder names) and each class's candidate files; other files are reported.

    Hidden files and folders (".DS_Store", ".ipynb_checkpoints") are ignored; files without an image
    extension are returned in the third list with a reason, so nothing disappears without a word.
    """
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    class_names = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    ignored = [(os.path.join(root, e), "file outside the class folders")
               for e in entries if not os.path.isdir(os.path.join(root, e))]
    files = []
    for name in class_names:
        folder = os.path.join(root, name)
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                full = os.path.join(dirpath, filename)
                if os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS:
                    found.append(full)
                else:
                    ignored.append((full, f"not an image extension {os.path.splitext(filename)[1]!r}"))
        files.append(found)
    return class_names, files, ignored


def _header(path: str) -> tuple[str, str | None, int]:
    """Pillow's verdict from the header: ("tf", None, jpeg_side), ("convert", None, 0) or ("skip", reason, 0).

    jpeg_side is the shorter side of a JPEG TF will decode (0 otherwise): it decides the DCT downscale.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return "skip", "empty file (0 bytes)", 0
        with Image.open(path) as image:
            safe = _TF_SAFE_MODES.get(image.format, set())
            if safe is not None and image.mode not in safe:
                return "convert", None, 0
            if image.format == "JPEG":
                if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                    return "convert", None, 0
                return "tf", None, min(image.size)
            return "tf", None, 0
    except UnidentifiedImageError:
        return "skip", "not an image (Pillow cannot identify the file)", 0
    except Image.DecompressionBombError as error:
        return "skip", f"image too large: {error}", 0
    except (OSError, ValueError, SyntaxError) as error:
        return "skip", f"corrupt or truncated file: {error}", 0


def _to_rgb_array(image) -> np.ndarray:
    """An RGB uint8 array from any Pillow image, scaling 16/32-bit samples instead of clipping them."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(array[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"))


def convert_with_pillow(path: str, out_dir: str, index: int) -> tuple[str | None, str | None]:
    """Decode `path` fully with Pillow and write an RGB PNG copy; returns (copy path, None) or (None, reason)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            array = _to_rgb_array(image)
    except Exception as error:  # noqa: BLE001 - any decoder failure means "skip this file", with its reason
        return None, f"cannot decode: {error}"
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        return None, f"cannot decode: empty image of shape {array.shape}"
    target = os.path.join(out_dir, f"{index:07d}.png")
    Image.fromarray(array).save(target, compress_level=1)
    return target, None


def _tf_failures(paths: list[str], scales: list[int]) -> set[int]:
    """Indices of `paths` that the pipeline's decoder (tf.io.decode_image, or decode_jpeg at `scales`) rejects."""
    if not paths:
        return set()

    def check(index, path, scale):
        image = decode(tf.io.read_file(path), scale if max(scales) > 1 else None)
        tf.debugging.assert_positive(tf.reduce_prod(tf.shape(image)[:2]))
        return index

    indices = tf.range(len(paths), dtype=tf.int64)
    ds = tf.data.Dataset.from_tensor_slices((indices, tf.constant(paths), tf.constant(scales, tf.int32)))
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    survived = set(int(i) for i in ds.batch(1024).unbatch().as_numpy_iterator())
    return set(range(len(paths))) - survived


_WORKDIRS: list[str] = []


def _workdir() -> str:
    """A folder for converted copies, removed when Python exits (the datasets read from it until then)."""
    path = tempfile.mkdtemp(prefix="cnnzoo-converted-")
    if not _WORKDIRS:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _WORKDIRS])
    _WORKDIRS.append(path)
    return path


def jpeg_scale(shorter_side: int, target: int | None) -> int:
    """The largest DCT downscale (1, 2, 4 or 8) that keeps a JPEG's shorter side at least `target`."""
    if not target or not shorter_side:
        return 1
    return max([1] + [r for r in (2, 4, 8) if shorter_side // r >= target])


def scan_files(paths: list[str], labels: list[int], *, convert_dir: str | None = None, target: int | None = None,
               workers: int | None = None) -> tuple[list[ScannedFile], list[tuple[str, str]]]:
    """Judge each file (see the module docstring); returns the usable files, in order, and the skipped ones.

    `target`: the larger side of the final image size, so large JPEGs can decode downscaled in the DCT.
    """
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        headers = list(pool.map(_header, paths))
    verdicts = [(route, reason) for route, reason, _ in headers]

    tf_indices = [i for i, (route, _) in enumerate(verdicts) if route == "tf"]
    scales = {i: jpeg_scale(headers[i][2], target) for i in tf_indices}
    failed = _tf_failures([paths[i] for i in tf_indices], [scales[i] for i in tf_indices])
    to_convert = [i for i, (route, _) in enumerate(verdicts) if route == "convert"]
    to_convert += [tf_indices[j] for j in sorted(failed)]

    sources: dict[int, str] = {i: paths[i] for i in tf_indices}
    reasons: dict[int, str] = {i: reason for i, (route, reason) in enumerate(verdicts) if route == "skip"}
    if to_convert:
        out_dir = convert_dir or _workdir()
        os.makedirs(out_dir, exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda i: convert_with_pillow(paths[i], out_dir, i), to_convert))
        for i, (copy, reason) in zip(to_convert, results):
            if copy is None:
                sources.pop(i, None)
                reasons[i] = reason
            else:
                sources[i] = copy
    kept = [ScannedFile(paths[i], sources[i], labels[i], scales[i] if sources[i] == paths[i] else 1)
            for i in range(len(paths)) if i in sources]
    skipped = [(paths[i], reasons[i]) for i in sorted(reasons)]
    return kept, skipped


def decode(contents: tf.Tensor, scale: tf.Tensor | None = None) -> tf.Tensor:
    """Decode encoded image bytes to uint8 [H, W, 3]; a JPEG with `scale` 2, 4 or 8 decodes that much smaller.

    Decoding a 4000x3000 JPEG at 1/8 scale in the DCT domain is ~20x faster than full decoding and is a better
    low-pass filter than bilinear resizing without antialiasing. Without `scale` there is no control flow
    (a branch per image costs more than a small JPEG's decode).
    """
    def full():
        return tf.io.decode_image(contents, channels=3, expand_animations=False)

    if scale is None:
        image = full()
    else:
        index = tf.cast(tf.round(tf.math.log(tf.cast(scale, tf.float32)) / math.log(2.0)), tf.int32)
        image = tf.switch_case(index, [full] + [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r)
                                                for r in (2, 4, 8)])
    image.set_shape([None, None, 3])
    return image


def resize(image: tf.Tensor, size: tuple[int, int], fit: str = "stretch") -> tf.Tensor:
    """Resize uint8 [H, W, 3] (or a batch) to `size` with bilinear interpolation; returns uint8.

    fit: "stretch" resizes to `size` ignoring aspect ratio, "crop" keeps the aspect ratio and crops the centre
    (what `keras.utils.image_dataset_from_directory(crop_to_aspect_ratio=True)` does), "pad" keeps the aspect
    ratio and pads with black.
    """
    height, width = size
    if fit == "crop":
        shape = tf.shape(image)
        h, w = shape[-3], shape[-2]
        # Largest window with the target aspect ratio, then one resize: cheaper than resize-then-crop.
        crop_h = tf.minimum(h, tf.cast(tf.round(tf.cast(w, tf.float32) * height / width), tf.int32))
        crop_w = tf.minimum(w, tf.cast(tf.round(tf.cast(h, tf.float32) * width / height), tf.int32))
        crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
        image = tf.image.crop_to_bounding_box(image, (h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w)
        out = tf.image.resize(image, size, method="bilinear")
    elif fit == "pad":
        out = tf.image.resize_with_pad(tf.cast(image, tf.float32), height, width, method="bilinear")
    else:
        out = tf.image.resize(image, size, method="bilinear")
    # Bilinear weights are convex, so `out` stays in 0..255: +0.5 and truncation round without a clip pass.
    return tf.cast(out + 0.5, tf.uint8)


def load(source: tf.Tensor, size: tuple[int, int], fit: str = "stretch", scale: tf.Tensor | None = None) -> tf.Tensor:
    """Read, decode (downscaled by `scale` for large JPEGs) and resize one file to uint8 [size[0], size[1], 3]."""
    image = resize(decode(tf.io.read_file(source), scale), size, fit)
    image.set_shape([size[0], size[1], 3])
    return image
