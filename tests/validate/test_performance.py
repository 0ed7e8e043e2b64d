"""Performance: latency percentiles, the T(B) fit, memory peak and the bounded stress run."""
import time

import numpy as np
import pytest

import cnnzoo
from cnnzoo.export.runners import Runner
from cnnzoo.validate import performance


class FaultyRunner(Runner):
    """The real runner, with every `fail_every`-th request failing or each request slowed by `delay` seconds:
    fault injection for the error and overload accounting."""

    def __init__(self, inner, *, fail_every=0, delay=0.0):
        super().__init__(input_size=inner.input_size, class_names=inner.class_names)
        self.format = inner.format
        self.inner, self.fail_every, self.delay, self.calls = inner, fail_every, delay, 0

    def _run(self, images):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError(f"injected failure on call {self.calls}")
        time.sleep(self.delay)
        return self.inner.predict(images)


def test_latency_percentiles_are_ordered_and_positive(runner, digits):
    """Acceptance: p50 <= p95 <= p99, all positive, over the requested runs."""
    result = performance.latency(runner, digits["x_test"][0], runs=30, warmup=3)
    assert result["n"] == 30 and len(result["samples_ms"]) == 30
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["p50_ms"] == pytest.approx(np.percentile(result["samples_ms"], 50), rel=1e-3)


def test_batch_time_fit_and_throughput(runner, digits):
    fit = performance.fit_batch_time([1, 2, 4, 8], [0.012, 0.014, 0.018, 0.026])
    assert fit["t_setup_ms"] == pytest.approx(10.0) and fit["t_item_ms"] == pytest.approx(2.0)
    assert fit["r2"] == pytest.approx(1.0)
    assert performance.fit_batch_time([4], [0.01])["t_item_ms"] is None

    result = performance.throughput(runner, digits["x_test"][:5], batch_sizes=(32, 1, 8), repeats=2)
    assert [row["batch_size"] for row in result["batches"]] == [1, 8, 32]
    assert all(row["images_per_s"] > 0 for row in result["batches"])
    assert result["fit"]["t_item_ms"] > 0     # a batch of 32 costs more than a batch of 1
    assert result["best_images_per_s"] == max(row["images_per_s"] for row in result["batches"])
    with pytest.raises(ValueError, match="Received: batch_sizes=0"):
        performance.throughput(runner, digits["x_test"][:5], batch_sizes=(0, 4))


def test_memory_peak_sees_an_allocation():
    with performance.MemoryPeak() as peak:
        block = np.ones(200 * 1024 * 1024 // 8)     # 200 MiB, touched
        time.sleep(0.05)
    result = peak.result()
    del block
    assert result["increase_mb"] > 150 and result["rss_peak_mb"] >= result["rss_before_mb"]


def test_stress_counts_every_request_and_error(runner, digits):
    image = digits["x_test"][0]
    runner.predict(image[None])
    clean = performance.stress(runner, image, rate=40, duration=0.5, workers=2)
    assert clean["requests"] == 20 and clean["completed"] == 20 and clean["errors"] == 0
    assert 0 < clean["latency"]["p50_ms"] <= clean["latency"]["p99_ms"]
    assert clean["service"]["p50_ms"] <= clean["latency"]["p99_ms"]
    assert clean["wall_s"] >= 19 / 40          # requests are spread at the fixed rate, not sent at once

    faulty = FaultyRunner(runner, fail_every=4)
    result = performance.stress(faulty, image, rate=40, duration=0.5, workers=2)
    assert result["requests"] == 20 and result["errors"] == 5 and result["completed"] == 15
    assert result["error_rate"] == pytest.approx(0.25)
    assert any("injected failure" in message for message in result["error_messages"])


def test_stress_stops_by_itself_under_overload(runner, digits):
    """Requests arrive 10x faster than they are served: the run still ends on time and reports the backlog."""
    slow = FaultyRunner(runner, delay=0.1)
    start = time.perf_counter()
    result = performance.stress(slow, digits["x_test"][0], rate=100, duration=0.3, workers=1, drain_timeout=0.3)
    elapsed = time.perf_counter() - start
    # A ratio, not a wall-clock bound: serving all 30 requests (each >= 0.1 s, slower on a loaded machine) takes
    # several times longer than the bounded run (duration + drain timeout + the one request in flight).
    serve_all = result["requests"] * result["service"]["p50_ms"] / 1000
    assert result["requests"] == 30 and elapsed < 0.5 * serve_all, (elapsed, serve_all)
    assert 0 < result["completed"] < 30 and result["unfinished"] == 30 - result["completed"]
    assert result["errors"] == result["unfinished"] and result["error_rate"] > 0.5
    assert result["latency_growth"] > 1.5          # the queue grows while requests keep arriving
    time.sleep(0.15)                                # let the one request still running finish


def test_validate_gates_on_performance_thresholds(runner, digits):
    report = cnnzoo.validate(runner, digits["x_test"][:16], checks=("performance",), latency_runs=5, warmup=1,
                             batch_sizes=(1, 4), throughput_repeats=1, stress_rate=40, stress_seconds=0.25,
                             thresholds={"max_latency_p99_ms": 1e-6, "min_throughput": 1.0})
    assert [c["name"] for c in report.failures] == ["latency.p99_ms"]
    assert {c["name"] for c in report.checks} == {"latency.p99_ms", "throughput.best_images_per_s",
                                                  "stress.error_rate"}
    assert report.performance["cold_start"]["total_s"] > 0 and report.performance["memory"]["rss_peak_mb"] > 0

    # Stress errors fail the default gate (no failed request allowed).
    stressed = performance.stress(FaultyRunner(runner, fail_every=5), digits["x_test"][0], rate=40, duration=0.25)
    gated = cnnzoo.validate.ValidationReport(model={"format": "keras"}, performance={"stress": stressed})
    assert [c["name"] for c in gated.failures] == ["stress.error_rate"] and stressed["errors"] == 2
