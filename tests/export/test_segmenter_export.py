"""Exporting a segmenter: SavedModel (any size in, masks at that size), TFLite fp32/int8, ONNX, mask parity gates,
and `cnnzoo predict` writing mask PNGs. The segmenter is trained a little on digit scenes (digit strokes vs
background, so that a short training already gives masks worth comparing: an all-background model would agree
with anything)."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.data.bundled import digit_scenes
from cnnzoo.data.images import resize
from cnnzoo.data.masks import read_mask
from cnnzoo.export import parity as parity_lib
from cnnzoo.export.runners import KerasRunner, load_runner
from cnnzoo.export.samples import Samples

SIZE = 48
FORMATS = ("saved_model", "tflite_fp32", "tflite_int8", "onnx")


@pytest.fixture(scope="module")
def scenes():
    scenes = []
    for n, seed, split in ((320, 0, "train"), (48, 11, "test")):
        s = digit_scenes(n, size=SIZE, seed=seed, split=split, scale=(20, 32), digits_per_scene=(1, 2))
        scenes.append({"images": s["images"], "masks": (s["masks"] > 0).astype(np.uint8),
                       "class_names": ["background", "digit"]})
    return scenes


@pytest.fixture(scope="module")
def segmenter(scenes):
    train, _ = scenes
    keras.utils.set_random_seed(0)
    data = cnnzoo.data.from_arrays(train["images"], masks=train["masks"], class_names=train["class_names"],
                                   batch_size=16, validation_split=0.0, seed=0)
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=2, channels=32)
    result = cnnzoo.train.fit(model, data, epochs=6, learning_rate=5e-3, optimizer="adam", schedule="constant",
                              weight_decay=None, verbose=0, seed=0)
    return result.model, data


@pytest.fixture(scope="module")
def exported(segmenter, scenes, tmp_path_factory):
    model, data = segmenter
    _, test = scenes
    report = cnnzoo.export(model, tmp_path_factory.mktemp("segmenter"), formats=FORMATS, representative_data=data,
                           parity_data=(test["images"], test["masks"]), latency_repeats=2)
    return report


def test_masks_hold_digits_so_agreement_means_something(segmenter, scenes):
    model, _ = segmenter
    _, test = scenes
    predicted = model.predict(test["images"].astype("float32"), verbose=0).argmax(-1)
    digit_pixels = float(np.mean(predicted > 0))
    assert 0.03 < digit_pixels < 0.4, digit_pixels          # true share of digit pixels is ~0.1


def test_every_format_passes_the_mask_parity_gates(exported):
    parity = exported.parity
    assert set(parity) == set(FORMATS) and exported.passed
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        assert parity[fmt]["max_abs_diff"] <= 1e-4, (fmt, parity[fmt])
        assert parity[fmt]["per_pixel"] and parity[fmt]["top1_agreement"] > 0.999
    int8 = parity["tflite_int8"]
    assert int8["top1_agreement"] >= 0.97 and int8["miou_drop_points"] <= 1.0, int8
    assert int8["reference_miou"] > 0.5                    # scored on true masks of held-out scenes
    card = exported.card
    assert card["task"] == "segmentation" and "masks" in card["outputs"]
    assert card["class_names"] == ["background", "digit"]
    assert "mIoU" in exported.summary() and "pixel agreement" in exported.summary()


def test_saved_model_takes_any_size_and_returns_masks_at_that_size(exported, segmenter, scenes):
    model, _ = segmenter
    _, test = scenes
    loaded = tf.saved_model.load(str(exported.directory))
    serve = loaded.signatures["serving_default"]
    # At the export size: exactly the Keras model's probabilities and their argmax.
    out = serve(images=tf.constant(test["images"][:4]))
    expected = model(test["images"][:4].astype("float32"), training=False).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out["masks"].numpy(), expected.argmax(-1))
    assert out["masks"].dtype == tf.int32
    # Another size (odd, not square): resized to 48x48 inside, probabilities resized back to 61x37.
    odd = tf.image.resize(test["images"][:3], (61, 37)).numpy().round().astype(np.uint8)
    out = serve(images=tf.constant(odd))
    assert out["masks"].shape == (3, 61, 37) and out["probabilities"].shape == (3, 61, 37, 2)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    small = resize(tf.constant(odd), (SIZE, SIZE)).numpy()
    back = tf.image.resize(model(small.astype("float32"), training=False), (61, 37)).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), back, atol=1e-5)
    # Encoded bytes: masks at the export size.
    png = tf.io.encode_png(odd[0]).numpy()
    from_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant([png]))
    assert from_bytes["masks"].shape == (1, SIZE, SIZE)


def test_runners_agree_on_masks_at_the_images_own_size(exported, segmenter, scenes):
    model, _ = segmenter
    _, test = scenes
    odd = tf.image.resize(test["images"][:6], (57, 70)).numpy().round().astype(np.uint8)
    reference = KerasRunner(model, input_size=(SIZE, SIZE)).predict_masks(odd)
    assert reference.shape == (6, 57, 70)
    for fmt, path in exported.paths.items():
        runner = load_runner(path)
        assert runner.task == "segmentation", fmt
        masks = runner.predict_masks(odd)
        assert masks.shape == (6, 57, 70), fmt
        agreement = float(np.mean(masks == reference))
        assert agreement >= (0.97 if fmt == "tflite_int8" else 0.999), (fmt, agreement)


def test_parity_gates_fail_for_a_different_segmenter(exported, scenes):
    """An untrained segmenter standing in for a broken artifact: the per-pixel agreement and mIoU gates fire."""
    _, test = scenes
    keras.utils.set_random_seed(1)
    other = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=2, channels=32)
    holdout = Samples(test["images"], test["masks"].astype(np.int64))
    reference = load_runner(exported.paths["saved_model"]).predict(holdout.images)
    result = parity_lib.compare("tflite_int8", KerasRunner(other, input_size=(SIZE, SIZE)), reference, holdout)
    assert not result.passed
    assert any("per-pixel mask agreement" in f for f in result.failures), result.failures
    assert any("mIoU drop" in f for f in result.failures), result.failures
    with pytest.raises(parity_lib.ParityError, match="tflite_int8"):
        parity_lib.raise_on_failure({"tflite_int8": result})


def test_cli_predict_writes_mask_pngs_at_each_images_size(exported, scenes, tmp_path):
    from PIL import Image

    _, test = scenes
    paths = []
    for i, shape in enumerate([(SIZE, SIZE), (61, 37)]):
        image = tf.image.resize(test["images"][i], shape).numpy().round().astype(np.uint8)
        paths.append(tmp_path / f"scene{i}.png")
        Image.fromarray(image).save(paths[-1])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-m", "cnnzoo.cli.main", "predict", *map(str, paths), "--model",
                          str(exported.directory.parent), "--output-dir", str(tmp_path / "masks"), "--json"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    rows = __import__("json").loads(out.stdout)
    runner = load_runner(exported.directory)
    for path, row in zip(paths, rows):
        mask = read_mask(row["mask"])
        image = np.asarray(Image.open(path).convert("RGB"))
        assert mask.shape == image.shape[:2]
        np.testing.assert_array_equal(mask, runner.predict_masks(image[None])[0])
        assert Image.open(row["mask"]).mode == "P" and set(row["classes"]) <= set(runner.class_names)


def test_refusals_name_the_argument(segmenter, tmp_path):
    model, data = segmenter
    features = cnnzoo.create_model("mobilenet_v2_035", features_only=True, input_shape=(SIZE, SIZE, 3))
    with pytest.raises(ValueError, match="neither a classifier nor a segmenter"):
        cnnzoo.export(features, tmp_path / "features", formats="saved_model")
    with pytest.raises(ValueError, match="fit='stretch'.*Received: fit='crop'"):
        cnnzoo.export(model, tmp_path / "crop", formats="saved_model", representative_data=data, fit="crop")
    classifier = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="predict_masks"):
        KerasRunner(classifier).predict_masks(np.zeros((1, 32, 32, 3), np.uint8))


def test_sub_pixel_head_exports_with_float_parity(scenes, tmp_path):
    """upsampling="transposed" (a stride-4 Conv2DTranspose, then a top-left crop) through every float format, at
    the export size and, for the SavedModel, at an odd one (the crop's edge rows repeat there)."""
    train, test = scenes
    keras.utils.set_random_seed(2)
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=2, channels=32, upsampling="transposed",
                                    input_shape=(SIZE, SIZE, 3))
    data = cnnzoo.data.from_arrays(train["images"][:64], masks=train["masks"][:64],
                                   class_names=train["class_names"], batch_size=16, validation_split=0.0)
    report = cnnzoo.export(model, tmp_path / "subpixel", formats=("saved_model", "tflite_fp32", "onnx"),
                           representative_data=data, parity_data=(test["images"], test["masks"]),
                           latency_repeats=1)
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        assert report.parity[fmt]["max_abs_diff"] <= 1e-4, (fmt, report.parity[fmt])
    serve = tf.saved_model.load(str(report.directory)).signatures["serving_default"]
    odd = tf.image.resize(test["images"][:2], (61, 37)).numpy().round().astype(np.uint8)
    out = serve(images=tf.constant(odd))
    small = resize(tf.constant(odd), (SIZE, SIZE)).numpy()
    back = tf.image.resize(model(small.astype("float32"), training=False), (61, 37)).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), back, atol=1e-5)
