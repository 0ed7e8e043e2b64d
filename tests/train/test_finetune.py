"""`cnnzoo.finetune`: stages as data, groups by name, BN frozen in inference mode, discriminative rates, checks."""
import keras
import numpy as np
import pytest

from cnnzoo.train import Stage, default_stages, finetune

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
    result = finetune(model, data, groups=TINY_GROUPS, augment=None, verbose=0, callbacks=[spy], stages=[
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
    finetune(model, data, groups=TINY_GROUPS, augment=None, verbose=0, callbacks=[spy],
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
                      head="new", verbose=0, steps_per_epoch=1)
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
