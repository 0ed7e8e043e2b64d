"""from_arrays (numpy / tf arrays, dtypes, channels, label kinds, errors) and from_tfds (mock data, errors)."""
from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from cnnzoo.data import from_arrays, from_tfds


def collect(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def test_digits_as_float_grayscale_become_uint8_rgb_and_split_by_class():
    digits = load_digits()
    data = from_arrays(digits.images[..., None] / 16.0, digits.target, image_size=(16, 16), batch_size=128,
                       validation_split=0.25, seed=0)
    x, y = collect(data.train)
    vx, vy = collect(data.val)
    assert x.dtype == np.uint8 and x.shape[1:] == (16, 16, 3) and y.dtype == np.int32
    assert (x[..., 0] == x[..., 2]).all() and x.max() > 200           # gray repeated, 0..1 scaled to 0..255
    assert len(y) + len(vy) == len(digits.target)
    for label in range(10):                                              # stratified: 25 % of each class
        total = (digits.target == label).sum()
        assert (vy == label).sum() == round(total * 0.25)
    assert data.class_names == [str(i) for i in range(10)] and data.image_size == (16, 16)
    assert data.class_counts["0"] == (y == 0).sum()


def test_pixel_ranges_and_tensors_are_kept():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (12, 8, 8, 3)).astype(np.uint8)
    labels = np.arange(12) % 3
    for x in (raw, raw.astype(np.float32), tf.constant(raw), raw.astype(np.int64)):
        data = from_arrays(x, labels, validation_split=0.0, shuffle=False, batch_size=12)
        got, got_y = collect(data.train)
        np.testing.assert_array_equal(got, raw)
        np.testing.assert_array_equal(got_y, labels)
    unit = from_arrays(raw / 255.0, labels, validation_split=0.0, shuffle=False, batch_size=12)
    np.testing.assert_allclose(collect(unit.train)[0], raw, atol=1)


def test_float_pixels_of_unsure_range_are_refused():
    rng = np.random.default_rng(1)
    unit = rng.uniform(0, 1, (6, 8, 8, 3))
    labels = np.arange(6) % 2
    outlier = unit.copy()
    outlier[0, 0, 0, 0] = 3.0                    # one value above 1: [0, 1] pixels, or 0..255 ones mostly below 1?
    with pytest.raises(ValueError, match=r"`x` mixes ranges.*above 1.*Received: x.min\(\)=.*x.max\(\)=3.0"):
        from_arrays(outlier, labels)
    for bad, found in ((unit * 300, "above 255"), (unit - 0.5, "negative"), (np.where(unit > 0.9, np.nan, unit),
                                                                            "NaN")):
        with pytest.raises(ValueError, match=f"`x`.*{found}"):
            from_arrays(bad, labels)
    with pytest.raises(TypeError, match="Received: x.dtype=bool"):
        from_arrays(unit > 0.5, labels)
    # Rounding noise just above 1 is still [0, 1]; dark 0..255 pixels (most non-zero values above 1) are 0..255.
    nearly = unit * 1.0004
    got = collect(from_arrays(nearly, labels, validation_split=0.0, shuffle=False, batch_size=6).train)[0]
    np.testing.assert_array_equal(got, np.clip(np.round(nearly * 255), 0, 255).astype(np.uint8))
    dark = np.round(unit * 20)
    got = collect(from_arrays(dark, labels, validation_split=0.0, shuffle=False, batch_size=6).train)[0]
    np.testing.assert_array_equal(got, dark.astype(np.uint8))


def test_string_labels_and_class_name_order():
    x = np.zeros((6, 4, 4, 3), np.uint8)
    names = np.array(["dog", "cat", "dog", "bird", "cat", "bird"])
    data = from_arrays(x, names, validation_split=0.0, shuffle=False, batch_size=6)
    assert data.class_names == ["bird", "cat", "dog"]
    np.testing.assert_array_equal(collect(data.train)[1], [2, 1, 2, 0, 1, 0])
    ordered = from_arrays(x, names, class_names=["dog", "cat", "bird"], validation_split=0.0, shuffle=False,
                          batch_size=6)
    np.testing.assert_array_equal(collect(ordered.train)[1], [0, 1, 0, 2, 1, 2])


def test_training_order_changes_each_epoch_with_a_fixed_seed():
    x = np.arange(32, dtype=np.uint8).reshape(32, 1, 1, 1).repeat(3, -1)
    data = from_arrays(x, np.arange(32) % 2, validation_split=0.0, batch_size=8, seed=5)
    first, second = collect(data.train)[0][:, 0, 0, 0], collect(data.train)[0][:, 0, 0, 0]
    assert sorted(first) == sorted(second) == list(range(32)) and list(first) != list(second)
    again = from_arrays(x, np.arange(32) % 2, validation_split=0.0, batch_size=8, seed=5)
    np.testing.assert_array_equal(collect(again.train)[0][:, 0, 0, 0], first)


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((4, 8, 8, 3)), np.zeros(5), r"same length.*len\(x\)=4, len\(y\)=5"),
    (np.zeros((4, 8, 8)), np.arange(4) % 2, r"4-D NHWC.*x\[\.\.\., None\].*x.shape=\(4, 8, 8\)"),
    (np.zeros((4, 8, 8, 4)), np.arange(4) % 2, r"1 or 3 channels.*x.shape=\(4, 8, 8, 4\)"),
    (np.full((4, 8, 8, 3), -1.0), np.arange(4) % 2, r"\[0, 1\] or \[0, 255\].*x.min\(\)=-1.0"),
    (np.zeros((4, 8, 8, 3)), np.zeros((4, 2, 2)), r"1-D.*y.shape=\(4, 2, 2\)"),
    (np.zeros((4, 8, 8, 3)), np.full((4, 2), 2), r"only 0 and 1"),      # 2-D y is multi-hot (multi-label)
    (np.zeros((4, 8, 8, 3)), np.zeros(4), r"Only one class"),
    (np.zeros((4, 8, 8, 3)), np.array([0, 1, -1, 0]), r"y.min\(\)=-1"),
])
def test_bad_arrays_raise_errors_naming_the_argument(x, y, message):
    with pytest.raises(ValueError, match=message):
        from_arrays(x, y)


def test_labels_must_match_class_names():
    with pytest.raises(ValueError, match=r"missing from `class_names`.*'emu'"):
        from_arrays(np.zeros((3, 4, 4, 3)), ["cat", "dog", "emu"], class_names=["cat", "dog"])
    with pytest.raises(ValueError, match="class id 2 but `class_names` has only 2"):
        from_arrays(np.zeros((3, 4, 4, 3)), [0, 1, 2], class_names=["cat", "dog"])


def test_tfds_mock_dataset_streams_rgb_images_at_the_requested_size(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        data = from_tfds("mnist", data_dir=str(tmp_path), image_size=(20, 20), batch_size=8, seed=0)
        images, labels = next(iter(data.train))
        assert images.dtype == tf.uint8 and images.shape == (8, 20, 20, 3) and labels.dtype == tf.int32
        assert (images[..., 0].numpy() == images[..., 1].numpy()).all()   # grayscale repeated to RGB
        assert data.class_names == [str(i) for i in range(10)] and data.val is not None
        assert sum(data.class_counts.values()) == 24
        explicit = from_tfds("mnist", data_dir=str(tmp_path), split=("train", "test"), image_size=16,
                             validation_split=0.0, batch_size=4)
        assert sum(len(y) for _, y in explicit.val) == 24


def test_tfds_without_local_data_fails_fast_with_instructions(tmp_path, monkeypatch):
    # "Fast" as behaviour, not wall-clock: it never tries the network (where an offline machine would hang).
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args[1:] or kwargs)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(ValueError) as error:
        from_tfds("mnist", data_dir=str(tmp_path), image_size=16)
    message = str(error.value)
    assert os.fspath(tmp_path) in message and "tfds build mnist" in message and "download=True" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__   # no chained traceback wall
    assert attempts == [] and not (tmp_path / "downloads").exists()


def test_tfds_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="no dataset named 'not_a_dataset'"):
        from_tfds("not_a_dataset", data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="Received: image_key='pixels'"):
            from_tfds("mnist", data_dir=str(tmp_path), image_key="pixels")
        with pytest.raises(ValueError, match="Received: split=3"):
            from_tfds("mnist", data_dir=str(tmp_path), split=3)
