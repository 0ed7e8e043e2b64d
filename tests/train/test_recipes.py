"""Training recipes for real data: class weights, focal loss, weight EMA, gradient accumulation (issue 17)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.train.imbalance import balanced_weights, count_labels, resolve_class_weight
from cnnzoo.train.losses import SegmentationLoss


def dense_model(num_classes=3, seed=0, activation="softmax"):
    """BN-free: flatten -> dense -> dense (so every weight follows the optimizer alone)."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((2, 2, 3))
    h = keras.layers.Rescaling(1 / 255.0)(keras.layers.Flatten()(x))
    h = keras.layers.Dense(8, activation="tanh", name="hidden")(h)
    out = keras.layers.Dense(num_classes, activation=activation, name="predictions")(h)
    return keras.Model(x, out)


def toy_arrays(n=64, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 2, 2, 3)).astype("uint8")
    y = (x.reshape(n, -1)[:, 0] // (256 // num_classes + 1)).astype("int32")
    return x, y


def stream(x, y, batch):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


# -- class imbalance -------------------------------------------------------------------------------------------

def test_balanced_weights_follow_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    counts = {"a": 90, "b": 7, "c": 3}
    labels = np.repeat([0, 1, 2], [90, 7, 3])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    got = balanced_weights(counts, ["a", "b", "c"])
    np.testing.assert_allclose([got[i] for i in range(3)], expected)
    # counted from a stream when the data has no counts (int labels, one-hot rows, masks with 255 ignored)
    assert count_labels(stream(np.zeros((5, 1)), np.array([0, 0, 1, 2, 2]), 2), 3) == {0: 2.0, 1: 1.0, 2: 2.0}
    onehot = np.eye(3, dtype="float32")[[0, 1, 1]]
    assert count_labels(stream(np.zeros((3, 1)), onehot, 2), 3) == {0: 1.0, 1: 2.0, 2: 0.0}
    masks = np.array([[[0, 1], [255, 1]]], np.uint8)
    assert count_labels(stream(np.zeros((1, 1)), masks, 1), 2) == {0: 1.0, 1: 2.0}
    # a dict by name or index; the rest weigh 1
    assert resolve_class_weight({"b": 3.0, 2: 0.5}, ["a", "b", "c"], counts=None) == {0: 1.0, 1: 3.0, 2: 0.5}


def test_class_weight_arguments_are_checked():
    data = cnnzoo.data.from_arrays(*toy_arrays(), validation_split=0.0)
    model = dense_model()
    for bad, error in (("even", ValueError), ([1, 2], TypeError), ({0: -1.0}, ValueError), ({"z": 1.0}, ValueError),
                       ({7: 1.0}, ValueError)):
        with pytest.raises(error, match="class_weight"):
            cnnzoo.train.fit(model, data, epochs=1, class_weight=bad, verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        balanced_weights({"a": 5, "b": 0}, ["a", "b"])        # a class with no examples
    even = cnnzoo.data.from_arrays(*toy_arrays(), validation_split=0.0, sampling="balanced")
    with pytest.raises(ValueError, match="twice"):
        cnnzoo.train.fit(model, even, epochs=1, class_weight="balanced", verbose=0)


def test_class_weight_and_focal_loss_are_the_losses_fit_minimises():
    """With a learning rate too small to move anything, the first epoch's reported loss is the weighted mean of
    the per-image losses: cross-entropy times the balanced weight of each image's class, then the focal loss."""
    x, y = toy_arrays(64)
    y[:40] = 0                                      # imbalanced: 0 is common
    data = cnnzoo.data.from_arrays(x, y, batch_size=64, validation_split=0.0, shuffle=False)
    weights = balanced_weights(data.class_counts, data.class_names)
    model = dense_model()
    probs = model.predict(x, verbose=0)
    ce = -np.log(probs[np.arange(64), y])
    history = cnnzoo.train.fit(model, data, epochs=1, optimizer="sgd", learning_rate=1e-12, momentum=0.0,
                               schedule="constant", weight_decay=None, class_weight="balanced", verbose=0,
                               bn_momentum=None, recalibrate_bn=False).history
    expected = np.mean([weights[c] for c in y] * ce)
    np.testing.assert_allclose(history["loss"][0], expected, rtol=1e-4)
    assert abs(expected - ce.mean()) > 0.01                      # the weights did change the loss

    model = dense_model()
    history = cnnzoo.train.fit(model, data, epochs=1, optimizer="sgd", learning_rate=1e-12, momentum=0.0,
                               schedule="constant", weight_decay=None, loss="focal", focal_gamma=3.0, verbose=0,
                               bn_momentum=None, recalibrate_bn=False).history
    p_true = probs[np.arange(64), y]
    focal = 0.25 * (1 - p_true) ** 3.0 * -np.log(p_true)          # Keras' alpha 0.25, gamma 3
    np.testing.assert_allclose(history["loss"][0], focal.mean(), rtol=1e-4)
    with pytest.raises(ValueError, match="focal_gamma"):
        cnnzoo.train.fit(model, data, epochs=1, loss="focal", focal_gamma=-1.0, verbose=0)


def test_segmentation_loss_weighs_pixels_by_class():
    y_true = np.array([[[0, 1], [1, 255]]], np.int32)
    probs = np.array([[[[0.7, 0.3], [0.4, 0.6]], [[0.2, 0.8], [0.5, 0.5]]]], np.float32)
    loss = SegmentationLoss("cross_entropy", class_weights=[1.0, 3.0])
    ce = -np.log([0.7, 0.6, 0.8])
    w = np.array([1.0, 3.0, 3.0])
    np.testing.assert_allclose(float(loss(y_true, probs)), (w * ce).sum() / w.sum(), rtol=1e-5)
    restored = SegmentationLoss.from_config(loss.get_config())
    assert restored.class_weights == [1.0, 3.0]


# -- weight EMA ------------------------------------------------------------------------------------------------

def _trajectory_callback(model, store):
    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            store.append([v.numpy().copy() for v in model.trainable_variables])
    return Record()


def test_ema_ends_with_the_warmed_up_average_of_the_weights():
    x, y = toy_arrays(48)
    data = cnnzoo.data.from_arrays(x, y, batch_size=8, validation_split=0.0, shuffle=False)
    model = dense_model()
    start = [v.numpy().copy() for v in model.trainable_variables]
    steps = []
    result = cnnzoo.train.fit(model, data, epochs=2, optimizer="sgd", learning_rate=0.05, schedule="constant",
                              weight_decay=None, ema=0.9, verbose=0, callbacks=[_trajectory_callback(model, steps)])
    assert len(steps) == 12
    average = None
    for t, weights in enumerate(steps):       # update t uses the weights after step t
        momentum = 0.0 if t == 0 else min(0.9, (1 + t) / (10 + t))
        average = weights if average is None else [momentum * a + (1 - momentum) * w
                                                   for a, w in zip(average, weights)]
    final = [v.numpy() for v in result.model.trainable_variables]
    for got, want, raw, first in zip(final, average, steps[-1], start):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(final[0], steps[-1][0])                 # the average, not the last weights


def test_ema_state_survives_an_interrupted_run(tmp_path):
    x, y = toy_arrays(48)
    data = cnnzoo.data.from_arrays(x, y, batch_size=8, validation_split=0.0, shuffle=False)
    options = dict(epochs=3, optimizer="adam", learning_rate=0.01, schedule="constant", ema=0.95, verbose=0)
    whole = cnnzoo.train.fit(dense_model(), data, checkpoint_dir=str(tmp_path / "whole"), **options).model

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cnnzoo.train.fit(dense_model(), data, checkpoint_dir=str(tmp_path / "cut"), callbacks=[Crash()], **options)
    saved = np.load(next((tmp_path / "cut").glob("ckpt-*/optimizer.npz")))
    plain = np.load(next((tmp_path / "whole").glob("ckpt-*/optimizer.npz")))
    assert len(saved.files) == len(plain.files)
    resumed = cnnzoo.train.fit(dense_model(), data, checkpoint_dir=str(tmp_path / "cut"), **options).model
    for a, b in zip(whole.trainable_variables, resumed.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_ema_arguments_are_checked():
    data = cnnzoo.data.from_arrays(*toy_arrays(), validation_split=0.0)
    for bad in (1.0, 0.0, -0.5, "0.99"):
        with pytest.raises((ValueError, TypeError), match="ema"):
            cnnzoo.train.fit(dense_model(), data, epochs=1, ema=bad, verbose=0)
    with pytest.raises(ValueError, match="ema_validation"):
        cnnzoo.train.fit(dense_model(), data, epochs=1, ema_validation=True, verbose=0)
    with pytest.raises(ValueError, match="restore_best_weights"):
        cnnzoo.train.fit(dense_model(), data, epochs=1, ema=0.99, early_stopping=2, verbose=0)
    with pytest.raises(ValueError, match="ema"):
        cnnzoo.train.fit(dense_model(), data, epochs=1, ema=0.99, optimizer=keras.optimizers.SGD(), verbose=0)


def test_ema_validation_scores_the_averaged_weights():
    x, y = toy_arrays(64)
    data = cnnzoo.data.from_arrays(x, y, batch_size=8, validation_split=0.25, shuffle=False)
    model = dense_model()
    result = cnnzoo.train.fit(model, data, epochs=2, optimizer="sgd", learning_rate=0.05, schedule="constant",
                              weight_decay=None, ema=0.9, ema_validation=True, verbose=0)
    # the last epoch's validation ran on the EMA weights, which are the model's weights after fit
    report = cnnzoo.evaluate(result.model, data)
    np.testing.assert_allclose(result.history["val_accuracy"][-1], report.accuracy, atol=1e-6)


# -- gradient accumulation -------------------------------------------------------------------------------------

def test_accumulating_four_batches_follows_the_four_times_larger_batch():
    x, y = toy_arrays(128, seed=3)
    options = dict(epochs=4, optimizer="sgd", learning_rate=0.1, momentum=0.0, schedule="constant",
                   weight_decay=None, verbose=0, bn_momentum=None, recalibrate_bn=False)
    small = cnnzoo.train.fit(dense_model(seed=5), stream(x, y, 8), accumulate=4, **options)
    large = cnnzoo.train.fit(dense_model(seed=5), stream(x, y, 32), **options)
    plain = cnnzoo.train.fit(dense_model(seed=5), stream(x, y, 8), **options)
    np.testing.assert_allclose(small.history["loss"], large.history["loss"], rtol=0.02)
    for a, b in zip(small.model.trainable_variables, large.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    # without accumulation the small batch takes 4x the steps: another curve
    assert abs(plain.history["loss"][-1] - large.history["loss"][-1]) > 0.01
    with pytest.raises(ValueError, match="accumulate"):
        cnnzoo.train.fit(dense_model(), stream(x, y, 8), epochs=1, accumulate=0)


# -- the imbalance proof (issue 17 item 1, fast settings) ------------------------------------------------------

@pytest.mark.slow
def test_balanced_sampling_beats_plain_training_on_imbalanced_digits():
    """Digits 5-9 cut to 10 % of their training images (about 11 each against 108 for 0-4); held-out: 40 % of
    every class, untouched. ResNet18 at 32 px, 3 epochs. Seeds 0-2 measured held-out macro-F1 0.834 / 0.781 /
    0.807 plain against 0.922 / 0.906 / 0.909 with `sampling="balanced"` (+8.8 to +12.5 points; the issue's bar
    is +5). benchmarks/bench_imbalance.py has class weights, focal loss and longer runs."""
    from traintools import digits_arrays

    x, y = digits_arrays(32)
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = int(0.4 * len(idx))
        test_idx += idx[:cut].tolist()
        pool = idx[cut:]
        train_idx += (pool if c < 5 else pool[:max(1, round(0.1 * len(pool)))]).tolist()
    scores = {}
    for sampling in ("shuffle", "balanced"):
        keras.utils.set_random_seed(0)
        data = cnnzoo.data.from_arrays(x[train_idx], y[train_idx], batch_size=32, validation_split=0.0, seed=0,
                                       sampling=sampling)
        assert data.class_counts["9"] < data.class_counts["0"] / 8     # the counts stay those of the data
        model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
        trained = cnnzoo.train.fit(model, data, epochs=3, learning_rate=3e-3, verbose=0, seed=0).model
        report = cnnzoo.evaluate(trained, (x[test_idx], y[test_idx]))
        scores[sampling] = report.macro_f1
        assert report.balanced_accuracy > 0.5, report
    print(scores)
    assert scores["balanced"] - scores["shuffle"] >= 0.05, scores


def test_ema_weights_get_batchnorm_statistics_of_their_own():
    """BatchNorm moving statistics are not averaged by the EMA; the stage re-estimates them for the EMA weights."""
    from cnnzoo.train import recalibrate_bn

    x, y = toy_arrays(64)
    data = cnnzoo.data.from_arrays(x, y, batch_size=16, validation_split=0.0, shuffle=False)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 2, 3))
    h = keras.layers.Dense(8, name="hidden")(keras.layers.Rescaling(1 / 255.0)(keras.layers.Flatten()(inputs)))
    h = keras.layers.BatchNormalization(name="bn")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(
        keras.layers.ReLU()(h)))
    result = cnnzoo.train.fit(model, data, epochs=3, optimizer="sgd", learning_rate=0.1, schedule="constant",
                              weight_decay=None, ema=0.9, verbose=0)
    bn = result.model.get_layer("bn")
    got = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    recalibrate_bn(result.model, data)           # the statistics the EMA weights give, recomputed
    np.testing.assert_allclose(got[0], bn.moving_mean.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], bn.moving_variance.numpy(), rtol=1e-4, atol=1e-5)


def test_finetune_stages_take_the_recipe_options(monkeypatch):
    import importlib

    fit_module = importlib.import_module("cnnzoo.train.fit")

    seen = []
    real_optimizer, real_weights = fit_module.make_optimizer, fit_module._class_weights

    def optimizer_spy(*args, **kwargs):
        seen.append(("optimizer", kwargs["ema"], kwargs["accumulate"]))
        return real_optimizer(*args, **kwargs)

    def weights_spy(*args):
        weights = real_weights(*args)
        seen.append(("class_weight", weights))
        return weights

    monkeypatch.setattr(fit_module, "make_optimizer", optimizer_spy)
    monkeypatch.setattr(fit_module, "_class_weights", weights_spy)
    x, y = toy_arrays(96)
    y[:70] = 0
    data = cnnzoo.data.from_arrays(np.repeat(np.repeat(x, 16, 1), 16, 2), y, batch_size=16, validation_split=0.0)
    keras.utils.set_random_seed(0)
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    stages = [cnnzoo.Stage("head", epochs=1, learning_rate=1e-2, class_weight="balanced", loss="focal"),
              cnnzoo.Stage(2, epochs=1, learning_rate=1e-3, ema=0.9, accumulate=2)]
    result = cnnzoo.finetune(model, data, stages=stages, augment=None, verbose=0, from_scratch=False)
    assert len(result.history["loss"]) == 2 and all(np.isfinite(result.history["loss"]))
    weights = [entry[1] for entry in seen if entry[0] == "class_weight"]
    assert weights[0][0] < 1 < weights[0][1] and weights[1] is None       # class 0 is common: it weighs less
    assert [entry[1:] for entry in seen if entry[0] == "optimizer"] == [(None, 1), (0.9, 2)]
