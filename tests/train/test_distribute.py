"""Distribution: strategies by name, and a real two-worker MultiWorkerMirroredStrategy run on 127.0.0.1."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.train.distribute import get_strategy, is_chief

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights_and_the_loss_falls(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(config), OUT=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]), CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, str(HERE / "multiworker_worker.py")], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=400)
            assert proc.returncode == 0, err.decode()[-4000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    init = [np.load(tmp_path / f"init{i}.npz") for i in range(2)]
    final = [np.load(tmp_path / f"final{i}.npz") for i in range(2)]
    assert not all(np.array_equal(init[0][k], init[1][k]) for k in init[0].files)  # started apart
    for key in final[0].files:
        np.testing.assert_array_equal(final[0][key], final[1][key], err_msg=key)
    assert not all(np.array_equal(final[0][k], init[0][k]) for k in final[0].files)  # and trained
    for i in range(2):
        loss = json.loads((tmp_path / f"history{i}.json").read_text())["loss"]
        assert loss[-1] < loss[0], loss


def test_strategy_names_and_chief(monkeypatch):
    assert get_strategy(None) is None
    mirrored = get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and get_strategy("mirrored") is mirrored
    assert get_strategy(mirrored) is mirrored
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        get_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        get_strategy("multiworker")
    assert is_chief(None) and is_chief(mirrored)


def test_fit_with_mirrored_strategy_rebuilds_the_model_in_its_scope():
    from cnnzoo.train import fit
    from traintools import digits_arrays, make_data, tiny_cnn

    x, y = digits_arrays(32)
    data = make_data(x[:128], y[:128], batch_size=32)
    model = tiny_cnn(width=8)
    strategy = get_strategy("mirrored")
    result = fit(model, data, epochs=2, learning_rate=3e-3, strategy="mirrored", verbose=0)
    assert result.model is not model   # variables must be created under the strategy
    assert strategy.extended.variable_created_in_scope(result.model.weights[0].value)
    assert result.history["loss"][-1] < result.history["loss"][0]
