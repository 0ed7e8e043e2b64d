"""Padding2D: the notes' A..P worked example, NumPy's pad modes, errors, unknown sizes and gradients."""
import string

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.layers import Padding2D

LETTERS = string.ascii_uppercase[:16]  # A..P, the notes' 4x4 map


def _letters_map():
    return np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1)


def _as_letters(x):
    return [" ".join("0" if v == 0 else LETTERS[int(v) - 1] for v in row) for row in np.asarray(x)[0, :, :, 0]]


# Printed in the design notes (000_46f1e5c5efe450e3.txt, "Stride and Padding Strategies"); replicate is
# the corrected 6x6 version of the matrix printed 8 columns wide.
GOLDEN = {
    "zero": ["0 0 0 0 0 0", "0 A B C D 0", "0 E F G H 0", "0 I J K L 0", "0 M N O P 0", "0 0 0 0 0 0"],
    "reflect": ["F E F G H G", "B A B C D C", "F E F G H G", "J I J K L K", "N M N O P O", "J I J K L K"],
    "replicate": ["A A B C D D", "A A B C D D", "E E F G H H", "I I J K L L", "M M N O P P", "M M N O P P"],
    "circular": ["P M N O P M", "D A B C D A", "H E F G H E", "L I J K L I", "P M N O P M", "D A B C D A"],
}


@pytest.mark.parametrize("mode", list(GOLDEN))
def test_one_pixel_padding_of_the_letter_map(mode):
    out = Padding2D(1, mode)(_letters_map())
    assert out.shape == (1, 6, 6, 1)
    assert _as_letters(out) == GOLDEN[mode]


NUMPY_MODE = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("mode", list(NUMPY_MODE))
@pytest.mark.parametrize("padding, widths", [
    (2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))), (((0, 3), (2, 1)), ((0, 3), (2, 1))), (0, ((0, 0), (0, 0))),
])
def test_any_padding_per_side_matches_numpy(mode, padding, widths, rng):
    x = rng.normal(size=(2, 5, 4, 3)).astype("float32")
    expected = np.pad(x, ((0, 0), *widths, (0, 0)), mode=NUMPY_MODE[mode])
    np.testing.assert_array_equal(Padding2D(padding, mode)(x), expected)


def test_replicate_pads_wider_than_the_map(rng):
    x = rng.normal(size=(1, 2, 3, 1)).astype("float32")
    expected = np.pad(x, ((0, 0), (5, 4), (7, 6), (0, 0)), mode="edge")
    np.testing.assert_array_equal(Padding2D(((5, 4), (7, 6)), "replicate")(x), expected)


@pytest.mark.parametrize("mode", list(NUMPY_MODE))
def test_channels_first(mode, rng):
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    expected = np.pad(x, ((0, 0), (0, 0), (1, 2), (3, 0)), mode=NUMPY_MODE[mode])
    out = Padding2D(((1, 2), (3, 0)), mode, data_format="channels_first")(x)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("mode", list(NUMPY_MODE))
def test_unknown_spatial_size(mode, rng):
    inputs = keras.Input((None, None, 2))
    layer = Padding2D(((1, 2), (2, 1)), mode)
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, None, None, 2)
    assert layer.compute_output_shape((None, 5, 6, 2)) == (None, 8, 9, 2)
    for shape in [(1, 3, 4, 2), (2, 6, 5, 2)]:
        x = rng.normal(size=shape).astype("float32")
        expected = np.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0)), mode=NUMPY_MODE[mode])
        np.testing.assert_array_equal(model(x), expected)


def test_gradients_flow_back_to_the_copied_pixels():
    x = tf.constant(np.ones((1, 3, 3, 1), "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(Padding2D(1, "replicate")(x))
    grad = tape.gradient(total, x).numpy()[0, :, :, 0]
    # A corner pixel appears 4 times in the padded map, an edge pixel twice, the centre once.
    np.testing.assert_array_equal(grad, [[4, 2, 4], [2, 1, 2], [4, 2, 4]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(Padding2D(1, "circular")(x))
    assert tape.gradient(total, x).numpy().sum() == 25   # each of the 5x5 cells is a copy of one pixel


@pytest.mark.parametrize("kwargs, name", [
    (dict(padding=-1), "padding"), (dict(padding=(1, 2, 3)), "padding"), (dict(padding=((1, 2), 3)), "padding"),
    (dict(padding=1.5), "padding"), (dict(padding=1, mode="mirror"), "mode"),
    (dict(padding=1, data_format="nhwc"), "data_format"),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=f"Received: {name}="):
        Padding2D(**kwargs)


def test_reflect_and_circular_check_the_size():
    x = np.zeros((1, 3, 3, 1), "float32")
    with pytest.raises(ValueError, match="Received: padding="):
        Padding2D(3, "reflect")(x)          # reflect needs padding < size
    Padding2D(2, "reflect")(x)
    with pytest.raises(ValueError, match="Received: padding="):
        Padding2D(((4, 0), (0, 0)), "circular")(x)    # circular needs padding <= size
    Padding2D(3, "circular")(x)
    with pytest.raises(ValueError, match="Received: padding="):
        Padding2D(5, "reflect")(keras.Input((4, 4, 1)))   # checked at build when the size is known
