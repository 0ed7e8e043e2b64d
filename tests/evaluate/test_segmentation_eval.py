"""Segmenters through cnnzoo.evaluate and cnnzoo.train.fit: per-pixel scores that skip ignored pixels."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.evaluate.segmentation import SegmentationReport


def _oracle(classes=4):
    """A 'segmenter' that predicts the class written in the red channel (value = 40 * class)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Lambda(lambda t: keras.ops.one_hot(keras.ops.cast(keras.ops.round(t[..., 0] / 40.0), "int32"),
                                                        classes))(inputs)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x * 50.0))


def test_evaluate_scores_every_kept_pixel():
    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 4, (6, 8, 8))
    truth = predicted.copy()
    wrong = rng.random(truth.shape) < 0.2
    truth[wrong] = (truth[wrong] + 1) % 4
    truth[:, 0, :] = 255                        # ignored: counted nowhere
    images = np.zeros((6, 8, 8, 3), np.uint8)
    images[..., 0] = predicted * 40
    report = cnnzoo.evaluate(_oracle(), (images, truth), class_names=["a", "b", "c", "d"])
    assert isinstance(report, SegmentationReport)
    keep = truth != 255
    assert report.pixels == keep.sum()
    assert report.pixel_accuracy == pytest.approx((predicted == truth)[keep].mean())
    for k, name in enumerate("abcd"):
        inter = ((predicted == k) & (truth == k) & keep).sum()
        union = (((predicted == k) | (truth == k)) & keep).sum()
        assert report.per_class_iou[name] == pytest.approx(inter / union)
    assert report.miou == pytest.approx(np.mean(list(report.per_class_iou.values())))
    assert "mIoU" in report.summary()
    assert report.plot_predictions(n=2) is not None


def test_a_class_never_seen_nor_predicted_is_left_out_of_the_mean():
    images = np.zeros((1, 4, 4, 3), np.uint8)
    report = cnnzoo.evaluate(_oracle(), (images, np.zeros((1, 4, 4), np.int64)))
    assert report.miou == 1.0 and np.isnan(report.per_class_iou["3"])
    with pytest.raises(ValueError, match="Mask values"):
        cnnzoo.evaluate(_oracle(), (images, np.full((1, 4, 4), 7)))


def test_fit_trains_a_segmenter_with_miou_and_ignore():
    data = cnnzoo.data.bundled.digit_scenes(32, size=48, seed=0, scale=(16, 24))
    masks = data["masks"].astype("int32")
    masks[:, :4] = 255
    images = cnnzoo.data.from_arrays(data["images"], masks=masks, class_names=data["class_names"],
                                     batch_size=8, validation_split=0.25)
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=11)
    result = cnnzoo.train.fit(model, images, epochs=1, learning_rate=1e-3, loss="cross_entropy+dice",
                              verbose=0)
    assert "val_miou" in result.history and np.isfinite(result.history["loss"]).all()
    report = cnnzoo.evaluate(result.model, images)
    assert report.pixels == 8 * 44 * 48     # the 8 validation scenes minus their 4 ignored rows
    with pytest.raises(ValueError, match="segmentation loss"):
        cnnzoo.train.fit(cnnzoo.create_model("resnet18", num_classes=11, input_shape=(32, 32, 3)),
                         cnnzoo.data.from_arrays(data["images"][:11, :32, :32], np.arange(11),
                                                 validation_split=0.0),
                         epochs=1, loss="dice", verbose=0)
