"""Functional checks: golden cases (arrays and a folder), per-class accuracy, consistency, perturbations."""
import numpy as np
import pytest
from PIL import Image

import cnnzoo
from cnnzoo.validate import functional
from validatetools import CLASS_NAMES, shuffled_copy


@pytest.fixture(scope="module")
def golden(runner, digits):
    return cnnzoo.validate.pick_golden(runner, (digits["x_test"], digits["y_test"]), per_class=3)


def test_shuffled_weights_fail_the_golden_check(model, runner, golden, digits):
    """Acceptance: the trained model passes its golden cases; the same weights shuffled fail, every miss listed."""
    x_gold, y_gold = golden
    assert len(y_gold) == 30 and sorted(set(y_gold.tolist())) == list(range(10))
    data = (digits["x_test"][:64], digits["y_test"][:64])
    good = cnnzoo.validate(runner, data, golden=golden, checks=("functional",), perturbations=[])
    assert good.passed and good.functional["golden"]["misses"] == []
    assert good.checks[0]["name"] == "golden.accuracy" and good.checks[0]["value"] == 1.0

    broken = cnnzoo.export.load_runner(shuffled_copy(model), class_names=CLASS_NAMES)
    bad = cnnzoo.validate(broken, data, golden=golden, checks=("functional",), perturbations=[])
    result = bad.functional["golden"]
    assert not bad.passed and [c["name"] for c in bad.failures] == ["golden.accuracy"]
    predicted = broken.predict(x_gold).argmax(1)
    wrong = np.flatnonzero(predicted != y_gold)
    assert len(wrong) > 15 and result["correct"] == 30 - len(wrong)
    assert [m["index"] for m in result["misses"]] == wrong.tolist()           # every miss, in order
    for miss in result["misses"]:
        assert miss["expected"] == CLASS_NAMES[y_gold[miss["index"]]]
        assert miss["predicted"] == CLASS_NAMES[predicted[miss["index"]]] != miss["expected"]
    assert f"{len(wrong)} of 30 golden cases missed" in bad.to_markdown()


def test_golden_folder_reports_files_and_skips_bad_ones(runner, golden, tmp_path):
    x_gold, y_gold = golden
    for i in range(6):
        folder = tmp_path / CLASS_NAMES[y_gold[i]]
        folder.mkdir(exist_ok=True)
        Image.fromarray(x_gold[i]).save(folder / f"case{i}.png")
    # One mislabelled case (filed under the next class) and one unreadable file.
    wrong_class = CLASS_NAMES[(y_gold[6] + 1) % 10]
    (tmp_path / wrong_class).mkdir(exist_ok=True)
    Image.fromarray(x_gold[6]).save(tmp_path / wrong_class / "mislabelled.png")
    (tmp_path / wrong_class / "broken.png").write_bytes(b"not a png at all")

    report = cnnzoo.validate(runner, golden, golden=str(tmp_path), checks=("functional",), perturbations=[])
    result = report.functional["golden"]
    assert result["n"] == 7 and result["correct"] == 6
    assert [m["path"] for m in result["misses"]] == [str(tmp_path / wrong_class / "mislabelled.png")]
    assert result["misses"][0]["expected"] == wrong_class
    assert [s["path"] for s in result["skipped"]] == [str(tmp_path / wrong_class / "broken.png")]
    assert not report.passed


def test_accuracy_per_class_matches_the_predictions(runner, digits):
    x, y = digits["x_test"][:100], digits["y_test"][:100]
    report = cnnzoo.validate(runner, (x, y), checks=("functional", "calibration"), perturbations=[],
                             thresholds={"min_accuracy": 0.5, "min_class_accuracy": 0.99})
    predicted = runner.predict(x).argmax(1)
    accuracy = report.functional["accuracy"]
    assert accuracy["accuracy"] == pytest.approx(np.mean(predicted == y))
    for label, name in enumerate(CLASS_NAMES):
        mask = y == label
        assert accuracy["per_class"][name]["support"] == mask.sum()
        assert accuracy["per_class"][name]["accuracy"] == pytest.approx(np.mean(predicted[mask] == label))
    names = {c["name"]: c["passed"] for c in report.checks}
    assert names["accuracy"] is True
    assert names["accuracy.min_class"] is (accuracy["min_class_accuracy"] >= 0.99)
    # Calibration is cnnzoo.evaluate's ECE on the runner's probabilities.
    from cnnzoo.evaluate.report import EvalReport
    assert report.calibration["ece"] == pytest.approx(
        EvalReport.from_outputs(y, runner.predict(x), class_names=CLASS_NAMES).ece)
    assert report.plot_reliability() is not None


def test_consistency_is_reported_per_perturbation(runner, digits):
    x = digits["x_test"][:48]
    black = functional.Perturbation("black", lambda images: np.zeros_like(images))
    same = functional.Perturbation("same", lambda images: images.copy())
    report = cnnzoo.validate(runner, x, checks=("functional",), perturbations=["default", "hflip", black, same],
                             thresholds={"min_consistency": 0.95})
    consistency = report.functional["consistency"]
    assert list(consistency) == ["brightness+10%", "brightness-10%", "rotate+5", "rotate-5", "crop90%", "hflip",
                                 "black", "same"]
    assert consistency["same"]["agreement"] == 1.0 and consistency["same"]["changed"] == 0
    base = runner.predict(x).argmax(1)
    black_class = runner.predict(np.zeros_like(x[:1])).argmax(1)[0]
    assert consistency["black"]["agreement"] == pytest.approx(np.mean(base == black_class))
    assert report.functional["accuracy"] is None     # no labels: only what needs none
    failed = {c["name"] for c in report.failures}
    assert "consistency.black" in failed and "consistency.same" not in failed


def test_perturbations_do_what_their_names_say(rng):
    images = rng.integers(0, 256, size=(2, 9, 9, 3), dtype=np.uint8)
    images[0, 0, 0] = [100, 0, 250]
    brighter = cnnzoo.validate.brightness(0.1)(images)
    assert brighter[0, 0, 0].tolist() == [126, 26, 255]          # +25.5 levels, rounded, clipped
    assert cnnzoo.validate.brightness(-0.1)(images)[0, 0, 0].tolist() == [74, 0, 224]
    np.testing.assert_array_equal(cnnzoo.validate.hflip()(images), images[:, :, ::-1])
    np.testing.assert_array_equal(cnnzoo.validate.rotate(0)(images), images)
    np.testing.assert_array_equal(cnnzoo.validate.rotate(180)(images), images[:, ::-1, ::-1])
    cropped = cnnzoo.validate.crop(1 / 3)(images)
    assert cropped.shape == images.shape
    np.testing.assert_array_equal(cropped[:, 4, 4], images[:, 4, 4])  # the centre stays the centre


def test_bad_arguments_name_themselves(runner, digits):
    with pytest.raises(ValueError, match="Received: perturbations='sepia'"):
        cnnzoo.validate(runner, digits["x_test"][:4], checks=("functional",), perturbations=["sepia"])
    with pytest.raises(ValueError, match="Received: checks='speed'"):
        cnnzoo.validate(runner, digits["x_test"][:4], checks=("speed",))
    unsure = digits["x_test"][:4] / 255.0
    unsure[0, 0, 0, 0] = 2.0                  # [0, 1] floats with a value above 1: which range? (the pixel rule)
    with pytest.raises(ValueError, match=r"`data` mixes ranges.*Received: data.min\(\)=0.0, data.max\(\)=2.0"):
        cnnzoo.validate(runner, unsure, checks=("functional",))
    with pytest.raises(ValueError, match="labels must lie in"):
        cnnzoo.validate(runner, (digits["x_test"][:4], np.array([0, 1, 2, 12])), checks=("functional",))
    with pytest.raises(ValueError, match="Received: per_class=0"):
        cnnzoo.validate.pick_golden(runner, (digits["x_test"][:4], digits["y_test"][:4]), per_class=0)


def test_max_images_draws_a_sample_across_classes(runner, digits):
    """Data sorted by class (as an unshuffled val split is): the subset still covers every class, in order."""
    import tensorflow as tf

    from cnnzoo.validate import inputs

    order = np.argsort(digits["y_test"], kind="stable")
    x, y = digits["x_test"][order], digits["y_test"][order]
    stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    for data in (stream, (x, y)):
        sample = inputs.images_from(data, name="data", max_images=60, class_names=CLASS_NAMES)
        assert len(sample) == 60 and len(set(sample.labels.tolist())) == 10
        assert np.all(np.diff(sample.labels) >= 0)       # stream order kept
        # Each kept image is the one its label says (images and labels stay paired).
        matches = [np.flatnonzero((x == image).all(axis=(1, 2, 3))) for image in sample.images[:10]]
        assert all(y[m[0]] == label for m, label in zip(matches, sample.labels[:10]))


def test_validation_fits_images_to_the_size_as_the_runner_does(tmp_path):
    """A runner exported with fit="crop" sees centre crops; validation must measure it on the same pixels, not on
    stretched copies (before, every folder was stretched to the input size whatever the runner's fit)."""
    import keras

    inputs = keras.Input((16, 16, 3))
    corner = keras.layers.Lambda(lambda x: x[:, 0, 0, :1])(inputs)            # the top-left red value
    logits = keras.layers.Concatenate()([corner - 127.5, 127.5 - corner])
    model = keras.Model(inputs, keras.layers.Softmax()(logits / 10.0))        # "bright" | "dark" corner
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, :6] = 255                       # bright left edge: stretched, the corner is bright; cropped, dark
    (tmp_path / "dark").mkdir()
    (tmp_path / "bright").mkdir()
    for i in range(3):
        Image.fromarray(image).save(tmp_path / "dark" / f"{i}.png")
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(tmp_path / "bright" / "0.png")
    for fit, expected in (("crop", 1.0), ("stretch", 0.25)):
        runner = cnnzoo.export.load_runner(model, class_names=["bright", "dark"], fit=fit)
        direct = [int(runner.predict(np.asarray(Image.open(tmp_path / "dark" / "0.png").convert("RGB")))[0].argmax())]
        report = cnnzoo.validate(runner, str(tmp_path), checks=("functional",), consistency_images=1)
        assert report.functional["accuracy"]["accuracy"] == pytest.approx(expected), fit
        assert direct == [1 if fit == "crop" else 0]
