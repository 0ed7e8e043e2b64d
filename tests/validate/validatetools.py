"""Helpers shared by the validation tests: real digits at 32 px, model builders, data shifts."""
import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import cnnzoo

SIZE = 32
CLASS_NAMES = [f"digit_{i}" for i in range(10)]


def digits_rgb(size=SIZE):
    """scikit-learn's 1,797 real 8x8 digits as uint8 RGB [N, size, size, 3] and int labels, shuffled."""
    digits = load_digits()
    x = digits.images.astype(np.float32)[..., None] / 16.0 * 255.0
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.repeat(np.clip(np.round(x), 0, 255).astype(np.uint8), 3, axis=-1)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], digits.target[order].astype(np.int64)


def shuffled_copy(model, seed=0):
    """The same architecture with every weight tensor's entries permuted: same statistics, broken function."""
    broken = keras.models.clone_model(model)
    rng = np.random.default_rng(seed)
    broken.set_weights([rng.permutation(w.reshape(-1)).reshape(w.shape) for w in model.get_weights()])
    return broken


def brightened(images, delta=40):
    return np.clip(images.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def small_model(num_classes=10):
    """A few layers in the zoo's shape (Preprocessing first, "predictions" last): trains and exports in seconds."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = cnnzoo.layers.Preprocessing("tf", name="preprocessing")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.MaxPooling2D(3)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small")
