"""One adapter for "data" arguments (cnnzoo.data.adapt): the same pixel rule for every consumer and every kind."""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.data import adapt, from_arrays
from cnnzoo.export.samples import collect
from cnnzoo.train import recalibrate_bn

RNG = np.random.default_rng(0)
UNIT = RNG.uniform(0, 1, (8, 6, 6, 3))                # [0, 1] floats
LABELS = np.arange(8) % 2
UNSURE = UNIT.copy()
UNSURE[0, 0, 0, 0] = 4.0                              # [0, 1] floats and one value above 1


def tiny_model():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(2, 3, name="conv")(x))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_every_kind_of_data_gets_the_same_pixels():
    expected = np.clip(np.round(UNIT * 255), 0, 255).astype(np.uint8)
    arrays = from_arrays(UNIT, LABELS, validation_split=0.0, shuffle=False, batch_size=8)
    pairs = [(arrays, "train"), ((UNIT, LABELS), "val"),
             (tf.data.Dataset.from_tensor_slices((UNIT.astype("float32"), LABELS)).batch(3), "val")]
    for data, split in pairs:
        images = np.concatenate([x.numpy() for x, _ in adapt.stream(data, split=split)])
        np.testing.assert_array_equal(images, expected)
        np.testing.assert_array_equal(adapt.read(data, split=split).images, expected)
    np.testing.assert_array_equal(collect(UNIT, 8, (6, 6)).images, expected)
    gray = adapt.read(tf.data.Dataset.from_tensor_slices(UNIT[..., :1]), name="data").images   # unbatched gray
    np.testing.assert_array_equal(gray, np.repeat(expected[..., :1], 3, -1))


def test_every_consumer_refuses_unsure_pixels_naming_its_argument():
    model = tiny_model()
    consumers = {
        "x": lambda: from_arrays(UNSURE, LABELS),
        "data": lambda: cnnzoo.evaluate(model, (UNSURE, LABELS)),
        "representative_data": lambda: collect(UNSURE, 8, (6, 6)),
        "reference": lambda: adapt.read(UNSURE, name="reference"),
    }
    for name, call in consumers.items():
        with pytest.raises(ValueError, match=rf"`{name}` mixes ranges.*Received: {name}.min\(\)=.*max\(\)=4.0"):
            call()
    with pytest.raises(ValueError, match="`data` mixes ranges"):
        recalibrate_bn(model, UNSURE)
    with pytest.raises(ValueError, match=r"`data`.*negative.*Received: data.min\(\)=-"):
        recalibrate_bn(model, tf.data.Dataset.from_tensor_slices(UNIT - 0.5).batch(4))


def test_a_stream_is_judged_by_its_first_batch_and_held_to_that_range():
    later = np.concatenate([UNIT, UNIT * 200]).astype("float32")        # [0, 1] batches, then 0..255 ones
    ds = tf.data.Dataset.from_tensor_slices((later, np.arange(16) % 2)).batch(8)
    converted = adapt.stream(ds, name="data")
    first = next(iter(converted))[0].numpy()
    np.testing.assert_array_equal(first, np.clip(np.round(UNIT * 255), 0, 255).astype(np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`data` yields a batch of pixels outside \[0, 1\]"):
        list(converted)


def test_only_imagedata_is_read_as_imagedata():
    @dataclasses.dataclass
    class LooksLikeImageData:
        train: tf.data.Dataset
        val: tf.data.Dataset
        class_names: list
        num_classes: int = 2

    ds = tf.data.Dataset.from_tensor_slices((UNIT, LABELS)).batch(4)
    impostor = LooksLikeImageData(ds, ds, ["a", "b"])
    with pytest.raises(TypeError, match="ImageData.*Received: data='LooksLikeImageData'"):
        cnnzoo.train.fit(tiny_model(), impostor, epochs=1)
    with pytest.raises(TypeError, match="Received: data='LooksLikeImageData'"):
        cnnzoo.evaluate(tiny_model(), impostor)
    assert cnnzoo.export.as_rgb_uint8 is cnnzoo.data.as_rgb_uint8 is adapt.as_rgb_uint8
    assert adapt.as_rgb_uint8.__module__ == "cnnzoo.data.adapt"
