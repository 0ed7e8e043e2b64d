"""Issue #5 item 9, fast settings: pretrain on digits 0-4, fine-tune on 10 labelled images per class of 5-9; the
recipe beats the same architecture trained from scratch (same data, same epochs) by >= 10 points on held-out
5-9 images. Full settings and figures: benchmarks/bench_finetune.py."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.train import Stage, finetune, fit

from traintools import digits_arrays, make_data

MODEL = "mobilenet_v2_035"   # keras.applications' MobileNetV2 layout: BN momentum 0.999, hard to train from little data


def few_shot_split(y, per_class=10, seed=0):
    rng = np.random.default_rng(seed)
    high = np.where(y >= 5)[0]
    few = np.concatenate([rng.choice(high[y[high] == c], per_class, replace=False) for c in range(5, 10)])
    return few, np.setdiff1d(high, few)


@pytest.mark.slow
def test_finetuned_recipe_beats_training_from_scratch_by_10_points():
    # Two seeds, averaged: CPU runs are not bit-reproducible (oneDNN's threaded sums), and one pretraining run's
    # features vary enough that single-seed margins of +5 to +28 points were seen; the mean over two is steadier.
    x, y = digits_arrays(32)
    low = np.where(y < 5)[0]
    few, held_out = few_shot_split(y)
    names = [str(c) for c in range(5, 10)]
    pretrain = make_data(x[low], y[low], batch_size=32)
    shots = make_data(x[few], y[few] - 5, batch_size=10, class_names=names)
    test = make_data(x[held_out], y[held_out] - 5, batch_size=128, class_names=names, shuffle=False)
    tuned_accs, scratch_accs = [], []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        base = cnnzoo.create_model(MODEL, num_classes=5, input_shape=(32, 32, 3))
        fit(base, pretrain, epochs=5, learning_rate=1e-2, verbose=0)

        stages = [Stage("head", epochs=3, learning_rate=1e-2), Stage(3, epochs=2, learning_rate=3e-3)]
        tuned = finetune(base, shots, stages=stages, head="new", augment=None, verbose=0, seed=seed)
        assert tuned.stages[1]["groups"] == ["head", "stage7", "stage6"]   # groups from the registry
        assert tuned.model.get_layer("predictions").dtype_policy.name == "float32"

        keras.utils.set_random_seed(seed)
        scratch = cnnzoo.create_model(MODEL, num_classes=5, input_shape=(32, 32, 3))
        scratch = fit(scratch, shots, epochs=5, learning_rate=1e-3, verbose=0).model

        tuned_accs.append(cnnzoo.evaluate(tuned.model, test, split="train").accuracy)
        scratch_accs.append(cnnzoo.evaluate(scratch, test, split="train").accuracy)
    print(f"fine-tuned {tuned_accs}, from scratch {scratch_accs}")
    assert np.mean(tuned_accs) >= np.mean(scratch_accs) + 0.10, (tuned_accs, scratch_accs)
