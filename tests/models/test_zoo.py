"""One test over every registered model: shapes, finite outputs, gradients, `.keras` round trip, features."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo

SIZE = 32
# Built and run forward, but not trained or saved in the fast suite (hundreds of MB of weights).
LARGE = {"vgg19", "vgg19_bn", "resnet101", "resnet101_v1_5", "resnet152", "resnet152_v1_5", "se_resnet101",
         "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "vgg16", "vgg16_bn", "vgg13", "vgg13_bn"}


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_every_model(name, tmp_path):
    model = cnnzoo.create_model(name, num_classes=7, input_shape=(SIZE, SIZE, 3))
    assert model.name == name
    assert model.layers[1].name == "preprocessing"
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    y = model(x, training=False)
    assert y.shape == (2, 7)
    assert y.dtype == "float32"
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-5)

    if name in LARGE:  # the feature map the head pools; building a second large model costs too much here
        head_input = model.get_layer("flatten" if name.startswith("vgg") else "avg_pool").input
        assert tuple(head_input.shape[1:3]) == (1, 1)
        return
    features = cnnzoo.create_model(name, include_top=False, pooling=None, input_shape=(SIZE, SIZE, 3))
    assert features.output_shape[1:3] == (1, 1)  # every zoo backbone has output stride 32
    assert features.output_shape[-1] == model.get_layer("predictions").input.shape[-1] or name.startswith("vgg")

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x, training=True) * tf.range(7, dtype="float32"))
    grads = tape.gradient(loss, model.trainable_variables)
    no_grad = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not no_grad, f"variables without gradient: {no_grad[:5]}"
    assert all(np.all(np.isfinite(g)) for g in grads)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored(x, training=False), model(x, training=False))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2_035", "efficientnet_b0", "vgg11_bn"])
def test_any_size_and_one_channel_without_top(name):
    model = cnnzoo.create_model(name, include_top=False, pooling="avg", input_shape=(None, None, 1))
    for size in (32, 45, 64):
        out = model(np.zeros((1, size, size, 1), "float32"), training=False)
        assert out.shape == (1, model.output_shape[-1])
    features = cnnzoo.create_model(name, include_top=False, pooling=None, input_shape=(64, 96, 3))
    assert features.output_shape[1:3] == (2, 3)


def test_classifier_is_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
        assert model.get_layer("Conv1").compute_dtype == "float16"
        assert model.get_layer("predictions").compute_dtype == "float32"
        assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
