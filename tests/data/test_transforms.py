"""The fast augmentation layers against Keras's own layers: same outputs for fixed draws, same distributions."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from skimage import data as samples

from cnnzoo.data import transforms as T

SEED = tf.constant([3, 7], tf.int64)


@pytest.fixture(scope="module")
def photos():
    """Four natural images at 40x40, float32 0..255."""
    images = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket()]
    return tf.constant(np.stack([tf.image.resize(i, (40, 40)).numpy() for i in images]), tf.float32)


def hsv(images):
    return tf.image.rgb_to_hsv(tf.clip_by_value(images, 0, 255) / 255.0).numpy()


# ---------------------------------------------------------------- geometry

@pytest.mark.parametrize("ours, theirs", [
    (dict(rotation=(0.1, 0.1)), lambda: keras.layers.RandomRotation((0.1, 0.1))),
    (dict(zoom=(0.2, 0.2)), lambda: keras.layers.RandomZoom((0.2, 0.2))),
    (dict(zoom=(-0.2, -0.2)), lambda: keras.layers.RandomZoom((-0.2, -0.2))),
    (dict(translation=(0.1, 0.1)), lambda: keras.layers.RandomTranslation((0.1, 0.1), (0.1, 0.1))),
])
def test_single_geometric_steps_equal_keras(photos, ours, theirs):
    np.testing.assert_allclose(T.RandomAffine(**ours).augment(photos, SEED), theirs()(photos), atol=1e-3)


def test_flip_mirrors_about_half_the_images(photos):
    batch = tf.tile(photos, [16, 1, 1, 1])
    out = T.RandomAffine(flip="horizontal").augment(batch, SEED).numpy()
    flipped = np.array([np.allclose(o, b[:, ::-1]) for o, b in zip(out, batch.numpy())])
    same = np.array([np.allclose(o, b) for o, b in zip(out, batch.numpy())])
    assert (flipped | same).all() and 20 <= flipped.sum() <= 44


def test_fused_affine_matches_the_keras_sequence_away_from_the_borders(photos):
    sequence = keras.Sequential([keras.layers.RandomRotation((0.05, 0.05)), keras.layers.RandomZoom((0.2, 0.2)),
                                 keras.layers.RandomTranslation((0.1, 0.1), (0.1, 0.1))])
    fused = T.RandomAffine(rotation=(0.05, 0.05), zoom=(0.2, 0.2), translation=(0.1, 0.1)).augment(photos, SEED)
    reference = sequence(photos)
    centre = (slice(None), slice(14, 26), slice(14, 26))
    assert np.abs(fused.numpy() - reference.numpy())[centre].mean() < 6.0
    # The composition order matters: the reversed product is far off.
    h = w = 40
    reversed_matrix = (T.translation_matrix(tf.constant([4.0] * 4), tf.constant([4.0] * 4))
                       @ T.zoom_matrix(tf.constant([1.2] * 4), tf.constant([1.2] * 4), h, w)
                       @ T.rotation_matrix(tf.constant([0.1 * math.pi] * 4), h, w))
    assert np.abs(T.warp(photos, reversed_matrix).numpy() - reference.numpy())[centre].mean() > 15.0


def test_random_rotation_distribution_matches_keras(photos):
    batch = tf.tile(photos[:1], [200, 1, 1, 1])

    def change(out):  # per-image mean absolute change: grows with the rotation angle
        return np.abs(out.numpy() - batch.numpy()).mean(axis=(1, 2, 3))

    ours = change(T.RandomAffine(rotation=0.1, seed=0)(batch))
    theirs = change(keras.layers.RandomRotation(0.1, seed=0)(batch))
    assert stats.ks_2samp(ours, theirs).pvalue > 0.01
    assert stats.ks_2samp(ours, change(keras.layers.RandomRotation(0.02, seed=0)(batch))).pvalue < 1e-6


# ---------------------------------------------------------------- colour

def test_brightness_and_contrast_equal_keras(photos):
    np.testing.assert_allclose(T.ColorJitter(brightness=(0.1, 0.1)).augment(photos, SEED),
                               keras.layers.RandomBrightness((0.1, 0.1))(photos), atol=1e-3)
    np.testing.assert_allclose(T.ColorJitter(contrast=(1.3, 1.3)).augment(photos, SEED),
                               keras.layers.RandomContrast((-0.3, 0.3))(photos), atol=1e-2)


@pytest.mark.parametrize("k", [0.0, 0.5, 1.5])
def test_saturation_scales_hsv_saturation_like_keras(photos, k):
    ours = T.ColorJitter(saturation=(k, k)).augment(photos, SEED)
    theirs = keras.layers.RandomSaturation((k / (1 + k), k / (1 + k)))(photos)
    np.testing.assert_allclose(hsv(ours)[..., 1].mean(), hsv(theirs)[..., 1].mean(), atol=0.01)
    np.testing.assert_allclose(hsv(ours)[..., 2], hsv(photos)[..., 2], atol=1e-4)   # value (max) untouched
    if k <= 1:
        np.testing.assert_allclose(ours, theirs, atol=0.05)


@pytest.mark.parametrize("turns", [0.05, -0.1, 0.25])
def test_hue_shift_matches_hsv_hue(photos, turns):
    out = T.ColorJitter(hue=(turns, turns)).augment(photos, SEED)
    shift = (hsv(out)[..., 0] - hsv(photos)[..., 0] + 0.5) % 1.0 - 0.5
    colourful = hsv(photos)[..., 1] > 0.2
    assert abs(np.median(shift[colourful]) - turns) < 0.01
    theirs = keras.layers.RandomHue((2 * abs(turns), 2 * abs(turns)), seed=0)(photos)
    keras_shift = (hsv(theirs)[..., 0] - hsv(photos)[..., 0] + 0.5) % 1.0 - 0.5
    assert abs(np.median(np.abs(keras_shift[colourful])) - abs(turns)) < 0.01


def test_color_jitter_stays_in_range_and_varies_per_image(photos):
    batch = tf.tile(photos, [8, 1, 1, 1])
    out = T.ColorJitter(brightness=0.4, contrast=0.5, saturation=0.5, hue=0.2, seed=0)(batch).numpy()
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    means = out.reshape(8, 4, -1).mean(-1)
    assert means.std(axis=0).min() > 1.0        # copies of the same image got different draws


# ---------------------------------------------------------------- erasing

def test_erasing_rate_area_and_noise_match_keras():
    images = tf.fill([400, 32, 32, 3], 128.0)
    ours = T.RandomErasing(probability=0.4, scale=(0.02, 0.33), seed=0)(images).numpy()
    theirs = keras.layers.RandomErasing(factor=(0.4, 0.4), scale=(0.02, 0.33), seed=0)(images).numpy()
    area = lambda out: (out != 128).any(-1).mean(axis=(1, 2))   # noqa: E731
    ours_area, theirs_area = area(ours), area(theirs)
    assert abs((ours_area > 0).mean() - 0.4) < 0.08 and abs((theirs_area > 0).mean() - 0.4) < 0.08
    assert stats.ks_2samp(ours_area[ours_area > 0], theirs_area[theirs_area > 0]).pvalue > 0.01
    fill = ours[ours != 128]
    assert abs((fill == 0).mean() - 0.5) < 0.03 and abs((fill == 255).mean() - 0.159) < 0.03
    fixed = T.RandomErasing(probability=1.0, fill_value=7.0, seed=0)(images).numpy()
    assert set(np.unique(fixed)) == {7.0, 128.0} and ((fixed == 7).any(axis=(1, 2, 3))).all()


# ---------------------------------------------------------------- RandAugment

def test_rand_augment_colour_ops_equal_keras_for_fixed_draws(photos):
    n = photos.shape[0]
    np.testing.assert_allclose(T.sharpen(photos, tf.fill([n], 0.3)).numpy().clip(0, 255),
                               keras.layers.RandomSharpness((0.3, 0.3))(photos), atol=1e-3)
    np.testing.assert_allclose(T.posterize(photos, tf.fill([n], 3)),
                               keras.layers.RandomPosterization((3, 3))(photos), atol=1e-3)
    np.testing.assert_allclose(T.auto_contrast(photos * 0.5 + 20), keras.layers.AutoContrast()(photos * 0.5 + 20),
                               atol=1e-2)
    for image in photos:   # Keras equalises a batch with one histogram; per image it is the same formula
        np.testing.assert_allclose(T.equalize(image[None])[0], keras.layers.Equalization()(image), atol=1e-3)
    solarized = T.solarize(tf.constant([[[[10.0, 100.0, 250.0]]]]), tf.constant([20.0]), tf.constant([110.0]))
    np.testing.assert_allclose(solarized.numpy().ravel(), [30.0, 135.0, 0.0])


def test_rand_augment_single_op_equals_the_op(photos):
    out = T.RandAugment(num_ops=1, factor=0.5, ops=("auto_contrast",)).augment(photos * 0.5 + 20, SEED)
    np.testing.assert_allclose(out, T.auto_contrast(photos * 0.5 + 20), atol=1e-4)
    rotated = T.RandAugment(num_ops=1, factor=0.5, ops=("rotation",)).augment(photos, SEED).numpy()
    assert not np.allclose(rotated, photos.numpy(), atol=1.0)


def fitted_affine(out: np.ndarray) -> np.ndarray:
    """[B, 6]: the output->input affine map of each image, read off a warped coordinate ramp (x, y, 0).

    Bilinear interpolation of a linear ramp is exact, so the central pixels' values are their source
    coordinates; a least-squares fit recovers (a0, a1, a2, b0, b1, b2).
    """
    v, u = np.mgrid[16:24, 16:24]
    design = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1)
    rows = []
    for image in out:
        x, y = image[16:24, 16:24, 0].ravel(), image[16:24, 16:24, 1].ravel()
        rows.append(np.concatenate([np.linalg.lstsq(design, x, rcond=None)[0],
                                    np.linalg.lstsq(design, y, rcond=None)[0]]))
    return np.array(rows)


GEOMETRY_STATISTICS = {   # the parameter each operation draws, read from the fitted map
    "rotation": lambda m: np.arctan2(m[:, 3], m[:, 0]),
    "translation": lambda m: np.hypot(m[:, 2], m[:, 5]),
    "shear": lambda m: np.hypot(m[:, 1], m[:, 3]),
}


@pytest.mark.parametrize("op", ["shear", "translation", "rotation", "brightness", "color_degeneration",
                                "contrast", "sharpness", "posterization", "solarization"])
def test_rand_augment_each_op_draws_like_the_keras_rand_augment_sublayer(photos, op):
    """Each operation, alone, against the layer Keras RandAugment(factor=0.4) uses for it."""
    if op in GEOMETRY_STATISTICS:
        y, x = np.mgrid[0:40, 0:40].astype(np.float32)
        batch = tf.tile(tf.constant(np.stack([x, y, np.zeros_like(x)], -1))[None], [200, 1, 1, 1])
        statistic = lambda out: GEOMETRY_STATISTICS[op](fitted_affine(out))          # noqa: E731
    else:
        batch = tf.tile(photos, [50, 1, 1, 1])                                        # 200 images
        signed = op in ("brightness", "solarization")
        statistic = lambda out: ((out - batch.numpy()) if signed else np.abs(out - batch.numpy())).mean(
            axis=(1, 2, 3))                                                            # noqa: E731
    ours = T.RandAugment(num_ops=1, factor=0.4, ops=(op,), seed=0)(batch).numpy()
    sublayer = getattr(keras.layers.RandAugment(factor=0.4, seed=0), "solarization" if op == "solarization"
                       else "random_" + op)
    theirs = sublayer(batch).numpy()
    assert stats.ks_2samp(statistic(ours), statistic(theirs)).pvalue > 0.001, op
    weaker = T.RandAugment(num_ops=1, factor=0.25, ops=(op,), seed=0)(batch).numpy()
    assert stats.ks_2samp(statistic(weaker), statistic(theirs)).pvalue < 0.001, op   # the test can tell


def test_rand_augment_distribution_matches_keras(photos):
    """Per-image change has the same distribution as Keras RandAugment (which draws ops per batch)."""
    batch = tf.tile(photos, [40, 1, 1, 1])                                        # 160 images
    ours = T.RandAugment(num_ops=2, factor=0.5, seed=0)(batch).numpy()
    keras_layer = keras.layers.RandAugment(num_ops=2, factor=0.5, seed=0)
    keras_call = tf.function(lambda x: keras_layer(x))   # pairs, so that Keras's per-batch op draws vary
    theirs = np.concatenate([keras_call(batch[i:i + 2]).numpy() for i in range(0, 160, 2)])
    change = lambda out: np.abs(out - batch.numpy()).mean(axis=(1, 2, 3))       # noqa: E731
    assert 0 <= ours.min() and ours.max() <= 255
    assert stats.ks_2samp(change(ours), change(theirs)).pvalue > 0.01
    assert (change(ours) > 0.5).mean() > 0.7                                       # most images changed


def test_layers_refuse_to_sit_inside_a_model():
    for layer in (T.RandomAffine(rotation=0.1), T.ColorJitter(brightness=0.1), T.RandomErasing(),
                  T.RandAugment()):
        with pytest.raises(TypeError, match="never inside a model"):
            keras.Sequential([keras.Input((16, 16, 3)), layer])


def test_training_false_is_the_identity(photos):
    out = T.RandAugment(seed=0)(photos, training=False)
    np.testing.assert_array_equal(out, photos)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="Received: rotation=2"):
        T.RandomAffine(rotation=2)
    with pytest.raises(ValueError, match="Received: flip='diagonal'"):
        T.RandomAffine(flip="diagonal")
    with pytest.raises(ValueError, match="Received: hue=0.7"):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="Received: probability=1.5"):
        T.RandomErasing(probability=1.5)
    with pytest.raises(ValueError, match="Received: ops='blur'"):
        T.RandAugment(ops=("blur",))
