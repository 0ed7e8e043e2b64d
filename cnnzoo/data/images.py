"""Image files: find them, check them, decode them with the one decode rule, resize.

The decode rule (`decode_file`, TF ops only, so the exported graph runs it too) is what training
(`from_directory`), `cnnzoo predict`, validation and the SavedModel's `serving_bytes` signature all apply to a
file's bytes:

- JPEG (also MPO, CMYK/YCCK): decoded DCT-downscaled by `jpeg_scale(shorter side, target)` (1, 2, 4 or 8),
  then turned by the EXIF Orientation tag (IFD0 of the first APP1 "Exif" segment; XMP is not read);
- BMP with a palette (1, 2, 4 or 8 bits per pixel): the palette is applied (TF's own BMP decoder would return
  the palette indices as gray pixels); RLE-compressed and OS/2 BMPs raise InvalidArgumentError;
- anything else: `tf.io.decode_image(channels=3)`: first GIF frame, alpha dropped without blending, gray and
  PNG palettes expanded, the high byte of 16-bit samples.

The tf.data pipeline must never meet a file it cannot decode (one bad JPEG would end an epoch with an
exception). So every file is judged before it enters the pipeline:

1. Pillow reads the header: zero-byte files and files Pillow cannot identify are skipped with the reason.
2. TensorFlow decodes every file once (parallel, in C++). Files the rule decodes differently from the plain
   fast-path decode (palette BMPs, EXIF-rotated JPEGs) get an RGB PNG copy written from `decode_file`'s output.
3. Files TensorFlow cannot decode (formats it has no decoder for, e.g. a TIFF named .png; truncated files; RLE
   BMPs) go to Pillow; if Pillow cannot read them either they are skipped with Pillow's reason. These are the
   only files trained on that the exported graph refuses (InvalidArgumentError): it never decodes them
   differently.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from cnnzoo.options import FITS  # defined once, for export and the CLI too

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

# (format, mode) pairs Pillow reports that TF's plain decoders read as the decode rule does (with channels=3).
_TF_SAFE_MODES = {
    "JPEG": {"L", "RGB", "CMYK"},   # TF converts CMYK/YCCK itself, honouring the Adobe marker
    "MPO": {"L", "RGB", "CMYK"},    # multi-picture JPEG (phone cameras): TF decodes the first picture
    "PNG": {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L"},
    "GIF": None,   # any mode: TF's GIF decoder always returns RGB frames
    "WEBP": None,
    "BMP": {"RGB", "RGBA"},
}
# Pillow modes of BMPs with a palette (Pillow calls gray palettes "L" and "1"): the decode rule applies it.
_PALETTE_BMP_MODES = {"P", "L", "1"}
_EXIF_ORIENTATION = 0x0112

#: The DCT downscales (besides 1) a JPEG can decode at; `jpeg_scale` is the one rule that picks one.
JPEG_DCT_RATIOS = (2, 4, 8)
#: Names the decode rule in cache keys: bump it when `decode_file` changes, so no cache of old pixels is read.
DECODE_RULE = "2"


@dataclass(frozen=True)
class ScannedFile:
    """One image that will reach the pipeline: `source` is the file TF reads (the original or a copy).

    `scale` (1, 2, 4 or 8) is the DCT downscale to decode a large JPEG with; 1 for every other file. `jpeg`: the
    source is a JPEG (decoded by `decode_jpeg`, with the rule's IDCT).
    """

    path: str
    source: str
    label: int
    scale: int = 1
    jpeg: bool = False

    @property
    def codec(self) -> int:
        """The `scale` argument of `decode` for this file: 0 (not a JPEG) or the JPEG's DCT downscale."""
        return self.scale if self.jpeg else 0


def list_class_files(root: str) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """Class names (sorted subfolder names) and each class's candidate files; other files are reported.

    Hidden files and folders (".DS_Store", ".ipynb_checkpoints") are ignored; files without an image
    extension are returned in the third list with a reason, so nothing disappears without a word.

    Symbolic links are followed, but every real folder is walked once and every real file (device, inode) is
    listed once, so a link loop adds nothing and a link never relabels: first every class's own folders and
    files are listed, then what its links add. A link to something already listed (a loop, another class's
    folder or image, a second link to the same place) or to a folder holding the dataset is reported instead,
    and so is a dangling link.
    """
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    class_names, ignored = [], []
    for entry in entries:
        full = os.path.join(root, entry)
        if os.path.isdir(full):
            class_names.append(entry)
        else:
            ignored.append((full, _dangling(full) if os.path.islink(full) else "file outside the class folders"))
    real_root = os.path.realpath(root)
    folders = {_identity(root): f"the dataset folder {root!r}"}   # identity -> where it is listed
    seen_files: dict = {}
    files: list[list[str]] = [[] for _ in class_names]
    links: list[list[str]] = [[] for _ in class_names]            # per class: links met, followed last

    def add_file(k: int, path: str) -> None:
        if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
            ignored.append((path, f"not an image extension {os.path.splitext(path)[1]!r}"))
            return
        identity = _identity(path)
        if identity is not None and identity in seen_files:
            ignored.append((path, f"duplicate file (the same file as {seen_files[identity]!r}, listed once)"))
            return
        seen_files[identity] = path
        files[k].append(path)

    def walk(k: int, folder: str) -> None:
        """`folder`'s own tree, listed under class k; the links in it are queued in links[k]."""
        def unreadable(error: OSError) -> None:
            ignored.append((error.filename, f"cannot read folder: {error.strerror}"))

        for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
            kept = []
            for name in sorted(d for d in dirnames if not d.startswith(".")):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    links[k].append(full)
                    continue
                reason = _claim(folders, full, f"{full!r} (class {class_names[k]!r})")
                if reason is None:
                    kept.append(name)
                else:
                    ignored.append((full, reason))
            dirnames[:] = kept
            for name in sorted(f for f in filenames if not f.startswith(".")):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    links[k].append(full)
                else:
                    add_file(k, full)

    def follow(k: int, folder: str) -> None:
        real = os.path.realpath(folder)
        if real_root.startswith(real.rstrip(os.sep) + os.sep):
            ignored.append((folder, f"symbolic link not followed (it points to {real!r}, which holds the "
                                    "dataset)"))
            return
        reason = _claim(folders, folder, f"{folder!r} (class {class_names[k]!r})")
        if reason is None:
            walk(k, folder)
        else:
            ignored.append((folder, reason))

    for k, name in enumerate(class_names):
        follow(k, os.path.join(root, name))
    for k in range(len(class_names)):
        while links[k]:
            link = links[k].pop(0)
            if not os.path.exists(link):
                ignored.append((link, _dangling(link)))
            elif os.path.isdir(link):
                follow(k, link)
            else:
                add_file(k, link)
    return class_names, files, ignored


def _identity(path: str):
    """(device, inode) of what `path` names (links followed); the real path where inodes are not numbered."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino) if info.st_ino else os.path.realpath(path)


def _claim(folders: dict, path: str, where: str) -> str | None:
    """Record folder `path` as listed at `where`; the skip reason if its real folder was listed already."""
    identity = _identity(path)
    if identity in folders:
        return f"symbolic link not followed (its folder is already listed as {folders[identity]})"
    folders[identity] = where
    return None


def _dangling(path: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"dangling symbolic link (its target {target!r} does not exist, or the links form a loop)"


def _header(path: str) -> tuple[str, str | None, int]:
    """Pillow's verdict from the header: ("tf" or "rule", None, jpeg_side), ("convert", None, 0) or
    ("skip", reason, 0).

    "rule": TF decodes the file, but the decode rule may differ from the plain decode (a palette BMP; a JPEG with
    an EXIF block, which may hold a rotation). jpeg_side is the shorter side of a JPEG (0 otherwise): it decides
    the DCT downscale.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return "skip", "empty file (0 bytes)", 0
        with Image.open(path) as image:
            if image.format == "BMP" and image.mode in _PALETTE_BMP_MODES:
                return "rule", None, 0
            safe = _TF_SAFE_MODES.get(image.format, set())
            if safe is not None and image.mode not in safe:
                return "convert", None, 0
            if image.format in ("JPEG", "MPO"):
                return ("rule" if "exif" in image.info else "tf"), None, min(image.size)
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


def _tf_failures(paths: list[str], codecs: list[int]) -> set[int]:
    """Indices of `paths` that the pipeline's decoder (`decode` with `codecs`, see ScannedFile.codec) rejects."""
    if not paths:
        return set()

    def check(index, path, codec):
        image = decode(tf.io.read_file(path), codec if max(codecs) > 0 else None)
        tf.debugging.assert_positive(tf.reduce_prod(tf.shape(image)[:2]))
        return index

    indices = tf.range(len(paths), dtype=tf.int64)
    ds = tf.data.Dataset.from_tensor_slices((indices, tf.constant(paths), tf.constant(codecs, tf.int32)))
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    survived = set(int(i) for i in ds.batch(1024).unbatch().as_numpy_iterator())
    return set(range(len(paths))) - survived


def _tf_rule_copies(paths: list[str], target: int | None, out_dir) -> tuple[set[int], dict[int, str]]:
    """Decode `paths` with the decode rule; write an RGB PNG copy (into `out_dir()`) of each file the rule decodes
    differently from the plain decode. Returns (indices TF rejects, {index: copy path})."""
    if not paths:
        return set(), {}

    def check(index, path):
        image, plain = _decode_rule(tf.io.read_file(path), target)
        tf.debugging.assert_positive(tf.reduce_prod(tf.shape(image)[:2]))
        return index, tf.cond(plain, lambda: tf.constant(""), lambda: tf.io.encode_png(image, compression=1))

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), tf.constant(paths)))
    copies, survived = {}, set()
    for index, png in ds.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().as_numpy_iterator():
        survived.add(int(index))
        if png:
            copy = os.path.join(out_dir(), f"{int(index):07d}.png")
            with open(copy, "wb") as f:
                f.write(png)
            copies[int(index)] = copy
    return set(range(len(paths))) - survived, copies


_WORKDIRS: list[str] = []


def _workdir() -> str:
    """A folder for converted copies, removed when Python exits (the datasets read from it until then)."""
    path = tempfile.mkdtemp(prefix="cnnzoo-converted-")
    if not _WORKDIRS:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _WORKDIRS])
    _WORKDIRS.append(path)
    return path


def jpeg_scale(shorter_side, target: int | None):
    """The largest DCT downscale (1 or one of JPEG_DCT_RATIOS) that keeps a JPEG's shorter side >= `target`.

    The one rule, for the training pipeline (ints in, an int out) and the exported graph (an int32 tensor in,
    a tensor out).
    """
    tensor = tf.is_tensor(shorter_side)
    scale = tf.constant(1, tf.int32) if tensor else 1
    for ratio in JPEG_DCT_RATIOS:           # ascending: the last ratio that fits wins
        if target:
            fits = shorter_side // ratio >= target
            scale = tf.where(fits, ratio, scale) if tensor else (ratio if fits else scale)
    return scale


def scan_files(paths: list[str], labels: list[int], *, convert_dir: str | None = None, target: int | None = None,
               workers: int | None = None) -> tuple[list[ScannedFile], list[tuple[str, str]]]:
    """Judge each file (see the module docstring); returns the usable files, in order, and the skipped ones.

    `target`: the larger side of the final image size, so large JPEGs can decode downscaled in the DCT.
    """
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        headers = list(pool.map(_header, paths))
    verdicts = [(route, reason) for route, reason, _ in headers]

    tf_indices = [i for i, (route, _) in enumerate(verdicts) if route in ("tf", "rule")]
    scales = {i: jpeg_scale(headers[i][2], target) for i in tf_indices}
    codecs = {i: scales[i] if headers[i][2] else 0 for i in tf_indices}     # 0: not a JPEG
    plain = [i for i in tf_indices if verdicts[i][0] == "tf"]
    rule = [i for i in tf_indices if verdicts[i][0] == "rule"]
    made: list[str] = []

    def out_dir() -> str:
        if not made:
            made.append(convert_dir or _workdir())
            os.makedirs(made[0], exist_ok=True)
        return made[0]

    failed = _tf_failures([paths[i] for i in plain], [codecs[i] for i in plain])
    rule_failed, rule_copies = _tf_rule_copies([paths[i] for i in rule], target, out_dir)
    to_convert = [i for i, (route, _) in enumerate(verdicts) if route == "convert"]
    to_convert += sorted([plain[j] for j in failed] + [rule[j] for j in rule_failed])

    sources: dict[int, str] = {i: paths[i] for i in tf_indices}
    sources.update({rule[j]: copy for j, copy in rule_copies.items()})
    reasons: dict[int, str] = {i: reason for i, (route, reason) in enumerate(verdicts) if route == "skip"}
    if to_convert:
        directory = out_dir()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda i: convert_with_pillow(paths[i], directory, i), to_convert))
        for i, (copy, reason) in zip(to_convert, results):
            if copy is None:
                sources.pop(i, None)
                reasons[i] = reason
            else:
                sources[i] = copy
    kept = [ScannedFile(paths[i], sources[i], labels[i], scales[i], bool(codecs[i])) if sources[i] == paths[i]
            else ScannedFile(paths[i], sources[i], labels[i]) for i in range(len(paths)) if i in sources]
    skipped = [(paths[i], reasons[i]) for i in sorted(reasons)]
    return kept, skipped


def decode(contents: tf.Tensor, scale: tf.Tensor | None = None) -> tf.Tensor:
    """The plain decode: image bytes -> uint8 [H, W, 3].

    `scale`: None or 0, `tf.io.decode_image`; 1, 2, 4 or 8, a JPEG decoded that much smaller in the DCT (with
    the rule's IDCT, `JPEG_DCT_METHOD`). What the training pipeline runs on every file `scan_files` kept, with
    the file's `ScannedFile.codec` (it routed the files this would decode differently from the decode rule,
    `decode_file`, to copies). Decoding a 4000x3000 JPEG at 1/8 scale in the DCT domain is ~20x faster than
    full decoding and is a better low-pass filter than bilinear resizing without antialiasing. With `scale=None`
    there is no control flow.
    """
    def full():
        return tf.io.decode_image(contents, channels=3, expand_animations=False)

    if scale is None:
        image = full()
    else:
        scale = tf.convert_to_tensor(scale, tf.int32)
        index = tf.where(scale > 0, 1 + _ratio_index(scale), 0)
        image = tf.switch_case(index, [full] + _jpeg_decoders(contents))
    image.set_shape([None, None, 3])
    return image


#: The IDCT of every JPEG decode: libjpeg's accurate integer IDCT (Pillow's too). TF's default, the fast integer
#: IDCT, is off by ~4 levels on average at quality 95 (CMYK) and costs about as much.
JPEG_DCT_METHOD = "INTEGER_ACCURATE"


def _ratio_index(scale: tf.Tensor) -> tf.Tensor:
    """0 for DCT downscale 1, i + 1 for JPEG_DCT_RATIOS[i]."""
    return tf.add_n([tf.cast(scale >= ratio, tf.int32) for ratio in JPEG_DCT_RATIOS])


def _jpeg_decoders(contents: tf.Tensor) -> list:
    """Branches decoding JPEG bytes at DCT downscale 1, then each of JPEG_DCT_RATIOS."""
    return [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r, dct_method=JPEG_DCT_METHOD)
            for r in (1, *JPEG_DCT_RATIOS)]


def _decode_jpeg(contents: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """JPEG bytes -> uint8 [H, W, 3] decoded at DCT downscale `scale` (1 or one of JPEG_DCT_RATIOS)."""
    image = tf.switch_case(_ratio_index(scale), _jpeg_decoders(contents))
    image.set_shape([None, None, 3])
    return image


def decode_file(contents: tf.Tensor, target: int | None = None) -> tf.Tensor:
    """The decode rule (see the module docstring): a file's bytes -> uint8 [H, W, 3], in TF ops only.

    `target`: the larger side of the model's input size; a JPEG decodes DCT-downscaled by
    `jpeg_scale(shorter side, target)`. Bytes the rule cannot decode (no image, truncated, an RLE or OS/2 BMP)
    raise InvalidArgumentError.
    """
    return _decode_rule(contents, target)[0]


def _decode_rule(contents: tf.Tensor, target: int | None) -> tuple[tf.Tensor, tf.Tensor]:
    """(image, plain): `plain` is True when `decode` at the file's JPEG scale gives the same image."""
    def other():
        return tf.io.decode_image(contents, channels=3, expand_animations=False), tf.constant(True)

    def jpeg():
        scale = tf.constant(1, tf.int32)
        if target:
            shape = tf.image.extract_jpeg_shape(contents)
            scale = jpeg_scale(tf.minimum(shape[0], shape[1]), target)
        orientation = exif_orientation(contents)
        return orient(_decode_jpeg(contents, scale), orientation), tf.equal(orientation, 1)

    def bmp():
        return _palette_bmp(contents), tf.constant(False)

    kind = tf.where(tf.io.is_jpeg(contents), 1, tf.where(_bmp_needs_rule(contents), 2, 0))
    image, plain = tf.switch_case(kind, [other, jpeg, bmp])
    image.set_shape([None, None, 3])
    return image, plain


def _bytes(contents: tf.Tensor, position, count) -> tf.Tensor:
    """`count` bytes of `contents` from `position` as int32, zeros past the end (never an error)."""
    position = tf.clip_by_value(tf.cast(position, tf.int32), 0, tf.strings.length(contents))
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, position, count), tf.uint8), tf.int32)
    out = tf.pad(raw, [[0, count - tf.size(raw)]])
    if isinstance(count, int):
        out.set_shape([count])
    return out


def _uint(data: tf.Tensor, little) -> tf.Tensor:
    """The unsigned integer in int32 bytes [..., k] (k static), little- or big-endian."""
    weights = tf.constant([256 ** i for i in range(data.shape[-1])], tf.int64)
    weights = tf.where(little, weights, tf.reverse(weights, [0]))
    return tf.reduce_sum(tf.cast(data, tf.int64) * weights, axis=-1)


_MAX_JPEG_SEGMENTS = 64     # markers read before the first APP1 "Exif" segment is given up on
_MAX_IFD_ENTRIES = 128


def exif_orientation(contents: tf.Tensor) -> tf.Tensor:
    """The EXIF Orientation (1..8) of JPEG bytes, in TF ops; 1 when there is none or it is not 1..8.

    Read where Pillow reads it: tag 0x0112 (SHORT or LONG) of IFD0 of the first APP1 segment that starts with
    "Exif\\0\\0" before the image data.
    """
    length = tf.strings.length(contents)
    exif_header = tf.constant([69, 120, 105, 102, 0, 0])    # b"Exif\0\0"

    def searching(i, position, tiff):
        return (i < _MAX_JPEG_SEGMENTS) & (tiff < 0) & (position + 4 <= length)

    def next_segment(i, position, tiff):
        head = _bytes(contents, position, 10)
        marker, size = head[1], head[2] * 256 + head[3]
        end = (head[0] != 0xFF) | (marker == 0xDA) | (marker == 0xD9)         # not a marker, start of scan, end
        standalone = (marker == 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))  # markers without a length
        step = tf.where(marker == 0xFF, 1, tf.where(standalone, 2, 2 + size))  # 0xFF: a fill byte
        exif = (head[0] == 0xFF) & (marker == 0xE1) & tf.reduce_all(head[4:10] == exif_header)
        return i + 1, tf.where(end, length, position + step), tf.where(exif, position + 10, tiff)

    _, _, tiff = tf.while_loop(searching, next_segment, (0, 2, -1))

    def parse():
        head = _bytes(contents, tiff, 8)
        little = (head[0] == 0x49) & (head[1] == 0x49)                          # "II"; "MM" is big-endian
        known = little | ((head[0] == 0x4D) & (head[1] == 0x4D))
        ifd = tiff + tf.cast(_uint(head[4:8], little), tf.int32)
        count = tf.cast(_uint(_bytes(contents, ifd, 2), little), tf.int32)
        entries = tf.reshape(_bytes(contents, ifd + 2, 12 * _MAX_IFD_ENTRIES), [_MAX_IFD_ENTRIES, 12])
        tags, types = _uint(entries[:, 0:2], little), _uint(entries[:, 2:4], little)
        values = tf.where(types == 4, _uint(entries[:, 8:12], little), _uint(entries[:, 8:10], little))
        hit = (tags == _EXIF_ORIENTATION) & ((types == 3) | (types == 4)) & (tf.range(_MAX_IFD_ENTRIES) < count)
        value = tf.where(known & tf.reduce_any(hit), values[tf.argmax(tf.cast(hit, tf.int32))], 1)
        return tf.cast(tf.where((value >= 1) & (value <= 8), value, 1), tf.int32)

    return tf.cond(tiff >= 0, parse, lambda: tf.constant(1, tf.int32))


def orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Turn uint8 [H, W, C] as EXIF `orientation` (1..8) says, as Pillow's `ImageOps.exif_transpose` does."""
    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    return tf.switch_case(orientation - 1, [
        lambda: image,                          # 1: as stored
        lambda: image[:, ::-1],                 # 2: mirrored left-right
        lambda: image[::-1, ::-1],              # 3: rotated 180
        lambda: image[::-1],                    # 4: mirrored top-bottom
        lambda: transpose(image),               # 5: transposed
        lambda: transpose(image)[:, ::-1],      # 6: rotated 90 clockwise to show
        lambda: transpose(image[::-1, ::-1]),   # 7: transversed
        lambda: transpose(image)[::-1],         # 8: rotated 90 counter-clockwise to show
    ])


def _bmp_needs_rule(contents: tf.Tensor) -> tf.Tensor:
    """A BMP with a palette (<= 8 bits per pixel) or an old (OS/2, < 40 byte) header: TF's decoder misreads both."""
    head = _bytes(contents, 0, 30)
    header_size = _uint(head[14:18], True)
    return (head[0] == 66) & (head[1] == 77) & ((header_size < 40) | (head[28] + 256 * head[29] <= 8))


def _palette_bmp(contents: tf.Tensor) -> tf.Tensor:
    """A 1/2/4/8-bit uncompressed BMP -> uint8 [H, W, 3] with its palette applied; anything else is refused."""
    head = _bytes(contents, 0, 54)
    offset, header_size = _uint(head[10:14], True), _uint(head[14:18], True)
    width, height = _uint(head[18:22], True), _uint(head[22:26], True)
    height = tf.where(height >= 2 ** 31, height - 2 ** 32, height)              # negative: rows stored top-down
    bits, compression = tf.cast(_uint(head[28:30], True), tf.int32), _uint(head[30:34], True)
    colors = tf.cast(_uint(head[46:50], True), tf.int32)
    colors = tf.minimum(tf.where(colors == 0, tf.bitwise.left_shift(1, bits), colors), 256)
    supported = tf.reduce_all(tf.stack([header_size >= 40, compression == 0, width > 0, height != 0,
                                        tf.reduce_any(tf.equal(bits, [1, 2, 4, 8]))]))
    check = tf.debugging.Assert(supported, ["cnnzoo decodes uncompressed BMPs with a 1/2/4/8-bit palette and a "
                                            "Windows header; this one is RLE-compressed or has an OS/2 header"])
    with tf.control_dependencies([check]):
        rows, width = tf.cast(tf.abs(height), tf.int32), tf.cast(width, tf.int32)
    palette = tf.reshape(_bytes(contents, 14 + header_size, 4 * colors), [-1, 4])[:, 2::-1]   # BGRX -> RGB
    palette = tf.pad(palette, [[0, 256 - colors], [0, 0]])
    stride = (width * bits + 31) // 32 * 4                                       # rows are padded to 4 bytes
    data = tf.io.decode_raw(tf.strings.substr(contents, tf.cast(offset, tf.int32), stride * rows), tf.uint8)
    with tf.control_dependencies([tf.debugging.assert_equal(tf.size(data), stride * rows,
                                                            message="truncated BMP pixel data")]):
        data = tf.reshape(tf.cast(data, tf.int32), [rows, stride])
    per_byte = 8 // bits
    shifts = 8 - bits * (1 + tf.range(per_byte))                                 # first pixel in the high bits
    indices = tf.bitwise.bitwise_and(tf.bitwise.right_shift(data[..., None], shifts),
                                     tf.bitwise.left_shift(1, bits) - 1)
    indices = tf.reshape(indices, [rows, stride * per_byte])[:, :width]
    image = tf.cast(tf.gather(palette, indices), tf.uint8)
    image = tf.cond(height > 0, lambda: image[::-1], lambda: image)             # positive: bottom-up rows
    image.set_shape([None, None, 3])
    return image


def centre_crop(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The largest centred window of `image` ([..., H, W, C]) with the aspect ratio of `size` (height, width)."""
    height, width = size
    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    crop_h = tf.minimum(h, tf.cast(tf.round(tf.cast(w, tf.float32) * height / width), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.round(tf.cast(h, tf.float32) * width / height), tf.int32))
    crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
    return tf.image.crop_to_bounding_box(image, (h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w)


def resize(image: tf.Tensor, size: tuple[int, int], fit: str = "stretch") -> tf.Tensor:
    """Resize uint8 [H, W, 3] (or a batch) to `size` with bilinear interpolation; returns uint8.

    fit: "stretch" resizes to `size` ignoring aspect ratio, "crop" keeps the aspect ratio and crops the centre
    (what `keras.utils.image_dataset_from_directory(crop_to_aspect_ratio=True)` does), "pad" keeps the aspect
    ratio and pads with black.
    """
    height, width = size
    if fit == "crop":
        # Largest window with the target aspect ratio, then one resize: cheaper than resize-then-crop.
        out = tf.image.resize(centre_crop(image, size), size, method="bilinear")
    elif fit == "pad":
        out = tf.image.resize_with_pad(tf.cast(image, tf.float32), height, width, method="bilinear")
    else:
        out = tf.image.resize(image, size, method="bilinear")
    # Bilinear weights are convex, so `out` stays in 0..255: +0.5 and truncation round without a clip pass.
    return tf.cast(out + 0.5, tf.uint8)


def load(source: tf.Tensor, size: tuple[int, int], fit: str = "stretch", scale: tf.Tensor | None = None) -> tf.Tensor:
    """Read, decode (`decode`'s `scale`: a file's ScannedFile.codec) and resize one file to uint8 [*size, 3]."""
    image = resize(decode(tf.io.read_file(source), scale), size, fit)
    image.set_shape([size[0], size[1], 3])
    return image


def load_files(files: list[ScannedFile], size: tuple[int, int], fit: str = "stretch") -> np.ndarray:
    """uint8 [N, size[0], size[1], 3]: scanned files loaded as `from_directory`'s pipeline loads them."""
    size = (int(size[0]), int(size[1]))
    if not files:
        return np.zeros((0, *size, 3), np.uint8)
    codecs = [f.codec for f in files]
    ds = tf.data.Dataset.from_tensor_slices((tf.constant([f.source for f in files]), tf.constant(codecs, tf.int32)))
    if max(codecs) > 0:
        ds = ds.map(lambda s, r: load(s, size, fit, r), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda s, r: load(s, size, fit), num_parallel_calls=tf.data.AUTOTUNE)
    return np.concatenate(list(ds.batch(256).as_numpy_iterator()))


def read_images(paths: list[str], size: tuple[int, int], fit: str = "stretch"
                ) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """Image files -> (uint8 [N, size[0], size[1], 3], the N paths read, the skipped (path, reason)).

    The checks, decode rule and resize of `from_directory` (what `cnnzoo predict` and validation read files with).
    """
    paths = [os.fspath(p) for p in paths]
    kept, skipped = scan_files(paths, [0] * len(paths), target=max(size))
    return load_files(kept, size, fit), [f.path for f in kept], skipped
