"""BatchNorm statistics: exact recalibration, the momentum rule, and the 0.999-momentum trap avoided by `fit`."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.evaluate import evaluate
from cnnzoo.train import fit, recalibrate_bn
from cnnzoo.train.batchnorm import scaled_momentum

from traintools import digits_arrays, make_data, split, tiny_cnn


def two_bn_model():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.999, name="bn1")(x)
    x = keras.layers.Conv2D(2, 1, name="conv2")(x)
    x = keras.layers.BatchNormalization(momentum=0.999, name="bn2")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_recalibrate_bn_sets_the_average_of_batch_statistics():
    model = two_bn_model()
    rng = np.random.default_rng(0)
    # 0..255 pixels (whole numbers, so the stream's uint8 pixels are these exactly), each batch its own spread.
    batches = [np.clip(np.round(rng.normal(loc=40 + 30 * i, scale=5 + 10 * i, size=(8, 6, 6, 3))), 0, 255)
               .astype("float32") for i in range(5)]
    trainable_before = [v.numpy().copy() for v in model.trainable_variables]
    bn2_before = [w.copy() for w in model.get_layer("bn2").get_weights()]
    used = recalibrate_bn(model, tf.data.Dataset.from_tensor_slices(np.stack(batches)), layers=[
        model.get_layer("bn1")])
    assert used == 5
    conv = keras.Model(model.inputs, model.get_layer("conv").output)
    outs = [conv(tf.constant(b)).numpy() for b in batches]
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean.numpy(), np.mean([o.mean(axis=(0, 1, 2)) for o in outs], axis=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), np.mean([o.var(axis=(0, 1, 2)) for o in outs], axis=0),
                               rtol=1e-4, atol=1e-5)
    for before, variable in zip(trainable_before, model.trainable_variables):  # no weight update
        np.testing.assert_array_equal(before, variable.numpy())
    for before, after in zip(bn2_before, model.get_layer("bn2").get_weights()):  # not selected: untouched
        np.testing.assert_array_equal(before, after)
    assert bn1.momentum == 0.999 and bn1.trainable  # restored


def test_recalibrate_bn_default_covers_every_bn_and_takes_imagedata():
    model = two_bn_model()
    x = np.random.default_rng(1).integers(0, 256, (40, 6, 6, 3)).astype("uint8")
    data = make_data(x, np.arange(40) % 2, batch_size=10, class_names=["a", "b"])
    assert recalibrate_bn(model, data) == 4
    assert not np.allclose(model.get_layer("bn2").moving_variance.numpy(), 1.0)
    with pytest.raises(ValueError, match="steps"):
        recalibrate_bn(model, data, steps=0)
    with pytest.raises(TypeError, match="data"):
        recalibrate_bn(model, "images/")


def test_scaled_momentum_rule():
    assert scaled_momentum(0.999, steps_per_epoch=40) == 0.9          # small data: PyTorch-like 0.9
    assert scaled_momentum(0.999, steps_per_epoch=500) == pytest.approx(0.98)
    assert scaled_momentum(0.99, steps_per_epoch=100000) == 0.99      # never above the layer's own
    assert scaled_momentum(0.5, steps_per_epoch=10) == 0.5


def test_short_from_scratch_run_evaluates_like_it_trains():
    """Issue #5 item 11: BN momentum 0.999 (MobileNetV2's) and a few hundred steps.

    The control run (no momentum rule, no recalibration) shows the trap on this very setting: high training
    accuracy, chance in evaluate. The recipe's run evaluates within a few points of its training accuracy.
    """
    x, y = digits_arrays(16)
    train, val = split(x, y)
    data = make_data(*train, validation=val, batch_size=32)
    runs = {}
    for label, options in {"recipe": {}, "control": dict(bn_momentum=None, recalibrate_bn=False)}.items():
        keras.utils.set_random_seed(0)
        model = tiny_cnn(size=16, bn_momentum=0.999)
        result = fit(model, data, epochs=3, learning_rate=3e-3, verbose=0, **options)
        runs[label] = (result.history["accuracy"][-1], evaluate(result.model, data).accuracy)
    control_train, control_eval = runs["control"]
    assert control_train > 0.85 and control_train - control_eval > 0.3, runs   # the trap: a 30+ point gap
    recipe_train, recipe_eval = runs["recipe"]
    assert recipe_train > 0.85 and abs(recipe_eval - recipe_train) < 0.05, runs
