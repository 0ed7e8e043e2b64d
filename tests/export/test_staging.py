"""Export staging directories: what a killed export left is removed by the next export into the same out_dir, a
running export's is kept (issue 14, A/B.12); an out_dir that is a file is an error naming it (B.10)."""
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.export.exporter import _host
from cnnzoo.export.runners import load_runner

SIZE = 32


def _tiny_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="preprocessing")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def _staging(out_dir, name, *, age_s=0.0):
    """A staging directory as an export killed mid-write leaves it: a partial SavedModel."""
    path = out_dir / name
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"half written")
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
    return path


def test_next_export_removes_stale_staging_dirs_and_keeps_a_running_ones(tmp_path):
    out_dir = tmp_path / "served"
    out_dir.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead_pid = int(finished.stdout)                                # a process that has exited (and been reaped)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        killed = _staging(out_dir, f".cnnzoo-export-1-deadbeef.{dead_pid}@{_host()}")
        ancient = _staging(out_dir, ".cnnzoo-export-1-0badc0de", age_s=3 * 24 * 3600)   # no writer recorded
        other_host = _staging(out_dir, ".cnnzoo-export-2-0ddba11a.123@some-other-host")      # recent: may run
        concurrent = _staging(out_dir, f".cnnzoo-export-1-cafef00d.{running.pid}@{_host()}")

        model = _tiny_model()
        images = np.random.default_rng(0).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
        report = cnnzoo.export(model, out_dir, formats=("saved_model",), representative_data=images,
                               latency_repeats=1)
        assert not killed.exists() and not ancient.exists()
        assert other_host.exists() and concurrent.exists()
        assert report.version == 1 and report.directory == out_dir / "1"
        assert sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")) == ["1"]
        card = json.loads((out_dir / "1" / "model_card.json").read_text())
        assert card["version"] == 1
        np.testing.assert_allclose(load_runner(out_dir / "1").predict(images),
                                   load_runner(model).predict(images), atol=1e-5)
    finally:
        running.kill()
        running.wait()


def test_out_dir_that_is_a_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for out_dir in (tmp_path / "a_file", tmp_path / "a_file" / "below"):
        with pytest.raises(ValueError, match="Received: out_dir="):
            cnnzoo.export(_tiny_model(), out_dir, formats=("saved_model",))
