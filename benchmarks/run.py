"""Run every benchmark and write one report: results/<date>-<host>.json, .md and PNG charts.

Each benchmark runs in its own Python process (a fresh TensorFlow, its memory returned when it ends, a crash
recorded instead of ending the run), one after the other so they never compete for the CPU. A full run also
rewrites the "Latest results" section of benchmarks/README.md.

Usage:
    python benchmarks/run.py --quick                 # every part at toy sizes, for checks (< 5 min idle)
    python benchmarks/run.py                         # the figures (~30-40 min on 2 cores)
    python benchmarks/run.py --only zoo,deploy --out /tmp/bench
    python benchmarks/run.py --render results/<date>-<host>.json   # redo tables and charts from the JSON
    python benchmarks/run.py --render results/<date>-<host>.json --add precision_gpu=gpu.json  # + a GPU run
`cnnzoo bench [--quick] [--out DIR]` calls `run_all` below (through cnnzoo.bench.run_benchmarks).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

HERE = Path(__file__).resolve().parent
#: name -> script; the last two belong to the data and training issues and are run as they are.
SCRIPTS = {"zoo": "bench_zoo.py", "deploy": "bench_deploy.py", "precision": "bench_precision.py",
           "data": "bench_data.py", "finetune": "bench_finetune.py", "zoo_families": "bench_zoo.py",
           "families": "bench_families.py"}
#: Extra command-line arguments of a name that reuses a script.
ARGS = {"zoo_families": ["--families"]}
OWN = ("zoo", "deploy", "precision")
README_START, README_END = "<!-- latest-results:start -->", "<!-- latest-results:end -->"


def run_all(*, quick: bool = False, out_dir=None, only=None, update_readme: bool | None = None,
            log=print) -> dict:
    """Run the benchmarks (all, or the names in `only`) and write the combined report; returns it.

    The report dict has "files" (paths written), "failed" (name -> error of benchmarks that crashed) and
    "missing" (benchmarks whose script is not in this checkout).
    `update_readme` defaults to True for a full run written to benchmarks/results/.
    """
    out_dir = Path(out_dir) if out_dir is not None else _common.RESULTS
    names = list(SCRIPTS) if only is None else list(only)
    if update_readme is None:
        update_readme = not quick and out_dir.resolve() == _common.RESULTS.resolve()
    started = time.perf_counter()
    stamp = datetime.datetime.now()
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", platform.node() or "host")
    stem = f"{stamp:%Y-%m-%d}-{host}" + ("-quick" if quick else "")
    combined = {"date": stamp.isoformat(timespec="seconds"), "host": host, "quick": quick,
                "cpu": _common.cpu_facts(), "load_average_start": _common.load_average(),
                "benchmarks": {}, "failed": {}, "missing": []}
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-") as tmp:
        for name in names:
            script = HERE / SCRIPTS[name]
            if not script.exists():
                combined["missing"].append(name)
                log(f"== {name}: skipped, {script.name} not found")
                continue
            log(f"== {name} ({script.name}{' --quick' if quick else ''})")
            result, error = _run_script(script, quick, Path(tmp) / f"{name}.json", log, ARGS.get(name, ()))
            if error:
                combined["failed"][name] = error
                log(f"== {name}: FAILED ({error.splitlines()[-1] if error else ''})")
            else:
                combined["benchmarks"][name] = result
    combined["load_average_end"] = _common.load_average()
    combined["seconds"] = round(time.perf_counter() - started, 1)
    combined["machine"] = next((r["machine"] for r in combined["benchmarks"].values()
                                if isinstance(r.get("machine"), dict)), None)
    combined["goals"] = goals(combined["benchmarks"])
    combined["files"] = write_report(combined, out_dir, stem, update_readme=update_readme, log=log)
    log(f"== done in {combined['seconds']:.0f} s; wrote {', '.join(combined['files'])}")
    return combined


def write_report(combined: dict, out_dir: Path, stem: str, *, update_readme: bool, log=print) -> list[str]:
    """Write <stem>.json, <stem>.md and the charts (and the README section); returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = write_charts(combined, out_dir, stem, log)
    json_path = _common.write_json(out_dir / f"{stem}.json", {k: v for k, v in combined.items() if k != "files"})
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(markdown(combined, charts) + "\n")
    files = [str(json_path), str(md_path), *(str(p) for p in charts.values())]
    if update_readme:
        update_readme_section(HERE / "README.md", markdown(combined, charts, relative_to=HERE, heading_level=3))
        files.append(str(HERE / "README.md"))
    return files


def render(json_path, *, update_readme: bool = False, add: dict | None = None, log=print) -> list[str]:
    """Rewrite the Markdown, charts (and README section) of an existing combined report, without re-running.

    `add` (name -> JSON path) attaches results measured elsewhere, e.g. `precision_gpu` from a GPU machine;
    they keep their own machine facts and device name.
    """
    json_path = Path(json_path)
    combined = json.loads(json_path.read_text())
    for name, path in (add or {}).items():
        combined["benchmarks"][name] = json.loads(Path(path).read_text())
    combined["goals"] = goals(combined["benchmarks"])
    files = write_report(combined, json_path.parent, json_path.stem, update_readme=update_readme, log=log)
    log(f"wrote {', '.join(files)}")
    return files


def _run_script(script: Path, quick: bool, out: Path, log, args=()) -> tuple[dict | None, str | None]:
    """Run one benchmark script in a child process; (its JSON, None) or (None, the error)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               PYTHONUNBUFFERED="1")
    command = [sys.executable, str(script)] + list(args) + (["--quick"] if quick else [])
    default_out = HERE / "results" / f"{script.stem}.json"
    # Read the script rather than run its --help: a TensorFlow start per script costs seconds of --quick.
    source = script.read_text(encoding="utf-8")
    if '"--out"' in source or "_common.parser(" in source:
        command += ["--out", str(out)]
    else:   # a script without --out writes its default file; read that one if this run wrote it
        out = default_out
    started = time.time()
    tail: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               cwd=HERE.parent)
    for line in process.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        if not _noise(line):
            log(f"   {line}")
    code = process.wait()
    if code != 0 and not _missed_goal(out, started):
        return None, f"exit code {code}:\n" + "\n".join(tail)
    if not out.exists() or out.stat().st_mtime < started:
        return None, f"{script.name} wrote no {out.name}"
    return json.loads(out.read_text()), None


def _missed_goal(out: Path, started: float) -> bool:
    """A script that ran to the end but missed its gate (exit 1 after writing `"gate_failed": true`): its
    figures are kept and its goals say NO."""
    try:
        return out.stat().st_mtime >= started and json.loads(out.read_text()).get("gate_failed") is True
    except (OSError, ValueError):
        return False


def _noise(line: str) -> bool:
    """TensorFlow / absl start-up chatter that TF_CPP_MIN_LOG_LEVEL does not silence."""
    return bool(re.match(r"^(WARNING: All log messages|[IWE]\d{4} \d\d:\d\d|INFO: Created TensorFlow Lite|"
                         r"fully_quantize:|Epoch \d)", line)) or "UserWarning" in line or \
        line.strip().startswith("return func(")


def _kind(name: str) -> str:
    """The benchmark a result belongs to: "precision_gpu" (added with --add) renders as "precision"."""
    if name in ARGS:                 # a second run of another script (zoo_families: bench_zoo.py --families)
        return SCRIPTS[name][len("bench_"):-len(".py")]
    return name if name in SCRIPTS else name.split("_", 1)[0]


def _module(name: str):
    """A benchmark script imported as a module (its markdown / chart functions; no TensorFlow at import)."""
    spec = importlib.util.spec_from_file_location(f"cnnzoo_bench_{name}", HERE / SCRIPTS[name])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def goals(results: dict) -> dict:
    """The issue's goals, one boolean each, from whichever benchmarks ran."""
    out = {}
    for zoo in ("zoo", "zoo_families"):
        if zoo not in results:
            continue
        verdict = _module("zoo").goal(results[zoo]["rows"], results[zoo]["batch"])
        out[f"{zoo}_all_ratios_ge_1"] = verdict["all_ratios_ge_1"]
        out[f"{zoo}_none_significantly_slower"] = verdict["none_significantly_slower"]
        if verdict["graphs_checked"]:
            out[f"{zoo}_no_extra_compute_ops"] = not verdict["extra_ops"]
    for label, subject in results.get("deploy", {}).get("subjects", {}).items():
        for goal, met in subject["goals"].items():
            out[f"deploy_{label}_{goal}"] = met
    for key, met in results.get("data", {}).get("goals", {}).items():
        out[f"data_{key}"] = met
    for key, met in (results.get("finetune", {}).get("goals") or {}).items():
        out[f"finetune_{key}"] = met
    for key, met in (results.get("families", {}).get("goals") or {}).items():
        out[f"families_{key}"] = met
    return out


# ----------------------------------------------------------------------------------------------------------------
# report

def markdown(combined: dict, charts: dict, *, relative_to: Path | None = None, heading_level: int = 2) -> str:
    h = "#" * heading_level
    machine = combined.get("machine") or {}
    threads = machine.get("threads", {})
    cpu = combined["cpu"]
    lines = [f"{h} Benchmarks {combined['date']} on {combined['host']}" + (" (quick: not figures)" if
                                                                           combined["quick"] else ""),
             "",
             f"{cpu['model']} ({', '.join(cpu['flags'])}), {cpu['usable_cpus']} usable CPUs; "
             f"GPUs: {', '.join(machine.get('gpus') or []) or 'none'}; "
             f"TensorFlow {machine.get('versions', {}).get('tensorflow', '?')}, "
             f"Keras {machine.get('versions', {}).get('keras', '?')}; TF threads intra/inter "
             f"{threads.get('tf_intra_op', '?')}/{threads.get('tf_inter_op', '?')} (0 = one per CPU). "
             f"Load average (1/5/15 min) at start {combined['load_average_start']}, at end "
             f"{combined['load_average_end']}. Total {combined['seconds'] / 60:.1f} min.", ""]
    elsewhere = [f"{name} ({result.get('device', '?')})" for name, result in combined["benchmarks"].items()
                 if name not in SCRIPTS]
    if elsewhere:
        lines += [f"Attached from another machine (`--add`): {', '.join(elsewhere)}.", ""]
    if combined["goals"]:
        lines += ["Goals: " + ", ".join(f"{k} **{'yes' if v else 'NO'}**" for k, v in combined["goals"].items()), ""]
    titles = {"zoo": "Zoo vs keras.applications", "deploy": "Deployment paths",
              "precision": "Training precision", "data": "Data pipeline", "finetune": "Fine-tuning",
              "families": "Every family exported with parity",
              "zoo_families": "Newer families vs keras.applications",
              "precision_gpu": "Training precision on a GPU"}
    for name, result in combined["benchmarks"].items():
        lines += [f"{h}# {titles.get(name, name)}", "", _section(name, result), ""]
        if name in charts:
            path = charts[name]
            shown = os.path.relpath(path, relative_to) if relative_to else path.name
            lines += [f"![{titles.get(name, name)}]({shown})", ""]
    for name, error in combined["failed"].items():
        lines += [f"{h}# {titles.get(name, name)}: failed", "", "```", error[-1500:], "```", ""]
    if combined["missing"]:
        lines += [f"Not in this checkout: {', '.join(SCRIPTS[n] for n in combined['missing'])}.", ""]
    return "\n".join(lines).rstrip()


def _section(name: str, result: dict) -> str:
    if _kind(name) in OWN:
        return _module(_kind(name)).markdown(result)
    if isinstance(result.get("markdown"), str):   # a benchmark that renders its own table
        return result["markdown"]
    if name == "data" and "policies" in result:
        rows = [[policy, r["cnnzoo_img_s"], r["keras_img_s"], f"x{r['speedup']:.2f}",
                 r.get("pipeline_over_training")] for policy, r in result["policies"].items()]
        return (f"Input pipeline images/s (JPEG decode, resize to {result.get('image_size')} px, augment, "
                f"batch {result.get('batch')}), cnnzoo vs the same policy in Keras layers; MobileNetV2 trains at "
                f"{result.get('mobilenet_v2_train_img_s')} img/s here.\n\n"
                + _common.table(rows, ["policy", "cnnzoo img/s", "keras img/s", "speedup",
                                       "pipeline / training"]))
    return _generic(result)


def _generic(result: dict) -> str:
    """A benchmark whose layout run.py does not know: its scalar figures as a two-column table."""
    rows = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("machine",):
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float, str, bool)) and len(rows) < 60:
            rows.append([prefix, value])

    walk("", result)
    return _common.table(rows, ["figure", "value"])


def write_charts(combined: dict, out_dir: Path, stem: str, log=print) -> dict:
    charts = {}
    for name, result in combined["benchmarks"].items():
        path = out_dir / f"{stem}-{name}.png"
        try:
            if _kind(name) in OWN:
                _module(_kind(name)).chart(result, path)
            elif name == "data" and "policies" in result:
                _data_chart(result, path)
            else:
                continue
        except Exception as error:  # noqa: BLE001 - a chart must not lose the figures
            log(f"chart for {name} failed: {error!r}")
            continue
        charts[name] = path
    return charts


def _data_chart(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(result["policies"])
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, (key, label) in enumerate((("cnnzoo_img_s", "cnnzoo"), ("keras_img_s", "Keras layers"))):
        ax.bar([j + i * 0.4 for j in range(len(policies))], [result["policies"][p][key] for p in policies], 0.4,
               label=label)
    if result.get("mobilenet_v2_train_img_s"):
        ax.axhline(result["mobilenet_v2_train_img_s"], color="black", linestyle="--", linewidth=1,
                   label="MobileNetV2 training")
    ax.set_xticks([j + 0.2 for j in range(len(policies))], policies)
    ax.set_ylabel("images/s")
    ax.set_title("Input pipeline by augmentation policy", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_readme_section(readme: Path, text: str) -> None:
    """Replace what lies between the latest-results markers in the README (appended if the markers are gone)."""
    content = readme.read_text() if readme.exists() else ""
    block = f"{README_START}\n{text}\n{README_END}"
    if README_START in content and README_END in content:
        head, rest = content.split(README_START, 1)
        content = head + block + rest.split(README_END, 1)[1]
    else:
        content = content.rstrip() + "\n\n## Latest results\n\n" + block + "\n"
    readme.write_text(content)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="toy sizes, few rounds (checks, not figures)")
    p.add_argument("--out", default=None, help=f"output folder (default {_common.RESULTS})")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SCRIPTS)}")
    p.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md as it is")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="only rewrite the .md, charts (and README for a full run in results/) of a combined report")
    p.add_argument("--add", action="append", default=[], metavar="NAME=JSON",
                   help="with --render: attach a benchmark's JSON measured on another machine (e.g. "
                        "precision_gpu=results/<date>-h100-precision.json); repeatable")
    args = p.parse_args(argv)
    if args.render:
        if not os.path.isfile(args.render):
            p.error(f"--render: no such file {args.render!r}")
        report = json.loads(Path(args.render).read_text())
        add = {}
        for item in args.add:
            name, _, path = item.partition("=")
            if not name or not os.path.isfile(path):
                p.error(f"--add: expected NAME=JSON with an existing file, got {item!r}")
            add[name] = path
        in_results = Path(args.render).resolve().parent == _common.RESULTS.resolve()
        render(args.render, update_readme=in_results and not report.get("quick") and not args.no_readme, add=add)
        return 0
    if args.add:
        p.error("--add: only with --render")
    only = None
    if args.only:
        only = [n for n in args.only.split(",") if n]
        unknown = [n for n in only if n not in SCRIPTS]
        if unknown:
            p.error(f"--only: unknown benchmark(s) {unknown}; choose from {', '.join(SCRIPTS)}")
    combined = run_all(quick=args.quick, out_dir=args.out, only=only,
                       update_readme=False if args.no_readme else None)
    return 1 if combined["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
