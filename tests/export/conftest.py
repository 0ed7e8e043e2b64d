"""Export fixtures: a ResNet18 trained a little on real digits, exported to every format once per session.

ResNet18 (not MobileNetV2-0.35) because after one epoch it is accurate enough (~95 %) for int8 agreement and
accuracy-drop checks to mean something, and its weights dominate the file, as in real models, so the int8 size
ratio is meaningful.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import cnnzoo
from cnnzoo.train import recalibrate_bn
from cnnzoo.data.imagedata import ImageData

SIZE = 32
ALL_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "onnx")


def digits_rgb(size=SIZE):
    """scikit-learn's 1,797 real 8x8 digits as uint8 RGB [N, size, size, 3] and int labels, shuffled."""
    digits = load_digits()
    x = digits.images.astype(np.float32)[..., None] / 16.0 * 255.0
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.repeat(np.clip(np.round(x), 0, 255).astype(np.uint8), 3, axis=-1)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], digits.target[order].astype(np.int64)


@pytest.fixture(scope="session")
def digits():
    x, y = digits_rgb()
    return {"x_train": x[:1400], "y_train": y[:1400], "x_test": x[1400:], "y_test": y[1400:]}


@pytest.fixture(scope="session")
def digits_data(digits):
    def stream(x, y):
        return tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32))).batch(64).prefetch(1)

    return ImageData(train=stream(digits["x_train"], digits["y_train"]),
                     val=stream(digits["x_test"], digits["y_test"]),
                     class_names=[f"digit_{i}" for i in range(10)], image_size=(SIZE, SIZE), batch_size=64)


@pytest.fixture(scope="session")
def trained(digits):
    """Input -> augmentation (RandomTranslation, RandomRotation) -> zoo ResNet18, trained one epoch."""
    keras.utils.set_random_seed(0)
    backbone = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(SIZE, SIZE, 3))
    inputs = keras.Input((SIZE, SIZE, 3))
    # Explicit names: auto-names get a suffix when earlier tests in the session built the same layer classes.
    augment = keras.Sequential([keras.layers.RandomTranslation(0.05, 0.05, name="random_translation"),
                                keras.layers.RandomRotation(0.03, name="random_rotation")], name="augment")
    model = keras.Model(inputs, backbone(augment(inputs)), name="digits_resnet18")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(digits["x_train"], digits["y_train"], batch_size=64, epochs=1, verbose=0)
    recalibrate_bn(backbone, digits["x_train"][:512])
    accuracy = float(np.mean(model.predict(digits["x_test"], verbose=0).argmax(-1) == digits["y_test"]))
    assert accuracy > 0.8, f"fixture model too weak for meaningful parity checks: {accuracy:.1%}"
    return model, accuracy


@pytest.fixture(scope="session")
def exported(trained, digits_data, tmp_path_factory):
    """Every format of the trained model, exported once (parity=True: this call raises if any check fails)."""
    model, accuracy = trained
    out_dir = tmp_path_factory.mktemp("export") / "digits"
    report = cnnzoo.export(model, out_dir, formats=ALL_FORMATS, representative_data=digits_data,
                           metrics={"accuracy": accuracy}, top_k=3, latency_repeats=5)
    return report


def small_model(num_classes=4, name="small", activation="softmax"):
    """A few-layer model in the zoo's shape (cnnzoo Preprocessing first, "predictions" last), for checks of
    export mechanics that need no accuracy: it exports in a second or two."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = cnnzoo.layers.Preprocessing("tf", name="preprocessing")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation=activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="session")
def make_small_model():
    return small_model


@pytest.fixture(scope="session")
def tiny_model():
    keras.utils.set_random_seed(1)
    return small_model()
