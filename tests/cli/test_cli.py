"""The command line driven as a user drives it: subprocesses, exit codes, printed results, files written."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.data.bundled import digits_rgb

ROOT = Path(__file__).resolve().parents[2]
DEMO_EXPORT = ROOT / "saved_models" / "digits"


def cnnzoo(*args, cwd=None, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "cnnzoo.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """150 real digits written as PNG files, one folder per class ("0" .. "9"), 15 each."""
    root = tmp_path_factory.mktemp("digits")
    x, y, _ = digits_rgb(32)
    for digit in range(10):
        (root / str(digit)).mkdir()
        for i in np.flatnonzero(y == digit)[:15]:
            Image.fromarray(x[i]).save(root / str(digit) / f"{i}.png")
    return root


def test_demo_runs_end_to_end_in_quick_settings(tmp_path):
    # One epoch cannot reach the demo's int8 agreement: --parity-warn records instead of refusing.
    out = cnnzoo("demo", "--epochs", "1", "--image-size", "32", "--parity-warn", "--out", tmp_path / "exports",
                 "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    version_dir = Path(summary["export_dir"])
    assert version_dir == tmp_path / "exports" / "digits" / "1"
    for name in ("saved_model.pb", "model_int8.tflite", "model.onnx", "model_card.json", "confusion_matrix.png"):
        assert (version_dir / name).is_file(), name
    assert set(summary["parity"]) == {"saved_model", "tflite_int8", "onnx"}
    assert 0.0 <= summary["accuracy"] <= 1.0


def test_committed_demo_model_meets_its_promise():
    """saved_models/digits: the demo's export, >= 95 % held-out accuracy, int8 within 1 point, a few MB."""
    from cnnzoo.export.runners import load_runner
    import cnnzoo

    versions = sorted(p for p in DEMO_EXPORT.iterdir() if p.name.isdigit())
    assert versions, "saved_models/digits/<version>/ is missing"
    latest = versions[-1]
    card = json.loads((latest / "model_card.json").read_text())
    total = sum(f.stat().st_size for f in latest.rglob("*") if f.is_file())
    assert total < 8e6
    # Re-measure on the demo's held-out split (seed 0) rather than trusting the card.
    size = card["input"]["size"][0]
    x, y, names = digits_rgb(size)
    data = cnnzoo.data.from_arrays(x, y, class_names=names, image_size=(size, size), validation_split=0.2, seed=0)
    images, labels = map(np.concatenate, zip(*[(i.numpy(), l.numpy()) for i, l in data.val]))
    fp32 = np.argmax(load_runner(latest).predict(images), -1)
    int8 = np.argmax(load_runner(latest / "model_int8.tflite").predict(images), -1)
    onnx = np.argmax(load_runner(latest / "model.onnx").predict(images), -1)
    accuracy, int8_accuracy = np.mean(fp32 == labels), np.mean(int8 == labels)
    assert accuracy >= 0.95
    assert accuracy - int8_accuracy <= 0.01
    assert np.mean(onnx == fp32) >= 0.99
    assert card["class_names"] == names


def test_predict_on_every_format_of_the_demo_model(tmp_path):
    x, y, _ = digits_rgb(64)  # any size: every format resizes to the model's size inside
    paths = []
    for i in (0, 1, 2):
        path = tmp_path / f"digit_{y[i]}.png"
        Image.fromarray(x[i]).save(path)
        paths.append(path)
    latest = sorted(p for p in DEMO_EXPORT.iterdir() if p.name.isdigit())[-1]
    for model in (DEMO_EXPORT, latest / "model_int8.tflite", latest / "model.onnx"):
        out = cnnzoo("predict", *paths, "--model", model, "--json", "--top-k", "2")
        assert out.returncode == 0, out.stderr[-2000:]
        rows = json.loads(out.stdout)
        assert [r["top"][0]["class"] for r in rows] == [str(v) for v in y[:3]]
        assert len(rows[0]["top"]) == 2


def test_train_evaluate_export_a_folder(digit_folder, tmp_path):
    model_path = tmp_path / "m.keras"
    out = cnnzoo("train", digit_folder, "--model", "resnet18", "--image-size", "32", "--epochs", "1",
                 "--augment", "none", "--out", model_path, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["classes"] == [str(d) for d in range(10)] and model_path.is_file()

    out = cnnzoo("evaluate", model_path, digit_folder, "--plots", tmp_path / "plots", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert 0 <= json.loads(out.stdout)["accuracy"] <= 1
    assert (tmp_path / "plots" / "confusion_matrix.png").is_file()

    out = cnnzoo("export", model_path, tmp_path / "served", "--formats", "saved_model", "onnx", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "served" / "1" / "model.onnx").is_file()


def test_tune_from_the_command_line(digit_folder, tmp_path):
    out = cnnzoo("tune", digit_folder, "--image-size", "32", "--models", "resnet18", "--tuner", "random",
                 "--max-trials", "1", "--epochs", "1", "--directory", tmp_path / "search",
                 "--space", "learning_rate=3e-3", "batch_size=16", "--output", tmp_path / "best.keras", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["leaderboard"]) == 1 and result["best"]["learning_rate"] == 3e-3
    assert (tmp_path / "best.keras").is_file()
    assert (tmp_path / "search" / "search" / "leaderboard.csv").is_file()


def test_validate_gates_a_deployment(digit_folder, tmp_path):
    fast = ["--latency-runs", "5", "--batch-sizes", "1,4", "--stress-seconds", "0.2", "--stress-rate", "20"]
    out = cnnzoo("validate", DEMO_EXPORT, digit_folder, "--out", tmp_path / "report", *fast)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (tmp_path / "report" / "report.json").is_file()
    out = cnnzoo("validate", DEMO_EXPORT, digit_folder, "--threshold", "max_latency_p99_ms=0.000001", *fast)
    assert out.returncode == 1


@pytest.mark.parametrize("args,message", [
    (["train", "/no/such/folder", "--model", "resnet18"], "Received: data='/no/such/folder'"),
    (["info", "resnet05"], "Closest registered names: resnet50"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path):
    out = cnnzoo(*args, cwd=tmp_path, timeout=300)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args,message", [
    (["demo", "--data", "/no/such/folder"], "Received: --data='/no/such/folder'"),
    (["demo", "--epochs", "0"], "expected a positive integer"),
    (["predict", "x.png", "--model", "/no/model"], "model not found"),
    (["evaluate", "not_a_model.txt", "."], "must be a .keras file"),
    (["export", "m.keras"], "required"),
    (["export", "m.keras", "out", "--formats", "tflite_int9"], "invalid choice"),
    (["tune", "/no/such/folder"], "Received: data='/no/such/folder'"),
    (["validate", "/no/such/export", "."], "does not exist"),
    (["list", "--bogus"], "unrecognized arguments"),
    (["bench", "--only", "gpu_magic"], "Received: only='gpu_magic'"),
])
def test_bad_arguments_in_process(args, message, capsys, monkeypatch, tmp_path):
    """The same entry point as the console script, without a process start per case."""
    from cnnzoo.cli.main import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_unreadable_image_and_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    out = cnnzoo("train", tmp_path / "empty", "--model", "resnet18", "--image-size", "32")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (tmp_path / "bad.png").write_text("not an image")
    out = cnnzoo("predict", tmp_path / "bad.png", "--model", DEMO_EXPORT)
    assert out.returncode == 2 and "not a readable image" in out.stderr


def test_every_command_has_help(capsys):
    out = cnnzoo("--help", timeout=120)
    assert out.returncode == 0 and "usage: cnnzoo" in out.stdout
    from cnnzoo.cli.main import main

    for command in ("list", "info", "demo", "train", "finetune", "evaluate", "export", "predict", "tune",
                    "validate", "bench"):
        try:
            main([command, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        assert f"usage: cnnzoo {command}" in capsys.readouterr().out
