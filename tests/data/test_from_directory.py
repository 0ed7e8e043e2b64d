"""from_directory: formats, bad files, conversions, splits, layouts, resizing, caching and errors."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import cnnzoo
from cnnzoo.data import from_directory

from .conftest import identity, photo, write_bad, write_convertible, write_good


def ids(dataset) -> list[int]:
    """The identity (gray value) of every image in a stream of solid-colour images, in stream order."""
    return [int(image[0, 0, 0]) for images, _ in dataset for image in images.numpy()]


def test_bad_files_are_skipped_with_reasons_and_good_ones_kept(tmp_path):
    root = tmp_path / "pets"
    good = write_good(str(root / "cat"), 8) + write_good(str(root / "dog"), 7, seed=1)
    bad = write_bad(str(root / "cat"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = from_directory(root, image_size=32, batch_size=4, validation_split=0.25, seed=0)
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(messages) == 1 and f"skipped {len(bad)} of" in messages[0]

    skipped = {os.path.basename(path): reason for path, reason in data.skipped}
    assert set(skipped) == set(bad)
    for name, word in bad.items():
        assert word in skipped[name], (name, skipped[name])
    # No good image dropped: every one arrives, over two epochs, with no error mid-epoch.
    for _ in range(2):
        seen = sum(len(y) for _, y in data.train) + sum(len(y) for _, y in data.val)
        assert seen == len(good)
    assert data.class_names == ["cat", "dog"] and data.num_classes == 2
    assert sum(data.class_counts.values()) == len(good) - 4   # 2 per class in val (25 % of 8 and 7)
    images, labels = next(iter(data.train))
    assert images.dtype == tf.uint8 and images.shape[1:] == (32, 32, 3) and labels.dtype == tf.int32
    assert type(data.train).__name__ == "_PrefetchDataset" and images.shape[0] == 4


def test_convertible_images_become_the_right_rgb_pixels(tmp_path):
    root = tmp_path / "odd"
    expected = write_convertible(str(root / "a"))
    write_good(str(root / "b"), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # nothing here may be skipped
        data = from_directory(root, image_size=(24, 32), batch_size=64, validation_split=0.0, shuffle=False)
    assert data.skipped == []
    decoded = next(iter(data.train))[0].numpy()[: len(expected)]
    for name, image in zip(sorted(expected), decoded):
        want = expected[name]
        error = np.abs(image.astype(float) - want.astype(float))
        limit = 2.0 if name.endswith(".jpg") else 1.0   # JPEG: Pillow's and libjpeg-turbo's IDCT differ
        assert error.mean() <= limit, (name, error.mean())


def test_files_the_plain_decode_misreads_get_copies_made_by_the_decode_rule(tmp_path):
    from cnnzoo.data.images import decode_file, scan_files

    folder = str(tmp_path / "x")
    expected = write_convertible(folder)
    paths = [os.path.join(folder, n) for n in sorted(expected)]
    kept, skipped = scan_files(paths, [0] * len(paths))
    assert skipped == []
    copies = {os.path.basename(f.path): f.source for f in kept if f.source != f.path}
    # TF's BMP decoder returns palette indices and TF ignores EXIF orientation: the rule's copies fix both.
    assert set(copies) == {"palette.bmp", "exif_rotated.jpg"}
    for name, copy in copies.items():
        with open(os.path.join(folder, name), "rb") as f:
            rule = decode_file(tf.constant(f.read())).numpy()
        np.testing.assert_array_equal(np.asarray(Image.open(copy).convert("RGB")), rule, err_msg=name)


def test_split_is_stratified_disjoint_and_fixed_by_seed(indexed_tree):
    root = indexed_tree({"a": 10, "b": 5, "c": 20})
    first = from_directory(root, image_size=16, batch_size=8, validation_split=0.2, seed=3)
    again = from_directory(root, image_size=16, batch_size=8, validation_split=0.2, seed=3)
    other = from_directory(root, image_size=16, batch_size=8, validation_split=0.2, seed=4)
    val = ids(first.val)
    assert sorted(val) == sorted(ids(again.val)) and sorted(val) != sorted(ids(other.val))
    per_class = [sum(1 for v in val if (v - 1) // 40 == k) for k in range(3)]
    assert per_class == [2, 1, 4]
    train = ids(first.train)
    assert not set(train) & set(val) and len(train) + len(val) == 35
    assert first.class_counts == {"a": 8, "b": 4, "c": 16}


def test_train_order_reshuffles_each_epoch_and_repeats_with_the_seed(indexed_tree):
    root = indexed_tree({"a": 12, "b": 12})
    data = from_directory(root, image_size=16, batch_size=6, validation_split=0.0, seed=1, cache=False)
    epoch1, epoch2 = ids(data.train), ids(data.train)
    assert sorted(epoch1) == sorted(epoch2) and epoch1 != epoch2
    twin = from_directory(root, image_size=16, batch_size=6, validation_split=0.0, seed=1, cache="memory")
    assert sorted(ids(twin.train)) == sorted(epoch1)
    same = from_directory(root, image_size=16, batch_size=6, validation_split=0.0, seed=1, cache=False)
    assert ids(same.train) == epoch1


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_explicit_train_and_validation_folders(tmp_path, indexed_tree, val_name):
    indexed_tree({"a": 6, "b": 6}, root=tmp_path / "ds" / "train")
    indexed_tree({"a": 2, "b": 3}, root=tmp_path / "ds" / val_name)
    data = from_directory(tmp_path / "ds", image_size=16, batch_size=4, validation_split=0.5)
    assert data.class_names == ["a", "b"]
    assert sum(len(y) for _, y in data.val) == 5 and sum(len(y) for _, y in data.train) == 12
    assert data.class_counts == {"a": 6, "b": 6}


def test_file_cache_is_written_and_reused(tmp_path, make_tree):
    root = make_tree({"a": 4, "b": 4})
    cache = tmp_path / "cache"
    data = from_directory(root, image_size=16, batch_size=4, validation_split=0.25, cache=str(cache))
    first = sorted(map(bytes, (i.numpy().tobytes() for x, _ in data.train for i in x)))
    assert any(name.startswith("cnnzoo-") for name in os.listdir(cache))
    second = sorted(map(bytes, (i.numpy().tobytes() for x, _ in data.train for i in x)))
    assert first == second


def test_fit_crop_and_pad_keep_the_aspect_ratio(tmp_path):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)
    wide[:, 20:40] = (0, 255, 0)
    wide[:, 40:] = (0, 0, 255)
    for cls in ("a", "b"):
        os.makedirs(tmp_path / "w" / cls)
        Image.fromarray(wide).save(tmp_path / "w" / cls / "wide.png")
    kwargs = dict(image_size=20, batch_size=2, validation_split=0.0, shuffle=False)
    crop = next(iter(from_directory(tmp_path / "w", fit="crop", **kwargs).train))[0].numpy()[0]
    assert (crop[:, 2:-2, 1] > 250).all() and (crop[:, :, 0] < 5).all()        # only the green middle
    pad = next(iter(from_directory(tmp_path / "w", fit="pad", **kwargs).train))[0].numpy()[0]
    assert (pad[:5] == 0).all() and (pad[-5:] == 0).all()                       # black bars top and bottom
    assert pad[10, 1, 0] > 200 and pad[10, 18, 2] > 200                         # red left, blue right
    stretch = next(iter(from_directory(tmp_path / "w", **kwargs).train))[0].numpy()[0]
    assert stretch[10, 1, 0] > 200 and (stretch[:, :, :].sum(-1) > 200).all()  # no bars


def test_large_jpeg_decodes_downscaled_to_the_same_picture(tmp_path):
    big = photo(640, 800, seed=5)
    for cls in ("a", "b"):
        os.makedirs(tmp_path / "big" / cls)
        Image.fromarray(big).save(tmp_path / "big" / cls / "big.jpg", quality=95)
    data = from_directory(tmp_path / "big", image_size=(64, 80), batch_size=2, validation_split=0.0,
                          shuffle=False)
    image = next(iter(data.train))[0].numpy()[0].astype(float)
    reference = np.asarray(Image.fromarray(big).resize((80, 64), Image.BOX)).astype(float)
    assert np.abs(image - reference).mean() < 4.0
    from cnnzoo.data.images import scan_files
    kept, _ = scan_files([str(tmp_path / "big" / "a" / "big.jpg")], [0], target=80)
    assert kept[0].scale == 8                 # 640 / 8 = 80: decoded at 1/8 in the DCT


def test_errors_name_the_problem_and_the_path(tmp_path, make_tree):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No classes found"):
        from_directory(empty)
    with pytest.raises(ValueError, match="path"):
        from_directory(tmp_path / "missing")
    with pytest.raises(ValueError, match="Only one class"):
        from_directory(make_tree({"solo": 3}, root=tmp_path / "one"))
    root = make_tree({"a": 3}, root=tmp_path / "broken")
    write_bad(str(tmp_path / "broken" / "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"Class folder .*broken.*b'.* no readable images"):
            from_directory(root)
    (tmp_path / "noimages" / "a").mkdir(parents=True)
    (tmp_path / "noimages" / "b").mkdir(parents=True)
    with pytest.raises(ValueError, match="No image files"):
        from_directory(tmp_path / "noimages")
    good = make_tree({"a": 2, "b": 2}, root=tmp_path / "ok")
    with pytest.raises(ValueError, match="Received: validation_split=1.5"):
        from_directory(good, validation_split=1.5)
    with pytest.raises(ValueError, match="Received: image_size"):
        from_directory(good, image_size=(0, 10))
    with pytest.raises(ValueError, match="Received: fit='squash'"):
        from_directory(good, fit="squash")
    with pytest.raises(TypeError, match="batch_size"):
        from_directory(good, batch_size=2.5)


def test_public_names_are_exported():
    for name in ("from_directory", "from_tfds", "from_arrays", "augmentation", "augment_dataset",
                 "show_batch", "ImageData"):
        assert hasattr(cnnzoo.data, name)
