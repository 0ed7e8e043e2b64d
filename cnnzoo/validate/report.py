"""`ValidationReport` and `Thresholds`: every figure a validation measured, the pass/fail checks against the
thresholds the user set, and one JSON + Markdown (+ PNG plots) rendering for a deployment gate.

Example:
    >>> report = cnnzoo.validate("exported/digits", data, thresholds={"max_latency_p99_ms": 20})  # doctest: +SKIP
    >>> report.passed, [c["name"] for c in report.failures]                                       # doctest: +SKIP
    >>> report.save("validation/")        # report.json, report.md, performance.png, ...          # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from cnnzoo._checks import check_float, received
from cnnzoo.options import VALIDATION_SECTIONS as SECTIONS  # defined once, for the CLI too



@dataclasses.dataclass
class Thresholds:
    """Pass/fail limits; None leaves a figure reported but not gated.

    Defaults gate only what needs no tuning: every golden case right, no failed stress request, and no
    significant drift (PSI > 0.2, the usual rule).

    Attributes:
        golden_accuracy: share of golden cases that must be right (1.0: all).
        min_accuracy, min_class_accuracy: accuracy on the data, overall and of the worst class.
        min_consistency: top-1 agreement each perturbation must keep.
        max_latency_p50_ms, max_latency_p95_ms, max_latency_p99_ms: batch-1 latency.
        min_throughput: images/s at the best batch size.
        max_cold_start_s: load plus first answer.
        max_memory_mb: peak resident memory of the process during the timed runs.
        max_stress_error_rate: share of stress requests that failed or did not finish.
        max_latency_growth: stress latency, last quarter over first quarter (median).
        max_ece: expected calibration error.
        max_psi: every PSI (R, G, B, embedding, entropy, class distribution) must stay at or below it.
        max_ks: every per-channel KS statistic must stay at or below it.
    """

    golden_accuracy: float | None = 1.0
    min_accuracy: float | None = None
    min_class_accuracy: float | None = None
    min_consistency: float | None = None
    max_latency_p50_ms: float | None = None
    max_latency_p95_ms: float | None = None
    max_latency_p99_ms: float | None = None
    min_throughput: float | None = None
    max_cold_start_s: float | None = None
    max_memory_mb: float | None = None
    max_stress_error_rate: float | None = 0.0
    max_latency_growth: float | None = None
    max_ece: float | None = None
    max_psi: float | None = 0.2
    max_ks: float | None = None

    _UNIT = ("golden_accuracy", "min_accuracy", "min_class_accuracy", "min_consistency", "max_stress_error_rate",
             "max_ece", "max_ks")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            name = f"thresholds.{field.name}"
            if field.name in self._UNIT:
                setattr(self, field.name, check_float(name, value, minimum=0.0, maximum=1.0))
            else:
                setattr(self, field.name, check_float(name, value, minimum=0.0, exclusive_minimum=True))

    @classmethod
    def coerce(cls, value) -> "Thresholds":
        """None -> defaults; a dict of field names -> values (others keep their defaults); a Thresholds."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"`thresholds` must be a dict or a Thresholds. {received('thresholds', value)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"`thresholds` has unknown names {unknown}; known: {sorted(known)}. "
                             f"{received('thresholds', value)}")
        return cls(**value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(name: str, value, threshold, op: str, detail: str = "") -> dict:
    passed = value is not None and (value >= threshold if op == ">=" else value <= threshold)
    return {"name": name, "value": value, "threshold": threshold, "op": op, "passed": bool(passed), "detail": detail}


def build_checks(report: "ValidationReport") -> list[dict]:
    """The gated checks: one per figure with a threshold set, on the sections that ran."""
    t = report.thresholds
    checks = []
    functional = report.functional or {}
    golden = functional.get("golden")
    if golden and t.golden_accuracy is not None:
        checks.append(_check("golden.accuracy", golden["accuracy"], t.golden_accuracy, ">=",
                             f"{len(golden['misses'])} of {golden['n']} golden cases missed"))
    accuracy = functional.get("accuracy")
    if accuracy and t.min_accuracy is not None:
        checks.append(_check("accuracy", accuracy["accuracy"], t.min_accuracy, ">="))
    if accuracy and t.min_class_accuracy is not None:
        worst = min(accuracy["per_class"].items(), key=lambda kv: kv[1]["accuracy"] if kv[1]["support"] else 2.0)
        checks.append(_check("accuracy.min_class", accuracy["min_class_accuracy"], t.min_class_accuracy, ">=",
                             f"worst class {worst[0]!r}"))
    for name, figures in (functional.get("consistency") or {}).items():
        if t.min_consistency is not None:
            checks.append(_check(f"consistency.{name}", figures["agreement"], t.min_consistency, ">=",
                                 f"{figures['changed']} of {figures['n']} predictions changed"))

    performance = report.performance or {}
    lat = performance.get("latency")
    for key, limit in (("p50_ms", t.max_latency_p50_ms), ("p95_ms", t.max_latency_p95_ms),
                       ("p99_ms", t.max_latency_p99_ms)):
        if lat and limit is not None:
            checks.append(_check(f"latency.{key}", lat[key], limit, "<="))
    if performance.get("throughput") and t.min_throughput is not None:
        tp = performance["throughput"]
        checks.append(_check("throughput.best_images_per_s", tp["best_images_per_s"], t.min_throughput, ">=",
                             f"at batch {tp['best_batch_size']}"))
    if performance.get("cold_start") and t.max_cold_start_s is not None:
        checks.append(_check("cold_start.total_s", performance["cold_start"]["total_s"], t.max_cold_start_s, "<="))
    if performance.get("memory") and t.max_memory_mb is not None:
        checks.append(_check("memory.rss_peak_mb", performance["memory"]["rss_peak_mb"], t.max_memory_mb, "<="))
    stress = performance.get("stress")
    if stress and t.max_stress_error_rate is not None:
        checks.append(_check("stress.error_rate", stress["error_rate"], t.max_stress_error_rate, "<=",
                             f"{stress['errors']} of {stress['requests']} requests failed or did not finish"))
    if stress and t.max_latency_growth is not None:
        checks.append(_check("stress.latency_growth", stress["latency_growth"], t.max_latency_growth, "<="))

    if report.calibration and t.max_ece is not None:
        checks.append(_check("calibration.ece", report.calibration["ece"], t.max_ece, "<="))

    drift = report.drift
    if drift:
        if t.max_psi is not None:
            for name, value in drift["psi"].items():
                if value is not None:
                    checks.append(_check(f"drift.psi.{name}", value, t.max_psi, "<="))
        if t.max_ks is not None:
            for name, figures in drift["ks"].items():
                checks.append(_check(f"drift.ks.{name}", figures["statistic"], t.max_ks, "<="))
    return checks


@dataclasses.dataclass
class ValidationReport:
    """What `cnnzoo.validate` measured, and whether it passed.

    Attributes:
        model: dict, the runner validated (format, path, input_size, class_names).
        data: dict, the images validated: n_images, labelled, skipped_files (unreadable files, with reasons).
        functional: dict or None: "accuracy" (overall, per class, confusion matrix), "golden" (n, correct, every
            miss), "consistency" (perturbation -> agreement).
        performance: dict or None: "latency" (p50/p95/p99 ms ...), "throughput" (per batch size and the
            T(B) = T_setup + B * T_item fit), "cold_start", "memory", "stress".
        calibration: dict or None: "ece", "n_bins", "reliability" (per-bin table).
        drift: dict or None: "significant", "level", "reasons", "psi", "ks", and details.
        checks: list of dicts (name, value, threshold, op, passed, detail), one per gated figure.
        skipped: dict section -> why it did not run.
        thresholds: Thresholds.
    """

    model: dict
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    data: dict = dataclasses.field(default_factory=dict)
    functional: dict | None = None
    performance: dict | None = None
    calibration: dict | None = None
    drift: dict | None = None
    skipped: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    checks: list = dataclasses.field(default_factory=list)
    eval_report: object = dataclasses.field(default=None, repr=False)
    histograms: tuple | None = dataclasses.field(default=None, repr=False)   # (reference [3,256], new [3,256])

    def __post_init__(self):
        if not self.checks:
            self.checks = build_checks(self)

    @property
    def passed(self) -> bool:
        """True when every gated check passed (a report with no gated check passes)."""
        return all(check["passed"] for check in self.checks)

    @property
    def failures(self) -> list[dict]:
        return [check for check in self.checks if not check["passed"]]

    def to_dict(self) -> dict:
        """JSON-ready dict: passed, model, thresholds, checks, and the four sections."""
        out = {"passed": self.passed, "model": self.model, "data": self.data, "thresholds": self.thresholds.to_dict(),
               "checks": self.checks, "skipped": self.skipped, "notes": self.notes}
        for section in SECTIONS:
            out[section] = getattr(self, section)
        return _jsonable(out)

    def __repr__(self) -> str:
        ran = [s for s in SECTIONS if getattr(self, s) is not None]
        return (f"ValidationReport(passed={self.passed}, format={self.model.get('format')!r}, sections={ran}, "
                f"failures={[c['name'] for c in self.failures]})")

    # -- rendering ---------------------------------------------------------------------------------------
    def to_markdown(self, plots: dict | None = None) -> str:
        """The report as Markdown; `plots` maps plot names to file names to link."""
        plots = plots or {}
        lines = [f"# Validation: {'PASSED' if self.passed else 'FAILED'}", "",
                 f"Model: `{self.model.get('path') or 'in-memory Keras model'}` ({self.model.get('format')}), "
                 f"input {self.model.get('input_size')}; {self.data.get('n_images', '?')} images validated.", ""]
        if self.checks:
            lines += ["| check | value | threshold | result | detail |", "|---|---|---|---|---|"]
            for c in self.checks:
                lines.append(f"| {c['name']} | {_fmt(c['value'])} | {c['op']} {_fmt(c['threshold'])} | "
                             f"{'pass' if c['passed'] else '**FAIL**'} | {c['detail']} |")
        else:
            lines.append("No gated checks (no thresholds applied to what ran).")
        for section, reason in self.skipped.items():
            lines.append(f"\n_{section} skipped: {reason}_")
        for item in self.data.get("skipped_files", []):
            lines.append(f"\n_Unreadable file skipped: `{item['path']}` ({item['reason']})_")
        lines += [f"\n_Note: {note}_" for note in self.notes]
        lines += self._markdown_functional() + self._markdown_performance(plots) + self._markdown_calibration(plots)
        lines += self._markdown_drift(plots)
        return "\n".join(lines) + "\n"

    def _markdown_functional(self) -> list[str]:
        f = self.functional
        if not f:
            return []
        lines = ["", "## Functional"]
        if f.get("golden"):
            g = f["golden"]
            lines += ["", f"Golden cases: {g['correct']} of {g['n']} right ({g['accuracy']:.1%})."]
            if g["misses"]:
                lines += ["", "| # | file | expected | predicted | confidence | p(expected) |",
                          "|---|---|---|---|---|---|"]
                lines += [f"| {m['index']} | {m['path'] or ''} | {m['expected']} | {m['predicted']} | "
                          f"{m['confidence']:.3f} | {m['expected_probability']:.3f} |" for m in g["misses"]]
            if g["skipped"]:
                lines += ["", "Skipped golden files:"] + [f"- `{s['path']}`: {s['reason']}" for s in g["skipped"]]
        if f.get("accuracy"):
            a = f["accuracy"]
            lines += ["", f"Accuracy {a['accuracy']:.2%} on {a['n']} images.", "",
                      "| class | accuracy | support |", "|---|---|---|"]
            lines += [f"| {name} | {v['accuracy']:.2%} | {v['support']} |" for name, v in a["per_class"].items()]
        if f.get("consistency"):
            lines += ["", "| perturbation | top-1 agreement | changed |", "|---|---|---|"]
            lines += [f"| {name} | {v['agreement']:.2%} | {v['changed']} of {v['n']} |"
                      for name, v in f["consistency"].items()]
        return lines

    def _markdown_performance(self, plots) -> list[str]:
        p = self.performance
        if not p:
            return []
        lines = ["", "## Performance"]
        if p.get("latency"):
            lat = p["latency"]
            lines += ["", f"Batch-1 latency over {lat['n']} runs after {lat['warmup']} warm-up: p50 "
                          f"{lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
                          f"(min {lat['min_ms']:.2f}, max {lat['max_ms']:.2f})."]
        if p.get("throughput"):
            tp = p["throughput"]
            lines += ["", "| batch | ms / batch | ms / image | images/s |", "|---|---|---|---|"]
            lines += [f"| {r['batch_size']} | {r['seconds'] * 1000:.2f} | {r['ms_per_image']:.3f} | "
                      f"{r['images_per_s']:.1f} |" for r in tp["batches"]]
            fit = tp["fit"]
            if fit["t_item_ms"] is not None:
                lines += ["", f"Fit T(B) = T_setup + B * T_item: T_setup {fit['t_setup_ms']:.2f} ms, T_item "
                              f"{fit['t_item_ms']:.3f} ms, R^2 {fit['r2']:.3f}."]
        if p.get("cold_start"):
            cs = p["cold_start"]
            lines += ["", f"Cold start: load {cs['load_s']:.2f} s + first answer {cs['first_predict_s']:.2f} s"
                          f"{'' if cs['from_file'] else ' (in-memory model: no file read)'}."]
        if p.get("memory") and p["memory"].get("rss_peak_mb") is not None:
            m = p["memory"]
            gpu = "" if m.get("gpu_peak_mb") is None else f", GPU peak {m['gpu_peak_mb']:.1f} MiB"
            lines += ["", f"Memory: peak RSS {m['rss_peak_mb']:.1f} MiB (+{m['increase_mb']:.1f} MiB during the "
                          f"timed runs){gpu}."]
        if p.get("stress"):
            s = p["stress"]
            line = (f"Stress: {s['requests']} requests at {s['rate']:g}/s over {s['duration']:g} s, {s['workers']} "
                    f"threads: {s['completed']} completed, {s['errors']} errors")
            if s.get("latency"):
                line += (f", latency p50 {s['latency']['p50_ms']:.2f} / p99 {s['latency']['p99_ms']:.2f} ms, "
                         f"growth x{s['latency_growth']:.2f}")
            lines += ["", line + "."] + [f"- error: `{msg}`" for msg in s["error_messages"]]
        if "performance" in plots:
            lines += ["", f"![performance]({plots['performance']})"]
        return lines

    def _markdown_calibration(self, plots) -> list[str]:
        c = self.calibration
        if not c:
            return []
        lines = ["", "## Calibration", "", f"ECE {c['ece']:.4f} ({c['n_bins']} bins, {c['n']} images)."]
        if "reliability" in plots:
            lines += ["", f"![reliability]({plots['reliability']})"]
        return lines

    def _markdown_drift(self, plots) -> list[str]:
        d = self.drift
        if not d:
            return []
        lines = ["", "## Drift", "", f"Verdict: **{d['level']}** (PSI threshold {d['threshold']:g}; "
                                     f"{d['n_new']} new vs {d['n_reference']} reference images).", "",
                 "| statistic | PSI | level |", "|---|---|---|"]
        for name, value in d["psi"].items():
            lines.append(f"| {name} | {_fmt(value)} | {'' if value is None else _level(value, d['threshold'])} |")
        lines += ["", "| channel | KS D | p-value | mean ref | mean new |", "|---|---|---|---|---|"]
        for name, ch in d["channels"].items():
            lines.append(f"| {name} | {ch['ks']['statistic']:.4f} | {ch['ks']['p_value']:.3g} | "
                         f"{ch['reference_mean']:.1f} | {ch['new_mean']:.1f} |")
        if d.get("entropy"):
            e = d["entropy"]
            lines += ["", f"Prediction entropy: {e['reference_mean']:.3f} -> {e['new_mean']:.3f} bits "
                          f"(max {e['max_bits']:.2f})."]
        if d.get("class_distribution"):
            shift = d["class_distribution"]["total_variation"]
            lines += ["", f"Predicted-class distribution: total variation {shift:.3f}."]
        if not d["embedding"].get("available"):
            lines += ["", f"Embedding drift not measured: {d['embedding'].get('reason')}."]
        if "drift" in plots:
            lines += ["", f"![drift]({plots['drift']})"]
        return lines

    # -- plots -------------------------------------------------------------------------------------------
    def plot_reliability(self):
        """Reliability diagram (from `cnnzoo.evaluate`'s EvalReport); None without calibration."""
        return None if self.eval_report is None else self.eval_report.plot_reliability()

    def plot_performance(self):
        """Latency histogram with percentiles, throughput per batch size with the T(B) fit, stress latency."""
        p = self.performance
        if not p:
            return None
        from matplotlib.figure import Figure

        fig = Figure(figsize=(15, 4))
        axes = fig.subplots(1, 3)
        if p.get("latency"):
            lat = p["latency"]
            axes[0].hist(lat["samples_ms"], bins=30, color="tab:blue", alpha=0.7)
            for key, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
                axes[0].axvline(lat[key], color="black", linestyle=style, label=f"{key[:3]} {lat[key]:.2f} ms")
            axes[0].set_xlabel("batch-1 latency (ms)")
            axes[0].legend()
        if p.get("throughput"):
            tp = p["throughput"]
            sizes = np.array([r["batch_size"] for r in tp["batches"]])
            axes[1].plot(sizes, [r["seconds"] * 1000 for r in tp["batches"]], "o", label="measured")
            fit = tp["fit"]
            if fit["t_item_ms"] is not None:
                axes[1].plot(sizes, fit["t_setup_ms"] + sizes * fit["t_item_ms"], "-",
                             label=f"{fit['t_setup_ms']:.2f} + B x {fit['t_item_ms']:.3f} ms")
            axes[1].set_xlabel("batch size B")
            axes[1].set_ylabel("ms per batch")
            axes[1].legend()
        stress = p.get("stress")
        if stress and stress.get("latencies_ms"):
            axes[2].plot(stress["due_s"], stress["latencies_ms"], ".", markersize=3)
            axes[2].set_xlabel("request due (s)")
            axes[2].set_ylabel("latency (ms)")
            axes[2].set_title(f"stress {stress['rate']:g}/s, {stress['errors']} errors")
        fig.tight_layout()
        return fig

    def plot_drift(self):
        """Per-channel intensity distributions, reference against new data, with PSI and KS in the titles."""
        if not self.drift or self.histograms is None:
            return None
        from matplotlib.figure import Figure

        reference, new = self.histograms
        fig = Figure(figsize=(15, 3.5))
        for c, ax in enumerate(fig.subplots(1, 3)):
            name = "RGB"[c]
            ax.plot(np.arange(256), reference[c] / max(reference[c].sum(), 1), label="reference")
            ax.plot(np.arange(256), new[c] / max(new[c].sum(), 1), label="new")
            ax.set_yscale("log")
            ax.set_xlabel(f"{name} intensity")
            ax.set_title(f"{name}: PSI {self.drift['psi'][name]:.3f}, KS {self.drift['ks'][name]['statistic']:.3f}")
            ax.legend()
        fig.tight_layout()
        return fig

    def save(self, path) -> dict:
        """Write report.json, report.md and the plots (performance.png, reliability.png, drift.png) into the
        directory `path`; returns {name: Path}."""
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise ValueError(f"`path` must be a directory for the report files. {received('path', str(path))}")
        out.mkdir(parents=True, exist_ok=True)
        written, plots = {}, {}
        for name, figure in (("performance", self.plot_performance()), ("reliability", self.plot_reliability()),
                             ("drift", self.plot_drift())):
            if figure is not None:
                figure.savefig(out / f"{name}.png", dpi=90)
                plots[name] = f"{name}.png"
                written[name] = out / f"{name}.png"
        written["json"] = out / "report.json"
        written["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        written["markdown"] = out / "report.md"
        written["markdown"].write_text(self.to_markdown(plots), encoding="utf-8")
        return written


def _level(value: float, threshold: float) -> str:
    from cnnzoo.validate.drift import level

    return level(value, threshold)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value
