"""`cnnzoo.evaluate`: metrics against hand computation and Keras, ECE, temperature scaling, plots."""
import io
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.evaluate import EvalReport, expected_calibration_error, fit_temperature


def test_evaluate_is_callable_and_report_stays_a_module():
    assert callable(cnnzoo.evaluate)
    assert isinstance(cnnzoo.evaluate.report, types.ModuleType)
    assert cnnzoo.evaluate.report.EvalReport is EvalReport


def test_metrics_match_hand_computation():
    probs = np.array([[0.7, 0.2, 0.1],   # true 0, pred 0
                      [0.5, 0.4, 0.1],   # true 1, pred 0 (top-2 hit)
                      [0.1, 0.8, 0.1],   # true 1, pred 1
                      [0.2, 0.3, 0.5],   # true 2, pred 2
                      [0.3, 0.6, 0.1],   # true 2, pred 1 (top-2 miss)
                      [0.1, 0.2, 0.7]])  # true 0, pred 2 (top-2 miss)
    labels = np.array([0, 1, 1, 2, 2, 0])
    report = EvalReport.from_outputs(labels, probs, class_names=["a", "b", "c"], top_k=(1, 2))
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.top_k == {1: pytest.approx(3 / 6), 2: pytest.approx(4 / 6)}
    np.testing.assert_array_equal(report.confusion_matrix, [[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    np.testing.assert_allclose(report.confusion_matrix_normalized, [[.5, 0, .5], [.5, .5, 0], [0, .5, .5]])
    table = report.per_class
    assert list(table.index) == ["a", "b", "c"]
    # precision = TP / predicted, recall = TP / true
    np.testing.assert_allclose(table["precision"], [1 / 2, 1 / 2, 1 / 2])
    np.testing.assert_allclose(table["recall"], [1 / 2, 1 / 2, 1 / 2])
    np.testing.assert_allclose(table["f1"], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(table["support"], [2, 2, 2])
    assert report.to_dict()["confusion_matrix"][0] == [1, 0, 1]


def test_ece_worked_example_with_15_bins():
    # Confidences 0.95 (bin 15: (14/15, 1]) for one right and one wrong; 0.62 (bin 10: (0.6, 0.667]) for two
    # right and one wrong. ECE = 2/5 * |0.5 - 0.95| + 3/5 * |2/3 - 0.62|.
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.62, 0.38], [0.62, 0.38], [0.62, 0.38]])
    labels = np.array([0, 1, 0, 0, 1])
    expected = 2 / 5 * 0.45 + 3 / 5 * abs(2 / 3 - 0.62)
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(expected, abs=1e-9)
    report = EvalReport.from_outputs(labels, probs)
    assert report.ece == pytest.approx(expected, abs=1e-9)
    bins = report.reliability
    assert len(bins) == 15 and bins["count"].sum() == 5
    assert bins.loc[14, "count"] == 2 and bins.loc[9, "count"] == 3


def _calibrated_problem(n, rng, weights):
    features = rng.normal(size=(n, 8)).astype("float32")
    logits = features @ weights
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    return features, labels


def test_temperature_scaling_recovers_the_overconfidence_factor():
    """Labels drawn from softmax(f W): a model outputting softmax(3 f W) is overconfident by T = 3."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8, 5)).astype("float32") * 0.7
    inputs = keras.Input((8,))
    dense = keras.layers.Dense(5, activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([3.0 * weights, np.zeros(5, "float32")])
    x_val, y_val = _calibrated_problem(3000, rng, weights)
    x_test, y_test = _calibrated_problem(3000, rng, weights)
    report = cnnzoo.evaluate(model, (x_test, y_test), top_k=(2,))
    result = report.calibrate((x_val, y_val))
    assert result.temperature == pytest.approx(3.0, rel=0.1)
    assert result.ece_after < result.ece_before / 2
    assert result.nll_after < result.nll_before
    assert result.report.accuracy == report.accuracy  # temperature never changes the predicted class
    # From precomputed validation logits as well.
    logits_val = np.log(model.predict(x_val, verbose=0))
    assert fit_temperature(logits_val, y_val) == pytest.approx(result.temperature, rel=1e-3)
    assert report.calibrate(logits=logits_val, labels=y_val).temperature == pytest.approx(result.temperature,
                                                                                         rel=1e-3)


def _digit_data(n=200):
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = (digits.images[:n] / 16.0 * 255.0)[..., None].astype("float32")
    images = np.repeat(tf.image.resize(grey, (16, 16)).numpy().round().astype("uint8"), 3, axis=-1)
    return cnnzoo.data.from_arrays(images, digits.target[:n], batch_size=32, validation_split=0.5, seed=0)


def test_evaluate_matches_keras_on_imagedata_and_plots():
    data = _digit_data()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="predictions")(x))
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc"),
                           keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5")])
    model.fit(data.train, epochs=3, verbose=0)
    keras_metrics = model.evaluate(data.val, verbose=0, return_dict=True)
    report = cnnzoo.evaluate(model, data)
    assert report.accuracy == pytest.approx(keras_metrics["acc"], abs=1e-6)
    assert report.top_k[5] == pytest.approx(keras_metrics["top5"], abs=1e-6)
    assert report.class_names == data.class_names
    assert report.confusion_matrix.sum() == len(report.labels) == 100

    fig = report.plot_confusion_matrix()
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), report.confusion_matrix_normalized)
    fig.savefig(io.BytesIO(), format="png")
    fig = report.plot_reliability()
    heights = [bar.get_height() for bar in fig.axes[0].containers[0]]
    np.testing.assert_allclose(heights, report.reliability["accuracy"].fillna(0.0))
    fig.savefig(io.BytesIO(), format="png")

    with pytest.raises(ValueError, match="num_classes=10"):
        cnnzoo.evaluate(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)), data)
    with pytest.raises(ValueError, match="Received: split='test'"):
        cnnzoo.evaluate(model, data, split="test")
    with pytest.raises(TypeError, match="data"):
        cnnzoo.evaluate(model, "digits/")
