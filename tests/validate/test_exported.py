"""Validation of what ships: SavedModel, TFLite and ONNX through the export runners, the statistics saved beside
the export, the JSON + Markdown + PNG report, and the `cnnzoo validate` command's exit codes."""
import importlib
import json

import numpy as np
import pytest
from PIL import Image

import cnnzoo
from cnnzoo.validate import cli, drift
from validatetools import CLASS_NAMES, brightened

FAST = dict(latency_runs=8, warmup=2, batch_sizes=(1, 8), throughput_repeats=1, stress_rate=40, stress_seconds=0.25)


def test_public_surface():
    assert callable(cnnzoo.validate)
    assert cnnzoo.validate.reference_stats is drift.reference_stats
    # Submodules stay importable next to the callable module.
    assert importlib.import_module("cnnzoo.validate.performance").stress is cnnzoo.validate.stress
    assert callable(cnnzoo.validate) and cnnzoo.validate.ValidationReport.__name__ == "ValidationReport"


def test_every_format_validates_alike_with_statistics_beside_the_export(exported, digits):
    net, export = exported
    train = (digits["x_train"][:500], digits["y_train"][:500])
    heldout = (digits["x_test"][:200], digits["y_test"][:200])
    stats = cnnzoo.validate.reference_stats(export.directory.parent, train)
    assert stats.path == export.directory / "reference_stats.json" and stats.path.is_file()
    assert stats.model["format"] == "saved_model" and stats.embedding_edges is None   # only probabilities inside

    golden = cnnzoo.validate.pick_golden(net, heldout, per_class=2)
    reports = {}
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        reports[fmt] = cnnzoo.validate(export.paths[fmt], heldout, golden=golden,
                                       reference=export.directory / "reference_stats.json", **FAST)
    reports["keras"] = cnnzoo.validate(net, heldout, golden=golden, reference=train, **FAST)
    for fmt, report in reports.items():
        assert report.model["format"] == fmt.split("_fp")[0], fmt
        assert report.passed, (fmt, report.failures)
        assert report.functional["golden"]["correct"] == len(golden[1])
        lat = report.performance["latency"]
        assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"], fmt
        assert report.performance["stress"]["errors"] == 0
        assert report.drift["significant"] is False
        # The same predictions in every format (fp32 everywhere): same accuracy and pixel statistics.
        assert report.functional["accuracy"]["accuracy"] == pytest.approx(
            reports["saved_model"].functional["accuracy"]["accuracy"], abs=1 / 200)
        assert report.drift["psi"]["R"] == pytest.approx(reports["saved_model"].drift["psi"]["R"])
    assert reports["tflite_fp32"].performance["stress"]["serialized"] is True    # one interpreter, one at a time
    assert reports["tflite_fp32"].performance["cold_start"]["from_file"] is True
    assert reports["keras"].drift["embedding"]["available"] is True
    assert reports["onnx"].drift["embedding"]["available"] is False
    assert "onnx file carries only probabilities" in reports["onnx"].drift["embedding"]["reason"]

    # No reference given: the statistics beside the export are found, and a brighter copy is flagged.
    shifted = cnnzoo.validate(export.directory.parent, (brightened(heldout[0]), heldout[1]), checks=("drift",))
    assert shifted.drift["significant"] and shifted.drift["reference"]["path"] == str(stats.path)
    assert not shifted.passed


def test_report_files(exported, digits, tmp_path):
    net, export = exported
    report = cnnzoo.validate(export.paths["tflite_fp32"], (brightened(digits["x_test"][:100]), digits["y_test"][:100]),
                             reference=(digits["x_train"][:300], digits["y_train"][:300]),
                             thresholds={"max_ece": 1.0}, **FAST)
    written = report.save(tmp_path / "validation")
    assert sorted(written) == ["drift", "json", "markdown", "performance", "reliability"]
    for name in ("drift", "performance", "reliability"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(written["json"].read_text())
    assert data["passed"] is False and {"functional", "performance", "calibration", "drift"} <= set(data)
    assert {"significant", "psi", "ks"} <= set(data["drift"]) and data["drift"]["significant"] is True
    assert data["calibration"]["ece"] == pytest.approx(report.calibration["ece"])
    assert data["checks"] == report.checks
    markdown = written["markdown"].read_text()
    assert markdown.startswith("# Validation: FAILED")
    assert "| drift.psi.R |" in markdown and "**FAIL**" in markdown and "![drift](drift.png)" in markdown
    assert "Fit T(B) = T_setup + B * T_item" in markdown


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match=r"unknown names \['max_lag'\].*Received: thresholds="):
        cnnzoo.validate.Thresholds.coerce({"max_lag": 3})
    with pytest.raises(ValueError, match="Received: thresholds.golden_accuracy=2.0"):
        cnnzoo.validate.Thresholds(golden_accuracy=2)
    with pytest.raises(TypeError, match="Received: thresholds="):
        cnnzoo.validate.Thresholds.coerce(0.2)


@pytest.fixture
def image_folder(digits, tmp_path):
    """Five held-out digits per class as PNG files in class subfolders."""
    root = tmp_path / "incoming"
    for label, name in enumerate(CLASS_NAMES):
        (root / name).mkdir(parents=True)
        for i in np.flatnonzero(digits["y_test"] == label)[:5]:
            Image.fromarray(digits["x_test"][i]).save(root / name / f"{i}.png")
    (root / CLASS_NAMES[3] / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return root


def test_command_line_exit_codes(exported, image_folder, tmp_path, capsys):
    net, export = exported
    root = str(export.directory.parent)
    fast = ["--latency-runs", "5", "--batch-sizes", "1,4", "--stress-seconds", "0.2", "--stress-rate", "20"]
    assert cli.main([root, str(image_folder), "--save-reference"]) == 0
    assert (export.directory / "reference_stats.json").is_file()
    out = tmp_path / "report"
    assert cli.main([root, str(image_folder), "--out", str(out), *fast]) == 0
    assert "PASSED" in capsys.readouterr().out and (out / "report.md").is_file()
    data = json.loads((out / "report.json").read_text())["data"]
    assert data["n_images"] == 50 and data["labelled"] is True
    assert [item["path"] for item in data["skipped_files"]] == [str(image_folder / CLASS_NAMES[3] / "truncated.jpg")]
    # The export root also works as --reference: its newest version's statistics.
    assert cli.main([root, str(image_folder), "--reference", root, "--checks", "drift"]) == 0
    # A limit the model cannot meet fails the gate: exit 1.
    assert cli.main([root, str(image_folder), "--threshold", "max_latency_p99_ms=0.000001", *fast]) == 1
    assert "FAIL latency.p99_ms" in capsys.readouterr().out
    # Bad arguments: exit 2 with the argument named.
    assert cli.main([root, str(image_folder), "--threshold", "max_lag=1"]) == 2
    assert "Received: thresholds=" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "missing"), str(image_folder)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main([root])                                   # argparse: DATA missing
    assert exit_info.value.code == 2
