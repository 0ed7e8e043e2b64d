"""Data sources: `from_directory`, `from_tfds` and `from_arrays`, each returning an `ImageData`.

Every source ends in the same stream: uint8 images resized to `image_size`, int32 labels (class ids, or for
`task="segmentation"` masks [B, H, W] of class indices with 255 = ignore), cached (in memory when it fits, or in
files), shuffled per epoch from `seed`, batched and prefetched.
"""
from __future__ import annotations

import collections
import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_choice, check_directory, check_float, check_int, received
from cnnzoo.data import images as _images
from cnnzoo.data import masks as _masks
from cnnzoo.data.adapt import as_uint8
from cnnzoo.data.imagedata import ImageData, arrays_fingerprint, files_fingerprint
from cnnzoo.data.multilabel import as_multi_hot, multi_hot, read_labels_csv
from cnnzoo.data.sampling import check_sampling, mix_classes

AUTOTUNE = tf.data.AUTOTUNE
_AUTO_CACHE_BYTES = 1 << 30   # "auto" caches in memory up to 1 GiB of decoded pixels
_SHUFFLE_BUFFER = 4096        # after a cache the order is already a seeded permutation; this re-mixes it
TASKS = ("classification", "segmentation", "detection")


# ---------------------------------------------------------------- argument checks

def _check_size(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"`{name}` must be an int or a (height, width) pair. {received(name, value)}")
    for side in value:
        check_int(name, side, minimum=1)
    return int(value[0]), int(value[1])


def _check_common(image_size, batch_size, validation_split, seed, fit, cache, allow_none_size=False):
    size = None if (allow_none_size and image_size is None) else _check_size("image_size", image_size)
    check_int("batch_size", batch_size, minimum=1)
    split = check_float("validation_split", validation_split, minimum=0.0, maximum=0.9)
    check_int("seed", seed, minimum=0)
    check_choice("fit", fit, _images.FITS)
    if not (cache in ("auto", "memory", True, False, None) or isinstance(cache, (str, os.PathLike))):
        raise ValueError("`cache` must be 'auto', 'memory', True, False/None or a directory path. "
                         f"{received('cache', cache)}")
    if isinstance(cache, (str, os.PathLike)) and cache not in ("auto", "memory"):
        check_directory("cache", cache)   # an existing file there: ValueError naming `cache`
    return size, split


def _check_classes(class_names: Sequence[str], what: str) -> None:
    if len(class_names) == 0:
        raise ValueError(f"No classes found in {what}: expected one subfolder per class.")
    if len(class_names) == 1:
        raise ValueError(f"Only one class ({class_names[0]!r}) found in {what}: classification needs at "
                         "least two classes.")


# ---------------------------------------------------------------- splitting and streaming

def stratified_split(labels: np.ndarray, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class keeps `validation_split` of its items in val, chosen from `seed`.

    Each class draws from its own generator (seed, class id), so adding a class or an image to one class
    never changes which images of the other classes are in val. Every class keeps at least one training item.
    """
    labels = np.asarray(labels)
    train, val = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = np.random.default_rng([seed, int(label)]).permutation(members)
        n_val = int(round(len(members) * validation_split))
        n_val = min(n_val, len(members) - 1)
        val.append(order[:n_val])
        train.append(order[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _cache_mode(cache, n_items: int, size: tuple[int, int] | None) -> str | None:
    """None (no cache), "" (memory) or a file prefix."""
    if cache in (False, None):
        return None
    if cache == "auto":
        if size is None:
            return None
        return "" if n_items * size[0] * size[1] * 3 <= _AUTO_CACHE_BYTES else None
    if cache in (True, "memory"):
        return ""
    return os.fspath(cache)


def _cache_file(directory: str, key: Sequence[Any], part: str) -> str:
    """A cache file name that changes whenever the files, size or fit change, so a stale cache is never read."""
    os.makedirs(directory, exist_ok=True)
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    return os.path.join(directory, f"cnnzoo-{digest}-{part}")


def _finish(ds: tf.data.Dataset, *, n_items: int, batch_size: int, shuffle: bool, seed: int,
            cache: str | None, post=None) -> tf.data.Dataset:
    """Cache, shuffle, batch, then `post` on each batch (e.g. uint8 masks to int32, after the cache), prefetch."""
    if cache is not None:
        ds = ds.cache(cache)
    if shuffle:
        buffer = n_items if cache is None else min(n_items, _SHUFFLE_BUFFER)
        ds = ds.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if post is not None:
        ds = ds.map(post, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _file_table(files: Sequence[_images.ScannedFile]) -> tf.data.Dataset:
    """(source, label, decode scale) per file."""
    sources = [f.source for f in files]
    labels = np.array([f.label for f in files], dtype=np.int32)
    scales = np.array([f.codec for f in files], dtype=np.int32)   # decode's `scale`: 0 or a JPEG's downscale
    return tf.data.Dataset.from_tensor_slices((tf.constant(sources, tf.string), labels, scales))


def _load_files(ds: tf.data.Dataset, files, *, size, fit) -> tf.data.Dataset:
    """Decode (source, label, scale) rows; the scale (a JPEG's decode-time downscale) only where a file has one."""
    if max((f.codec for f in files), default=0) > 0:
        return ds.map(lambda s, y, r: (_images.load(s, size, fit, r), y), num_parallel_calls=AUTOTUNE)
    return ds.map(lambda s, y, r: (_images.load(s, size, fit), y), num_parallel_calls=AUTOTUNE)


def _balanced_file_stream(files: Sequence[_images.ScannedFile], *, size, fit, batch_size, seed) -> tf.data.Dataset:
    """Class-balanced draws (cnnzoo.data.sampling) over cheap file names, decoded after the draw."""
    by_class = collections.defaultdict(list)
    for f in files:
        by_class[f.label].append(f)
    streams = [_file_table(group).shuffle(len(group), seed=seed + label, reshuffle_each_iteration=True)
               for label, group in sorted(by_class.items())]
    mixed = mix_classes(streams, n_items=len(files), seed=seed)
    return _load_files(mixed, files, size=size, fit=fit).batch(batch_size).prefetch(AUTOTUNE)


def _file_stream(files: Sequence[_images.ScannedFile], *, size, fit, batch_size, shuffle, seed,
                 cache, targets: np.ndarray | None = None) -> tf.data.Dataset:
    """Decoded, resized (uint8 image, label) pairs of scanned files, batched; with `targets`, a file's label is a
    row index into it (multi-hot rows) and the row is what the stream yields."""
    files = list(files)
    if shuffle:  # a seeded full permutation first: a cached stream then starts out well mixed
        files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    ds = _file_table(files)
    if shuffle and cache is None:  # shuffle cheap file names, not decoded images
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        shuffle = False
    ds = _load_files(ds, files, size=size, fit=fit)
    if targets is not None:
        table = tf.constant(targets)
        ds = ds.map(lambda image, row: (image, tf.gather(table, row)), num_parallel_calls=AUTOTUNE)
    return _finish(ds, n_items=len(files), batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache)


def _summarise_skipped(skipped: list[tuple[str, str]], total: int, where: str, stacklevel: int = 3) -> None:
    if not skipped:
        return
    kinds = collections.Counter(reason.split(":")[0].split(" (")[0] for _, reason in skipped)
    summary = "; ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    warnings.warn(f"cnnzoo.data: skipped {len(skipped)} of {total} files in {where} ({summary}). "
                  "Each file and its reason is listed in ImageData.skipped.", UserWarning, stacklevel=stacklevel)


# ---------------------------------------------------------------- from_directory

def _find_layout(root: str) -> tuple[str, str | None]:
    """(train folder, val folder or None): explicit train/ and val/ (or validation/) subfolders, else root."""
    subdirs = {e.lower(): os.path.join(root, e) for e in os.listdir(root) if os.path.isdir(os.path.join(root, e))}
    if "train" in subdirs and ("val" in subdirs or "validation" in subdirs):
        return subdirs["train"], subdirs.get("val", subdirs.get("validation"))
    return root, None


def from_directory(path: str | os.PathLike, *, task: str = "classification", image_size=(224, 224),
                   batch_size: int = 32, validation_split: float = 0.2, seed: int = 0, fit: str = "stretch",
                   cache="auto", shuffle: bool = True, sampling: str = "shuffle",
                   labels_csv: str | os.PathLike | None = None) -> ImageData:
    """Images in one subfolder per class (sorted names are the classes), checked, split and streamed.

    With `task="segmentation"`, `path` holds `images/` and `masks/` instead (see "Segmentation" below).

    Files: .jpg .jpeg .png .bmp .gif (first frame) .webp, in any colour mode; CMYK, palette, 16-bit, gray and
    RGBA images become RGB, EXIF-rotated JPEGs are turned upright: the decode rule the exported models' bytes
    signature and `cnnzoo predict` apply too (cnnzoo.data.images). Symbolic links are followed, each real
    folder and file once. Unreadable files and dangling links are skipped, listed in `.skipped` with the reason,
    and summarised in one warning. If `path` holds `train/` and `val/` (or `validation/`) subfolders, those are the split and
    `validation_split` is not used; otherwise each class puts `validation_split` of its images (chosen by
    `seed`) in `.val`.

    Segmentation: every image in `path/images/` pairs with the mask of the same stem in `path/masks/`
    (`images/a/b.jpg` with `masks/a/b.png`): a PNG of class indices of the image's size, gray or palette (the
    palette *indices* are the classes, as in Pascal VOC); 255 = ignore. Class names are the lines of an optional
    `path/classes.txt` (line i names class i), else "0".."K-1" up to the largest index in the masks. Images
    without a mask, masks without an image, unreadable files, masks of another size than their image, colour
    masks and masks with an index beyond classes.txt are skipped and listed in `.skipped`, like bad images.
    `path/train/` and `path/val/` (or `validation/`), each with `images/` and `masks/`, are an explicit split;
    otherwise `validation_split` of the pairs (chosen by `seed` and each file's name, so adding files moves
    few others) go to `.val`. Masks are resized with nearest neighbour (the same `fit`; "pad" pads with 255).
    Streams yield (uint8 images [B, H, W, 3], int32 masks [B, H, W]); `class_counts` counts training pixels.

    Args:
        path: str, the dataset folder.
        task: "classification" (one subfolder per class) or "segmentation" (`images/` + `masks/`).
        image_size: int or (height, width); every image is resized to it (bilinear).
        batch_size: int.
        validation_split: float in [0, 0.9]; 0 gives `.val = None`.
        seed: int, fixes the split, the shuffle order of every epoch and the cache permutation.
        fit: "stretch" (ignore the aspect ratio), "crop" (centre crop to the aspect ratio, then resize) or
            "pad" (resize to fit, pad with black).
        cache: "auto" (in memory when the decoded images fit in 1 GiB), "memory"/True, False/None, or a
            directory for tf.data cache files (named by a fingerprint of the files, size and fit).
        shuffle: bool, shuffle `.train` each epoch.
        sampling: "shuffle" (each training image once per epoch) or "balanced" (classification: every class
            equally often, see `ImageData.balanced()`; images are decoded after the draw, not cached).
        labels_csv: None, or a CSV of multi-label targets (`file,label;label;...`, paths relative to `path`;
            see `cnnzoo.data.multilabel`): the images it lists, anywhere under `path`, become multi-label data
            (task "multilabel", float32 multi-hot [B, K] targets, classes sorted, `class_counts` counting
            positives). Listed files that are missing or unreadable, and images under `path` it does not list,
            are skipped and reported. The split is a seeded permutation.

    Example:
        >>> data = cnnzoo.data.from_directory("flowers/", image_size=160, batch_size=64)  # doctest: +SKIP
        >>> data.class_names, data.skipped[:3]                                                # doctest: +SKIP
        >>> voc = cnnzoo.data.from_directory("voc/", task="segmentation", image_size=256)  # doctest: +SKIP
    """
    check_choice("task", task, TASKS)
    if task == "detection":
        raise NotImplementedError("from_directory(task='detection') (COCO or VOC boxes) is not implemented yet; "
                                  "task='classification' and task='segmentation' are. Received: task='detection'")
    size, split = _check_common(image_size, batch_size, validation_split, seed, fit, cache)
    check_sampling(sampling)
    if sampling != "shuffle" and task != "classification":
        raise ValueError(f"sampling='balanced' draws classification data by label; a {task} image holds several "
                         f"classes. Received: sampling={sampling!r}")
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise ValueError(f"`path` must be an existing directory. {received('path', root)}")
    if labels_csv is not None:
        if task != "classification" or sampling != "shuffle":
            raise ValueError("`labels_csv` gives multi-label classification targets; it takes task='classification' "
                             f"and sampling='shuffle'. Received: task={task!r}, sampling={sampling!r}")
        return _multilabel_directory(root, os.fspath(labels_csv), size=size, split=split, batch_size=batch_size,
                                     seed=seed, fit=fit, cache=cache, shuffle=shuffle)
    if task == "segmentation":
        return _segmentation_directory(root, size=size, split=split, batch_size=batch_size, seed=seed, fit=fit,
                                       cache=cache, shuffle=shuffle)
    train_root, val_root = _find_layout(root)
    class_names, class_files, ignored = _images.list_class_files(train_root)
    _check_classes(class_names, repr(train_root))
    if sorted(n.lower() for n in class_names) == ["images", "masks"]:
        warnings.warn(f"{root!r} holds images/ and masks/: read as two classes 'images' and 'masks'. For "
                      "segmentation pass task='segmentation'.", UserWarning, stacklevel=2)

    paths, labels = [], []
    for label, files in enumerate(class_files):
        paths += files
        labels += [label] * len(files)
    n_train_files = len(paths)
    if val_root is not None:
        val_names, val_files, val_ignored = _images.list_class_files(val_root)
        unknown = sorted(set(val_names) - set(class_names))
        if unknown:
            raise ValueError(f"Validation folder {val_root!r} has classes that {train_root!r} does not: "
                             f"{unknown}. {received('path', root)}")
        ignored += val_ignored
        for name, files in zip(val_names, val_files):
            paths += files
            labels += [class_names.index(name)] * len(files)
    if not paths:
        raise ValueError(f"No image files (.jpg .jpeg .png .bmp .gif .webp) found under {root!r}. "
                         f"{received('path', root)}")

    convert_dir = None
    cache_mode = _cache_mode(cache, len(paths), size)
    if cache_mode:  # a cache directory also keeps the converted copies, so file caches stay valid
        convert_dir = os.path.join(cache_mode, "converted")
    kept, bad = _images.scan_files(paths, labels, convert_dir=convert_dir, target=max(size))
    skipped = ignored + bad
    _summarise_skipped(skipped, len(paths) + len(ignored), repr(root))

    kept_index = {f.path: f for f in kept}
    train_kept = collections.Counter(kept_index[p].label for p in paths[:n_train_files] if p in kept_index)
    for label, name in enumerate(class_names):
        if not train_kept.get(label):
            folder = os.path.join(train_root, name)
            n_bad = sum(1 for p, _ in bad if p.startswith(folder + os.sep))
            raise ValueError(f"Class folder {folder!r} has no readable images ({n_bad} files skipped, see the "
                             "warning). Add images or remove the folder. " + received("path", root))

    if val_root is not None:
        train_files = [kept_index[p] for p in paths[:n_train_files] if p in kept_index]
        val_files = [kept_index[p] for p in paths[n_train_files:] if p in kept_index]
    elif split > 0:
        train_idx, val_idx = stratified_split(np.array([f.label for f in kept]), split, seed)
        train_files, val_files = [kept[i] for i in train_idx], [kept[i] for i in val_idx]
    else:
        train_files, val_files = kept, []

    def stream(files, part, shuffle_part):
        file_cache = cache_mode
        if cache_mode:
            file_cache = _cache_file(cache_mode, (sorted(f.source for f in files), size, fit, seed,
                                                  _images.DECODE_RULE), part)
        return _file_stream(files, size=size, fit=fit, batch_size=batch_size, shuffle=shuffle_part, seed=seed,
                            cache=file_cache)

    counts = collections.Counter(f.label for f in train_files)
    data = ImageData(
        train=stream(train_files, "train", shuffle),
        val=stream(val_files, "val", False) if val_files else None,
        class_names=list(class_names),
        image_size=size,
        class_counts={name: counts.get(i, 0) for i, name in enumerate(class_names)},
        skipped=skipped,
        batch_size=batch_size,
        fingerprint=files_fingerprint(root, train_files, val_files),
        resample=lambda seed: _balanced_file_stream(train_files, size=size, fit=fit, batch_size=batch_size,
                                                    seed=seed),
    )
    return data.balanced(seed=seed) if sampling == "balanced" else data


# ---------------------------------------------------------------- from_directory(labels_csv=...)

def _unlisted_images(root: str, listed: set, csv_path: str) -> list[tuple[str, str]]:
    """Image files under `root` that the labels CSV does not name: reported, never silently left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = os.path.normpath(os.path.join(dirpath, name))
            if (not name.startswith(".") and os.path.splitext(name)[1].lower() in _images.IMAGE_EXTENSIONS
                    and path not in listed):
                out.append((path, f"not listed in labels_csv {csv_path!r}"))
    return out


def _multilabel_directory(root: str, csv_path: str, *, size, split, batch_size, seed, fit, cache,
                          shuffle) -> ImageData:
    rows, problems = read_labels_csv(csv_path, root)
    paths = [path for path, _ in rows]
    names, targets = multi_hot([labels for _, labels in rows])
    unlisted = _unlisted_images(root, set(paths), csv_path)
    cache_mode = _cache_mode(cache, len(paths), size)
    convert_dir = os.path.join(cache_mode, "converted") if cache_mode else None
    kept, bad = _images.scan_files(paths, list(range(len(paths))), convert_dir=convert_dir, target=max(size))
    skipped = problems + bad + unlisted
    _summarise_skipped(skipped, len(paths) + len(problems) + len(unlisted), repr(root), stacklevel=4)
    if not kept:
        raise ValueError(f"None of the {len(paths)} images listed in {csv_path!r} could be read. "
                         + received("labels_csv", csv_path))
    train_idx, val_idx = _permutation_split(len(kept), split, seed)
    train_files, val_files = [kept[i] for i in train_idx], [kept[i] for i in val_idx]

    def stream(files, part, shuffle_part):
        file_cache = cache_mode
        if cache_mode:
            file_cache = _cache_file(cache_mode, (sorted(f.source for f in files), size, fit, seed,
                                                  _images.DECODE_RULE, "multilabel"), part)
        return _file_stream(files, size=size, fit=fit, batch_size=batch_size, shuffle=shuffle_part, seed=seed,
                            cache=file_cache, targets=targets)

    counts = targets[[f.label for f in train_files]].sum(0)
    return ImageData(
        train=stream(train_files, "train", shuffle),
        val=stream(val_files, "val", False) if val_files else None,
        class_names=names,
        image_size=size,
        class_counts={name: int(c) for name, c in zip(names, counts)},
        skipped=skipped,
        batch_size=batch_size,
        fingerprint=files_fingerprint(root, train_files, val_files) + arrays_fingerprint(targets)[:8],
        task="multilabel",
    )


# ---------------------------------------------------------------- from_directory(task="segmentation")

@dataclass(frozen=True)
class _Pair:
    """An image `scan_files` kept (`image.label` is its index in the pair list) and its checked mask."""

    image: _images.ScannedFile
    mask: _masks.MaskInfo


def _segmentation_layout(root: str) -> list[tuple[str, str, str]]:
    """[(part, images folder, masks folder)]: root/images + root/masks, or train/ and val/ each holding both."""
    def both(folder: str) -> bool:
        return all(os.path.isdir(os.path.join(folder, name)) for name in ("images", "masks"))

    if both(root):
        return [("train", os.path.join(root, "images"), os.path.join(root, "masks"))]
    train_root, val_root = _find_layout(root)
    if val_root is not None and both(train_root) and both(val_root):
        return [(part, os.path.join(folder, "images"), os.path.join(folder, "masks"))
                for part, folder in (("train", train_root), ("val", val_root))]
    raise ValueError(f"A segmentation dataset needs `images/` and `masks/` folders in {root!r} (or in its train/ "
                     "and val/ subfolders), each mask a PNG named like its image. " + received("path", root))


def _split_pairs(pairs: list[_Pair], paths: list[str], root: str, split: float, seed: int):
    """(train, val): the `split` fraction whose (seed, relative image path) hashes lowest, so adding or removing a
    file moves at most one other pair between train and val. At least one pair stays in train."""
    if split <= 0:
        return pairs, []
    def key(pair: _Pair) -> bytes:
        name = os.path.relpath(paths[pair.image.label], root).replace(os.sep, "/")
        return hashlib.sha1(f"{seed}:{name}".encode()).digest()

    n_val = min(int(round(len(pairs) * split)), len(pairs) - 1)
    val = set(sorted(range(len(pairs)), key=lambda i: key(pairs[i]))[:n_val])
    return [p for i, p in enumerate(pairs) if i not in val], [p for i, p in enumerate(pairs) if i in val]


def _pair_stream(pairs: Sequence[_Pair], *, size, fit, batch_size, shuffle, seed, cache) -> tf.data.Dataset:
    sources = np.array([p.image.source for p in pairs], dtype=object)
    masks = np.array([p.mask.source for p in pairs], dtype=object)
    scales = np.array([p.image.codec for p in pairs], dtype=np.int32)
    if shuffle:  # as _file_stream: a seeded permutation first, then cheap file names shuffled
        order = np.random.default_rng(seed).permutation(len(sources))
        sources, masks, scales = sources[order], masks[order], scales[order]
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(sources), tf.string),
                                             tf.constant(list(masks), tf.string), scales))
    if shuffle and cache is None:
        ds = ds.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)
        shuffle = False
    jpeg = scales.max(initial=0) > 0

    def load(source, mask, scale):
        return _images.load(source, size, fit, scale if jpeg else None), _masks.load_mask(mask, size, fit)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    return _finish(ds, n_items=len(sources), batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                   post=lambda x, m: (x, tf.cast(m, tf.int32)))   # uint8 in the cache, int32 out


def _segmentation_directory(root: str, *, size, split, batch_size, seed, fit, cache, shuffle) -> ImageData:
    layout = _segmentation_layout(root)
    names = _masks.read_classes(os.path.join(root, _masks.CLASSES_FILE))
    files, parts, skipped = [], [], []
    for part, images_dir, masks_dir in layout:
        found, left = _masks.pair_files(images_dir, masks_dir)
        files += found
        parts += [part] * len(found)
        skipped += left
    total = 2 * len(files) + len(skipped)
    if not files:
        raise ValueError(f"No image/mask pairs (same stem in images/ and masks/) found under {root!r} "
                         f"({len(skipped)} files without a partner). {received('path', root)}")

    cache_mode = _cache_mode(cache, len(files) * 4 // 3 + 1, size)   # + 1 byte of mask per 3 of image
    convert_dir = os.path.join(cache_mode, "converted") if cache_mode else None
    paths = [image for image, _ in files]
    kept, bad = _images.scan_files(paths, list(range(len(files))), convert_dir=convert_dir, target=max(size))
    skipped += bad
    mask_dir = os.path.join(cache_mode, "converted-masks") if cache_mode else _images._workdir()
    os.makedirs(mask_dir, exist_ok=True)
    checked = _masks.check_masks([files[f.label] for f in kept], lambda: mask_dir)
    pairs = []
    for image, (mask, reason) in zip(kept, checked):
        if mask is None:
            skipped.append((files[image.label][1], reason))
        elif names is not None and mask.top >= len(names):
            skipped.append((mask.path, f"class index beyond classes.txt: {mask.top} ({len(names)} classes)"))
        else:
            pairs.append(_Pair(image, mask))
    _summarise_skipped(skipped, total, repr(root), stacklevel=4)
    if not pairs:
        raise ValueError(f"No usable image/mask pairs under {root!r}: all {len(files)} were skipped (see the "
                         f"warning and the reasons it counts). {received('path', root)}")
    if names is None:
        names = [str(i) for i in range(max(p.mask.top for p in pairs) + 1)]
    if len(names) < 2:
        raise ValueError(f"Segmentation needs at least two classes; the masks under {root!r} hold only "
                         f"{names or 'ignore (255)'}. Add a classes.txt naming every class. " + received("path", root))

    if len(layout) == 2:
        train = [p for p in pairs if parts[p.image.label] == "train"]
        val = [p for p in pairs if parts[p.image.label] == "val"]
        if not train:
            raise ValueError(f"No usable image/mask pairs in {layout[0][1]!r}. {received('path', root)}")
    else:
        train, val = _split_pairs(pairs, paths, root, split, seed)

    def stream(part_pairs, part, shuffle_part):
        file_cache = cache_mode
        if cache_mode:
            file_cache = _cache_file(cache_mode, (sorted((p.image.source, p.mask.source) for p in part_pairs),
                                                  size, fit, seed, _images.DECODE_RULE, "segmentation"), part)
        return _pair_stream(part_pairs, size=size, fit=fit, batch_size=batch_size, shuffle=shuffle_part,
                            seed=seed, cache=file_cache)

    counts = np.sum([p.mask.counts for p in train], axis=0)
    def entries(part_pairs):   # images, then their masks, as files_fingerprint reads them
        return ([_images.ScannedFile(p.image.path, p.image.source, 0) for p in part_pairs],
                [_images.ScannedFile(p.mask.path, p.mask.source, 0) for p in part_pairs])

    return ImageData(
        train=stream(train, "train", shuffle),
        val=stream(val, "val", False) if val else None,
        class_names=list(names),
        image_size=size,
        class_counts={name: int(counts[i]) for i, name in enumerate(names)},
        skipped=skipped,
        batch_size=batch_size,
        fingerprint=files_fingerprint(root, *entries(train), *entries(val)),
        task="segmentation",
    )


# ---------------------------------------------------------------- from_arrays

def _as_uint8_images(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        hint = " (for grayscale N x H x W arrays pass x[..., None])" if x.ndim == 3 else ""
        raise ValueError(f"`x` must be a 4-D NHWC array{hint}. Received: x.shape={x.shape}")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"`x` must have 1 or 3 channels (NHWC). Received: x.shape={x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"`x` holds no pixels. Received: x.shape={x.shape}")
    return as_uint8(x, "x")   # the pixel rule of every data argument (cnnzoo.data.adapt)


def _as_int_labels(y: Any, class_names) -> tuple[np.ndarray, list[str]]:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"`y` must be a 1-D array of class ids or names. Received: y.shape={y.shape}")
    if y.dtype.kind in "USO":
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in y.tolist()]
        if class_names is None:
            class_names = sorted(set(names))
        class_names = [str(c) for c in class_names]
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise ValueError(f"`y` has labels missing from `class_names`: {unknown[:10]}. "
                             f"{received('class_names', class_names)}")
        lookup = {name: i for i, name in enumerate(class_names)}
        return np.array([lookup[n] for n in names], np.int32), class_names
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating)
                                                   and np.all(np.mod(y, 1) == 0))):
        raise TypeError(f"`y` must hold integer class ids or string names. Received: y.dtype={y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"`y` class ids must be >= 0. Received: y.min()={int(y.min())}")
    top = int(y.max()) if y.size else -1
    if class_names is None:
        class_names = [str(i) for i in range(top + 1)]
    class_names = [str(c) for c in class_names]
    if top >= len(class_names):
        raise ValueError(f"`y` has class id {top} but `class_names` has only {len(class_names)} names. "
                         f"{received('class_names', class_names)}")
    return y.astype(np.int32), class_names


def _resize_array(x: np.ndarray, size: tuple[int, int], fit: str, chunk: int = 256) -> np.ndarray:
    if x.shape[1:3] == tuple(size):
        return x
    parts = [_images.resize(tf.constant(x[i:i + chunk]), size, fit).numpy() for i in range(0, len(x), chunk)]
    return np.concatenate(parts)


def _array_stream(x: np.ndarray, y: np.ndarray, *, batch_size, shuffle, seed,
                  balanced: bool = False) -> tf.data.Dataset:
    images, labels = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if balanced:   # class-balanced draws of indices (cnnzoo.data.sampling), then the same batch gather
        streams = [tf.data.Dataset.from_tensor_slices(np.flatnonzero(y == k).astype(np.int64))
                   .shuffle(int(np.sum(y == k)), seed=seed + int(k), reshuffle_each_iteration=True)
                   for k in np.unique(y)]
        ds = mix_classes(streams, n_items=len(x), seed=seed)
    elif shuffle:  # shuffle indices and gather whole batches: no second copy of the images in a buffer
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    target_dtype = tf.float32 if y.dtype.kind == "f" else tf.int32     # multi-hot rows stay float
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(images, i), tf.cast(tf.gather(labels, i), target_dtype)),
                                  num_parallel_calls=AUTOTUNE)   # masks are kept as uint8: int32 per batch
    return ds.prefetch(AUTOTUNE)


def from_arrays(x, y=None, *, masks=None, boxes=None, box_labels=None, class_names: Sequence[str] | None = None,
                image_size=None, batch_size: int = 32, validation_split: float = 0.2, seed: int = 0,
                fit: str = "stretch", shuffle: bool = True, sampling: str = "shuffle") -> ImageData:
    """Images already in memory: NHWC numpy/tf arrays, uint8 or float, 1 or 3 channels.

    `sampling="balanced"` draws `.train` class-balanced (`ImageData.balanced()`): every class equally often.

    Multi-label: a 2-D `y` [N, K] of 0/1 (multi-hot: the classes each image holds) gives task "multilabel":
    float32 multi-hot targets, `class_counts` counting positives, a seeded-permutation split; train a model built
    with `classifier_activation="sigmoid"`.

    Float pixels in [0, 1] are scaled to 0..255, float or integer pixels in [0, 255] are kept; floats that are
    neither for sure (negative, above 255, NaN, mostly [0, 1] with values above 1) raise a ValueError (the pixel
    rule of `cnnzoo.data.adapt`). 1-channel images are repeated to RGB. Labels are class ids (ints) or class names (strings; sorted unless
    `class_names` gives the order). The split is stratified by class and fixed by `seed`.

    Segmentation: pass `masks` (int [N, H, W] or [N, H, W, 1], the images' H and W: class indices 0..254,
    255 = ignore) instead of `y`. Class names default to "0".."K-1" up to the largest index; `image_size`
    resizes masks with nearest neighbour (the same `fit`; "pad" pads with 255); the split is a seeded
    permutation; streams yield (uint8 images, int32 masks [B, H, W]) and `class_counts` counts training pixels.

    Example:
        >>> from sklearn.datasets import load_digits                        # doctest: +SKIP
        >>> digits = load_digits()                                          # doctest: +SKIP
        >>> x = digits.images[..., None] / 16                               # doctest: +SKIP
        >>> data = cnnzoo.data.from_arrays(x, digits.target, image_size=32)  # doctest: +SKIP
        >>> scenes = cnnzoo.data.bundled.digit_scenes(64)                   # doctest: +SKIP
        >>> seg = cnnzoo.data.from_arrays(scenes["images"], masks=scenes["masks"])  # doctest: +SKIP
    """
    size, split = _check_common(image_size, batch_size, validation_split, seed, fit, None, allow_none_size=True)
    check_sampling(sampling)
    if sampling != "shuffle" and y is None:
        raise ValueError("sampling='balanced' draws classification data by label; give `y`. "
                         + received("sampling", sampling))
    if boxes is not None or box_labels is not None:
        name = "boxes" if boxes is not None else "box_labels"
        raise NotImplementedError(f"Detection data (`boxes`, `box_labels`) is not implemented yet. "
                                  f"Received: {name}=<array>")
    if masks is not None:
        if y is not None:
            raise ValueError("Pass `y` (class labels) or `masks` (segmentation), not both. Received: y=<array>, "
                             "masks=<array>")
        return _segmentation_arrays(x, masks, class_names=class_names, size=size, split=split,
                                    batch_size=batch_size, seed=seed, fit=fit, shuffle=shuffle)
    if y is None:
        raise ValueError("`y` (class labels) is needed, or `masks` for segmentation. Received: y=None")
    if np.ndim(y) == 2:
        if sampling != "shuffle":
            raise ValueError("sampling='balanced' draws single-label data by class; multi-label images hold "
                             "several. " + received("sampling", sampling))
        return _multilabel_arrays(x, y, class_names=class_names, size=size, split=split, batch_size=batch_size,
                                  seed=seed, fit=fit, shuffle=shuffle)
    images = _as_uint8_images(x)
    labels, names = _as_int_labels(y, class_names)
    if len(images) != len(labels):
        raise ValueError(f"`x` and `y` must have the same length. Received: len(x)={len(images)}, "
                         f"len(y)={len(labels)}")
    _check_classes([names[i] for i in sorted(set(labels.tolist()))], "`y`")
    if size is not None:
        images = _resize_array(images, size, fit)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if split > 0:
        train_idx, val_idx = stratified_split(labels, split, seed)
    else:
        train_idx, val_idx = np.arange(len(labels)), np.array([], np.int64)
    counts = np.bincount(labels[train_idx], minlength=len(names))
    data = _array_data(images, labels, train_idx, val_idx, names=names, counts=counts, batch_size=batch_size,
                       seed=seed, shuffle=shuffle, task="classification")
    train_images, train_labels = images[train_idx], labels[train_idx]
    data.resample = lambda seed: _array_stream(train_images, train_labels, batch_size=batch_size, shuffle=True,
                                               seed=seed, balanced=True)
    return data.balanced(seed=seed) if sampling == "balanced" else data


def _multilabel_arrays(x, y, *, class_names, size, split, batch_size, seed, fit, shuffle) -> ImageData:
    images = _as_uint8_images(x)
    targets, names = as_multi_hot(y, class_names)
    if len(images) != len(targets):
        raise ValueError(f"`x` and `y` must have the same length. Received: len(x)={len(images)}, "
                         f"len(y)={len(targets)}")
    if size is not None:
        images = _resize_array(images, size, fit)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    train_idx, val_idx = _permutation_split(len(targets), split, seed)
    return _array_data(images, targets, train_idx, val_idx, names=names, counts=targets[train_idx].sum(0),
                       batch_size=batch_size, seed=seed, shuffle=shuffle, task="multilabel")


def _permutation_split(n: int, split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices of a seeded permutation: `split` of the n items (never all of them) to val."""
    n_val = min(int(round(n * split)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _array_data(images, targets, train_idx, val_idx, *, names, counts, batch_size, seed, shuffle,
                task: str) -> ImageData:
    """The ImageData of in-memory images and their targets (class ids or masks) split by index."""
    return ImageData(
        train=_array_stream(images[train_idx], targets[train_idx], batch_size=batch_size, shuffle=shuffle,
                            seed=seed),
        val=(_array_stream(images[val_idx], targets[val_idx], batch_size=batch_size, shuffle=False, seed=seed)
             if len(val_idx) else None),
        class_names=names,
        image_size=tuple(int(s) for s in images.shape[1:3]),
        class_counts={name: int(c) for name, c in zip(names, counts)},
        skipped=[],
        batch_size=batch_size,
        fingerprint=arrays_fingerprint(images, targets, train_idx),
        task=task,
    )


def _as_masks(masks: Any, images: np.ndarray, class_names) -> tuple[np.ndarray, list[str]]:
    """uint8 masks [N, H, W] checked against `images`, and the class names."""
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise ValueError(f"`masks` must be an [N, H, W] (or [N, H, W, 1]) array of class indices. "
                         f"Received: masks.shape={masks.shape}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"`masks` must have one [H, W] mask per image of `x`, of its size. Received: "
                         f"masks.shape={masks.shape}, x.shape={images.shape}")
    if not (np.issubdtype(masks.dtype, np.integer) or masks.dtype == bool or (
            np.issubdtype(masks.dtype, np.floating) and np.all(np.mod(masks, 1) == 0))):
        raise TypeError(f"`masks` must hold integer class indices. Received: masks.dtype={masks.dtype}")
    low, high = int(masks.min()), int(masks.max())
    if low < 0 or high > _masks.IGNORE:
        raise ValueError(f"`masks` values must be class indices 0..254 or 255 (ignore). "
                         f"Received: masks.min()={low}, masks.max()={high}")
    masks = masks.astype(np.uint8)
    labelled = np.flatnonzero(np.bincount(masks.reshape(-1), minlength=256)[:_masks.IGNORE])
    top = int(labelled[-1]) if labelled.size else -1
    if class_names is None:
        class_names = [str(i) for i in range(top + 1)]
    class_names = [str(c) for c in class_names]
    if top >= len(class_names):
        raise ValueError(f"`masks` has class index {top} but `class_names` has only {len(class_names)} names. "
                         f"{received('class_names', class_names)}")
    if len(class_names) < 2:
        raise ValueError("Segmentation needs at least two classes; `masks` holds only "
                         f"{class_names or 'ignore (255)'}. Pass `class_names`. {received('class_names', class_names)}")
    return masks, class_names


def _segmentation_arrays(x, masks, *, class_names, size, split, batch_size, seed, fit, shuffle) -> ImageData:
    images = _as_uint8_images(x)
    masks, names = _as_masks(masks, images, class_names)
    if size is not None:
        images = _resize_array(images, size, fit)
        if masks.shape[1:3] != tuple(size):
            masks = np.concatenate([_masks.resize_mask(tf.constant(masks[i:i + 256]), size, fit).numpy()
                                    for i in range(0, len(masks), 256)])
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    train_idx, val_idx = _permutation_split(len(images), split, seed)
    counts = np.bincount(masks[train_idx].reshape(-1), minlength=256)
    return _array_data(images, masks, train_idx, val_idx, names=names, counts=counts, batch_size=batch_size,
                       seed=seed, shuffle=shuffle, task="segmentation")


# ---------------------------------------------------------------- from_tfds

def _tfds_splits(split, available: Sequence[str], validation_split: float) -> tuple[str, str | None]:
    if split is None:
        if "validation" in available:
            return "train", "validation"
        split = "train"
    if isinstance(split, str):
        if validation_split <= 0:
            return split, None
        keep = int(round(100 * (1 - validation_split)))
        base = split.split("[")[0]
        if "[" in split:
            raise ValueError("With a sliced `split`, pass (train_split, val_split) explicitly. "
                             f"{received('split', split)}")
        return f"{base}[:{keep}%]", f"{base}[{keep}%:]"
    if isinstance(split, (tuple, list)) and len(split) == 2 and all(isinstance(s, str) for s in split):
        return split[0], split[1]
    raise ValueError(f"`split` must be None, a split name or a (train, val) pair of split names. "
                     f"{received('split', split)}")


def from_tfds(name: str, *, data_dir: str | None = None, split=None, image_size=(224, 224),
              batch_size: int = 32, validation_split: float = 0.2, seed: int = 0, fit: str = "stretch",
              cache="auto", shuffle: bool = True, image_key: str = "image", label_key: str = "label",
              download: bool = False) -> ImageData:
    """A TensorFlow Datasets image classification dataset, read from a local `data_dir`.

    split: None uses "train" and "validation" when the dataset has one, else carves `validation_split` off
    "train"; a split name carves from that split; a (train, val) pair is used as given.
    Nothing is downloaded unless `download=True`; a dataset that is not prepared raises a ValueError that
    says where TFDS looked and how to prepare it.

    Example:
        >>> data = cnnzoo.data.from_tfds("tf_flowers", data_dir="~/tfds", image_size=160)  # doctest: +SKIP
    """
    import tensorflow_datasets as tfds

    size, split_fraction = _check_common(image_size, batch_size, validation_split, seed, fit, cache)
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a TFDS dataset name. {received('name', name)}")
    data_dir = os.path.expanduser(os.fspath(data_dir)) if data_dir is not None else None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"TFDS has no dataset named {name!r} (see `tfds.list_builders()`). "
                         f"{received('name', name)}") from None
    features = builder.info.features
    for key, arg in ((image_key, "image_key"), (label_key, "label_key")):
        if key not in features:
            raise ValueError(f"TFDS dataset {name!r} has no feature {key!r}; it has {sorted(features)}. "
                             f"{received(arg, key)}")
    label_feature = features[label_key]
    num_classes = getattr(label_feature, "num_classes", None)
    if not num_classes:
        raise ValueError(f"Feature {label_key!r} of {name!r} is not a ClassLabel. {received('label_key', label_key)}")
    class_names = list(label_feature.names)
    _check_classes(class_names, f"TFDS dataset {name!r}")
    train_split, val_split = _tfds_splits(split, list(builder.info.splits.keys()), split_fraction)

    if download:
        builder.download_and_prepare()

    def read(part: str, shuffle_files: bool, decoders=None) -> tf.data.Dataset:
        config = tfds.ReadConfig(shuffle_seed=seed)
        try:
            return builder.as_dataset(split=part, shuffle_files=shuffle_files, read_config=config,
                                      decoders=decoders)
        except (AssertionError, tf.errors.NotFoundError, FileNotFoundError) as error:
            if "could not find data" not in str(error) and not isinstance(error, (tf.errors.NotFoundError,
                                                                                   FileNotFoundError)):
                raise
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared: no data under {builder.data_dir!r} "
                f"(data_dir={data_dir!r}). Prepare it where there is network access with "
                f"`tfds build {name} --data_dir <dir>` (or `tfds.builder({name!r}, data_dir=<dir>)"
                ".download_and_prepare()`), copy <dir> here and pass data_dir=<dir>, or pass download=True "
                "when online.") from None
        except ValueError as error:
            raise ValueError(f"TFDS dataset {name!r} cannot read split {part!r}: {error}. "
                             f"{received('split', split)}") from None

    def examples(part: str) -> int | None:
        try:
            return int(builder.info.splits[part].num_examples)
        except (KeyError, ValueError, TypeError):
            return None

    def to_pair(example):
        image = example[image_key]
        image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.image.grayscale_to_rgb(image),
                        lambda: image[..., :3])
        image = _images.resize(image, size, fit)
        image.set_shape([size[0], size[1], 3])
        return image, tf.cast(example[label_key], tf.int32)

    def stream(part: str, shuffle_part: bool) -> tf.data.Dataset:
        n = examples(part)
        ds = read(part, shuffle_part).map(to_pair, num_parallel_calls=AUTOTUNE)
        mode = _cache_mode(cache, n if n is not None else 1 << 40, size)   # unknown size: no "auto" cache
        if mode:
            mode = _cache_file(mode, (name, builder.data_dir, part, size, fit), part.replace("%", "pc"))
        return _finish(ds, n_items=n or _SHUFFLE_BUFFER, batch_size=batch_size, shuffle=shuffle_part,
                       seed=seed, cache=mode)

    train = stream(train_split, shuffle)
    val = stream(val_split, False) if val_split else None
    # Count labels without decoding images (one pass over the label column).
    labels_only = read(train_split, False, {image_key: tfds.decode.SkipDecoding()}).map(lambda e: e[label_key])
    counts = np.bincount(np.fromiter(labels_only.as_numpy_iterator(), np.int64), minlength=len(class_names))
    return ImageData(train=train, val=val, class_names=class_names, image_size=size,
                     class_counts={n: int(c) for n, c in zip(class_names, counts[:len(class_names)])},
                     skipped=[], batch_size=batch_size)
