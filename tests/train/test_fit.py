"""`cnnzoo.train.fit`: logs, schedules in the loop, early stopping with best-weights restore, label smoothing,
argument checks."""
import csv
import math
import os
import re

import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.train import fit, make_loss

from traintools import digits_arrays, make_data, split, tiny_cnn


@pytest.fixture(scope="module")
def small_data():
    x, y = digits_arrays(32)
    train, val = split(x[:600], y[:600])
    return make_data(*train, validation=val, batch_size=50)


def test_fit_trains_logs_csv_tensorboard_and_follows_the_schedule(small_data, tmp_path, capsys):
    model = tiny_cnn()
    steps = int(small_data.train.cardinality())
    result = fit(model, small_data, epochs=3, optimizer="sgd", learning_rate=0.05, schedule="cosine",
                 label_smoothing=0.1, log_dir=str(tmp_path), verbose=2)
    history = result.history
    assert history["epoch"] == [0, 1, 2]
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > 0.5
    # The rate at the end of epoch e is the cosine formula at step (e + 1) * steps.
    total = 3 * steps
    expected = [0.05 * 0.5 * (1 + math.cos(math.pi * min((e + 1) * steps, total) / total)) for e in range(3)]
    np.testing.assert_allclose(history["learning_rate"], expected, atol=1e-7)
    with open(tmp_path / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    events = [f for _, _, files in os.walk(tmp_path / "tensorboard") for f in files if "tfevents" in f]
    assert events
    assert "Epoch 3/3" in capsys.readouterr().out  # Keras progress output


class _ScriptedMetric(keras.callbacks.Callback):
    """Writes a scripted "val_score" into the epoch logs and snapshots the weights after each epoch."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.snapshots = scores, []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = self.scores[epoch]
        self.snapshots.append([w.copy() for w in self.model.get_weights()])


def test_early_stopping_stops_and_restores_the_best_epoch(small_data):
    model = tiny_cnn()
    scripted = _ScriptedMetric([0.1, 0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    result = fit(model, small_data, epochs=8, learning_rate=0.01, early_stopping=2, monitor="val_score",
                 callbacks=[scripted], verbose=0, bn_momentum=None, recalibrate_bn=False)
    assert result.history["epoch"] == [0, 1, 2, 3]  # best at epoch 1, two epochs without improvement
    for restored, best in zip(result.model.get_weights(), scripted.snapshots[1]):
        np.testing.assert_array_equal(restored, best)
    assert not all(np.array_equal(a, b) for a, b in zip(result.model.get_weights(), scripted.snapshots[-1]))


def test_label_smoothing_loss_is_cross_entropy_with_smoothed_targets():
    model = tiny_cnn(num_classes=4)
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.4, 0.1]], "float32")
    labels = np.array([0, 3])
    eps, k = 0.2, 4
    targets = np.full((2, k), eps / k)
    targets[np.arange(2), labels] += 1 - eps
    expected = -(targets * np.log(probs)).sum(axis=1).mean()
    loss = make_loss(model, label_smoothing=eps)
    assert float(loss(keras.ops.one_hot(labels, k), probs)) == pytest.approx(expected, rel=1e-5)
    logits_model = tiny_cnn(num_classes=4)
    logits_model.layers[-1].activation = keras.activations.linear
    assert make_loss(logits_model).get_config()["from_logits"] is True
    assert make_loss(model).get_config()["from_logits"] is False


def test_fit_rejects_nonsense(small_data):
    model = tiny_cnn()
    with pytest.raises(ValueError, match="Received: epochs=-1"):
        fit(model, small_data, epochs=-1)
    with pytest.raises(ValueError, match="Received: schedule='linear_decay'"):
        fit(model, small_data, epochs=1, schedule="linear_decay")
    with pytest.raises(ValueError, match="Received: optimizer='rmsprop'"):
        fit(model, small_data, epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="num_classes=10"):
        fit(tiny_cnn(num_classes=3), small_data, epochs=1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        fit(model, small_data, epochs=1, warmup_epochs=2)
    with pytest.raises(ValueError, match="lr_multipliers"):
        fit(model, small_data, epochs=1, lr_multipliers={"no_such_layer": 0.1})
    with pytest.raises(TypeError, match="data"):
        fit(model, np.zeros((4, 32, 32, 3)), epochs=1)
    assert cnnzoo.train.fit is fit


@pytest.mark.parametrize("option, value", [
    ("learning_rate", math.inf), ("learning_rate", math.nan), ("learning_rate", 0.0), ("learning_rate", -1e-3),
    ("weight_decay", math.inf), ("weight_decay", math.nan), ("momentum", math.inf), ("label_smoothing", math.inf),
    ("clipnorm", math.inf), ("global_clipnorm", math.inf), ("clipvalue", math.nan), ("warmup_epochs", math.inf),
    ("min_delta", math.inf)])
def test_fit_rejects_non_finite_or_non_positive_numbers(small_data, option, value):
    # learning_rate=inf used to train to NaN; warmup_epochs=inf died in int(round(inf)); the others were ignored.
    with pytest.raises(ValueError, match=re.escape(f"Received: {option}={float(value)!r}")):
        fit(tiny_cnn(), small_data, epochs=1, verbose=0, **{option: value})


@pytest.mark.parametrize("schedule, options, name", [
    ("cosine_restarts", {"t_mult": math.inf}, "t_mult"), ("cosine", {"min_lr": math.inf}, "min_lr"),
    ("step", {"step_epochs": 0}, "step_epochs"), ("plateau", {"min_lr": math.inf}, "min_lr"),
    ("cosine", {"warp": 1}, "schedule_options")])
def test_fit_checks_schedule_options_before_training(small_data, schedule, options, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        fit(tiny_cnn(), small_data, epochs=1, verbose=0, schedule=schedule, schedule_options=options)
