"""Performance checks on the runner that will be deployed: latency percentiles, throughput per batch size with
the fit `T(B) = T_setup + B * T_item`, cold start, peak memory, and a bounded stress run.

The stress run is open-loop: requests are due at a fixed rate, whether or not earlier ones finished, and a thread
pool serves them from the in-process runner (no sockets, nothing leaves the process). A request's latency runs
from when it was due to when it finished, so queueing under overload shows up as latency growth. The run stops by
itself: at most `rate * duration` (and `max_requests`) requests, then at most `drain_timeout` seconds of waiting;
requests still queued then are cancelled and counted as errors.

Example:
    >>> runner = cnnzoo.export.load_runner("exported/digits")            # doctest: +SKIP
    >>> latency(runner, image, runs=100)["p99_ms"]                       # doctest: +SKIP
    >>> stress(runner, image, rate=50, duration=5)["latency_growth"]      # doctest: +SKIP
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
from typing import Sequence

import numpy as np

from cnnzoo._checks import check_float, check_int, received

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def percentiles(times_ms) -> dict:
    """p50, p95, p99 (numpy's linear interpolation), mean, min and max of timings in milliseconds."""
    times = np.asarray(times_ms, np.float64)
    if times.size == 0:
        raise ValueError("No timings to summarise. Received: times_ms=[]")
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(times.mean()),
            "min_ms": float(times.min()), "max_ms": float(times.max()), "n": int(times.size)}


def latency(runner, image, *, runs: int = 50, warmup: int = 5) -> dict:
    """Batch-1 latency over `runs` calls after `warmup` calls: percentiles, plus the samples in "samples_ms"."""
    from cnnzoo.data.adapt import as_rgb_uint8

    check_int("runs", runs, minimum=1)
    check_int("warmup", warmup, minimum=0)
    image = as_rgb_uint8(image, name="image")[:1]
    for _ in range(warmup):
        runner.predict(image, batch_size=1)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.predict(image, batch_size=1)
        samples.append((time.perf_counter() - start) * 1000.0)
    return {**percentiles(samples), "warmup": warmup, "samples_ms": [round(s, 4) for s in samples]}


def fit_batch_time(batch_sizes: Sequence[int], seconds: Sequence[float]) -> dict:
    """Least-squares fit of `T(B) = T_setup + B * T_item`; returns milliseconds and the fit's R^2.

    Example:
        >>> fit_batch_time([1, 2, 4], [0.012, 0.014, 0.018])    # T_setup 10 ms, T_item 2 ms, R^2 1
    """
    b = np.asarray(batch_sizes, np.float64)
    t = np.asarray(seconds, np.float64)
    if b.size < 2 or np.unique(b).size < 2:
        return {"t_setup_ms": None, "t_item_ms": None, "r2": None}
    slope, intercept = np.polyfit(b, t, 1)
    residual = t - (intercept + slope * b)
    total = np.sum((t - t.mean()) ** 2)
    r2 = 1.0 - float(np.sum(residual ** 2) / total) if total > 0 else 1.0
    return {"t_setup_ms": float(intercept * 1000.0), "t_item_ms": float(slope * 1000.0), "r2": r2}


def throughput(runner, images, *, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 3,
               warmup: int = 1) -> dict:
    """Median time per batch and images/s for each batch size, and the `T(B)` fit over them."""
    from cnnzoo.data.adapt import as_rgb_uint8

    check_int("repeats", repeats, minimum=1)
    check_int("warmup", warmup, minimum=0)
    sizes = _batch_sizes(batch_sizes)
    images = as_rgb_uint8(images, name="images")
    pool = np.concatenate([images] * int(np.ceil(max(sizes) / len(images))))
    rows = []
    for size in sizes:
        batch = pool[:size]
        for _ in range(warmup):          # a new batch size may retrace (Keras) or reallocate (TFLite)
            runner.predict(batch, batch_size=size)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            runner.predict(batch, batch_size=size)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        rows.append({"batch_size": size, "seconds": seconds, "ms_per_image": seconds * 1000.0 / size,
                     "images_per_s": size / seconds})
    fit = fit_batch_time([r["batch_size"] for r in rows], [r["seconds"] for r in rows])
    best = max(rows, key=lambda r: r["images_per_s"])
    return {"batches": rows, "fit": fit, "best_images_per_s": best["images_per_s"],
            "best_batch_size": best["batch_size"], "repeats": repeats}


def _batch_sizes(batch_sizes) -> list[int]:
    if isinstance(batch_sizes, int):
        batch_sizes = [batch_sizes]
    sizes = sorted({check_int("batch_sizes", b, minimum=1) for b in batch_sizes})
    if not sizes:
        raise ValueError(f"`batch_sizes` must name at least one batch size. {received('batch_sizes', batch_sizes)}")
    return sizes


def cold_start(source, image) -> dict | None:
    """Seconds to load the model into a fresh runner and to answer its first request.

    A path is loaded from disk; an in-memory keras.Model is wrapped again (its graph is traced anew, but no file
    is read, which the result says). None for a runner with neither a file nor a Keras model to reload.
    """
    from cnnzoo.data.adapt import as_rgb_uint8
    from cnnzoo.export.runners import Runner, load_runner

    image = as_rgb_uint8(image, name="image")[:1]
    in_memory = isinstance(source, Runner) and source.path is None
    if in_memory and not hasattr(source, "model"):
        return None
    start = time.perf_counter()
    if isinstance(source, Runner):
        fresh = (load_runner(source.model, class_names=source.class_names, input_size=source.input_size)
                 if in_memory else load_runner(source.path))
    else:
        fresh = load_runner(source)
    loaded = time.perf_counter()
    fresh.predict(image, batch_size=1)
    answered = time.perf_counter()
    return {"load_s": loaded - start, "first_predict_s": answered - loaded, "total_s": answered - start,
            "from_file": not in_memory}


# ------------------------------------------------------------------------------------------- memory

def rss_bytes() -> int | None:
    """Resident memory of this process (psutil when installed, else /proc), or None where neither exists."""
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryPeak:
    """Context manager sampling resident memory every `interval` s; `.result()` gives MiB before/peak/increase.

    Includes GPU peak memory (TensorFlow's allocator) when a GPU is visible.

    Example:
        >>> with MemoryPeak() as peak:
        ...     runner.predict(images)                # doctest: +SKIP
        >>> peak.result()["increase_mb"]             # doctest: +SKIP
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.before = self.peak = None
        self._stop = threading.Event()
        self._gpu = None

    def __enter__(self):
        import tensorflow as tf

        self._gpu = "GPU:0" if tf.config.list_logical_devices("GPU") else None
        if self._gpu:
            tf.config.experimental.reset_memory_stats(self._gpu)
        self.before = self.peak = rss_bytes()
        if self.before is not None:
            self._thread = threading.Thread(target=self._sample, name="cnnzoo-memory", daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            current = rss_bytes()
            if current is not None and current > self.peak:
                self.peak = current

    def __exit__(self, *exc):
        self._stop.set()
        if self.before is not None:
            self._thread.join()
            self.peak = max(self.peak, rss_bytes() or 0)
        return False

    def result(self) -> dict:
        mib = 1024.0 * 1024.0
        out = {"rss_before_mb": None, "rss_peak_mb": None, "increase_mb": None, "gpu_peak_mb": None}
        if self.before is not None:
            out.update(rss_before_mb=self.before / mib, rss_peak_mb=self.peak / mib,
                       increase_mb=(self.peak - self.before) / mib)
        if self._gpu:
            import tensorflow as tf
            out["gpu_peak_mb"] = tf.config.experimental.get_memory_info(self._gpu)["peak"] / mib
        return out


# ------------------------------------------------------------------------------------------- stress

def _thread_safe(runner) -> bool:
    # One TFLite interpreter must not run two invocations at once; the others are safe to call concurrently.
    return getattr(runner, "thread_safe", getattr(runner, "format", None) != "tflite")


def stress(runner, image, *, rate: float = 20.0, duration: float = 3.0, workers: int = 4,
           max_requests: int | None = None, drain_timeout: float | None = None) -> dict:
    """Batch-1 requests due at `rate` per second for `duration` seconds, served by `workers` threads (after one
    untimed warm-up request).

    Returns requests, completed, errors (with up to 5 distinct messages), error_rate, achieved_rate,
    latency and service-time percentiles, latency_growth (median latency of the last quarter of requests over
    the first quarter) and wall_s. Requests a TFLite runner serves one at a time (an interpreter is not
    re-entrant), as a deployment with one interpreter would.
    """
    from cnnzoo.data.adapt import as_rgb_uint8

    rate = check_float("rate", rate, minimum=0.0, exclusive_minimum=True)
    duration = check_float("duration", duration, minimum=0.0, exclusive_minimum=True)
    check_int("workers", workers, minimum=1)
    n = max(1, int(round(rate * duration)))
    if max_requests is not None:
        n = min(n, check_int("max_requests", max_requests, minimum=1))
    drain_timeout = max(5.0, duration) if drain_timeout is None else check_float(
        "drain_timeout", drain_timeout, minimum=0.0)
    image = as_rgb_uint8(image, name="image")[:1]
    guard = contextlib.nullcontext() if _thread_safe(runner) else threading.Lock()
    records: list = [None] * n

    def request(index: int, due: float):
        started = time.perf_counter()
        error = None
        try:
            with guard:
                runner.predict(image, batch_size=1)
        except Exception as exc:  # noqa: BLE001 - a failed request is a result to count, not to raise
            error = f"{type(exc).__name__}: {exc}"[:300]
        records[index] = (due, started, time.perf_counter(), error)

    try:   # one untimed request first, so no thread pays for a first trace or allocation
        with guard:
            runner.predict(image, batch_size=1)
    except Exception:  # noqa: BLE001 - a broken runner shows up as failed requests below
        pass
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="cnnzoo-stress")
    begin = time.perf_counter()
    try:
        futures = []
        for index in range(n):
            due = begin + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(request, index, due))
        concurrent.futures.wait(futures, timeout=drain_timeout)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    end = time.perf_counter()

    finished = [r for r in records if r is not None]
    ok = sorted((r for r in finished if r[3] is None), key=lambda r: r[0])
    messages = sorted({r[3] for r in finished if r[3] is not None})
    failed = len(finished) - len(ok) + (n - len(finished))
    out = {"rate": rate, "duration": duration, "workers": workers, "requests": n, "completed": len(ok),
           "errors": failed, "unfinished": n - len(finished), "error_rate": failed / n, "error_messages": messages[:5],
           "wall_s": end - begin, "serialized": not _thread_safe(runner)}
    if ok:
        latencies = np.array([(r[2] - r[0]) * 1000.0 for r in ok])
        services = np.array([(r[2] - r[1]) * 1000.0 for r in ok])
        quarter = max(1, len(ok) // 4)
        first, last = np.median(latencies[:quarter]), np.median(latencies[-quarter:])
        span = max(r[2] for r in ok) - begin
        out.update(latency=percentiles(latencies), service=percentiles(services),
                   latency_growth=float(last / first) if first > 0 else None,
                   achieved_rate=len(ok) / span if span > 0 else None,
                   latencies_ms=[round(float(v), 3) for v in latencies],
                   due_s=[round(r[0] - begin, 4) for r in ok])
    else:
        out.update(latency=None, service=None, latency_growth=None, achieved_rate=0.0, latencies_ms=[], due_s=[])
    return out
