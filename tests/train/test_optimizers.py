"""Optimizer construction: weight decay that skips BN and biases, clipping, discriminative learning rates."""
import keras
import numpy as np
import pytest

from cnnzoo.train.optimizers import make_optimizer


def small_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="predictions")(x)
    model = keras.Model(inputs, outputs)
    for variable in model.trainable_variables:  # non-trivial values everywhere, biases and beta included
        variable.assign(np.random.default_rng(0).normal(size=variable.shape).astype("float32") + 1.0)
    return model


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_weight_decay_skips_batchnorm_and_bias(name):
    model = small_model()
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    lr, wd = 0.1, 0.5
    opt = make_optimizer(name, lr, model=model, weight_decay=wd)
    zeros = [np.zeros(v.shape, "float32") for v in model.trainable_variables]
    opt.apply(zeros, model.trainable_variables)  # zero gradients: only the decay moves weights
    for variable in model.trainable_variables:
        old = before[variable.path]
        if variable.path.endswith("kernel"):
            np.testing.assert_allclose(variable.numpy(), old * (1 - lr * wd), rtol=1e-5, err_msg=variable.path)
        else:  # conv/dense bias, BN gamma and beta
            np.testing.assert_array_equal(variable.numpy(), old, err_msg=variable.path)


def test_global_clipnorm_bounds_the_update():
    model = small_model()
    before = [v.numpy().copy() for v in model.trainable_variables]
    opt = make_optimizer("sgd", 1.0, model=model, weight_decay=None, momentum=0.0, global_clipnorm=1.0)
    grads = [np.full(v.shape, 10.0, "float32") for v in model.trainable_variables]
    opt.apply(grads, model.trainable_variables)
    step = np.sqrt(sum(((v.numpy() - b) ** 2).sum() for v, b in zip(model.trainable_variables, before)))
    assert step == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_lr_multipliers_scale_each_variables_step(name):
    model = small_model()
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    multipliers = {"conv/kernel": 0.1, "predictions/kernel": 0.3}
    opt = make_optimizer(name, 0.01, model=model, weight_decay=None if name == "sgd" else 0.0, momentum=0.0,
                         lr_multipliers=multipliers)
    opt.apply([np.ones(v.shape, "float32") for v in model.trainable_variables], model.trainable_variables)
    for variable in model.trainable_variables:
        moved = np.abs(variable.numpy() - before[variable.path])
        # SGD: lr * g = 0.01; Adam's first step: lr * m_hat / (sqrt(v_hat) + eps) = 0.01 for g = 1.
        np.testing.assert_allclose(moved, 0.01 * multipliers.get(variable.path, 1.0), rtol=1e-3,
                                   err_msg=variable.path)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert clone.lr_multipliers == multipliers


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="Received: optimizer='rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer("adamw", 0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="clipnorm"):
        make_optimizer("sgd", 0.1, clipnorm=1.0, clipvalue=1.0)
