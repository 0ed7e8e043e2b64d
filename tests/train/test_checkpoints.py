"""Checkpoints: a run killed mid-epoch and restarted with the same arguments resumes at the last completed epoch."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from cnnzoo.train import Checkpointer

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _env(tmp_path, **extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]), TF_CPP_MIN_LOG_LEVEL="2",
               CKPT=str(tmp_path / "ckpt"), EVENTS=str(tmp_path / "events.txt"), OUT=str(tmp_path / "out.json"))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_killed_run_resumes_without_repeating_or_losing_epochs(tmp_path):
    marker = tmp_path / "mid_epoch"
    worker = [sys.executable, str(HERE / "resume_worker.py")]
    first = subprocess.Popen(worker, env=_env(tmp_path, KILL_AT=2, MARKER=marker),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not marker.exists():
        assert first.poll() is None, first.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the worker never reached epoch 2"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # no clean-up of any kind
    first.wait()
    assert first.returncode == -signal.SIGKILL
    events = (tmp_path / "events.txt").read_text().split("\n")
    assert events[:5] == ["begin 0", "end 0", "begin 1", "end 1", "begin 2"]
    assert not (tmp_path / "out.json").exists()

    second = subprocess.run(worker, env=_env(tmp_path), capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    events = (tmp_path / "events.txt").read_text().split()
    assert events == "begin 0 end 0 begin 1 end 1 begin 2 begin 2 end 2 begin 3 end 3".split()
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["epoch"] == [0, 1, 2, 3] and out["stage"] == [0, 1, 1, 1]   # 4 epochs as asked, in order
    assert out["iterations"] == 3 * 4   # stage 2's optimizer state came back: 3 epochs x 4 steps
    assert np.isfinite(out["loss"]).all()


def test_checkpoint_round_trip_and_refuses_other_arguments(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    optimizer.iterations.assign(7)
    saver = Checkpointer(tmp_path, {"stages": [1, 2]})
    assert saver.load_state() is None
    saver.save({"stage": 0, "stage_epochs_done": 1, "stage_complete": False, "history": {"epoch": [0]}},
               model, optimizer)
    saver.save({"stage": 0, "stage_epochs_done": 2, "stage_complete": False, "history": {"epoch": [0, 1]}},
               model, optimizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00001", "state.json"]  # old one removed

    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh_opt = keras.optimizers.Adam(1e-3)
    state = Checkpointer(tmp_path, {"stages": [1, 2]}).load_state()
    assert state["stage_epochs_done"] == 2 and state["history"]["epoch"] == [0, 1]
    Checkpointer(tmp_path, {"stages": [1, 2]}).restore(state, fresh, fresh_opt)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh_opt.iterations) == 7
    with pytest.raises(ValueError, match="different arguments"):
        Checkpointer(tmp_path, {"stages": [1, 3]}).load_state()


# -- a different run is refused, unreadable files are named (issue 14, A.3) -------------------------------------

from cnnzoo.train import CheckpointError, CheckpointMismatchError, Stage, finetune, fit  # noqa: E402
from cnnzoo.data import augmentation, from_directory  # noqa: E402

from traintools import TINY_GROUPS, digits_arrays, make_data, tiny_cnn  # noqa: E402

RUN = dict(epochs=1, verbose=0, seed=0)


@pytest.fixture(scope="module")
def small_data():
    x, y = digits_arrays(32)
    return make_data(x[:128], y[:128], batch_size=64)


@pytest.fixture(scope="module")
def finished_run(small_data, tmp_path_factory):
    """A one-epoch `fit` with checkpoints; the tests resume it with other arguments."""
    directory = tmp_path_factory.mktemp("run") / "ckpt"
    fit(tiny_cnn(), small_data, checkpoint_dir=directory, **RUN)
    return directory


def _refused(directory, call, *names):
    """`call()` must raise CheckpointMismatchError naming each of `names` and the directory, writing nothing."""
    before = (directory / "state.json").read_bytes()
    with pytest.raises(CheckpointMismatchError) as info:
        call()
    message = str(info.value)
    assert [d[0] for d in info.value.differences] == list(names), message
    for name in names:
        assert f"{name}: " in message
    assert message.endswith(f"Received: checkpoint_dir={str(directory)!r}")
    assert (directory / "state.json").read_bytes() == before
    return message


def test_resume_refuses_another_optimizer_augmentation_schedule_model_or_data(finished_run, small_data):
    ckpt = dict(RUN, checkpoint_dir=finished_run)
    # The same arguments resume (nothing left to train), so the refusals below are about the differences alone.
    assert fit(tiny_cnn(), small_data, **ckpt).history["epoch"] == [0]
    message = _refused(finished_run, lambda: fit(tiny_cnn(), small_data, optimizer="adam", **ckpt), "optimizer")
    assert "optimizer: 'adamw' in the checkpoint, 'adam' now" in message
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, augment="heavy", **ckpt), "augment")
    mixing = augmentation("light", mixup=0.2, seed=0)
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, augment=mixing, **ckpt), "augment")
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, schedule="one_cycle", **ckpt), "schedule")
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, warmup_epochs=0.5, **ckpt), "warmup_epochs")
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, weight_decay=0.01, **ckpt), "weight_decay")
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, **dict(ckpt, epochs=2)), "epochs")
    _refused(finished_run, lambda: fit(tiny_cnn(), small_data, **dict(ckpt, seed=1)), "seed")
    _refused(finished_run, lambda: fit(tiny_cnn(width=8), small_data, **ckpt), "model.architecture", "model.params")
    x, y = digits_arrays(32)
    _refused(finished_run, lambda: fit(tiny_cnn(), make_data(x[:128], y[:128], batch_size=32), **ckpt),
             "data.batch_size", "data.steps_per_epoch")
    other_images = make_data(x[128:256], y[:128], batch_size=64)   # same labels, other images
    _refused(finished_run, lambda: fit(tiny_cnn(), other_images, **ckpt), "data.examples")


def test_resume_refuses_another_stage_plan(small_data, tmp_path):
    stages = [Stage("head", epochs=1, learning_rate=1e-2), Stage(2, epochs=1, learning_rate=3e-3)]
    run = dict(groups=TINY_GROUPS, augment=None, verbose=0, checkpoint_dir=tmp_path, from_scratch=False)
    finetune(tiny_cnn(), small_data, stages=stages, **run)
    other = [stages[0], Stage(3, epochs=1, learning_rate=3e-3)]
    message = _refused(tmp_path, lambda: finetune(tiny_cnn(), small_data, stages=other, **run),
                       "stages[1].groups", "stages[1].lr_multipliers.stage1")
    assert "['head', 'stage2'] in the checkpoint, ['head', 'stage2', 'stage1'] now" in message
    slower = [stages[0], Stage(2, epochs=1, learning_rate=1e-3)]
    _refused(tmp_path, lambda: finetune(tiny_cnn(), small_data, stages=slower, **run), "stages[1].learning_rate")


def _class_folders(root, contents):
    """One folder per class; every folder holds the same file names (0.png ...), so only the contents differ."""
    from PIL import Image

    for name, images in contents.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i}.png")


def test_resume_refuses_rotated_class_folders_and_accepts_a_copy(tmp_path):
    rng = np.random.default_rng(0)
    size = {"a": 2, "b": 8, "c": 32}   # grain of the noise: PNG sizes differ by class
    images = {name: [np.kron(rng.integers(0, 255, (32 // g, 32 // g, 3), dtype=np.uint8),
                             np.ones((g, g, 1), np.uint8)) for _ in range(6)] for name, g in size.items()}
    _class_folders(tmp_path / "data", images)
    _class_folders(tmp_path / "copy", images)
    _class_folders(tmp_path / "rotated", {"a": images["b"], "b": images["c"], "c": images["a"]})
    load = dict(image_size=32, batch_size=8, validation_split=0.0, cache=False)
    data = from_directory(tmp_path / "data", **load)
    ckpt = dict(RUN, checkpoint_dir=tmp_path / "ckpt")
    fit(tiny_cnn(num_classes=3), data, **ckpt)
    copied = fit(tiny_cnn(num_classes=3), from_directory(tmp_path / "copy", **load), **ckpt)  # another folder
    assert copied.history["epoch"] == [0]
    rotated = from_directory(tmp_path / "rotated", **load)
    assert rotated.class_names == data.class_names and rotated.class_counts == data.class_counts
    _refused(tmp_path / "ckpt", lambda: fit(tiny_cnn(num_classes=3), rotated, **ckpt), "data.examples")


def test_corrupt_or_truncated_checkpoint_files_raise_checkpoint_error(finished_run, small_data, tmp_path):
    def broken(name, damage):
        directory = tmp_path / name
        shutil.copytree(finished_run, directory)
        target = next(directory.glob(damage[0]))
        damage[1](target)
        return directory, target

    garbage = (lambda p: p.write_text("{not json"))
    truncate = (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]))
    for name, damage in [("json", ("state.json", garbage)), ("h5", ("ckpt-*/model.weights.h5", truncate)),
                         ("listless", ("state.json", lambda p: p.write_text("[1, 2]")))]:
        directory, target = broken(name, damage)
        with pytest.raises(CheckpointError, match=re.escape(str(target))) as info:
            fit(tiny_cnn(), small_data, **dict(RUN, checkpoint_dir=directory))
        assert str(info.value).endswith(f"Received: checkpoint_dir={str(directory)!r}")
        assert isinstance(info.value, ValueError) and not isinstance(info.value, CheckpointMismatchError)
    # The optimizer state is read when a stage resumes mid-way: check the file through the Checkpointer.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    saver = Checkpointer(tmp_path / "opt", {"run": 1})
    saver.save({"stage": 0, "stage_epochs_done": 1, "stage_complete": False, "history": {}}, model, optimizer)
    npz = next((tmp_path / "opt").glob("ckpt-*/optimizer.npz"))
    truncate(npz)
    state = saver.load_state()
    with pytest.raises(CheckpointError, match=re.escape(str(npz))):
        saver.restore(state, model, keras.optimizers.Adam(1e-3))
