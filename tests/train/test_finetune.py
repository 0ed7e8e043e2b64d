"""`cnnzoo.finetune`: stages as data, groups by name, BN frozen in inference mode, discriminative rates, checks."""
import logging
import math

import keras
import numpy as np
import pytest

from cnnzoo.train import Stage, default_stages, finetune, fit
from cnnzoo.train.finetune import untrained_batchnorm

from traintools import TINY_GROUPS, digits_arrays, make_data, tiny_cnn


@pytest.fixture(scope="module")
def data():
    x, y = digits_arrays(32)
    return make_data(x[:256], y[:256], batch_size=64)


class _StageSpy(keras.callbacks.Callback):
    """Records, per stage, the trainable layers, the optimizer's multipliers and the weights after the stage."""

    def __init__(self):
        super().__init__()
        self.stages = []

    def on_train_begin(self, logs=None):
        opt = self.model.optimizer
        self.stages.append({"trainable": sorted(v.path for v in self.model.trainable_variables),
                            "multipliers": dict(getattr(opt, "lr_multipliers", {}))})

    def on_train_end(self, logs=None):
        self.stages[-1]["weights"] = {w.path: w.numpy().copy() for w in self.model.weights}


def _changed(before, after, path):
    return not np.array_equal(before[path], after[path])


def test_two_stage_recipe_freezes_by_group_and_keeps_bn_in_inference_mode(data):
    model = tiny_cnn()
    start = {w.path: w.numpy().copy() for w in model.weights}
    spy = _StageSpy()
    result = finetune(model, data, groups=TINY_GROUPS, augment=None, verbose=0, callbacks=[spy], from_scratch=False,
                      stages=[
        Stage("head", epochs=1, learning_rate=1e-2),
        Stage(2, epochs=1, learning_rate=1e-2, lr_multipliers=(1.0, 0.3))])
    head_only, top_two = spy.stages
    assert head_only["trainable"] == ["predictions/bias", "predictions/kernel"]
    assert top_two["trainable"] == ["predictions/bias", "predictions/kernel", "stage2_conv/kernel"]  # BN frozen
    assert top_two["multipliers"] == {"stage2_conv/kernel": 0.3}
    assert result.stages[1]["lr_multipliers"] == {"head": 1.0, "stage2": 0.3}
    after_a, after_b = head_only["weights"], top_two["weights"]
    # Stage (a): nothing below the head moves, BN moving statistics included (inference mode).
    for path in start:
        assert _changed(start, after_a, path) == path.startswith("predictions/"), path
    # Stage (b): stage2's conv moves; its BN (weights and statistics) and everything below stay put.
    for path in start:
        assert _changed(after_a, after_b, path) == (path.startswith("predictions/") or path == "stage2_conv/kernel"), path
    assert result.history["stage"] == [0, 1] and result.history["epoch"] == [0, 1]
    assert all(layer.trainable for layer in result.model.layers)  # flags restored afterwards


def test_train_bn_stage_trains_and_recalibrates_bn(data):
    model = tiny_cnn()
    spy = _StageSpy()
    finetune(model, data, groups=TINY_GROUPS, augment=None, verbose=0, callbacks=[spy], from_scratch=False,
             stages=[Stage(["stage2", "head"], epochs=1, learning_rate=1e-2, train_bn=True)])
    assert {"stage2_bn/gamma", "stage2_bn/beta"} <= set(spy.stages[0]["trainable"])
    fitted = spy.stages[0]["weights"]
    # Recalibrated after the stage: moving statistics differ from those the epoch ended with.
    assert not np.allclose(model.get_layer("stage2_bn").moving_mean.numpy(), fitted["stage2_bn/moving_mean"])
    assert np.array_equal(model.get_layer("stage1_bn").moving_mean.numpy(), np.zeros(32))  # frozen group


def test_progressive_unfreezing_is_one_list(data):
    stages = [Stage("head", epochs=1), Stage(2, epochs=1), Stage(3, epochs=1), Stage("all", epochs=1,
                                                                                     lr_multipliers=None)]
    result = finetune(tiny_cnn(num_classes=3), data, stages=stages, groups=TINY_GROUPS, augment="light", seed=0,
                      head="new", verbose=0, steps_per_epoch=1, from_scratch=False)
    assert result.model.output_shape == (None, 10)
    assert result.model.get_layer("predictions").dtype_policy.name == "float32"
    assert [s["groups"] for s in result.stages] == [["head"], ["head", "stage2"], ["head", "stage2", "stage1"],
                                                    ["head", "stage2", "stage1", "stem"]]
    assert result.stages[2]["lr_multipliers"] == {"head": 1.0, "stage2": 0.3, "stage1": 0.1}
    assert set(result.stages[3]["lr_multipliers"].values()) == {1.0}
    assert len(default_stages()) == 2 and default_stages()[0].unfreeze == "head"
    assert Stage("head", lr=3e-4).learning_rate == 3e-4   # the spelling


def test_finetune_rejects_nonsense(data):
    with pytest.raises(ValueError, match="unknown group"):
        finetune(tiny_cnn(), data, groups=TINY_GROUPS, stages=[Stage(["stage9", "head"], epochs=1)])
    with pytest.raises(ValueError, match="Received: unfreeze=7"):
        finetune(tiny_cnn(), data, groups=TINY_GROUPS, stages=[Stage(7, epochs=1)])
    with pytest.raises(ValueError, match="Received: epochs=-2"):
        Stage("head", epochs=-2)
    with pytest.raises(ValueError, match="Received: unfreeze='backbone'"):
        finetune(tiny_cnn(), data, groups=TINY_GROUPS, stages=[Stage("backbone", epochs=1)])
    with pytest.raises(ValueError, match="head='new'"):
        finetune(tiny_cnn(num_classes=3), data, groups=TINY_GROUPS, stages=[Stage("head", epochs=1)])
    with pytest.raises(ValueError, match="Received: optimizer='lamb'"):
        Stage("head", epochs=1, optimizer="lamb")
    with pytest.raises(ValueError, match="Unknown training options"):
        Stage("head", epochs=1, learning_rat=1e-3)
    with pytest.raises(ValueError, match="groups"):
        finetune(tiny_cnn(), data, stages=[Stage("head", epochs=1)])  # not a zoo model, no groups given


def test_finetune_rejects_non_finite_rates(data):
    for bad in (math.inf, math.nan, 0.0, -1e-3):
        with pytest.raises(ValueError, match="Received: learning_rate="):
            Stage("head", epochs=1, learning_rate=bad)
        with pytest.raises(ValueError, match="Received: learning_rate="):
            finetune(tiny_cnn(), data, groups=TINY_GROUPS, learning_rate=bad)   # the stages' default rate
    with pytest.raises(ValueError, match="Received: learning_rate=inf"):
        default_stages(learning_rate=math.inf)
    with pytest.raises(ValueError, match=r"Received: lr_multipliers\[1\]=inf"):
        Stage(2, epochs=1, lr_multipliers=(1.0, math.inf))
    with pytest.raises(ValueError, match="Received: clipnorm=inf"):
        Stage("head", epochs=1, clipnorm=math.inf)
    with pytest.raises(ValueError, match="Received: t_mult=inf"):   # schedule options: checked when the Stage is made
        Stage("head", epochs=1, schedule="cosine_restarts", schedule_options={"t_mult": math.inf})


# -- a model whose BatchNorm never saw data trains as from scratch (issue 14, A.6) ------------------------------

def test_untrained_batchnorm_flags_a_fresh_model_and_not_one_whose_bn_saw_data():
    x, _ = digits_arrays(32)
    fresh = tiny_cnn()
    assert untrained_batchnorm(fresh)
    seen = tiny_cnn()
    seen(x[:16].astype("float32"), training=True)   # one training-mode batch moves the moving statistics
    assert not untrained_batchnorm(seen)
    assert not untrained_batchnorm(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))   # no BN at all
    import cnnzoo.models

    assert untrained_batchnorm(cnnzoo.models.create_model("mobilenet_v2_035", num_classes=10, input_shape=(32, 32, 3)))


@pytest.mark.slow
def test_finetune_of_a_fresh_zoo_model_trains_as_fit_does():
    """The issue's case: a fresh mobilenet_v2_035 fine-tuned with Stage("all", learning_rate=3e-3) on digits reached
    26 % held-out where `fit` reached 62-69 %. Now the two are the same training: from the same initial weights
    and batches, three steps of each end at the same weights and BN statistics, so the accuracy `fit` reaches is
    the accuracy `finetune` reaches. (Single 6-epoch runs of either ranged 62-81 % here, the old recipe 38-65 %:
    an accuracy bar would need several seeds of each to be stable; the old recipe moves no weight like `fit`.)"""
    import cnnzoo.models

    x, y = digits_arrays(32)
    data = make_data(x[:192], y[:192], batch_size=32, shuffle=False)
    make = dict(num_classes=10, input_shape=(32, 32, 3), dropout=0.0)   # no random masks
    keras.utils.set_random_seed(0)
    first = cnnzoo.models.create_model("mobilenet_v2_035", **make)
    second = cnnzoo.models.create_model("mobilenet_v2_035", **make)
    second.set_weights(first.get_weights())
    start = {w.path: w.numpy().copy() for w in first.weights}
    run = dict(steps_per_epoch=3, verbose=0, seed=0)
    tuned = finetune(first, data, stages=[Stage("all", epochs=1, learning_rate=3e-3)], **run)
    fitted = fit(second, data, epochs=1, learning_rate=3e-3, **run)
    assert tuned.from_scratch and tuned.stages[0]["train_bn"]
    moved = 0
    for a, b in zip(tuned.model.weights, fitted.model.weights):
        assert a.path == b.path
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5, err_msg=a.path)
        moved += not np.allclose(a.numpy(), start[a.path])
    assert moved > 0.9 * len(start)   # every group trained, BN weights and statistics included


def test_finetune_of_an_untrained_model_trains_everything_at_one_rate_and_says_so(data, caplog):
    spy = _StageSpy()
    stages = [Stage("head", epochs=1, learning_rate=1e-2), Stage(2, epochs=1, learning_rate=3e-3)]
    with caplog.at_level(logging.WARNING, logger="cnnzoo.train"):
        result = finetune(tiny_cnn(), data, groups=TINY_GROUPS, verbose=0, callbacks=[spy], stages=stages,
                          steps_per_epoch=1, seed=0)
    assert result.from_scratch
    assert "initial statistics" in caplog.text and "from_scratch=False" in caplog.text
    everything = sorted(v.path for v in tiny_cnn().trainable_variables)
    for stage, summary in zip(spy.stages, result.stages):
        assert stage["trainable"] == everything and stage["multipliers"] == {}   # BN too, one rate
        assert summary["groups"] == ["head", "stage2", "stage1", "stem"] and summary["train_bn"]
        assert set(summary["lr_multipliers"].values()) == {1.0}
    assert not untrained_batchnorm(result.model)   # BN trained (and recalibrated)
    # A model whose BN saw data keeps the recipe, and from_scratch=False keeps it for a fresh one too.
    caplog.clear()
    again = finetune(result.model, data, groups=TINY_GROUPS, verbose=0, stages=stages[:1], steps_per_epoch=1)
    kept = finetune(tiny_cnn(), data, groups=TINY_GROUPS, verbose=0, stages=stages[:1], steps_per_epoch=1,
                    from_scratch=False)
    for run in (again, kept):
        assert not run.from_scratch and run.stages[0]["groups"] == ["head"] and not run.stages[0]["train_bn"]
    assert "initial statistics" not in caplog.text
    with pytest.raises(ValueError, match="Received: from_scratch='yes'"):
        finetune(tiny_cnn(), data, groups=TINY_GROUPS, stages=stages, from_scratch="yes")
