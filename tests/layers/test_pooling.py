"""Pooling families: golden values from the notes, NumPy references, sampling statistics, and errors."""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.layers import (GLOBAL_POOLINGS, AdaptiveAveragePooling2D, AdaptiveMaxPooling2D, GlobalLpPooling2D,
                           GlobalMixedPooling2D, LpPooling2D, MixedPooling2D, SpatialPyramidPooling2D,
                           StochasticPooling2D)

# The notes' 4x4 feature map ("Advanced Pooling Techniques").
FEATURE_MAP = np.array([[3.1, 0.5, 2.3, 1.7], [8.2, 2.1, 7.4, 0.9], [1.8, 5.1, 4.0, 3.5], [3.7, 2.5, 9.3, 1.2]],
                       "float32").reshape(1, 4, 4, 1)
MAX_2X2 = [[8.2, 7.4], [5.1, 9.3]]
AVG_2X2 = [[3.475, 3.075], [3.275, 4.5]]


def _grid(x):
    return np.asarray(x)[0, :, :, 0]


def _windows(x, pool, stride, padding):
    """NumPy reference: list of (out_i, out_j, window[B, k, k, C]) with Keras' "same" rule (zeros outside)."""
    _, h, w, _ = x.shape
    if padding == "same":
        out_h, out_w = -(-h // stride), -(-w // stride)
        ph, pw = max((out_h - 1) * stride + pool - h, 0), max((out_w - 1) * stride + pool - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        out_h, out_w = (h - pool) // stride + 1, (w - pool) // stride + 1
    for i, j in itertools.product(range(out_h), range(out_w)):
        yield i, j, x[:, i * stride:i * stride + pool, j * stride:j * stride + pool, :]


def _reference(x, pool, stride, padding, fn):
    cells = list(_windows(x, pool, stride, padding))
    out_h, out_w = cells[-1][0] + 1, cells[-1][1] + 1
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i, j, window in cells:
        out[:, i, j] = fn(window.reshape(x.shape[0], -1, x.shape[3]))
    return out


# --- max / average / mixed ------------------------------------------------------------------------------

def test_worked_example_max_and_average_pooling():
    np.testing.assert_allclose(_grid(keras.layers.MaxPooling2D(2)(FEATURE_MAP)), MAX_2X2, rtol=1e-6)
    np.testing.assert_allclose(_grid(keras.layers.AveragePooling2D(2)(FEATURE_MAP)), AVG_2X2, rtol=1e-6)
    np.testing.assert_allclose(_grid(MixedPooling2D(2, alpha=1.0)(FEATURE_MAP)), MAX_2X2, rtol=1e-6)
    np.testing.assert_allclose(_grid(MixedPooling2D(2, alpha=0.0)(FEATURE_MAP)), AVG_2X2, rtol=1e-6)
    mixed = 0.3 * np.array(MAX_2X2) + 0.7 * np.array(AVG_2X2)
    np.testing.assert_allclose(_grid(MixedPooling2D(2, alpha=0.3)(FEATURE_MAP)), mixed, rtol=1e-6)


def test_mixed_pooling_same_padding_and_strides_match_keras(rng):
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    args = dict(pool_size=3, strides=2, padding="same")
    expected = 0.25 * keras.layers.MaxPooling2D(**args)(x) + 0.75 * keras.layers.AveragePooling2D(**args)(x)
    np.testing.assert_allclose(MixedPooling2D(alpha=0.25, **args)(x), expected, rtol=1e-5, atol=1e-6)


def _fit_alpha(layer, x, target, learning_rate, steps, saturates=False):
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(x) - target) ** 2)
        grads = tape.gradient(loss, layer.trainable_weights)
        assert grads[0] is not None and (saturates or float(grads[0]) != 0.0)
        optimizer.apply_gradients(zip(grads, layer.trainable_weights))
        assert 0.0 <= layer.alpha_value <= 1.0


def test_learnable_alpha_recovers_the_mix_and_stays_in_unit_interval(rng):
    x = rng.uniform(size=(8, 4, 4, 2)).astype("float32")
    layer = MixedPooling2D(2, initial_alpha=0.2)
    layer.build(x.shape)
    assert layer.alpha_value == pytest.approx(0.2, abs=1e-6)
    assert [w.name for w in layer.trainable_weights] == ["alpha_logit"]
    target = MixedPooling2D(2, alpha=0.8)(x)
    _fit_alpha(layer, x, target, learning_rate=100.0, steps=40)
    assert layer.alpha_value == pytest.approx(0.8, abs=0.01)
    # Huge steps towards pure max pooling: alpha saturates at 1 but never leaves [0, 1].
    _fit_alpha(layer, x, keras.layers.MaxPooling2D(2)(x), learning_rate=1e4, steps=5, saturates=True)
    assert layer.alpha_value > 0.99


def test_global_mixed_pooling(rng):
    x = rng.normal(size=(2, 5, 3, 4)).astype("float32")
    expected = 0.4 * x.max(axis=(1, 2)) + 0.6 * x.mean(axis=(1, 2))
    np.testing.assert_allclose(GlobalMixedPooling2D(alpha=0.4)(x), expected, rtol=1e-5, atol=1e-6)
    learned = GlobalMixedPooling2D(keepdims=True)
    assert learned(x).shape == (2, 1, 1, 4) and learned.alpha_value == pytest.approx(0.5)
    np.testing.assert_allclose(learned(x)[:, 0, 0], 0.5 * x.max(axis=(1, 2)) + 0.5 * x.mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)


# --- Lp ----------------------------------------------------------------------------------------------

def test_lp_worked_example_p1_is_the_window_sum_and_large_p_the_max():
    np.testing.assert_allclose(_grid(LpPooling2D(2, p=1)(FEATURE_MAP)), 4 * np.array(AVG_2X2), rtol=1e-5)
    np.testing.assert_allclose(_grid(LpPooling2D(2, p=64)(FEATURE_MAP)), MAX_2X2, rtol=4 ** (1 / 64) - 1)
    np.testing.assert_allclose(_grid(LpPooling2D(2, p=1000)(FEATURE_MAP)), MAX_2X2, rtol=2e-3)


@pytest.mark.parametrize("pool, stride, padding, p", [(2, 2, "valid", 2), (3, 2, "same", 3), (3, 1, "valid", 1.5),
                                                      (2, 3, "same", 2)])
def test_lp_matches_numpy(pool, stride, padding, p, rng):
    x = rng.normal(size=(2, 7, 8, 3)).astype("float32")
    expected = _reference(x, pool, stride, padding, lambda w: (np.abs(w) ** p).sum(axis=1) ** (1 / p))
    out = LpPooling2D(pool, p=p, strides=stride, padding=padding)(x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_lp_neither_overflows_nor_underflows():
    x = np.array([1e30, 3e29, 1e-30, 2e-31], "float32").reshape(1, 2, 2, 1)
    big = float(LpPooling2D(2, p=8)(x)[0, 0, 0, 0])
    assert big == pytest.approx((1 + 0.3 ** 8) ** (1 / 8) * 1e30, rel=1e-5)
    tiny = np.array([1e-30, 3e-31, 0.0, 0.0], "float32").reshape(1, 2, 2, 1)
    assert float(LpPooling2D(2, p=4)(tiny)[0, 0, 0, 0]) == pytest.approx((1 + 0.3 ** 4) ** 0.25 * 1e-30, rel=1e-5)
    # float16 (mixed precision): 300^2 * 4 overflows float16 unless rescaled.
    half = LpPooling2D(2, p=2, dtype="mixed_float16")(np.full((1, 2, 2, 1), 300.0, "float32"))
    assert half.dtype == "float16" and float(half[0, 0, 0, 0]) == pytest.approx(600.0, rel=1e-3)


def test_global_lp_pooling(rng):
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    np.testing.assert_allclose(GlobalLpPooling2D(p=2)(x), np.sqrt((x ** 2).sum(axis=(1, 2))), rtol=1e-5)
    np.testing.assert_allclose(GlobalLpPooling2D(p=3, keepdims=True)(x)[:, 0, 0],
                               (np.abs(x) ** 3).sum(axis=(1, 2)) ** (1 / 3), rtol=1e-5)


def test_lp_gradient_is_finite_on_all_zero_windows():
    x = tf.constant(np.zeros((1, 4, 4, 1), "float32"))
    for layer in [LpPooling2D(2, p=2), GlobalLpPooling2D(p=2)]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x))
        grad = tape.gradient(total, x).numpy()
        assert np.isfinite(grad).all() and float(total) == 0.0


# --- stochastic --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pool, stride, padding", [(2, 2, "valid"), (3, 2, "same"), (3, 1, "valid")])
def test_stochastic_inference_is_the_probability_weighted_mean(pool, stride, padding, rng):
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")   # negatives count as 0

    def expectation(window):
        a = np.maximum(window, 0)
        total = a.sum(axis=1)
        return np.where(total > 0, (a * a).sum(axis=1) / np.where(total > 0, total, 1), 0)

    out = StochasticPooling2D(pool, strides=stride, padding=padding)(x)
    np.testing.assert_allclose(out, _reference(x, pool, stride, padding, expectation), rtol=1e-5, atol=1e-6)


def test_stochastic_training_picks_a_window_value_in_proportion_to_it():
    window = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    x = np.tile(window.reshape(1, 2, 2, 1), (4000, 1, 1, 1))
    picked = np.asarray(StochasticPooling2D(2, seed=3)(x, training=True)).ravel()
    assert set(np.unique(picked)) <= {1.0, 2.0, 3.0, 4.0}
    frequencies = [(picked == v).mean() for v in (1.0, 2.0, 3.0, 4.0)]
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    inference = float(StochasticPooling2D(2)(window.reshape(1, 2, 2, 1))[0, 0, 0, 0])
    assert inference == pytest.approx(30.0 / 10.0)
    assert picked.mean() == pytest.approx(inference, abs=0.06)


def test_stochastic_training_with_strides_padding_and_channels(rng):
    x = rng.normal(size=(3, 7, 5, 4)).astype("float32")
    out = np.asarray(StochasticPooling2D(3, strides=2, padding="same", seed=1)(x, training=True))
    assert out.shape == (3, 4, 3, 4)
    for i, j, window in _windows(x, 3, 2, "same"):
        for b, c in itertools.product(range(3), range(4)):
            values = window[b, :, :, c]
            if (values > 0).any():
                assert out[b, i, j, c] in values[values > 0]   # negatives and padding are never picked
            else:
                assert out[b, i, j, c] == 0.0


def test_stochastic_pooling_is_seeded_and_reproducible(rng):
    x = rng.uniform(size=(4, 6, 6, 8)).astype("float32")
    a, b = StochasticPooling2D(2, seed=7), StochasticPooling2D(2, seed=7)
    first_a, first_b = a(x, training=True), b(x, training=True)
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))
    assert not np.array_equal(first_a, a(x, training=True))          # the generator advances
    assert not np.array_equal(first_a, StochasticPooling2D(2, seed=8)(x, training=True))
    np.testing.assert_array_equal(a(x), a(x))                         # inference is deterministic


def test_stochastic_gradient_flows_through_the_picked_value_only(rng):
    x = tf.constant(rng.uniform(0.1, 1.0, size=(2, 4, 4, 3)).astype("float32"))
    layer = StochasticPooling2D(2, seed=0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    for i, j in itertools.product(range(2), range(2)):
        g = grad[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :].reshape(2, 4, 3)
        v = x.numpy()[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :].reshape(2, 4, 3)
        np.testing.assert_array_equal(g.sum(axis=1), 1.0)               # one-hot per window and channel
        picked = (g * v).sum(axis=1)
        np.testing.assert_allclose(picked, out.numpy()[:, i, j, :])


def test_stochastic_all_zero_window_gives_zero():
    x = np.zeros((1, 4, 4, 2), "float32")
    layer = StochasticPooling2D(2, seed=0)
    np.testing.assert_array_equal(layer(x, training=True), 0.0)
    np.testing.assert_array_equal(layer(x), 0.0)


# --- adaptive and pyramid ------------------------------------------------------------------------------

def _row_windows(size, out):
    """(start, end) rows each output cell pools, read from the layer: pool the row index with max and -max."""
    rows = np.broadcast_to(np.arange(size, dtype="float32").reshape(1, size, 1, 1), (1, size, 1, 1))
    last = np.asarray(AdaptiveMaxPooling2D((out, 1))(rows))[0, :, 0, 0]
    first = -np.asarray(AdaptiveMaxPooling2D((out, 1))(-rows))[0, :, 0, 0]
    return [(int(a), int(b) + 1) for a, b in zip(first, last)]


def test_adaptive_14_to_7_uses_2x2_windows():
    assert _row_windows(14, 7) == [(2 * i, 2 * i + 2) for i in range(7)]


def test_adaptive_15_to_7_worked_example():
    windows = _row_windows(15, 7)
    assert windows[3] == (6, 9)      # rows 6..8: window (3, 3) is 3x3
    assert windows[6] == (12, 15)    # rows 12..14
    assert windows[0] == (0, 3)      # rows 0..2 under the same rule (the notes print 0..1: erratum)


def _adaptive_reference(x, out_h, out_w, fn):
    _, h, w, _ = x.shape
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i, j in itertools.product(range(out_h), range(out_w)):
        rows = slice(i * h // out_h, -(-(i + 1) * h // out_h))
        cols = slice(j * w // out_w, -(-(j + 1) * w // out_w))
        out[:, i, j] = fn(x[:, rows, cols], axis=(1, 2))
    return out


@pytest.mark.parametrize("height, width, out_h, out_w", [(15, 14, 7, 7), (5, 9, 3, 4), (1, 1, 2, 4), (3, 2, 4, 3),
                                                         (8, 8, 1, 1), (10, 7, 6, 7)])
def test_adaptive_pooling_matches_pytorch_rule(height, width, out_h, out_w, rng):
    x = rng.normal(size=(2, height, width, 3)).astype("float32")
    np.testing.assert_allclose(AdaptiveAveragePooling2D((out_h, out_w))(x),
                               _adaptive_reference(x, out_h, out_w, np.mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(AdaptiveMaxPooling2D((out_h, out_w))(x),
                                  _adaptive_reference(x, out_h, out_w, np.max))


def test_adaptive_pooling_agrees_with_keras_where_keras_works(rng):
    # keras.layers.AdaptiveMaxPooling2D needs a static size and dies (SIGFPE) on a 1x1 map pooled to 2x2.
    x = rng.normal(size=(2, 15, 11, 3)).astype("float32")
    np.testing.assert_allclose(AdaptiveAveragePooling2D((7, 4))(x), keras.layers.AdaptiveAveragePooling2D((7, 4))(x),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(AdaptiveMaxPooling2D((7, 4))(x), keras.layers.AdaptiveMaxPooling2D((7, 4))(x))


def test_adaptive_channels_first_and_unknown_size(rng):
    x = rng.normal(size=(2, 3, 9, 5)).astype("float32")
    out = AdaptiveAveragePooling2D((2, 3), data_format="channels_first")(x)
    expected = _adaptive_reference(x.transpose(0, 2, 3, 1), 2, 3, np.mean).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, AdaptiveMaxPooling2D(3)(inputs))
    assert model.output_shape == (None, 3, 3, 3)
    for shape in [(1, 2, 7, 3), (2, 11, 4, 3)]:
        x = rng.normal(size=shape).astype("float32")
        np.testing.assert_array_equal(model(x), _adaptive_reference(x, 3, 3, np.max))


@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (7, 7), (13, 9)])
def test_spp_is_fixed_length_for_any_size(height, width, rng):
    x = rng.normal(size=(2, height, width, 5)).astype("float32")
    out = np.asarray(SpatialPyramidPooling2D((1, 2, 4))(x))
    assert out.shape == (2, 21 * 5)
    parts = [_adaptive_reference(x, n, n, np.max).reshape(2, -1) for n in (1, 2, 4)]
    np.testing.assert_array_equal(out, np.concatenate(parts, axis=1))
    avg = SpatialPyramidPooling2D((1, 3), mode="avg")(x)
    expected = np.concatenate([_adaptive_reference(x, n, n, np.mean).reshape(2, -1) for n in (1, 3)], axis=1)
    np.testing.assert_allclose(avg, expected, rtol=1e-5, atol=1e-6)


def test_spp_with_unknown_size_in_a_model():
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, SpatialPyramidPooling2D()(inputs))
    assert model.output_shape == (None, 84)
    assert model(np.ones((3, 1, 1, 4), "float32")).shape == (3, 84)
    assert model(np.ones((1, 10, 6, 4), "float32")).shape == (1, 84)


@pytest.mark.parametrize("key", sorted(GLOBAL_POOLINGS))
def test_global_pooling_factories_map_any_map_to_vectors(key, rng):
    layer = GLOBAL_POOLINGS[key](f"{key}_pool")
    assert layer.name == f"{key}_pool"
    width = None
    for shape in [(2, 1, 1, 6), (2, 3, 5, 6), (1, 9, 4, 6)]:
        out = layer(rng.normal(size=shape).astype("float32"))
        assert len(out.shape) == 2 and out.shape[0] == shape[0]
        width = width or out.shape[1]
        assert out.shape[1] == width
    assert set(GLOBAL_POOLINGS) >= {"spp", "mixed", "lp"}


# --- argument errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("build, name", [
    (lambda: MixedPooling2D(0), "pool_size"), (lambda: MixedPooling2D(2, strides=(1, 0)), "strides"),
    (lambda: MixedPooling2D(2, padding="full"), "padding"), (lambda: MixedPooling2D(2, alpha=1.5), "alpha"),
    (lambda: MixedPooling2D(2, initial_alpha=1.0), "initial_alpha"),
    (lambda: MixedPooling2D(2, data_format="NCHW"), "data_format"),
    (lambda: LpPooling2D(2, p=0.5), "p"), (lambda: LpPooling2D(2, p=float("inf")), "p"),
    (lambda: LpPooling2D((2, 2, 2)), "pool_size"), (lambda: StochasticPooling2D(2, seed=-1), "seed"),
    (lambda: StochasticPooling2D(2, seed=1.5), "seed"), (lambda: AdaptiveAveragePooling2D(0), "output_size"),
    (lambda: AdaptiveMaxPooling2D((2, "a")), "output_size"), (lambda: SpatialPyramidPooling2D(()), "levels"),
    (lambda: SpatialPyramidPooling2D(4), "levels"), (lambda: SpatialPyramidPooling2D((1, 0)), "levels"),
    (lambda: SpatialPyramidPooling2D(mode="sum"), "mode"), (lambda: GlobalMixedPooling2D(keepdims=1), "keepdims"),
    (lambda: GlobalLpPooling2D(p="2"), "p"),
])
def test_bad_arguments_name_the_argument(build, name):
    with pytest.raises((ValueError, TypeError), match=f"Received: {name}="):
        build()
