"""Bad input to exported models: 1/4-channel images, non-image bytes, wrong dtypes."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cnnzoo.export import load_runner


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved(exported):
    return tf.saved_model.load(str(exported.directory))


def test_signature_rejects_other_channel_counts_clearly(saved, digits):
    rgba = np.concatenate([digits["x_test"][:2], np.full((2, 32, 32, 1), 255, np.uint8)], -1)
    with pytest.raises((TypeError, ValueError)) as info:
        saved.signatures["serving_default"](images=rgba)
    message = str(info.value)
    assert "images" in message and "3" in message and "4" in message      # names input, expected and got


def test_runners_convert_gray_and_rgba_to_rgb(exported, digits):
    rgb = digits["x_test"][:6]
    gray = rgb[..., 0]                                   # the digits are gray: R == G == B
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:3], 1), 200, np.uint8)], -1)
    for fmt in ("saved_model", "tflite_int8", "onnx"):
        runner = load_runner(exported.paths[fmt])
        expected = runner.predict(rgb)
        np.testing.assert_allclose(runner.predict(gray), expected, atol=1e-6, err_msg=fmt)
        np.testing.assert_allclose(runner.predict(gray[..., None]), expected, atol=1e-6, err_msg=fmt)
        np.testing.assert_allclose(runner.predict(rgba), expected, atol=1e-6, err_msg=fmt)
        np.testing.assert_allclose(runner.predict(rgb[0]), expected[:1], atol=1e-6, err_msg=fmt)


def test_bytes_signature_converts_gray_and_rgba_files(saved, digits):
    rgb = digits["x_test"][:3]
    rgba = np.concatenate([rgb, np.full((3, 32, 32, 1), 255, np.uint8)], -1)
    expected = saved.signatures["serving_default"](images=rgb)["probabilities"].numpy()
    for variant in ([_png(im[..., 0]) for im in rgb], [_png(im) for im in rgba]):
        got = saved.signatures["serving_bytes"](image_bytes=tf.constant(variant))["probabilities"].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_non_image_bytes_raise_invalid_argument_naming_the_problem(saved, digits):
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        saved.signatures["serving_bytes"](image_bytes=tf.constant([_png(digits["x_test"][0]), b"not an image"]))


def test_wrong_dtype_is_a_clear_error(saved, exported, digits):
    floats = digits["x_test"][:2].astype(np.float32)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="uint8"):
        saved.signatures["serving_default"](images=tf.constant(floats))
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        runner = load_runner(exported.paths[fmt])
        with pytest.raises(TypeError, match=r"uint8.*Received: images.dtype=float32"):
            runner.predict(floats)
    with pytest.raises(ValueError, match=r"Received: images.shape=\(2, 32, 32, 2\)"):
        load_runner(exported.paths["onnx"]).predict(np.zeros((2, 32, 32, 2), np.uint8))
