"""The inference model every format is built from: augmentation stripped, float32, training=False."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.export import inference_model, is_augmentation, load_runner
from cnnzoo.export.prepare import augmentation_layers

SIZE = 32


def _head(x, classes=3):
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(classes, activation="softmax", name="predictions")(x)


def test_augmentation_layers_are_recognised():
    for layer in (keras.layers.RandomFlip(), keras.layers.RandomZoom(0.1), keras.layers.RandAugment(),
                  keras.layers.MixUp(), keras.layers.CutMix(),
                  keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomRotation(0.1)])):
        assert is_augmentation(layer), layer
    for layer in (keras.layers.Rescaling(1 / 255), keras.layers.Resizing(8, 8), keras.layers.Dense(2),
                  cnnzoo.layers.Preprocessing("tf"), keras.layers.Dropout(0.2)):
        assert not is_augmentation(layer), layer
    flagged = keras.layers.Identity()
    flagged._cnnzoo_augmentation = True
    assert is_augmentation(flagged)


def test_augmentation_is_removed_top_level_and_nested_and_weights_are_shared(rng):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.RandomFlip(name="flip")(inputs)
    inner_in = keras.Input((SIZE, SIZE, 3))
    inner = keras.Model(inner_in, keras.layers.RandomContrast(0.2, name="contrast")(
        keras.layers.Rescaling(1 / 255, name="preprocessing")(inner_in)), name="inner")
    x = inner(x)
    model = keras.Model(inputs, _head(x))
    assert set(augmentation_layers(model)) == {"flip", "contrast"}
    clean = inference_model(model)
    assert augmentation_layers(clean) == []
    assert [type(layer).__name__ for layer in clean.layers][1] == "StrippedAugmentation"
    # Unchanged layers are shared with the original: same variables, no copy.
    assert clean.get_layer("predictions") is model.get_layer("predictions")
    images = rng.integers(0, 256, (4, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(clean(images, training=False), model(images, training=False), atol=1e-6)
    # A model without augmentation or mixed precision is returned as is.
    plain = keras.Model(inputs, _head(keras.layers.Rescaling(1 / 255)(inputs)))
    assert inference_model(plain) is plain


def test_mixed_precision_model_is_recast_to_float32_and_exports(tmp_path, rng):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((SIZE, SIZE, 3))
        x = cnnzoo.layers.Preprocessing("tf", name="preprocessing")(inputs)
        x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(3, activation="softmax", name="predictions", dtype="float32")(x)
        model = keras.Model(inputs, outputs)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("preprocessing").compute_dtype == "float16"
    clean = inference_model(model)
    assert {layer.compute_dtype for layer in clean.layers[1:]} == {"float32"}
    assert model.get_layer("preprocessing").compute_dtype == "float16"          # the original is untouched
    images = rng.integers(0, 256, (8, SIZE, SIZE, 3)).astype("uint8")
    np.testing.assert_allclose(clean(images.astype("float32"), training=False),
                               model(images.astype("float32"), training=False), atol=1e-2)
    report = cnnzoo.export(model, tmp_path, formats=("saved_model", "tflite_fp32"), representative_data=images,
                           latency_repeats=1)
    assert report.card["export"]["recast_to_float32"] is True
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((report.directory / "saved_model.pb").read_bytes())
    assert "DT_HALF" not in str(proto.meta_graphs[0].graph_def)      # no float16 math left in the graph
    float32_reference = clean(images.astype("float32"), training=False).numpy()
    np.testing.assert_allclose(load_runner(report.directory).predict(images), float32_reference, atol=1e-5)


def test_keras_preprocessing_layer_does_not_leak_training_mode_into_exports(tmp_path, rng):
    """Keras 3.15's image-preprocessing layers default to training=True, which leaks to a later BatchNorm when
    the model is called without `training=` (ENVIRONMENT.md). Every export endpoint passes training=False."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.CenterCrop(28, 28)(inputs)                    # a kept (non-random) preprocessing layer
    x = keras.layers.Rescaling(1 / 255.0, name="preprocessing")(x)
    model = keras.Model(inputs, _head(x))
    bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)][0]

    def set_statistics():
        bn.moving_mean.assign(np.full(8, 0.3, "float32"))
        bn.moving_variance.assign(np.full(8, 0.05, "float32"))

    images = rng.integers(0, 256, (8, SIZE, SIZE, 3)).astype("uint8")
    set_statistics()
    leaked = model(images.astype("float32")).numpy()          # BN in training mode (and updates its stats)
    set_statistics()
    inference = model(images.astype("float32"), training=False).numpy()
    if np.abs(leaked - inference).max() < 1e-4:
        pytest.skip("this Keras no longer leaks training=True from preprocessing layers")
    report = cnnzoo.export(model, tmp_path, formats=("saved_model", "onnx"), representative_data=images,
                           latency_repeats=1)
    for fmt, path in report.paths.items():
        runner = load_runner(path)
        np.testing.assert_allclose(runner.predict(images), inference, atol=1e-4, err_msg=fmt)
        np.testing.assert_allclose(runner.predict(images[:1]), inference[:1], atol=1e-4, err_msg=fmt)
        assert report.parity[fmt]["batch_max_diff"] <= 1e-4


def test_inference_model_checks_its_argument():
    with pytest.raises(TypeError, match="Received: model="):
        inference_model("resnet18")


def test_an_accuracy_drop_of_exactly_one_point_passes_and_more_fails():
    # 2 of 200 images is 100 * (0.875 - 0.865) = 1.0000000000000009 points: at the limit, not over it.
    from cnnzoo.export.parity import compare
    from cnnzoo.export.samples import Samples

    class Fixed:  # a runner whose answers are given: image i gets class answers[i]
        def __init__(self, answers):
            self.answers = answers

        def predict(self, images, batch_size=64):
            index = images[:, 0, 0, 0].astype(int)
            return np.eye(2, dtype="float32")[self.answers[index]]

    images = np.zeros((200, 2, 2, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(200)
    labels = np.zeros(200, int)
    reference = np.eye(2, dtype="float32")[(np.arange(200) >= 175).astype(int)]     # 87.5 % right
    for wrong, passes in ((2, True), (3, False)):
        answers = (np.arange(200) >= 175 - wrong).astype(int)                          # `wrong` more mistakes
        result = compare("tflite_int8", Fixed(answers), reference, Samples(images, labels))
        assert result.top1_agreement >= 0.97
        assert result.passed is passes, (wrong, result.failures)
