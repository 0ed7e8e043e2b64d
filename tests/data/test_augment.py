"""Policies, augment_dataset (output contract for cnnzoo.train), MixUp/CutMix, seeding, and show_batch."""
from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from cnnzoo.data import augment_dataset, augmentation, from_arrays, show_batch
from cnnzoo.data import augment as A
from cnnzoo.data import transforms as T

from .conftest import photo

matplotlib.use("Agg")


def make_data():
    """48 colourful 32x32 images in 3 classes (a fresh ImageData restarts its shuffle sequence)."""
    x = np.stack([photo(32, 32, seed=i) for i in range(48)])
    return from_arrays(x, np.arange(48) % 3, class_names=["a", "b", "c"], batch_size=16, validation_split=0.25)


@pytest.fixture(scope="module")
def data():
    return make_data()


def first(dataset):
    return next(iter(dataset))


@pytest.mark.parametrize("policy, steps", [
    ("none", []), ("light", ["RandomAffine"]), ("standard", ["RandomAffine", "ColorJitter", "RandomErasing"]),
    ("heavy", ["RandomAffine", "RandAugment", "ColorJitter", "RandomErasing"]),
])
def test_policies_build_their_steps_and_keep_pixels_in_range(data, policy, steps):
    layer = augmentation(policy, seed=0)
    assert [type(s).__name__ for s in layer.steps] == steps
    images, labels = first(augment_dataset(data.val, policy, seed=0))   # .val is not shuffled
    raw, raw_labels = first(data.val)
    np.testing.assert_array_equal(labels, raw_labels)
    assert images.dtype == tf.float32 and images.shape == raw.shape and labels.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
    if policy == "none":
        np.testing.assert_array_equal(images, tf.cast(raw, tf.float32))
    else:
        assert float(tf.reduce_mean(tf.abs(images - tf.cast(raw, tf.float32)))) > 1.0


def test_augment_dataset_is_reproducible_and_differs_between_epochs():
    def epochs(seed):
        stream = augment_dataset(make_data(), "standard", seed=seed)
        return [np.concatenate([x.numpy() for x, _ in stream]) for _ in range(2)]

    first_run, second_run = epochs(1), epochs(1)
    np.testing.assert_array_equal(first_run[0], second_run[0])
    np.testing.assert_array_equal(first_run[1], second_run[1])
    assert not np.allclose(first_run[0], first_run[1])
    assert not np.allclose(first_run[0], epochs(2)[0])


def test_mixup_gives_soft_labels_that_match_the_image_mix(data):
    images, labels = first(augment_dataset(data, "none", mixup=1.0, seed=0))
    assert labels.dtype == tf.float32 and labels.shape == (16, 3)
    np.testing.assert_allclose(labels.numpy().sum(-1), 1.0, atol=1e-5)
    assert (labels.numpy().max(-1) < 0.999).mean() > 0.4    # mixed, unless the partner has the same class
    # Same draws on a batch of one-hot "images": the pixels carry the label weights.
    onehot = tf.one_hot(tf.range(16) % 3, 3)
    fake = tf.tile(onehot[:, None, None, :] * 255.0, [1, 4, 4, 1])
    mixed_images, mixed_labels = A.mixup(fake, onehot, 0.4, SEED)
    np.testing.assert_allclose(mixed_images[:, 0, 0, :] / 255.0, mixed_labels, atol=1e-5)


SEED = tf.constant([5, 9], tf.int64)


def test_cutmix_label_weights_equal_the_kept_area():
    onehot = tf.one_hot(tf.range(16) % 4, 4)
    fake = tf.tile(onehot[:, None, None, :] * 255.0, [1, 24, 24, 1])
    images, labels = A.cutmix(fake, onehot, 1.0, SEED)
    area = images.numpy().mean(axis=(1, 2)) / 255.0           # fraction of pixels of each class
    np.testing.assert_allclose(area, labels.numpy(), atol=1e-5)
    assert ((labels.numpy().max(-1) < 0.999) & (labels.numpy().max(-1) > 0.0)).mean() > 0.5


def test_mixup_weights_follow_keras_mixup():
    onehot = tf.one_hot(tf.range(512) % 2, 2)
    ours = np.concatenate([A.mixup(tf.zeros([64, 2, 2, 3]), onehot[i:i + 64], 0.2, tf.constant([i, 1]))[1]
                           for i in range(0, 512, 64)])
    layer = keras.layers.MixUp(alpha=0.2, seed=0)
    theirs = np.concatenate([layer({"images": tf.zeros([64, 2, 2, 3]), "labels": onehot[i:i + 64]})["labels"]
                             for i in range(0, 512, 64)])
    assert stats.ks_2samp(ours.max(-1), theirs.max(-1)).pvalue > 0.01


def test_mixup_and_cutmix_together_switch_per_batch(data):
    layer = augmentation("none", mixup=0.2, cutmix=1.0, seed=0)
    kinds = set()
    onehot = tf.one_hot(tf.range(8) % 2, 2)
    for i in range(12):
        fake = tf.tile(onehot[:, None, None, :] * 255.0, [1, 8, 8, 1])
        images, _ = layer.mix(fake, onehot, tf.constant([i, 0]))
        values = np.unique(np.round(images.numpy()))
        kinds.add("cutmix" if set(values) <= {0.0, 255.0} else "mixup")
    assert kinds == {"cutmix", "mixup"}
    out = layer({"images": tf.zeros([8, 8, 8, 3]), "labels": onehot})
    assert set(out) == {"images", "labels"} and out["labels"].shape == (8, 2)


def test_one_hot_without_mixing_and_num_classes_errors(data):
    _, labels = first(augment_dataset(data, "light", one_hot=True, seed=0))
    np.testing.assert_array_equal(labels.numpy().sum(-1), 1.0)
    with pytest.raises(ValueError, match="Received: num_classes=None"):
        augment_dataset(data.train, "light", mixup=0.2)


def test_step_lists_mix_our_steps_and_keras_layers(data):
    layer = augmentation(["flip", ("rotation", {"factor": 0.1}), keras.layers.RandomContrast(0.2),
                          {"name": "erasing", "probability": 0.5}], seed=0)
    assert [type(s).__name__ for s in layer.steps] == ["RandomAffine", "RandomContrast", "RandomErasing"]
    assert layer.steps[0].flip == "horizontal" and layer.steps[0].rotation == (-0.1, 0.1)
    images, _ = first(augment_dataset(data, layer, seed=0))
    assert images.dtype == tf.float32 and images.shape == (16, 32, 32, 3)


def test_bad_policies_raise_errors_naming_the_argument():
    with pytest.raises(ValueError, match="Received: policy='extreme'"):
        augmentation("extreme")
    with pytest.raises(ValueError, match="Received: policy step='blur'"):
        augmentation(["blur"])
    with pytest.raises(ValueError, match=r"Unknown options.*'angle'"):
        augmentation([("rotation", {"angle": 10})])
    with pytest.raises(ValueError, match="Received: mixup=-1"):
        augmentation("light", mixup=-1)
    with pytest.raises(TypeError, match="dataset"):
        augment_dataset([1, 2, 3], "light")


def test_augmentation_never_ends_up_in_a_saved_model(data, tmp_path):
    with pytest.raises(TypeError, match="never inside a model"):
        keras.Sequential([keras.Input((32, 32, 3)), augmentation("light")])
    # A tiny model keeps this fast; the zoo models take the same float 0..255 batches.
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(augment_dataset(data, "light", mixup=0.2, cutmix=1.0, seed=0).take(2), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    layers = keras.saving.load_model(path).layers
    assert not any(isinstance(layer, (T.BatchAugmenter, A.Augmentation)) or "Random" in type(layer).__name__
                   for layer in layers)


def test_training_false_only_casts(data):
    raw, _ = first(data.val)
    out = augmentation("heavy", seed=0)(raw, training=False)
    np.testing.assert_array_equal(out, tf.cast(raw, tf.float32))


def test_show_batch_draws_images_with_class_names(data):
    figure = show_batch(data, n=6)
    titled = [ax for ax in figure.axes if ax.get_title()]
    assert len(titled) == 6 and all(ax.get_title() in data.class_names for ax in titled)
    assert all(len(ax.get_images()) == 1 for ax in titled)
    pairs = show_batch(data, n=4, augment="standard")
    titles = [ax.get_title() for ax in pairs.axes if ax.get_title()]
    assert len(titles) == 8 and sum(t.endswith("(aug)") for t in titles) == 4
    shown = [ax.get_images()[0].get_array() for ax in pairs.axes if ax.get_title()]
    assert not np.array_equal(shown[0], shown[1])                         # the augmented copy differs
    soft = show_batch(augment_dataset(data, "none", mixup=0.4, seed=0), n=3, class_names=data.class_names)
    assert any("/" in ax.get_title() for ax in soft.axes)                 # "a 0.62 / b 0.38"
    matplotlib.pyplot.close("all")
    with pytest.raises(TypeError, match="data_or_dataset"):
        show_batch("not data")


def test_heavy_policy_fuses_rand_augment_geometry_into_one_warp():
    """RandomAffine then RandAugment: one resampling with the composed matrix equals the two in sequence."""
    y, x = np.mgrid[0:40, 0:40].astype(np.float32)
    ramp = tf.tile(tf.constant(np.stack([x, y, np.zeros_like(x)], -1))[None], [32, 1, 1, 1])
    affine = T.RandomAffine(rotation=0.05, zoom=0.1)
    rand_augment = T.RandAugment(num_ops=2, factor=0.2, ops=("rotation", "translation", "shear"))
    seed = tf.constant([4, 2], tf.int64)
    fused = A.Augmentation([affine, rand_augment]).augment_images(ramp, seed).numpy()
    sequential = rand_augment.augment(affine.augment(ramp, T._seed(seed, 0)), T._seed(seed, 1)).numpy()
    centre = (slice(None), slice(17, 23), slice(17, 23), slice(0, 2))
    inside = ((sequential[centre] > 1) & (sequential[centre] < 38)).all(-1)   # away from reflected borders
    assert inside.mean() > 0.9
    np.testing.assert_allclose(fused[centre][inside], sequential[centre][inside], atol=0.05)   # ramps are exact
    assert np.abs(fused - ramp.numpy())[centre].mean() > 1.0
