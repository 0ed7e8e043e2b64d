"""One adapter from a "data" argument to what its consumer reads, with one rule for pixel values.

Every consumer (`train.fit`, `lr_find`, `recalibrate_bn`, `evaluate`, export's calibration and parity data,
`validate`, `from_arrays`) turns its data argument into a stream (`stream`, `training_streams`) or arrays
(`read`) here. Accepted: an ImageData, a tf.data.Dataset of images or (images, labels[, ...]), image arrays
[N, H, W, C], an (images, labels) pair, and, where the consumer knows the image size, a folder with one
subfolder per class (read as `from_directory` reads it).

The pixel rule (`pixel_scale`, `as_uint8`):

- uint8 is used as is; other integers must lie in 0..255;
- floats all in [0, 1] are scaled by 255; floats in [0, 255] whose non-zero values are mostly above 1 are used as
  they are (rounded);
- anything else raises a ValueError naming the argument and what was found: NaN or infinite values, negative
  values (normalized images, not pixels), values above 255, and mostly-[0, 1] values with some above 1 (an
  outlier, an unclipped augmentation), which could be meant either way.

Arrays are judged whole. A tf.data stream is judged by its first batch, and a later batch outside the range
that batch set stops the stream with an InvalidArgumentError naming the argument. Batches of rank < 3 are no
images (feature vectors, say) and pass as they are.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from cnnzoo._checks import received
from cnnzoo.data.imagedata import ImageData

__all__ = ["pixel_scale", "as_uint8", "as_rgb_uint8", "stream", "training_streams", "read", "Arrays",
           "sample_indices"]

_ROUNDING = 1e-3        # floats this far outside [0, 1] are rounding noise of [0, 1] pixels
_BYTE_LIMIT = 255.5     # floats below this round to at most 255
_BYTE_SHARE = 0.5       # [0, 255] floats: at least this share of the non-zero values lies above 1


# ---------------------------------------------------------------------------------------------- pixel rule

def pixel_scale(x, name: str = "x") -> float:
    """What pixels `x` holds by the pixel rule: 255.0 for [0, 1] floats, 1.0 for 0..255 values; raises otherwise.

    Example:
        >>> pixel_scale(np.array([0.0, 0.5, 1.0]))       # 255.0
        >>> pixel_scale(np.array([0.2, 0.4, 3.0]))       # ValueError: mostly [0, 1] with a value above 1
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return 1.0
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"`{name}` must hold uint8, integer or float pixels. Received: {name}.dtype={x.dtype}")
    if x.size == 0:
        return 1.0
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise ValueError(f"Integer `{name}` must hold pixels in [0, 255]. "
                             f"Received: {name}.min()={low}, {name}.max()={high}")
        return 1.0
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ValueError(f"`{name}` contains NaN or infinite values ({bad} of {x.size}). "
                         f"Received: {name}.dtype={x.dtype}")
    low, high = float(x.min()), float(x.max())
    if low < -_ROUNDING or high >= _BYTE_LIMIT:
        what = "negative values (normalized images are not pixels)" if low < -_ROUNDING else "values above 255"
        raise ValueError(f"Float `{name}` must hold pixels in [0, 1] or [0, 255]; it has {what}. "
                         f"Received: {name}.min()={low}, {name}.max()={high}")
    if high <= 1.0 + _ROUNDING:
        return 255.0
    above, nonzero = int(np.count_nonzero(x > 1.0 + _ROUNDING)), int(np.count_nonzero(x))
    if above >= _BYTE_SHARE * nonzero:
        return 1.0
    raise ValueError(f"Float `{name}` mixes ranges: {nonzero - above} of its {nonzero} non-zero values lie in "
                     f"[0, 1] but {above} lie above 1 (up to {high}), so it is neither [0, 1] nor [0, 255] pixels "
                     "for sure. Clip [0, 1] pixels (np.clip(x, 0, 1)) or pass uint8 0..255 pixels. "
                     f"Received: {name}.min()={low}, {name}.max()={high}")


def as_uint8(x, name: str = "x") -> np.ndarray:
    """`x` (any shape) as uint8 pixels by the pixel rule."""
    x = np.asarray(x)
    scale = pixel_scale(x, name)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.uint8)
    return np.clip(np.round(x * scale), 0, 255).astype(np.uint8)


def as_rgb_uint8(images, name: str = "images") -> np.ndarray:
    """Check and convert images to uint8 RGB [N, H, W, 3].

    One image [H, W, C] gets a batch axis; grayscale ([..., 1] or [N, H, W]) is repeated to RGB and the alpha
    channel of RGBA is dropped. Anything that is not uint8 raises: a float image may be scaled 0..1 or already
    normalized, and guessing would silently change every prediction (`as_uint8` applies cnnzoo's pixel rule
    to data arguments first).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"`{name}` must be uint8 raw pixels 0..255 (the exported models resize and normalize "
                        "themselves); convert with np.clip(x, 0, 255).astype('uint8') if they are 0..255 "
                        f"values of another type. Received: {name}.dtype={images.dtype}")
    if images.ndim == 2:                                   # one grayscale image
        images = images[None, :, :, None]
    elif images.ndim == 3:
        images = images[None] if images.shape[-1] in (1, 3, 4) else images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`{name}` must be images [N, H, W, C] with C in 1 (gray), 3 (RGB) or 4 (RGBA). "
                         f"Received: {name}.shape={images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif images.shape[-1] == 4:
        images = images[..., :3]
    return np.ascontiguousarray(images)


def _rgb_uint8(images, name: str) -> np.ndarray:
    return as_rgb_uint8(as_uint8(images, name), name)


# ---------------------------------------------------------------------------------------------- streams

def _is_pair(data) -> bool:
    """(images, labels): a 2-tuple, or a 2-list whose second item is 1-D (not a list of two images)."""
    return (isinstance(data, tuple) and len(data) == 2) or (isinstance(data, list) and len(data) == 2
                                                           and np.ndim(data[1]) == 1)


def _is_array(data) -> bool:
    return isinstance(data, (np.ndarray, tf.Tensor, list)) or hasattr(data, "__array__")


def _split_stream(data: ImageData, split: str, name: str) -> tf.data.Dataset:
    ds = getattr(data, split, None) if split in ("train", "val") else None
    if ds is None:
        raise ValueError(f"`{name}` has no {split!r} split; pass split='train' or a dataset. "
                         + received("split", split))
    return ds


def _pixel_converter(ds: tf.data.Dataset, spec: tf.TensorSpec, name: str):
    """A function images -> uint8 RGB images by the pixel rule, for a stream; None when nothing is to be done."""
    dtype, channels = spec.dtype, spec.shape[-1] if spec.shape.rank else None
    if spec.shape.rank is not None and spec.shape.rank < 3:
        return None                                   # not images: feature vectors pass as they are
    if dtype == tf.bool or not (dtype.is_integer or dtype.is_floating):
        raise TypeError(f"`{name}` must yield uint8, integer or float pixels. Received: {name} images of {dtype.name}")
    scale, upper = 1.0, 255.0
    if dtype.is_floating:
        first = next(iter(ds.take(1)), None)
        if first is not None:
            scale = pixel_scale(np.asarray(first[0] if isinstance(first, tuple) else first), name)
        upper = 1.0 + _ROUNDING if scale == 255.0 else _BYTE_LIMIT
    if dtype == tf.uint8 and channels not in (1, 4):
        return None
    span = "[0, 1]" if scale == 255.0 else "[0, 255]"

    def convert(images):
        if dtype != tf.uint8:
            values = tf.cast(images, tf.float32)
            low, high = tf.reduce_min(values), tf.reduce_max(values)
            inside = tf.reduce_all(tf.math.is_finite(values)) & (low >= -_ROUNDING)
            inside &= (high <= upper) if upper < _BYTE_LIMIT else (high < upper)
            check = tf.debugging.Assert(inside, [
                f"`{name}` yields a batch of pixels outside {span}, the range of its first batch (cnnzoo.data.adapt): "
                f"keep every batch in one range. Received: {name} batch min, max =", low, high])
            with tf.control_dependencies([check]):
                images = tf.cast(tf.clip_by_value(tf.round(values * scale), 0.0, 255.0), tf.uint8)
        if channels == 1:
            images = tf.image.grayscale_to_rgb(images)
        elif channels == 4:
            images = images[..., :3]
        return images

    return convert


def _dataset(ds: tf.data.Dataset, name: str, labels: bool) -> tf.data.Dataset:
    spec = ds.element_spec
    if isinstance(spec, dict):
        raise TypeError(f"`{name}` yields dicts; map it to (images, labels) or images first. "
                        f"{received(name + ' element keys', sorted(spec))}")
    labelled = isinstance(spec, tuple) and len(spec) >= 2
    if labels and not labelled:
        raise ValueError(f"`{name}` must yield (images, labels) batches. {received(name + '.element_spec', spec)}")
    convert = _pixel_converter(ds, spec[0] if isinstance(spec, tuple) else spec, name)
    if isinstance(spec, tuple) and not labels:
        ds = ds.map(lambda images, *rest: images)
    elif isinstance(spec, tuple) and convert is not None:
        return ds.map(lambda images, *rest: (convert(images), *rest))
    return ds if convert is None else ds.map(convert)


def stream(data, *, name: str = "data", split: str = "train", labels: bool = True, arrays: bool = True,
           batch_size: int = 32, multi_hot: bool = False) -> tf.data.Dataset:
    """`data` as a tf.data stream of batches of uint8 pixels: (images, labels, ...) if `labels`, else images.

    An ImageData gives its `split` stream as it is (its pixels are uint8 by contract); a tf.data.Dataset of
    batches gets the pixel rule; with `arrays`, images [N, H, W, C] (if not `labels`) or an (images, labels)
    pair get it too and are batched by `batch_size`, in order. Label rows of a pair are class ids made from one-hot
    rows, or kept as multi-hot rows with `multi_hot` (multi-label models).
    """
    if isinstance(data, ImageData):
        ds = _split_stream(data, split, name)
        return ds if labels else ds.map(lambda images, *rest: images)
    if isinstance(data, tf.data.Dataset):
        return _dataset(data, name, labels)
    if arrays and _is_pair(data):
        images, y = _pair(data, name, multi_hot=multi_hot)
        return tf.data.Dataset.from_tensor_slices((images, y) if labels else images).batch(batch_size)
    if arrays and not labels and _is_array(data):
        return tf.data.Dataset.from_tensor_slices(_rgb_uint8(data, name)).batch(batch_size)
    if not arrays:
        kinds = "an ImageData or a tf.data.Dataset of (images, labels) batches"
    elif labels:
        kinds = "an ImageData, a tf.data.Dataset of (images, labels) batches or an (images, labels) pair"
    else:
        kinds = "an ImageData, a tf.data.Dataset of images or (images, labels), or an image array"
    raise TypeError(f"`{name}` must be {kinds}. {received(name, type(data).__name__)}")


def training_streams(data, *, name: str = "data") -> tuple[tf.data.Dataset, tf.data.Dataset | None, list | None]:
    """(train, val or None, class names or None): an ImageData's streams, or a dataset of (images, labels)."""
    if isinstance(data, ImageData):
        return data.train, data.val, list(data.class_names)
    if isinstance(data, tf.data.Dataset):
        return _dataset(data, name, labels=True), None, None
    raise TypeError(f"`{name}` must be an ImageData or a tf.data.Dataset of (images, labels) batches (for arrays, "
                    f"cnnzoo.data.from_arrays(x, y) shuffles and splits them). {received(name, type(data).__name__)}")


def _pair(data, name: str, multi_hot: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB images, labels); arrays of rank < 3 are no images and are kept as they are."""
    images = _rgb_uint8(data[0], name) if np.ndim(data[0]) >= 3 else np.asarray(data[0])
    labels = _labels(data[1], name, multi_hot)
    if len(labels) != len(images):
        raise ValueError(f"`{name}` images and labels differ in length. "
                         f"Received: {name}=({len(images)} images, {len(labels)} labels)")
    return images, labels


def _labels(labels, name: str = "data", multi_hot: bool = False) -> np.ndarray:
    """Class ids [N] from ids or one-hot / soft rows (MixUp/CutMix: each row sums to 1); segmentation masks
    [N, H, W] (or [N, H, W, 1]) are kept as masks. Multi-hot rows (several or no 1s) are kept with `multi_hot`,
    else refused: their argmax would silently keep one label of several."""
    labels = np.asarray(labels)
    if multi_hot and labels.ndim == 2:
        return labels.astype(np.float32)
    if labels.ndim == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim == 3:
        return labels
    if labels.ndim == 2:
        if labels.size and not np.allclose(labels.sum(-1), 1.0, atol=1e-3):
            raise ValueError(f"`{name}` labels are rows that do not sum to 1 (multi-hot: several classes per image); "
                             "a single-label model cannot be scored on them. Use a multi-label model "
                             "(classifier_activation='sigmoid') or class ids. "
                             f"Received: {name} labels of shape {labels.shape}")
        return labels.argmax(-1)
    return labels.reshape(-1)


# ---------------------------------------------------------------------------------------------- arrays

@dataclasses.dataclass
class Arrays:
    """uint8 RGB images [N, H, W, 3], labels [N] or masks [N, H, W] (or None), the data's class names (or None), and for a folder
    the file paths and the skipped (path, reason)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list | None = None
    paths: list | None = None
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def sample_indices(n: int, k: int, seed: int = 0) -> np.ndarray:
    """k of range(n), uniformly at random from `seed`, in increasing order (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def read(data, *, name: str = "data", split: str = "val", size=None, fit: str = "stretch", limit: int | None = None,
         sample: int | None = None, seed: int = 0, multi_hot: bool = False) -> Arrays:
    """`data` as arrays: uint8 RGB images (resized to `size`, as the training pipeline resizes, when given), labels
    when it has them.

    data: an ImageData (its `split`), a folder (needs `size`; `train/` and `val/` layouts use `split`), a
        tf.data.Dataset of images or (images, labels) (batched or not), an (images, labels) pair or images.
    limit: keep the first `limit` images (a stream is read no further). sample: keep a uniform sample of that
        many drawn from `seed` (classes keep their shares, order is kept; a stream is read to its end).
    multi_hot: keep label rows as multi-hot rows (multi-label data) instead of class ids.
    """
    names, paths, skipped = None, None, []
    if isinstance(data, (str, os.PathLike)):
        return _read_folder(os.fspath(data), name=name, split=split, size=size, fit=fit, limit=limit, sample=sample,
                            seed=seed)
    if isinstance(data, ImageData):
        names = list(data.class_names)
        images, labels = _read_stream(_split_stream(data, split, name), name, limit, sample, seed, multi_hot)
    elif isinstance(data, tf.data.Dataset):
        images, labels = _read_stream(data, name, limit, sample, seed, multi_hot)
    elif _is_pair(data):
        images, labels = np.asarray(data[0]), _labels(data[1], name, multi_hot)
    elif _is_array(data):
        images, labels = np.asarray(data), None
    else:
        raise TypeError(f"`{name}` must be an ImageData, a folder, a tf.data.Dataset of images or (images, labels), "
                        f"an (images, labels) pair or an image array. {received(name, type(data).__name__)}")
    images = _rgb_uint8(images, name)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"`{name}` images and labels differ in length. "
                         f"Received: {name}=({len(images)} images, {len(labels)} labels)")
    keep = None
    if sample is not None and len(images) > sample:
        keep = sample_indices(len(images), sample, seed)
    elif limit is not None and len(images) > limit:
        keep = np.arange(limit)
    if keep is not None:
        images, labels = images[keep], None if labels is None else labels[keep]
    if len(images) == 0:
        raise ValueError(f"`{name}` holds no images. {received(name, type(data).__name__)}")
    if size is not None and tuple(images.shape[1:3]) != tuple(size):
        from cnnzoo.data.images import resize

        images = np.concatenate([resize(tf.constant(images[i:i + 256]), tuple(size), fit).numpy()
                                 for i in range(0, len(images), 256)])
    if labels is not None and labels.ndim == 3 and size is not None and tuple(labels.shape[1:3]) != tuple(size):
        from cnnzoo.data.masks import resize_mask   # masks follow their images (nearest, same fit)

        labels = resize_mask(tf.constant(labels.astype(np.uint8)), tuple(size), fit).numpy()
    return Arrays(images, labels, names, paths, skipped)


def _read_stream(ds: tf.data.Dataset, name: str, limit: int | None, sample: int | None, seed: int,
                 multi_hot: bool = False):
    """All of a stream, its first `limit` images, or a uniform reservoir sample of `sample` (in stream order)."""
    batches, labels, count = [], [], 0
    has_labels = None
    rng = np.random.default_rng(seed)
    slots: dict[int, tuple] = {}   # reservoir: slot -> (stream position, image, label)
    for element in ds:
        if isinstance(element, dict):
            raise TypeError(f"`{name}` yields dicts; map it to (images, labels) or images first. "
                            f"{received(name + ' element keys', sorted(element))}")
        if isinstance(element, (tuple, list)):
            x, y = np.asarray(element[0]), (np.asarray(element[1]) if len(element) > 1 else None)
        else:
            x, y = np.asarray(element), None
        if has_labels is None:
            has_labels = y is not None
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3, 4)):    # an unbatched stream: one image
            x = x[None]
            y = None if y is None else y.reshape(1, *y.shape)
        y = None if y is None else _labels(y, name, multi_hot)
        if sample is None:
            batches.append(x)
            if y is not None:
                labels.append(y)
        else:
            for i in range(len(x)):
                position = count + i
                slot = position if position < sample else int(rng.integers(0, position + 1))
                if slot < sample:
                    slots[slot] = (position, x[i], None if y is None else y[i])
        count += len(x)
        if limit is not None and sample is None and count >= limit:
            break
    if count == 0:
        raise ValueError(f"`{name}` holds no images (an empty dataset). {received(name, ds)}")
    if sample is not None:
        kept = sorted(slots.values(), key=lambda item: item[0])
        return np.stack([item[1] for item in kept]), (np.array([item[2] for item in kept]) if has_labels else None)
    return np.concatenate(batches), (np.concatenate(labels) if has_labels else None)


def _read_folder(shown: str, *, name: str, split: str, size, fit: str, limit, sample, seed) -> Arrays:
    from cnnzoo.data import images as image_files

    path = Path(shown)
    if not path.exists():
        raise FileNotFoundError(f"`{name}` does not exist. {received(name, shown)}")
    if not path.is_dir():
        raise ValueError(f"`{name}` must be a folder with one subfolder per class. {received(name, shown)}")
    if size is None:
        raise ValueError(f"Reading a folder needs the model's input size. {received(name, shown)}")
    root = path
    for candidate in ((split,) if split == "train" else ("val", "validation")):
        if (path / candidate).is_dir() and (path / "train").is_dir():
            root = path / candidate
    class_names, class_files, ignored = image_files.list_class_files(str(root))
    if not class_names:
        raise ValueError(f"`{name}` has no class subfolders. {received(name, shown)}")
    files, labels = [], []
    for label, found in enumerate(class_files):
        files += found
        labels += [label] * len(found)
    kept, bad = image_files.scan_files(files, labels, target=max(size))
    if sample is not None:
        kept = [kept[i] for i in sample_indices(len(kept), sample, seed)]
    elif limit is not None:
        kept = kept[:limit]
    if not kept:
        raise ValueError(f"`{name}` has no readable images ({len(bad)} skipped, {len(ignored)} ignored). "
                         f"{received(name, shown)}")
    return Arrays(image_files.load_files(kept, tuple(size), fit), np.array([f.label for f in kept], np.int64),
                  class_names, [f.path for f in kept], list(ignored) + list(bad))
