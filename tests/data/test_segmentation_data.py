"""Segmentation data: from_directory(task="segmentation"), from_arrays(masks=...), joint augmentation."""
from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cnnzoo.data import Augmentation, augment_dataset, from_arrays, from_directory
from cnnzoo.data import masks as M
from cnnzoo.data import transforms as T

H, W = 24, 32


def encode(mask: np.ndarray) -> np.ndarray:
    """The red value an image carries for each mask value: 30 * (v + 1) for a class, 250 for ignore."""
    return np.where(mask == 255, 250, 30 * (mask.astype(np.int64) + 1)).astype(np.uint8)


def block_mask(seed: int, classes: int = 4, cell: int = 8) -> np.ndarray:
    """A [H, W] mask of `cell`-pixel blocks of random classes (never left-right symmetric)."""
    rng = np.random.default_rng(seed)
    mask = np.kron(rng.integers(0, classes, (H // cell, W // cell)), np.ones((cell, cell), np.int64))
    mask[:cell, :cell], mask[:cell, -cell:] = 0, 1
    return mask.astype(np.uint8)


def pair_image(mask: np.ndarray, ident: int) -> np.ndarray:
    """RGB: red encodes the mask, green the pair's identity."""
    return np.stack([encode(mask), np.full(mask.shape, ident, np.uint8), np.zeros(mask.shape, np.uint8)], -1)


def write_pair(root, stem: str, mask: np.ndarray, ident: int, *, palette: bool = False) -> None:
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    Image.fromarray(pair_image(mask, ident)).save(root / "images" / f"{stem}.png")
    if palette:   # colours unrelated to the indices: index i shows as (255 - i, i, 7)
        image = Image.fromarray(mask, mode="P")
        image.putpalette([c for i in range(256) for c in (255 - i, i, 7)])
        image.save(root / "masks" / f"{stem}.png")
    else:
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{stem}.png")


@pytest.fixture
def seg_root(tmp_path):
    """8 good pairs (one palette mask with class 4, one with ignore pixels) and every kind of bad file."""
    root = tmp_path / "seg"
    for i in range(8):
        mask = block_mask(i)
        if i == 3:
            mask[8:16, 8:16] = 4
        if i == 5:
            mask[16:, :8] = 255
        write_pair(root, f"p{i}", mask, 10 * (i + 1), palette=i == 3)
    Image.fromarray(pair_image(block_mask(9), 200)).save(root / "images" / "no_mask.png")
    Image.fromarray(block_mask(10)).save(root / "masks" / "orphan.png")
    Image.fromarray(pair_image(block_mask(11), 210)).save(root / "images" / "small.png")
    Image.fromarray(block_mask(11)[:16]).save(root / "masks" / "small.png")             # 16x32 mask, 24x32 image
    with open(root / "images" / "corrupt.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really a png")
    Image.fromarray(block_mask(12)).save(root / "masks" / "corrupt.png")
    Image.fromarray(pair_image(block_mask(13), 220)).save(root / "images" / "colour.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "masks" / "colour.png")    # an RGB mask
    (root / "masks" / "notes.txt").write_text("drawn by hand\n")
    return root


def load(root, **kwargs):
    kwargs = {"task": "segmentation", "image_size": (H, W), "batch_size": 4, **kwargs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = from_directory(root, **kwargs)
    return data, [str(w.message) for w in caught if "skipped" in str(w.message)]


def collect(dataset):
    pairs = [(x.numpy(), m.numpy()) for x, m in dataset]
    return np.concatenate([x for x, _ in pairs]), np.concatenate([m for _, m in pairs])


def test_pairs_palette_indices_ignore_and_skipped_files(seg_root):
    data, messages = load(seg_root, validation_split=0.0, shuffle=False)
    assert data.task == "segmentation" and "task='segmentation'" in repr(data)
    assert data.class_names == ["0", "1", "2", "3", "4"]        # no classes.txt: up to the largest index
    skipped = {os.path.relpath(path, seg_root): reason for path, reason in data.skipped}
    assert sorted(skipped) == ["images/corrupt.png", "images/no_mask.png", "masks/colour.png", "masks/notes.txt",
                               "masks/orphan.png", "masks/small.png"]
    assert "no mask" in skipped["images/no_mask.png"] and "without an image" in skipped["masks/orphan.png"]
    assert "size differs" in skipped["masks/small.png"] and "16x32" in skipped["masks/small.png"]
    assert "not an image" in skipped["images/corrupt.png"] and "'RGB'" in skipped["masks/colour.png"]
    assert "extension" in skipped["masks/notes.txt"]
    assert len(messages) == 1 and "skipped 6 of" in messages[0] and "ImageData.skipped" in messages[0]

    images, masks = collect(data.train)
    assert images.dtype == np.uint8 and images.shape == (8, H, W, 3)
    assert masks.dtype == np.int32 and masks.shape == (8, H, W)
    by_id = {int(image[0, 0, 1]): (image, mask) for image, mask in zip(images, masks)}
    assert sorted(by_id) == [10 * (i + 1) for i in range(8)]
    for ident, (image, mask) in by_id.items():
        np.testing.assert_array_equal(image[..., 0], encode(mask))       # each mask arrives with its image
    palette_mask = by_id[40][1]
    assert (palette_mask[8:16, 8:16] == 4).all()                     # the index, not a palette colour
    assert (by_id[60][1][16:, :8] == 255).all()                      # ignore kept
    assert set(np.unique(masks)) == {0, 1, 2, 3, 4, 255}
    assert sum(data.class_counts.values()) == 8 * H * W - 64         # training pixels, ignore not counted
    assert data.class_counts["4"] == 64


def test_classes_txt_names_classes_and_masks_beyond_it_are_skipped(tmp_path):
    root = tmp_path / "named"
    for i in range(4):
        write_pair(root, f"a{i}", block_mask(i, classes=3), i + 1)
    big = block_mask(5, classes=3)
    big[0, 0] = 7
    write_pair(root, "beyond", big, 99)
    (root / "classes.txt").write_text("background\ncat\ndog\nbird\n\n")
    data, messages = load(root, validation_split=0.0)
    assert data.class_names == ["background", "cat", "dog", "bird"] and data.num_classes == 4
    assert [os.path.basename(p) for p, _ in data.skipped] == ["beyond.png"]
    assert "beyond classes.txt: 7 (4 classes)" in data.skipped[0][1] and len(messages) == 1
    (root / "classes.txt").write_text("background\n\ncat\n")
    with pytest.raises(ValueError, match="empty line at class index 1"):
        load(root)


def test_split_sizes_and_determinism(seg_root):
    def val_ids(seed):
        data, _ = load(seg_root, validation_split=0.25, seed=seed)
        train_images, _ = collect(data.train)
        val_images, _ = collect(data.val)
        assert len(train_images) == 6 and len(val_images) == 2
        train_ids, ids = set(train_images[:, 0, 0, 1]), set(val_images[:, 0, 0, 1])
        assert not train_ids & ids and len(train_ids | ids) == 8
        return sorted(int(i) for i in ids), data

    first, data = val_ids(0)
    assert val_ids(0)[0] == first
    assert len({tuple(val_ids(seed)[0]) for seed in range(1, 5)} | {tuple(first)}) > 1
    epochs = [collect(data.train)[0][:, 0, 0, 1].tolist() for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) and epochs[0] != epochs[1]   # reshuffled each epoch


def test_resizing_is_nearest_for_masks_and_explicit_train_val_layout(tmp_path):
    root = tmp_path / "layout"
    for part, count in (("train", 3), ("val", 2)):
        for i in range(count):
            write_pair(root / part, f"{part}{i}", block_mask(i), 1 + i)
    data, messages = load(root, image_size=(14, 14), fit="pad", validation_split=0.5, cache=str(tmp_path / "c"))
    assert messages == [] and data.skipped == []
    for _ in range(2):   # a file cache: the second pass reads it
        (images, masks), (val_images, val_masks) = collect(data.train), collect(data.val)
        assert images.shape == (3, 14, 14, 3) and masks.shape == (3, 14, 14) and len(val_masks) == 2
        assert set(np.unique(masks)) <= {0, 1, 2, 3, 255}
        assert (masks[:, 0] == 255).all() and (images[:, 0] == 0).all()   # "pad": black image, ignored mask
    data, _ = load(root / "train", image_size=(12, 16), fit="crop", validation_split=0.0)
    assert set(np.unique(collect(data.train)[1])) <= {0, 1, 2, 3}


def test_directory_errors_name_the_argument(seg_root, tmp_path):
    with pytest.raises(NotImplementedError, match="task='detection'"):
        from_directory(seg_root, task="detection")
    with pytest.raises(ValueError, match="Received: task='boxes'"):
        from_directory(seg_root, task="boxes")
    (tmp_path / "flat" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"images/.*masks/.*Received: path="):
        from_directory(tmp_path / "flat", task="segmentation")
    one = tmp_path / "one"
    write_pair(one, "x", np.zeros((H, W), np.uint8), 1)
    with pytest.raises(ValueError, match="at least two classes.*classes.txt"):
        from_directory(one, task="segmentation", validation_split=0.0)
    with warnings.catch_warnings(record=True) as caught:   # the default task on a segmentation folder
        warnings.simplefilter("always")
        from_directory(seg_root, image_size=16)
    assert any("pass task='segmentation'" in str(w.message) for w in caught)


def make_arrays(n: int = 16):
    masks = np.stack([block_mask(i) for i in range(n)])
    masks[0, :8, 8:16] = 255
    images = np.stack([pair_image(m, i + 1) for i, m in enumerate(masks)])
    return images, masks


def test_from_arrays_masks_split_and_resize():
    x, masks = make_arrays()
    data = from_arrays(x, masks=masks, batch_size=8, validation_split=0.25, seed=3)
    assert data.task == "segmentation" and data.class_names == ["0", "1", "2", "3"]
    (images, got), (val_images, val_masks) = collect(data.train), collect(data.val)
    assert got.dtype == np.int32 and got.shape == (12, H, W) and val_masks.shape == (4, H, W)
    for image, mask in zip(np.concatenate([images, val_images]), np.concatenate([got, val_masks])):
        np.testing.assert_array_equal(mask, masks[image[0, 0, 1] - 1])
    assert sorted(set(images[:, 0, 0, 1]) | set(val_images[:, 0, 0, 1])) == list(range(1, 17))
    again = from_arrays(x, masks=masks[..., None], validation_split=0.25, seed=3)
    np.testing.assert_array_equal(collect(again.val)[0], val_images)
    assert sum(data.class_counts.values()) == (12 * H * W - (64 if 1 in images[:, 0, 0, 1] else 0))

    small = from_arrays(x, masks=masks, image_size=(12, 16), class_names=list("abcde"), validation_split=0.0)
    images, got = collect(small.train)
    assert small.class_names == list("abcde") and got.shape == (16, 12, 16)
    assert set(np.unique(got)) <= {0, 1, 2, 3, 255}
    for image, mask in zip(images, got):   # nearest (half-pixel centres) of 8-pixel blocks: no new values
        np.testing.assert_array_equal(mask, masks[image[0, 0, 1] - 1][1::2, 1::2])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"y": np.zeros(16), "masks": "M"}, ValueError, "not both"),
    ({"masks": "M", "boxes": np.zeros((16, 1, 4))}, NotImplementedError, "Received: boxes="),
    ({}, ValueError, "Received: y=None"),
    ({"masks": np.zeros((16, H, W // 2))}, ValueError, r"masks.shape=\(16, 24, 16\)"),
    ({"masks": np.zeros((16, H))}, ValueError, r"\[N, H, W\].*masks.shape=\(16, 24\)"),
    ({"masks": np.full((16, H, W), 300)}, ValueError, r"masks.max\(\)=300"),
    ({"masks": np.full((16, H, W), 0.5)}, TypeError, "masks.dtype=float64"),
    ({"masks": "M", "class_names": ["a", "b"]}, ValueError, "class index 3 but `class_names` has only 2"),
    ({"masks": np.zeros((16, H, W), np.uint8)}, ValueError, "at least two classes"),
])
def test_from_arrays_mask_errors_name_the_argument(kwargs, error, message):
    x, masks = make_arrays()
    kwargs = {k: masks if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(error, match=message):
        from_arrays(x, **kwargs)


@pytest.fixture(scope="module")
def arrays_data():
    x, masks = make_arrays()
    return from_arrays(x, masks=masks, batch_size=16, validation_split=0.0, shuffle=False)


@pytest.mark.parametrize("policy", ["light", "standard", "heavy"])
def test_policies_keep_mask_values_and_are_reproducible(arrays_data, policy):
    original = set(np.unique(make_arrays()[1]))
    runs = [next(iter(augment_dataset(arrays_data, policy, seed=7))) for _ in range(2)]
    images, masks = runs[0]
    assert images.dtype == tf.float32 and masks.dtype == tf.int32 and masks.shape == (16, H, W)
    assert set(np.unique(masks.numpy())) <= original | {255}
    assert (masks.numpy() == 255).mean() > (make_arrays()[1] == 255).mean()   # warps look outside: ignore
    np.testing.assert_array_equal(runs[1][1], masks)
    np.testing.assert_array_equal(runs[1][0], images)


def test_image_and_mask_move_together(arrays_data):
    x, masks = make_arrays()
    images, got = next(iter(augment_dataset(arrays_data, ["flip"], seed=0)))   # bilinear: exact for a mirror
    images, got = images.numpy(), got.numpy()
    np.testing.assert_array_equal(images[..., 0], encode(got))
    flipped = [np.array_equal(got[i], masks[i][:, ::-1]) for i in range(16)]
    assert 0 < sum(flipped) < 16 and all(f or np.array_equal(got[i], masks[i]) for i, f in enumerate(flipped))

    # Rotation, zoom and translation too: with a nearest image warp, every pixel still shows its mask's value.
    warp = T.RandomAffine(flip="horizontal", rotation=0.1, zoom=0.3, translation=0.15, interpolation="nearest",
                          fill_mode="constant", fill_value=0.0)
    images, got = next(iter(augment_dataset(arrays_data.train, Augmentation([warp]), seed=1)))
    images, got = images.numpy(), got.numpy()
    outside = images[..., 0] == 0
    assert outside.any() and (got[outside] == 255).all()
    np.testing.assert_array_equal(images[..., 0][~outside], encode(got[~outside]))


@pytest.mark.filterwarnings("ignore:`build\\(\\)` was called")   # Keras, on a layer called directly
def test_colour_steps_change_images_only(arrays_data):
    x, masks = make_arrays()
    policy = ["color_jitter", ("erasing", {"probability": 1.0}), keras.layers.RandomContrast(0.5, seed=0)]
    images, got = next(iter(augment_dataset(arrays_data, policy, seed=0)))
    np.testing.assert_array_equal(got, masks)
    assert float(np.abs(images.numpy() - x).mean()) > 1.0
    out = Augmentation([T.ColorJitter(brightness=0.3)], seed=0)({"images": x, "segmentation_masks": masks[..., None]})
    np.testing.assert_array_equal(out["segmentation_masks"], masks[..., None])


def test_augmentation_refuses_what_cannot_follow_a_mask(arrays_data):
    with pytest.raises(ValueError, match="not defined for segmentation masks.*mixup=0.2"):
        augment_dataset(arrays_data, "light", mixup=0.2)
    with pytest.raises(ValueError, match="Received: one_hot=True"):
        augment_dataset(arrays_data, "light", one_hot=True)
    with pytest.raises(ValueError, match="moves pixels.*augment step=RandomFlip"):
        augment_dataset(arrays_data, [keras.layers.RandomFlip()])


def test_resize_mask_never_makes_new_values():
    mask = tf.constant(np.random.default_rng(0).choice([0, 2, 255], (3, 17, 23)).astype(np.uint8))
    for fit in ("stretch", "crop", "pad"):
        out = M.resize_mask(mask, (9, 31), fit).numpy()
        assert out.shape == (3, 9, 31) and out.dtype == np.uint8
        assert set(np.unique(out)) <= {0, 2, 255}
