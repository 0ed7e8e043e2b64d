"""Representative data in every accepted form: ImageData, datasets of images or (images, labels), arrays."""
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.export.samples import calibration_and_holdout, collect


def test_imagedata_calibrates_on_train_and_holds_out_val(digits_data):
    calibration, holdout, disjoint = calibration_and_holdout(digits_data, input_size=(32, 32), calibration=100,
                                                             holdout=50)
    assert disjoint and len(calibration) == 100 and len(holdout) == 50
    assert calibration.images.dtype == np.uint8 and calibration.images.shape[1:] == (32, 32, 3)
    assert holdout.labels is not None and holdout.labels.shape == (50,)


def test_dataset_and_array_forms(digits):
    x, y = digits["x_train"][:30], digits["y_train"][:30]
    forms = {
        "unbatched images": tf.data.Dataset.from_tensor_slices(x),
        "batched (images, labels)": tf.data.Dataset.from_tensor_slices((x, y)).batch(7),
        "unbatched (images, labels)": tf.data.Dataset.from_tensor_slices((x, y)),
        "array": x,
        "(array, labels)": (x, y),
        "0..255 floats": x.astype(np.float32),
        "0..1 floats": x / 255.0,                      # the pixel rule of every data argument: scaled by 255
    }
    for name, data in forms.items():
        samples = collect(data, 25, (32, 32))
        assert len(samples) == 25, name
        np.testing.assert_array_equal(samples.images, x[:25], err_msg=name)
        if "labels" in name:
            np.testing.assert_array_equal(samples.labels, y[:25], err_msg=name)


def test_images_are_resized_to_the_model_size_and_split_disjointly(digits):
    x = digits["x_train"][:20]
    calibration, holdout, disjoint = calibration_and_holdout(x, input_size=(24, 20), calibration=12, holdout=50)
    assert calibration.images.shape == (12, 24, 20, 3) and holdout.images.shape == (8, 24, 20, 3) and disjoint
    calibration, holdout, disjoint = calibration_and_holdout(x, input_size=(32, 32), calibration=200, holdout=5)
    assert len(calibration) == 20 and len(holdout) == 5 and not disjoint


@pytest.mark.parametrize("data, error, text", [
    (np.concatenate([np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)), np.full((1, 32, 32, 3), 3.0)]) / 1.2,
     ValueError, "mixes ranges"),
    ("folder/", FileNotFoundError, "representative_data='folder/'"),
    (3, TypeError, "representative_data='int'"),
    (tf.data.Dataset.from_tensor_slices({"image": np.zeros((2, 8, 8, 3), np.uint8)}), TypeError, "dicts"),
    (np.zeros((0, 32, 32, 3), np.uint8), ValueError, "no images"),
    ((np.zeros((3, 32, 32, 3), np.uint8), np.zeros(2)), ValueError, "2 labels"),
])
def test_bad_representative_data_is_named(data, error, text):
    with pytest.raises(error, match="representative_data") as info:
        collect(data, 10, (32, 32))
    assert text in str(info.value)
