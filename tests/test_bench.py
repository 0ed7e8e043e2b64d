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
