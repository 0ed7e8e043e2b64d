"""Helpers for the training tests: scikit-learn's digits as RGB uint8 images, ImageData from arrays, a tiny BN CNN."""
import functools

import keras
import numpy as np
import tensorflow as tf

import cnnzoo
from cnnzoo.data.imagedata import ImageData


@functools.lru_cache(maxsize=4)
def digits_arrays(size=32):
    """load_digits (8x8, 0..16) as (N, size, size, 3) uint8 0..255 images and int labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = (digits.images / 16.0 * 255.0)[..., None].astype("float32")
    big = tf.image.resize(grey, (size, size), method="bilinear").numpy()
    images = np.repeat(np.clip(np.round(big), 0, 255).astype("uint8"), 3, axis=-1)
    return images, digits.target.astype("int32")


def make_data(x, y, *, batch_size=32, validation=None, class_names=None, shuffle=True, seed=0):
    """An ImageData from arrays; `validation` is an (x, y) pair or None."""
    from_arrays = getattr(cnnzoo.data, "from_arrays", None)
    if from_arrays is not None and validation is None:
        return from_arrays(x, y, batch_size=batch_size, validation_split=0.0, seed=seed, shuffle=shuffle,
                           class_names=class_names)

    def stream(images, labels, shuffle_it):
        ds = tf.data.Dataset.from_tensor_slices((images, labels.astype("int32")))
        if shuffle_it:
            ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(2)

    names = class_names or [str(c) for c in range(int(y.max()) + 1)]
    return ImageData(train=stream(x, y, shuffle), val=stream(*validation, False) if validation else None,
                     class_names=names, image_size=tuple(x.shape[1:3]), batch_size=batch_size)


def split(x, y, fraction=0.25, seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = int(len(y) * (1 - fraction))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def tiny_cnn(num_classes=10, size=32, width=16, bn_momentum=0.99, name="tiny_cnn"):
    """stem -> two conv+BN stages -> head. Layer names give the groups of `TINY_GROUPS`."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for i in (1, 2):
        x = keras.layers.Conv2D(width * 2 ** i, 3, strides=2, padding="same", use_bias=False,
                                name=f"stage{i}_conv")(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"stage{i}_bn")(x)
        x = keras.layers.ReLU(name=f"stage{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


TINY_GROUPS = {"stem": ["stem_conv", "stem_bn", "stem_relu"],
               "stage1": ["stage1_conv", "stage1_bn", "stage1_relu"],
               "stage2": ["stage2_conv", "stage2_bn", "stage2_relu"],
               "head": ["avg_pool", "predictions"]}
