"""`cnnzoo.bench.run_benchmarks` argument checks and the benchmark helpers' arithmetic (no timing runs here)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.bench import BENCHMARKS, run_benchmarks

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import _common  # noqa: E402


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(quick="yes"), TypeError, "Received: quick='yes'"),
    (dict(out_dir=123), TypeError, "Received: out_dir=123"),
    (dict(only="zoo,nope"), ValueError, "Received: only='zoo,nope'"),
    (dict(only=[]), ValueError, "Received: only=[]"),
    (dict(only=["zoo", 3]), ValueError, "`only`"),
    (dict(log="print"), TypeError, "Received: log='print'"),
    (dict(benchmarks_dir=5), TypeError, "Received: benchmarks_dir=5"),
])
def test_run_benchmarks_rejects_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        run_benchmarks(**kwargs)


def test_run_benchmarks_rejects_file_as_out_dir_and_missing_runner(tmp_path):
    file = tmp_path / "results.json"
    file.write_text("{}")
    with pytest.raises(ValueError, match="`out_dir` exists and is not a folder"):
        run_benchmarks(out_dir=file)
    with pytest.raises(FileNotFoundError, match="No benchmarks/run.py"):
        run_benchmarks(benchmarks_dir=tmp_path)


def test_every_benchmark_name_has_a_script_entry():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert tuple(run.SCRIPTS) == BENCHMARKS
    for name in ("zoo", "deploy", "precision"):
        assert (BENCH_DIR / run.SCRIPTS[name]).is_file()


def test_run_script_rejects_unknown_benchmark_with_exit_code_2():
    result = subprocess.run([sys.executable, str(BENCH_DIR / "run.py"), "--only", "zoo,bogus"],
                            capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 2
    assert "bogus" in result.stderr


def test_percentile_matches_numpy():
    values = list(np.random.default_rng(0).exponential(size=101))
    for q in (50, 95, 99):
        assert _common.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_rounds_rotate_order_and_ratio_is_per_round():
    order = []
    seconds = _common.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                                  rounds=4, warmup=0)
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert all(len(v) == 4 for v in seconds.values())
    # Round ratios 2, 2, 4 -> median 2 (the ratio of medians would be 3/1.5 = 2 too, but min/max differ).
    assert _common.paired_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 2.0]) == {"ratio": 2.0, "min": 2.0, "max": 4.0}


def test_readme_section_is_replaced_between_markers(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run.README_START}\nold table\n{run.README_END}\nmethod\n")
    run.update_readme_section(readme, "new table")
    assert readme.read_text() == f"intro\n{run.README_START}\nnew table\n{run.README_END}\nmethod\n"


def _script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_best_of_keeps_each_rounds_fastest_call():
    import time

    calls = {"n": 0}

    def task():   # every round's first call is slow (a stall), the others fast
        calls["n"] += 1
        time.sleep(0.03 if calls["n"] % 4 == 1 else 0.001)

    best = _common.interleaved({"a": task}, rounds=3, warmup=0, calls=4, best_of=True)["a"]
    calls["n"] = 0
    mean = _common.interleaved({"a": task}, rounds=3, warmup=0, calls=4)["a"]
    assert max(best) < 0.02 < min(mean) * 4
    assert min(mean) > 0.007   # (0.03 + 3 * 0.001) / 4


def test_sign_test_and_zoo_goal_tell_noise_from_a_slower_model():
    zoo = _script("bench_zoo")
    assert zoo.sign_test_p(7, 7) == pytest.approx(1 / 128)
    assert zoo.sign_test_p(6, 7) == pytest.approx(8 / 128)
    assert zoo.sign_test_p(0, 7) == 1.0

    def cell(ratio, low, high, behind):
        return {"ratio": {"ratio": ratio, "min": low, "max": high}, "rounds_below_1": behind,
                "slower_p": zoo.sign_test_p(behind, 7), "cnnzoo": {"img_s": 1.0, "rounds": 7},
                "keras": {"img_s": 1.0}}

    same = {"compute_ops": {"cnnzoo": 10, "keras": 10}, "ops_differing": {}, "same_heavy_kernels": True,
            "heavy_kernels": 3}
    rows = {"noisy": {"inference_b1": cell(0.98, 0.8, 1.2, 4), "graph": same},
            "slow": {"inference_b1": cell(0.90, 0.85, 0.97, 7),
                     "graph": dict(same, ops_differing={"Reshape": [4, 0]})},
            "fast": {"inference_b1": cell(1.05, 0.99, 1.10, 1),
                     "graph": dict(same, ops_differing={"Reshape": [0, 4]})}}
    verdict = zoo.goal(rows, 32)
    assert verdict["below_1"] == ["noisy/inference_b1", "slow/inference_b1"]
    assert verdict["significantly_slower"] == ["slow/inference_b1"]
    assert verdict["extra_ops"] == ["slow"]         # keras doing more work ("fast") is not a finding
    assert not verdict["all_ratios_ge_1"] and not verdict["none_significantly_slower"]
    assert verdict["pooled_rounds_behind"] == [12, 21]
    assert verdict["pooled_slower_p"] == pytest.approx(zoo.sign_test_p(12, 21), abs=1e-4)
    text = zoo.markdown({"rows": rows, "batch": 32, "image_size": 224, "rounds": 7, "style": "s"})
    assert "significantly slower (p < 0.05): slow/inference_b1" in text
    assert "| slow | 10 | 10 | 3 | yes | Reshape 4 vs 0 |" in text


def test_compare_graphs_counts_compute_ops_of_traced_models():
    import keras
    import tensorflow as tf

    zoo = _script("bench_zoo")

    def model(extra):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3)(inputs)
        if extra:
            x = keras.layers.ReLU()(x)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))

    x = tf.zeros((1, 8, 8, 3))
    trace = lambda m: tf.function(lambda t: m(t, training=False)).get_concrete_function(x)  # noqa: E731
    same = zoo.compare_graphs({"cnnzoo": trace(model(False)), "keras": trace(model(False))})
    assert same["ops_differing"] == {} and same["same_heavy_kernels"] and same["heavy_kernels"] == 2
    other = zoo.compare_graphs({"cnnzoo": trace(model(True)), "keras": trace(model(False))})
    assert other["ops_differing"] == {"Relu": [1, 0]}


def test_tflite_size_breakdown_adds_up_and_counts_per_channel_parameters(tmp_path):
    import keras
    import tensorflow as tf

    deploy = _script("bench_deploy")
    inputs = keras.Input((16, 16, 3))
    # Non-zero biases: the converter drops an all-zero bias.
    x = keras.layers.Conv2D(8, 3, bias_initializer="ones", name="conv")(inputs)
    outputs = keras.layers.Dense(5, bias_initializer="ones")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = np.random.default_rng(0).uniform(0, 1, (8, 1, 16, 16, 3)).astype("float32")
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "m.tflite"
    path.write_bytes(converter.convert())
    parts = deploy.tflite_size_breakdown(path)
    assert parts["file_bytes"] == path.stat().st_size
    assert parts["tensor_bytes"]["int8"] == 3 * 3 * 3 * 8 + 8 * 5
    assert parts["tensor_bytes"]["int32"] >= (8 + 5) * 4      # biases (+ the pooling axes)
    # Per-channel: conv kernel and bias 8 channels each, dense kernel and bias 5 each; 12 bytes a channel.
    assert parts["quantized_constant_channels"] == 2 * 8 + 2 * 5
    assert parts["quantization_param_bytes"] >= 12 * 26
    assert parts["graph_bytes"] > 0
    assert parts["floor_bytes"] == sum(parts["tensor_bytes"].values()) + parts["quantization_param_bytes"]


def test_render_attaches_a_gpu_result_with_its_device(tmp_path):
    import json

    run = _script("run")
    precision = {"benchmark": "precision", "quick": False, "image_size": 224, "batch": 32, "rounds": 5,
                 "device": "NVIDIA H100 80GB HBM3", "backend": "jax",
                 "variants": {"fp32+xla": {}, "mixed_float16+xla": {}}, "skipped": {},
                 "baselines": {"resnet50": "fp32+xla"}, "machine": {"versions": {"keras": "3", "jax": "0.11"}},
                 "rows": {"resnet50": {
                     "fp32+xla": {"train": {"img_s": 100.0}, "speedup_vs_fp32": {"ratio": 1.0, "min": 1, "max": 1}},
                     "mixed_float16+xla": {"train": {"img_s": 150.0},
                                           "speedup_vs_fp32": {"ratio": 1.5, "min": 1.4, "max": 1.6}}}}}
    (tmp_path / "gpu.json").write_text(json.dumps(precision))
    combined = {"date": "2026-11-26T00:00:00", "host": "h", "quick": False, "load_average_start": [],
                "load_average_end": [], "seconds": 1.0, "machine": None, "benchmarks": {}, "failed": {},
                "missing": [], "cpu": {"model": "cpu", "flags": [], "usable_cpus": 2}}
    (tmp_path / "r.json").write_text(json.dumps(combined))
    result = subprocess.run([sys.executable, str(BENCH_DIR / "run.py"), "--render", str(tmp_path / "r.json"),
                             "--add", f"precision_gpu={tmp_path / 'gpu.json'}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.md").read_text()
    assert "Training precision on a GPU" in text
    assert "Attached from another machine (`--add`): precision_gpu (NVIDIA H100 80GB HBM3)." in text
    assert "| resnet50 | mixed_float16+xla | 150.0 | x1.50 | 1.40..1.60 | fp32+xla |" in text
    assert (tmp_path / "r-precision_gpu.png").is_file()
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["benchmarks"]["precision_gpu"]["device"] == "NVIDIA H100 80GB HBM3"
    bad = subprocess.run([sys.executable, str(BENCH_DIR / "run.py"), "--add", "x=y"], capture_output=True, text=True)
    assert bad.returncode == 2 and "only with --render" in bad.stderr


def test_precision_benchmark_rejects_unknown_variant_with_exit_code_2():
    result = subprocess.run([sys.executable, str(BENCH_DIR / "bench_precision.py"), "--quick", "--variants",
                             "fp32,fp64"], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 2
    assert "Received: --variants='fp32,fp64'" in result.stderr and "fp64" in result.stderr


def test_zoo_members_name_family_rows_or_are_refused(capsys):
    zoo = _script("bench_zoo")
    for argv in (["--members", "mobilenet_v3_small"], ["--families", "--members", "mobilenet_v3_smal"]):
        with pytest.raises(SystemExit) as exit_info:
            zoo.main(argv)
        assert exit_info.value.code == 2
        assert f"Received: --members='{argv[-1]}'" in capsys.readouterr().err


def test_zoo_builds_as_units_decide_significance_when_measured():
    zoo = _script("bench_zoo")
    # Four builds per side, 3 rounds each. Instance 0 of cnnzoo is slow in every round (a badly placed build),
    # the others match keras: per-round pairs look behind, the builds do not (p = 1/4 for the rank order).
    seconds = {"cnnzoo": [1.2, 1.2, 1.2], "keras": [1.0, 1.0, 1.0],
               "cnnzoo#1": [1.0, 0.99, 1.0], "keras#1": [1.01, 1.0, 0.98],
               "cnnzoo#2": [0.97, 0.98, 0.97], "keras#2": [0.99, 0.99, 1.0],
               "cnnzoo#3": [1.02, 1.02, 1.03], "keras#3": [0.96, 0.97, 0.96]}
    figures = zoo._figures(seconds, 16)
    builds = figures["instances"]
    assert builds["cnnzoo_img_s"][0] == pytest.approx(16 / 1.2, abs=0.01)
    assert builds["keras_a_a_ratio"] == pytest.approx(1.0 / 1.0, abs=0.02)
    assert 0.05 < builds["slower_p"] < 1.0
    assert figures["cnnzoo"]["rounds"] == 12 and figures["rounds_below_1"] >= 6
    assert zoo._slower_p(figures) == builds["slower_p"]
    # Every cnnzoo build slower than every keras build: the smallest p four against four allows, 1/70.
    slow = {k: [s * 1.3 for s in v] if k.startswith("cnnzoo") else v for k, v in seconds.items()}
    slow["cnnzoo"] = [1.4, 1.4, 1.4]
    assert zoo._figures(slow, 16)["instances"]["slower_p"] == pytest.approx(1 / 70, abs=1e-4)
    rows = {"m": {"inference_b16": figures}, "s": {"inference_b16": zoo._figures(slow, 16)}}
    assert zoo.goal(rows, 16)["significantly_slower"] == ["s/inference_b16"]
    text = zoo.markdown({"rows": rows, "batch": 16, "image_size": 160, "rounds": 3, "style": "s"})
    assert "Builds as units" in text and "| s | inference_b16 |" in text


def test_recipes_summary_handles_rows_with_different_columns():
    """bench_recipes' goals and tables from result rows shaped like a full run (TTA rows differ per data set)."""
    bench_recipes = _script("bench_recipes")
    report = {
        "imbalance": [{"epochs": 3, "seed": s, "recipe": r, "macro_f1": f, "balanced_accuracy": f, "accuracy": f}
                      for s in (0, 1) for r, f in (("plain", 0.80), ("class_weight", 0.82), ("sampling", 0.91),
                                                   ("focal", 0.78))],
        "distill": {"runs": [{"seed": None, "model": "teacher resnet18", "accuracy": 0.99},
                             {"seed": 0, "model": "mobilenet_v2_035 alone", "accuracy": 0.80},
                             {"seed": 0, "model": "mobilenet_v2_035 distilled", "accuracy": 0.86}],
                    "int8": {"passed": False, "top1_agreement": 0.9, "accuracy_drop_points": 3.0}},
        "multilabel": [{"seed": 0, "map": 0.8, "macro_f1_at_0.5": 0.7, "macro_f1_tuned": 0.72,
                        "subset_accuracy": 0.5, "positives_share": 0.15}],
        "tta": [{"seed": 0, "data": "textures", "none": 0.6, "flip": 0.7, "crops": 0.65, "flip+crops": 0.71},
                {"seed": 0, "data": "digits", "none": 0.98, "crops": 0.97, "flip": 0.93}],
        "ema": [{"seed": 0, "ema": None, "accuracy": 0.86}, {"seed": 0, "ema": 0.99, "accuracy": 0.85}],
    }
    goals = bench_recipes.goals(report)
    assert goals["imbalance_5_points"] == {"plain": 0.8, "best_balanced": 0.91, "met": True}
    assert goals["distill_lifts"]["met"] is False          # int8 parity failed: the lift alone is not enough
    text = bench_recipes.markdown(report)
    assert "| data | none | flip | crops | flip+crops |" in text
    assert "| digits | 0.98 | 0.93 | 0.97 | – |" in text       # digits have no flip+crops run: a dash, no crash
    assert "| textures | 0.6 | 0.7 | 0.65 | 0.71 |" in text and "Weight EMA" in text
