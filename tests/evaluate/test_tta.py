"""Test-time augmentation: evaluate averages the views it names, and an exported graph averages the mirror the same
way in every format (issue 17 item 6)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.evaluate.tta import CROP_FRACTION, check_tta


def small_classifier(classes=4, size=32, seed=0):
    keras.utils.set_random_seed(seed)
    return cnnzoo.create_model("mobilenet_v2_035", num_classes=classes, input_shape=(size, size, 3))


def images_and_labels(n=24, size=32, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
    x[:, :, : size // 2] //= 3                     # left half darker: a mirror is another image
    return x, rng.integers(0, classes, n)


def manual_views(model, x, crops: bool, flip: bool):
    x = tf.constant(x, tf.float32)
    views = [x]
    if flip:
        views.append(tf.reverse(x, [2]))
    if crops:
        shift = 1 - CROP_FRACTION
        boxes = [[0, 0, CROP_FRACTION, CROP_FRACTION], [0, shift, CROP_FRACTION, 1], [shift, 0, 1, CROP_FRACTION],
                 [shift, shift, 1, 1], [shift / 2, shift / 2, shift / 2 + CROP_FRACTION, shift / 2 + CROP_FRACTION]]
        for box in boxes:
            crop = tf.image.crop_and_resize(x, [box] * len(x), tf.range(len(x)), x.shape[1:3])
            views += [crop] + ([tf.reverse(crop, [2])] if flip else [])
    return np.mean([model(v, training=False).numpy() for v in views], axis=0)


def test_classifier_tta_averages_the_views_and_reports_the_change():
    model = small_classifier()
    x, y = images_and_labels()
    plain = cnnzoo.evaluate(model, (x, y))
    flip = cnnzoo.evaluate(model, (x, y), tta="flip")
    np.testing.assert_allclose(flip.probabilities, manual_views(model, x, crops=False, flip=True), atol=1e-5)
    assert flip.tta == ("flip",) and flip.accuracy_without_tta == pytest.approx(plain.accuracy)
    assert not np.allclose(flip.probabilities, plain.probabilities, atol=1e-3)     # the mirror did count
    both = cnnzoo.evaluate(model, (x, y), tta=("crops", "flip"))
    assert both.tta == ("flip", "crops")
    np.testing.assert_allclose(both.probabilities, manual_views(model, x, crops=True, flip=True), atol=1e-5)
    assert both.to_dict()["tta"] == ["flip", "crops"]


def test_segmenter_and_multilabel_tta():
    keras.utils.set_random_seed(0)
    seg = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=3, channels=16)
    x, _ = images_and_labels(8)
    masks = np.random.default_rng(1).integers(0, 3, (8, 32, 32)).astype(np.uint8)
    report = cnnzoo.evaluate(seg, (x, masks), tta="flip")
    probs = seg(x.astype("float32"), training=False).numpy()
    mirrored = seg(x[:, :, ::-1].astype("float32"), training=False).numpy()[:, :, ::-1]
    expected = ((probs + mirrored) / 2).argmax(-1)
    np.testing.assert_array_equal(np.stack(report.examples["predictions"]), expected)
    with pytest.raises(ValueError, match="flip"):
        cnnzoo.evaluate(seg, (x, masks), tta="crops")

    keras.utils.set_random_seed(0)
    multi = cnnzoo.create_model("mobilenet_v2_035", num_classes=4, input_shape=(32, 32, 3),
                                classifier_activation="sigmoid")
    hot = np.random.default_rng(2).integers(0, 2, (8, 4))
    report = cnnzoo.evaluate(multi, (x, hot), tta="flip")
    np.testing.assert_allclose(report.probabilities, manual_views(multi, x, crops=False, flip=True), atol=1e-5)


def test_bad_tta_names_the_argument():
    assert check_tta(None) == check_tta([]) == ()
    for bad in ("rotate", ["flip", "zoom"], 3, [1]):
        with pytest.raises(ValueError, match="tta"):
            check_tta(bad)
    model = small_classifier()
    with pytest.raises(ValueError, match="tta"):
        cnnzoo.export(model, "unused", formats="saved_model", tta="crops")


def test_exported_flip_tta_matches_in_every_format(tmp_path):
    model = small_classifier()
    x, y = images_and_labels(64)
    report = cnnzoo.export(model, tmp_path / "tta", formats=("saved_model", "tflite_fp32", "tflite_int8", "onnx"),
                           representative_data=(x, y), tta="flip", parity="warn", latency_repeats=1)
    assert report.card["tta"] == ["flip"]
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        assert report.parity[fmt]["max_abs_diff"] <= 1e-4 and report.parity[fmt]["passed"], fmt
    serve = tf.saved_model.load(str(report.directory)).signatures["serving_default"]
    out = serve(images=tf.constant(x[:6]))["probabilities"].numpy()
    np.testing.assert_allclose(out, manual_views(model, x[:6], crops=False, flip=True), atol=1e-5)
    from cnnzoo.export.runners import load_runner

    int8 = load_runner(report.paths["tflite_int8"]).predict(x[:6])
    assert int8.shape == (6, 4) and np.allclose(int8.sum(-1), 1.0, atol=0.05)


def test_evaluating_a_model_again_reuses_its_traces_reads_its_new_weights_and_frees_it(caplog):
    import gc
    import logging
    import weakref

    model = small_classifier()
    x, y = images_and_labels(n=8)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        first = [cnnzoo.evaluate(model, (x, y), tta=views).probabilities for views in (None, "flip") * 4]
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    np.testing.assert_allclose(first[-1], first[1], atol=1e-6)
    head = model.get_layer("predictions")
    head.bias.assign(head.bias.numpy() + np.array([5.0, 0, 0, 0], "float32"))   # a trained step, in effect
    after = cnnzoo.evaluate(model, (x, y)).probabilities
    assert after[:, 0].mean() > first[0][:, 0].mean() + 0.3                        # the new weights, not a stale trace
    from cnnzoo.evaluate.tta import _TRACED

    ref = weakref.ref(model)
    del model, head
    gc.collect()
    assert ref() is None and not any(m is None for m in _TRACED.keys())           # the cache let the model go
