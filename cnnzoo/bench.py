"""`cnnzoo bench`: run the benchmarks of a source checkout (benchmarks/run.py) and write their report.

The benchmarks are scripts, not part of the installed package (they compare against keras.applications, train
the demo model and time every export format: minutes, not a library call), so this entry point checks its
arguments, finds the benchmarks/ folder and hands over to it.

Example:
    >>> report = run_benchmarks(quick=True, out_dir="/tmp/bench")     # doctest: +SKIP
    >>> report["files"][0]                                              # doctest: +SKIP
    '/tmp/bench/2026-01-01-myhost-quick.json'
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cnnzoo._checks import received

#: The benchmark names `only` accepts, in the order they run.
BENCHMARKS = ("zoo", "deploy", "precision", "data", "finetune", "zoo_families", "families")


def run_benchmarks(*, quick: bool = False, out_dir=None, only=None, benchmarks_dir=None, log=print) -> dict:
    """Run the benchmarks and write `<date>-<host>[-quick].json`, `.md` and PNG charts to `out_dir`.

    Args:
        quick: bool, toy sizes and few rounds (a check that everything runs, < 5 min on an idle 2-core machine;
            not figures to quote).
        out_dir: str or Path, the output folder; default benchmarks/results/ (a full run there also updates
            the "Latest results" section of benchmarks/README.md).
        only: None (all), a comma-separated str or a list of names from BENCHMARKS.
        benchmarks_dir: str or Path of the benchmarks/ folder; default the one beside this package.
        log: callable taking one str, for progress lines.

    Returns:
        dict, the combined report (see benchmarks/run.py): "benchmarks", "goals", "failed", "missing", "files".
    """
    if not isinstance(quick, bool):
        raise TypeError(f"`quick` must be True or False. {received('quick', quick)}")
    if out_dir is not None:
        if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
            raise TypeError(f"`out_dir` must be a folder path. {received('out_dir', out_dir)}")
        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise ValueError(f"`out_dir` exists and is not a folder. {received('out_dir', str(out_dir))}")
    names = _check_only(only)
    if not callable(log):
        raise TypeError(f"`log` must be callable. {received('log', log)}")
    run = _load_runner(benchmarks_dir)
    return run.run_all(quick=quick, out_dir=out_dir, only=names, log=log)


def _check_only(only) -> list[str] | None:
    if only is None:
        return None
    names = [n.strip() for n in only.split(",") if n.strip()] if isinstance(only, str) else only
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"`only` must be benchmark names from {', '.join(BENCHMARKS)} (a list or a "
                         f"comma-separated string). {received('only', only)}")
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"`only` has unknown benchmark names {unknown}; choose from {', '.join(BENCHMARKS)}. "
                         f"{received('only', only)}")
    return list(dict.fromkeys(names))


def _load_runner(benchmarks_dir):
    if benchmarks_dir is None:
        folder = Path(__file__).resolve().parent.parent / "benchmarks"
    elif isinstance(benchmarks_dir, (str, os.PathLike)):
        folder = Path(benchmarks_dir)
    else:
        raise TypeError(f"`benchmarks_dir` must be a folder path. {received('benchmarks_dir', benchmarks_dir)}")
    script = folder / "run.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"No benchmarks/run.py in {folder}: the benchmarks live in the cnnzoo source checkout, not in the "
            f"installed package; run from a clone or pass benchmarks_dir (cnnzoo bench --benchmarks-dir DIR). "
            f"{received('benchmarks_dir', None if benchmarks_dir is None else str(benchmarks_dir))}")
    spec = importlib.util.spec_from_file_location("cnnzoo_benchmarks_run", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
