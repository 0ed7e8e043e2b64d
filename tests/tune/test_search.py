"""Searches that train: the right learning rate wins, resume runs no trial twice, the hypermodel with a bare
KerasTuner tuner (pretrained backbone: only the top groups train), Hyperband's epoch budget."""
import json
import os

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest

import cnnzoo
from cnnzoo.models import finetune_groups
from cnnzoo.tune import CnnZooHyperModel
from tunetools import FIXED_RECIPE, color_data

# The `eager` fixture's switch does not reach tf.data functions, and TensorFlow says so on every map.
pytestmark = pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`")

HYPERPARAMETERS = ["model", "dropout", "optimizer", "learning_rate", "weight_decay", "label_smoothing",
                   "batch_size", "augment", "class_weight", "loss", "ema"]


def test_search_picks_the_learning_rate_that_trains(tmp_path):
    data = color_data(240, batch_size=8)
    result = cnnzoo.tune.search(
        data, models=("resnet18",), tuner="random", max_trials=2, epochs=1, directory=tmp_path, project_name="lr",
        seed=0, space=dict(FIXED_RECIPE, batch_size=8, learning_rate=[1e-7, 3e-3]), verbose=0)

    assert result.best_hyperparameters.get("learning_rate") == 3e-3
    board = result.leaderboard
    assert list(board.columns) == ["trial_id", "status", "tuner_id", *HYPERPARAMETERS, "objective", "epochs",
                                   "seconds"]
    assert list(board["learning_rate"]) == [3e-3, 1e-7]  # best first
    assert set(board["status"]) == {"completed"} and set(board["tuner_id"]) == {"tuner0"}
    # One epoch on 240 images: 3e-3 is well above chance (1/3), 1e-7 stays at it (0.9+ alone, ~0.67 seen
    # under a loaded full suite).
    assert board["objective"].iloc[0] >= 0.6 and board["objective"].iloc[0] >= board["objective"].iloc[1] + 0.25
    assert list(board["epochs"]) == [1, 1] and (board["seconds"] > 0).all()

    # The same table on disk, as CSV and Markdown.
    saved = pd.read_csv(result.paths["csv"], dtype={"trial_id": str})
    pd.testing.assert_frame_equal(saved, board, check_dtype=False)
    markdown = open(result.paths["markdown"]).read().splitlines()
    assert "val_accuracy" in markdown[0] and markdown[2].startswith("| trial_id | status |")
    assert len([line for line in markdown if line.startswith("| ")]) == 3

    # best_model is the best trial's best-epoch checkpoint: it scores exactly what the leaderboard says.
    model = result.best_model
    _, accuracy = model.evaluate(data.val, verbose=0)
    assert accuracy == pytest.approx(board["objective"].iloc[0], abs=1e-6)


class Interrupt(BaseException):
    """Stands for Ctrl-C or a killed job: not an Exception, so KerasTuner does not record a failed trial."""


class CountFits(keras.callbacks.Callback):
    """Counts trainings across trials (KerasTuner deep-copies callbacks, so the count is on the class)."""

    starts = 0
    interrupt_at = None

    def on_train_begin(self, logs=None):
        type(self).starts += 1

    def on_train_batch_begin(self, batch, logs=None):
        if type(self).starts == type(self).interrupt_at:
            type(self).interrupt_at = None
            raise Interrupt()


def test_resume_after_interruption_runs_no_trial_twice(tmp_path, eager):
    data = color_data(48, batch_size=12)
    args = dict(models=("resnet18",), tuner="random", max_trials=3, epochs=1, directory=tmp_path, seed=0,
                space=dict(FIXED_RECIPE, learning_rate=[1e-3, 2e-3, 3e-3]), callbacks=[CountFits()], verbose=0)
    CountFits.starts, CountFits.interrupt_at = 0, 2
    with pytest.raises(Interrupt):
        cnnzoo.tune.search(data, **args)  # trial 0 completes, trial 1 is interrupted
    assert CountFits.starts == 2

    result = cnnzoo.tune.search(data, **args)  # resume: trial 1 again, then trial 2; trial 0 is kept
    assert CountFits.starts == 4
    board = result.leaderboard
    assert sorted(board["trial_id"]) == ["0", "1", "2"] and set(board["status"]) == {"completed"}
    assert sorted(board["learning_rate"]) == [1e-3, 2e-3, 3e-3]
    runs = [json.loads(line) for line in open(os.path.join(tmp_path, "search", "cnnzoo_runs.jsonl"))]
    assert [(r["trial_id"], r["status"]) for r in runs] == [
        ("0", "completed"), ("1", "interrupted"), ("1", "completed"), ("2", "completed")]

    # Resuming a finished search trains nothing; resuming with other settings is refused.
    again = cnnzoo.tune.search(data, **args)
    assert CountFits.starts == 4
    pd.testing.assert_frame_equal(again.leaderboard, board)
    with pytest.raises(ValueError, match="Received: epochs=2"):
        cnnzoo.tune.search(data, **dict(args, epochs=2))
    assert CountFits.starts == 4


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # KerasTuner's restore
def test_hypermodel_with_a_bare_keras_tuner_unfreezes_the_top_groups(tmp_path, eager):
    data = color_data(48, batch_size=12)
    pretrained = cnnzoo.create_model("resnet18", num_classes=3, input_shape=(32, 32, 3))
    # BatchNorm statistics that saw data, as pretrained weights have (untouched ones make finetune train from
    # scratch, every group included).
    cnnzoo.train.recalibrate_bn(pretrained, data.train)
    path = str(tmp_path / "pretrained.weights.h5")
    pretrained.save_weights(path)
    hypermodel = CnnZooHyperModel.from_data(data, models=("resnet18",), weights=path,
                                            space=dict(FIXED_RECIPE, learning_rate=1e-2, unfreeze=2))
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=1, directory=tmp_path, seed=0)
    tuner.search(data, epochs=1, verbose=0)

    trained = tuner.get_best_models(1)[0]
    before = {layer.name: layer.get_weights() for layer in pretrained.layers}
    changed = {group: any(not np.array_equal(w, w0) for layer in layers
                          for w, w0 in zip(layer.get_weights(), before[layer.name]))
               for group, layers in finetune_groups(trained).items()}
    assert changed == {"stem": False, "stage1": False, "stage2": False, "stage3": False, "stage4": True,
                       "head": True}


def test_fit_trains_the_epochs_hyperband_asks_for_at_the_tuned_batch_size(eager):
    data = color_data(48, batch_size=12)  # 36 training images
    hypermodel = CnnZooHyperModel.from_data(data, models=("resnet18",),
                                            space=dict(FIXED_RECIPE, learning_rate=1e-3, batch_size=9))
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)

    class Batches(keras.callbacks.Callback):
        seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(batch)

    history = hypermodel.fit(hp, model, data, epochs=3, initial_epoch=2, callbacks=[Batches()], verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 1  # Hyperband continues a trial from initial_epoch
    assert Batches.seen == [0, 1, 2, 3]  # 36 images in batches of 9


def test_early_stopping_ends_a_trial_that_stops_improving(tmp_path, eager):
    data = color_data(48, batch_size=12)
    path = str(tmp_path / "backbone.weights.h5")
    backbone = cnnzoo.create_model("resnet18", num_classes=3, input_shape=(32, 32, 3))
    cnnzoo.train.recalibrate_bn(backbone, data.train)   # pretrained-like BN: finetune keeps its recipe
    backbone.save_weights(path)
    # Only the classifier trains (no BatchNorm in it) at a vanishing rate: val_accuracy stays put.
    hypermodel = CnnZooHyperModel.from_data(data, models=("resnet18",), weights=path, early_stopping=0,
                                            space=dict(FIXED_RECIPE, learning_rate=1e-12, unfreeze=1))
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    history = hypermodel.fit(hp, hypermodel.build(hp), data, epochs=5, verbose=0)
    accuracy = history.history["val_accuracy"]
    assert len(accuracy) == 2 and accuracy[0] == accuracy[1]  # patience 0: the first flat epoch ends it
