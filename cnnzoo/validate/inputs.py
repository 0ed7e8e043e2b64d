"""What validation reads: the runner under test, and images (with labels when there are any) from any source.

Every check runs on uint8 RGB images at the model's input size, so pixel statistics describe what the model
sees and a folder of mixed-size photos stacks into one array.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from cnnzoo._checks import check_choice, check_int, received


@dataclasses.dataclass
class Images:
    """uint8 images [N, H, W, 3], int labels [N] in the model's class order (or None), and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None = None
    paths: list | None = None
    skipped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def runner_for(source):
    """The runner under test: a Runner as is, else `cnnzoo.export.load_runner(source)`."""
    from cnnzoo.export.runners import Runner, load_runner

    return source if isinstance(source, Runner) else load_runner(source)


def describe(runner) -> dict:
    return {"format": runner.format, "path": runner.path,
            "input_size": None if runner.input_size is None else list(runner.input_size),
            "class_names": runner.class_names}


def images_from(data, *, name: str, split: str = "val", max_images: int | None = None, size=None,
                class_names=None) -> Images:
    """Read `data` into an `Images`.

    Args:
        data: ImageData (its `split`), a folder (one subfolder per class; `train/` `val/` layouts use
            `split`), a tf.data.Dataset of images or (images, labels), batched or not, an (images, labels)
            pair, or uint8 images [N, H, W, 3].
        name: str, the argument name used in errors.
        split: "train" or "val".
        max_images: int or None, keep at most this many: a seeded uniform sample (classes keep their shares,
            order is kept). A stream is read to its end to draw it.
        size: (height, width) to resize to, or None to keep the images as they are.
        class_names: the model's class names: labels are put in this order.
    """
    check_choice("split", split, ("train", "val"))
    if max_images is not None:
        check_int("max_images", max_images, minimum=1)
    data_names = getattr(data, "class_names", None)
    paths, skipped = None, []
    if isinstance(data, (str, os.PathLike)):
        images, labels, data_names, paths, skipped = _read_folder(Path(data), name=name, split=split, size=size,
                                                                  max_images=max_images)
    elif hasattr(data, "train") and hasattr(data, "val"):
        stream = getattr(data, split)
        if stream is None:
            raise ValueError(f"`{name}` has no {split!r} split. {received(name, data)}")
        images, labels = _read_stream(stream, name, max_images)
    elif _is_dataset(data):
        images, labels = _read_stream(data, name, max_images)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = np.asarray(data[0]), np.asarray(data[1])
    elif isinstance(data, np.ndarray) or hasattr(data, "numpy"):
        images, labels = np.asarray(data), None
    else:
        raise TypeError(f"`{name}` must be an ImageData, a folder, a tf.data.Dataset, an (images, labels) pair or "
                        f"a uint8 image array. {received(name, type(data).__name__)}")
    images = _as_images(images, name)
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"`{name}` has {len(images)} images but {len(labels)} labels. "
                             f"Received: {name}=(images of {len(images)}, labels of {len(labels)})")
    if max_images is not None and len(images) > max_images:
        keep = sample_indices(len(images), max_images)
        images = images[keep]
        labels = None if labels is None else labels[keep]
    if len(images) == 0:
        shown = str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__
        raise ValueError(f"`{name}` holds no images. {received(name, shown)}")
    if size is not None and tuple(images.shape[1:3]) != tuple(size):
        images = _resize(images, size)
    notes: list = []
    if labels is not None:
        labels = _model_labels(labels, data_names, class_names, name, notes)
    return Images(images=images, labels=labels, paths=paths, skipped=skipped, notes=notes)


def _is_dataset(data) -> bool:
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset)


def _as_images(images, name: str) -> np.ndarray:
    from cnnzoo.export.runners import as_rgb_uint8

    images = np.asarray(images)
    if images.ndim == 3 and images.shape[-1] not in (1, 3, 4):   # [N, H, W] grayscale batch
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"`{name}` must hold images [N, H, W, C]. Received: {name} images of shape {images.shape}")
    return as_rgb_uint8(images, name=name)


def _resize(images: np.ndarray, size) -> np.ndarray:
    import tensorflow as tf

    from cnnzoo.data.images import resize

    # The training pipeline's resize (bilinear, rounded): drift then compares what the model is fed.
    parts = [resize(tf.constant(images[i:i + 256]), tuple(size)).numpy() for i in range(0, len(images), 256)]
    return np.concatenate(parts)


def sample_indices(n: int, k: int, seed: int = 0) -> np.ndarray:
    """k of range(n), uniformly at random from `seed`, in increasing order (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _read_stream(stream, name: str, max_images: int | None):
    """All of a stream, or a uniform reservoir sample of `max_images` items (in stream order)."""
    batches, labels, count = [], [], 0
    has_labels = None
    rng = np.random.default_rng(0)
    slots: dict[int, tuple] = {}   # reservoir: slot -> (stream position, image, label)
    for element in stream:
        if isinstance(element, (tuple, list)):
            x, y = np.asarray(element[0]), np.asarray(element[1])
        elif isinstance(element, dict):
            raise TypeError(f"`{name}` yields dicts; map it to (images, labels) or images first. "
                            f"{received(name + ' element keys', sorted(element))}")
        else:
            x, y = np.asarray(element), None
        if has_labels is None:
            has_labels = y is not None
        if x.ndim == 3 and x.shape[-1] in (1, 3, 4):    # an unbatched stream
            x = x[None]
            y = None if y is None else y.reshape(1, *y.shape)
        y = None if y is None else (y.argmax(-1) if y.ndim == 2 else y.reshape(-1))
        if max_images is None:
            batches.append(x)
            if y is not None:
                labels.append(y)
        else:
            for i in range(len(x)):
                position = count + i
                slot = position if position < max_images else int(rng.integers(0, position + 1))
                if slot < max_images:
                    slots[slot] = (position, x[i], None if y is None else y[i])
        count += len(x)
    if count == 0:
        raise ValueError(f"`{name}` gave no images. {received(name, stream)}")
    if max_images is not None:
        kept = sorted(slots.values(), key=lambda item: item[0])
        images = np.stack([item[1] for item in kept])
        return images, (np.array([item[2] for item in kept]) if has_labels else None)
    return np.concatenate(batches), (np.concatenate(labels) if has_labels else None)


def _read_folder(path: Path, *, name: str, split: str, size, max_images):
    import tensorflow as tf

    from cnnzoo.data import images as image_files

    if not path.exists():
        raise FileNotFoundError(f"`{name}` does not exist. {received(name, str(path))}")
    if not path.is_dir():
        raise ValueError(f"`{name}` must be a folder with one subfolder per class. {received(name, str(path))}")
    if size is None:
        raise ValueError(f"Reading a folder needs the model's input size. {received(name, str(path))}")
    root = path
    for candidate in ((split,) if split == "train" else ("val", "validation")):
        if (path / candidate).is_dir() and (path / "train").is_dir():
            root = path / candidate
    class_names, class_files, ignored = image_files.list_class_files(str(root))
    if not class_names:
        raise ValueError(f"`{name}` has no class subfolders. {received(name, str(path))}")
    files, labels = [], []
    for label, found in enumerate(class_files):
        files += found
        labels += [label] * len(found)
    kept, bad = image_files.scan_files(files, labels)
    if max_images is not None:
        kept = [kept[i] for i in sample_indices(len(kept), max_images)]
    if not kept:
        raise ValueError(f"`{name}` has no readable images ({len(bad)} skipped, {len(ignored)} ignored). "
                         f"{received(name, str(path))}")
    images = np.stack([image_files.load(tf.constant(f.source), tuple(size)).numpy() for f in kept])
    return (images, np.array([f.label for f in kept], np.int64), class_names, [f.path for f in kept],
            [(p, reason) for p, reason in ignored + bad])


def _model_labels(labels: np.ndarray, data_names, model_names, name: str, notes: list) -> np.ndarray:
    """Labels as indices into the model's classes: by name where the names say, else by index."""
    if labels.dtype.kind in "USO":
        if model_names is None:
            raise ValueError(f"`{name}` has string labels but the model has no class names. "
                             f"{received(name + ' labels', labels[:5].tolist())}")
        lookup = {c: i for i, c in enumerate(model_names)}
        unknown = sorted({str(v) for v in labels.tolist()} - set(lookup))
        if unknown:
            raise ValueError(f"`{name}` has labels the model does not know: {unknown[:10]}. "
                             f"{received('class_names', model_names)}")
        return np.array([lookup[str(v)] for v in labels.tolist()], np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0)):
            raise TypeError(f"`{name}` labels must be class ids or names. "
                            f"{received(name + ' labels.dtype', str(labels.dtype))}")
    labels = labels.astype(np.int64)
    if data_names is not None and model_names is not None and list(data_names) != list(model_names):
        if set(data_names) <= set(model_names):
            order = np.array([list(model_names).index(c) for c in data_names])
            labels = order[labels]
        else:
            notes.append(f"{name}: class names {list(data_names)[:5]}... differ from the model's "
                         f"{list(model_names)[:5]}...; labels matched by index")
    num_classes = None if model_names is None else len(model_names)
    if labels.size and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
        raise ValueError(f"`{name}` labels must lie in [0, {num_classes}). "
                         f"Received: {name} labels in [{labels.min()}, {labels.max()}]")
    return labels
