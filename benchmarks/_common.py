"""Measurement helpers shared by the benchmarks: interleaved timing, medians and percentiles, machine facts.

Method (see benchmarks/README.md): every candidate is warmed up first, then timed in rounds; each round runs
every candidate once, in an order that rotates from round to round (A B, B A, ...), so load from other processes
falls on all candidates alike. Figures are medians over rounds; a ratio is the median of the per-round ratios
(each round's candidates ran seconds apart), so it stays meaningful when absolute times drift.

Nothing here imports TensorFlow at module level: run.py imports the benchmark modules for their Markdown and
chart code without paying for it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def rotated(names: list[str], round_index: int) -> list[str]:
    """The round's order: the list rotated by the round index (for two names: A B, B A, A B, ...)."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def interleaved(tasks: dict[str, Callable[[], object]], *, rounds: int, warmup: int = 1,
                calls: int = 1, best_of: bool = False) -> dict[str, list[float]]:
    """Seconds per call of each task, one figure per round (`calls` back-to-back calls timed together).

    Every task runs `warmup` untimed calls first (tracing, allocation, caches), also in rotated order.
    With `best_of`, a round's figure is its fastest call instead of the mean (timeit's rule: other processes
    only ever add time, so the minimum is the least noisy estimate of a short call).
    """
    names = list(tasks)
    for w in range(warmup):
        for name in rotated(names, w):
            tasks[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            if best_of:
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    tasks[name]()
                    times.append(time.perf_counter() - start)
                seconds[name].append(min(times))
                continue
            start = time.perf_counter()
            for _ in range(calls):
                tasks[name]()
            seconds[name].append((time.perf_counter() - start) / calls)
    return seconds


def interleaved_latency(tasks: dict[str, Callable[[], object]], *, rounds: int, block: int,
                        warmup: int = 2) -> dict[str, list[list[float]]]:
    """Per-call latencies (ms) of each task: `rounds` rounds, each running every task `block` times in a row.

    A block is what a server sees (back-to-back requests to one model); the first call of each block is dropped,
    since switching models evicts caches. Returns name -> list (per round) of lists of latencies in ms.
    """
    names = list(tasks)
    for w in range(warmup):
        for name in rotated(names, w):
            tasks[name]()
    latencies: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            fn = tasks[name]
            fn()
            samples = []
            for _ in range(block):
                start = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - start) * 1000.0)
            latencies[name].append(samples)
    return latencies


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(per_round: list[list[float]]) -> dict:
    """p50/p95/p99 over every sample, plus the per-round medians they came from."""
    flat = [v for samples in per_round for v in samples]
    return {"p50_ms": round(percentile(flat, 50), 3), "p95_ms": round(percentile(flat, 95), 3),
            "p99_ms": round(percentile(flat, 99), 3), "samples": len(flat),
            "round_medians_ms": [round(statistics.median(s), 3) for s in per_round]}


def rate_summary(seconds: list[float], items: int) -> dict:
    """Items per second: the median over rounds, with the min and max round for spread."""
    rates = [items / s for s in seconds]
    return {"img_s": round(statistics.median(rates), 2), "min_img_s": round(min(rates), 2),
            "max_img_s": round(max(rates), 2), "rounds": len(rates)}


def paired_ratio(numerator: list[float], denominator: list[float]) -> dict:
    """Median of per-round ratios numerator[r] / denominator[r], with their spread."""
    ratios = [a / b for a, b in zip(numerator, denominator) if b]
    if not ratios:
        return {"ratio": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"ratio": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
            "max": round(max(ratios), 3)}


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def cpu_facts() -> dict:
    """CPU model and the instruction-set flags the figures depend on."""
    model, flags = platform.processor() or "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "flags": [f for f in wanted if f in flags], "logical_cpus": os.cpu_count(),
            "usable_cpus": usable}


def machine_info() -> dict:
    """Host, CPU, accelerators, library versions and the thread settings in force (imports the Keras backend)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
                "cpu": cpu_facts(), "load_average": load_average(), "backend": "jax",
                "gpus": [d.device_kind for d in jax.devices() if d.platform == "gpu"],
                "versions": {"keras": keras.__version__, "jax": jax.__version__}, "threads": {}}
    import tensorflow as tf

    info = {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu_facts(), "load_average": load_average(), "backend": "tensorflow",
            "gpus": [_gpu_name(d) for d in tf.config.list_physical_devices("GPU")],
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
            "threads": {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                        "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                        "note": "TensorFlow 0 = one per usable CPU",
                        **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                                      "TF_NUM_INTEROP_THREADS") if k in os.environ}}}
    for name in ("onnxruntime", "ai_edge_litert", "tf2onnx"):
        try:
            module = __import__(name)
            info["versions"][name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return info


def _gpu_name(device) -> str:
    import tensorflow as tf

    try:
        return tf.config.experimental.get_device_details(device).get("device_name", device.name)
    except Exception:  # noqa: BLE001 - details are optional; the device name is enough
        return device.name


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """The arguments every benchmark script shares: --quick, --rounds, --out."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes and few rounds, for checks (not figures)")
    p.add_argument("--rounds", type=_at_least(1), default=None,
                   help="timed rounds per candidate (default 5; 3 with --quick)")
    p.add_argument("--out", default=str(RESULTS / default_out), help="JSON file to write")
    return p


def _at_least(minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return convert


def write_json(path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value):
    if hasattr(value, "item"):        # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def table(rows: list[list], header: list[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def photos(count: int, size: int, seed: int = 0):
    """`count` uint8 RGB photos [count, size, size, 3]: random crops of scikit-image's bundled samples.

    Real photo statistics (edges, textures, colours) for int8 calibration and timing, with nothing downloaded.
    """
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    sources = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket(),
               np.stack([samples.camera()] * 3, -1)]
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        photo = sources[i % len(sources)]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out[i] = np.asarray(Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR))
    return out
