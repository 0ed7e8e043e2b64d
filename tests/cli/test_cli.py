"""The command line driven as a user drives it: subprocesses, exit codes, printed results, files written."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
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
                 "--augment", "none", "--out", model_path, "--json", "--class-weight", "balanced", "--loss", "focal",
                 "--ema", "0.9", "--accumulate", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["classes"] == [str(d) for d in range(10)] and model_path.is_file()

    out = cnnzoo("evaluate", model_path, digit_folder, "--plots", tmp_path / "plots", "--json", "--tta", "crops")
    assert out.returncode == 0, out.stderr[-3000:]
    scores = json.loads(out.stdout)
    assert 0 <= scores["accuracy"] <= 1 and scores["tta"] == ["crops"] and 0 <= scores["macro_f1"] <= 1
    assert 0 <= scores["accuracy_without_tta"] <= 1
    assert (tmp_path / "plots" / "confusion_matrix.png").is_file()

    out = cnnzoo("export", model_path, tmp_path / "served", "--formats", "saved_model", "onnx", "--json",
                 "--tta", "flip")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "served" / "1" / "model.onnx").is_file()
    assert json.loads((tmp_path / "served" / "1" / "model_card.json").read_text())["tta"] == ["flip"]
    # a recipe the data refuses is a user error: one line, exit 2
    out = cnnzoo("train", digit_folder, "--model", "resnet18", "--image-size", "32", "--epochs", "1",
                 "--out", tmp_path / "x.keras", "--sampling", "balanced", "--class-weight", "balanced")
    assert out.returncode == 2 and "twice" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_tune_from_the_command_line(digit_folder, tmp_path):
    out = cnnzoo("tune", digit_folder, "--image-size", "32", "--models", "resnet18", "--tuner", "random",
                 "--max-trials", "1", "--epochs", "1", "--directory", tmp_path / "search",
                 "--space", "learning_rate=3e-3", "batch_size=16", "class_weight=[balanced]", "loss=[focal]",
                 "ema=0.9", "--output", tmp_path / "best.keras", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["leaderboard"]) == 1 and result["best"]["learning_rate"] == 3e-3
    assert (result["best"]["class_weight"], result["best"]["loss"], result["best"]["ema"]) == ("balanced", "focal", 0.9)
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


# -- user errors: one line on stderr, exit 2 (issue 14, B.9) ---------------------------------------------------


@keras.saving.register_keras_serializable(package="cnnzoo_cli_tests")
class _BatchCentering(keras.layers.Layer):
    """Subtracts the batch mean: outputs depend on the batch, so every export fails its parity check."""

    def call(self, x):
        return x - keras.ops.mean(x, axis=0, keepdims=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 classes of 8 real digits (32 px), a one-class folder, a mobilenet_v2_035 .keras, corrupt model files."""
    import cnnzoo

    root = tmp_path_factory.mktemp("tiny")
    x, y, _ = digits_rgb(32)
    for digit in range(3):
        (root / "data" / str(digit)).mkdir(parents=True)
        for i in np.flatnonzero(y == digit)[:8]:
            Image.fromarray(x[i]).save(root / "data" / str(digit) / f"{i}.png")
    (root / "one_class" / "a").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(x[i]).save(root / "one_class" / "a" / f"{i}.png")
    Image.fromarray(x[0]).save(root / "image.png")
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    model.save(root / "m.keras")
    good = (root / "m.keras").read_bytes()
    (root / "truncated.keras").write_bytes(good[: len(good) // 3])
    (root / "bad.tflite").write_bytes(b"TFL3 but not a flatbuffer")
    (root / "bad.onnx").write_bytes(good[:5000])
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(4, 3, strides=2)(keras.layers.Rescaling(1 / 255.0)(inputs))
    h = keras.layers.GlobalAveragePooling2D()(_BatchCentering()(h))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h)).save(root / "batch_dependent.keras")
    (root / "a_file").write_text("not a folder")
    return root


def _main(args, capsys, monkeypatch, cwd):
    from cnnzoo.cli.main import main

    monkeypatch.chdir(cwd)
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    return code, err


def _fast(*extra):
    return ["--image-size", "32", "--batch-size", "8", "--epochs", "1", *extra]


CASES = {
    # case id: (arguments with {t} for the tiny fixture's folder, text the one error line must hold)
    "unfreeze-99": (["finetune", "{t}/data", "--model", "mobilenet_v2_035", "--weights", "none", "--unfreeze", "99",
                     "--head-epochs", "1", *_fast()], "Received: unfreeze=99"),
    "corrupt-keras-evaluate": (["evaluate", "{t}/truncated.keras", "{t}/data"], "truncated.keras"),
    "corrupt-keras-export": (["export", "{t}/truncated.keras", "{t}/out", "--formats", "saved_model"],
                             "truncated.keras"),
    "corrupt-keras-predict": (["predict", "{t}/image.png", "--model", "{t}/truncated.keras"], "truncated.keras"),
    "corrupt-tflite": (["predict", "{t}/image.png", "--model", "{t}/bad.tflite"], "bad.tflite"),
    "corrupt-onnx": (["predict", "{t}/image.png", "--model", "{t}/bad.onnx"], "bad.onnx"),
    "parity-error": (["export", "{t}/batch_dependent.keras", "{t}/parity_out", "--formats", "saved_model",
                      "--image-size", "32"], "batch composition"),
    "demo-unknown-model": (["demo", "--model", "resnet99", "--epochs", "1"], "resnet99"),
    "demo-one-class": (["demo", "--data", "{t}/one_class", "--epochs", "1", "--image-size", "32"], "class"),
    "demo-image-size-16": (["demo", "--image-size", "16", "--epochs", "1"], "16"),
    "export-out-dir-is-a-file": (["export", "{t}/m.keras", "{t}/a_file", "--formats", "saved_model"],
                                 "Received: out_dir="),
    "checkpoint-dir-is-a-file": (["train", "{t}/data", "--model", "mobilenet_v2_035", "--checkpoint-dir",
                                  "{t}/a_file", *_fast()], "Received: checkpoint_dir="),
    "weights-is-a-directory": (["train", "{t}/data", "--model", "mobilenet_v2_035", "--weights", "{t}/data",
                                *_fast()], "Received: weights="),
    "bench-without-checkout": (["bench", "--benchmarks-dir", "{t}/data", "--quick"], "source checkout"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_errors_exit_2_with_one_line(case, tiny, capsys, monkeypatch, tmp_path):
    args, message = CASES[case]
    code, err = _main([a.replace("{t}", str(tiny)) for a in args], capsys, monkeypatch, tmp_path)
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"cnnzoo {args[0]}: error: "), err[-2000:]
    assert message in lines[0]


def test_offline_imagenet_weights_is_one_line(tiny, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNZOO_WEIGHTS_URL", "http://127.0.0.1:9")  # nothing listens: fails at once, as offline
    code, err = _main(["finetune", tiny / "data", "--model", "mobilenet_v2_035", "--image-size", "96", "--epochs",
                       "1", "--head-epochs", "1"], capsys, monkeypatch, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "pass its local path" in err and "Received: weights='imagenet'" in err


def test_weights_none_resume_mismatch_and_corrupt_checkpoint(tiny, capsys, monkeypatch, tmp_path):
    """`--weights none` trains from scratch as its help says; resuming another run or a corrupt checkpoint is
    a one-line error naming the checkpoint directory."""
    # resnet18: traces its train step ~3x faster than mobilenet_v2_035 (75 layers, not 157)
    run = ["train", tiny / "data", "--model", "resnet18", "--weights", "none", "--augment", "none",
           "--checkpoint-dir", tmp_path / "ckpt", "--out", tmp_path / "m.keras", "--json", *_fast()]
    code, err = _main(run, capsys, monkeypatch, tmp_path)
    assert code == 0, err[-3000:]
    assert (tmp_path / "m.keras").is_file()
    code, err = _main([*run, "--optimizer", "adam"], capsys, monkeypatch, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "optimizer" in err and "checkpoint_dir" in err
    (tmp_path / "ckpt" / "state.json").write_text('{"checkpoint": ')   # truncated, as a full disk leaves it
    code, err = _main(run, capsys, monkeypatch, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "state.json" in err and "checkpoint_dir" in err


def test_debug_after_the_subcommand_shows_the_traceback(capsys, monkeypatch, tmp_path):
    from cnnzoo.cli.errors import UsageError

    code, err = _main(["info", "resnet05"], capsys, monkeypatch, tmp_path)
    assert code == 2 and "resnet50" in err
    from cnnzoo.cli.main import main

    for args in (["--debug", "info", "resnet05"], ["info", "resnet05", "--debug"]):
        with pytest.raises(UsageError, match="resnet50"):
            main(args)


def test_a_bug_still_shows_its_traceback(tiny, tmp_path):
    """Not a user error (a KeyError inside a command): exit 1 with the traceback, never swallowed."""
    code = ("import sys; from cnnzoo.cli import main as m\n"
            "def broken(args): raise KeyError('a bug')\n"
            "m.cmd_list = broken\n"
            "sys.exit(m.main(['list']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" in out.stderr and "KeyError: 'a bug'" in out.stderr


def test_bench_help_says_it_needs_a_source_checkout(capsys):
    from cnnzoo.cli.main import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "source checkout" in " ".join(capsys.readouterr().out.split())


# -- a quiet command line (issue 14, B.11) ---------------------------------------------------------------------

# TensorFlow's C++ log lines: absl/glog lines, the absl pre-init warning, CPU features, TFLite's runtime and converter.
CPP_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]|WARNING: All log messages before absl"
                     r"|To enable the following instructions|INFO: .*TensorFlow Lite|fully_quantize: )", re.M)


def test_help_imports_no_tensorflow():
    code = ("import sys\nfrom cnnzoo.cli.main import main\n"
            "for argv in (['--help'], ['train', '--help'], ['export', '--help'], ['validate', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, argv\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules), file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_cli_prints_no_tensorflow_log_lines(tiny, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cnnzoo.cli.main", *map(str, args)], capture_output=True,
                              text=True, timeout=600, env=env, cwd=tmp_path)

    out = run("export", tiny / "m.keras", tmp_path / "served", "--formats", "saved_model", "tflite_fp32",
              "--image-size", "32")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not CPP_LOG.search(out.stderr), out.stderr[-3000:]
    out = run("predict", tiny / "image.png", "--model", tmp_path / "served" / "1" / "model_fp32.tflite")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not CPP_LOG.search(out.stderr), out.stderr[-3000:]
    assert out.stdout.startswith(str(tiny / "image.png"))


@pytest.mark.parametrize("flags,shown", [([], False), (["--verbose"], True), (["--debug"], True)])
def test_verbose_and_debug_show_the_log_lines(flags, shown):
    """A command that writes a C++-style log line to fd 2 (as TensorFlow does) and a line of its own."""
    code = ("import os, sys; from cnnzoo.cli import main as m\n"
            "def command(args):\n"
            "    os.write(2, b'I0000 00:00:1796154870.706512    6890 port.cc:153] oneDNN custom operations\\n')\n"
            "    print('own line', file=sys.stderr)\n"
            "    return 0\n"
            "m.cmd_list = command\n"
            f"sys.exit(m.main({flags!r} + ['list']))\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "own line" in out.stderr
    assert bool(CPP_LOG.search(out.stderr)) is shown, out.stderr


def test_stderr_filter_drops_log_lines_and_keeps_everything_else():
    code = ("import os, sys\nfrom cnnzoo.cli.quiet import filtered_stderr\n"
            "with filtered_stderr():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\\nI0000 00:00:1796154870.706512    6890 port.cc:153] oneDNN custom operations are on.\\n')\n"
            "    os.write(2, b'keep me\\nE0000 00:00:17961548.8   6890 cuda_platform.cc:52] cuInit failed\\n')\n"
            "    print('and me', file=sys.stderr)\n"
            "    os.write(2, b'F0000 00:00:1796154870.706512    6890 x.cc:1] fatal stays\\nno newline')\n"
            "print('after', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ("keep me\nand me\nF0000 00:00:1796154870.706512    6890 x.cc:1] fatal stays\n"
                          "no newlineafter\n")
