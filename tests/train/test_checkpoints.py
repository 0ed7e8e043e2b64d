"""Checkpoints: a run killed mid-epoch and restarted with the same arguments resumes at the last completed epoch."""
import json
import os
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
