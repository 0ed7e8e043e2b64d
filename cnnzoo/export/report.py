"""`ExportReport`: what `cnnzoo.export` wrote and what it measured."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExportReport:
    """Result of `cnnzoo.export`.

    Attributes:
        directory: Path, the version directory `out_dir/<version>/` (a TF Serving model version).
        version: int.
        paths: dict format -> Path of the artifact (the SavedModel's path is `directory`).
        parity: dict format -> figures (max_abs_diff, top1_agreement, accuracy_drop_points, batch_max_diff,
            passed, failures, ...; a segmenter's top1_agreement is per pixel, with miou / miou_drop_points).
        sizes: dict format -> bytes on disk.
        latency: dict format -> batch-1 latency on this machine ({"p50_ms", "min_ms", "repeats"}).
        card: dict, the content of model_card.json.

    Example:
        >>> report = cnnzoo.export(model, "exported", representative_data=data)   # doctest: +SKIP
        >>> report.paths["tflite_int8"], report.parity["tflite_int8"]["top1_agreement"]   # doctest: +SKIP
    """

    directory: Path
    version: int
    paths: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every format passed its parity checks (always True after a `parity=True` export)."""
        return all(figures.get("passed", True) for figures in self.parity.values())

    @property
    def card_path(self) -> Path:
        return self.directory / "model_card.json"

    def summary(self) -> str:
        """One line per format: size, latency, parity."""
        lines = [f"Exported version {self.version} to {self.directory}"]
        for fmt, path in self.paths.items():
            figures = self.parity.get(fmt, {})
            check = "skipped" if not figures else ("ok" if figures.get("passed") else "FAILED")
            diff = figures.get("max_abs_diff")
            agreement = figures.get("top1_agreement")
            per_pixel = figures.get("per_pixel", False)
            detail = "" if diff is None else \
                f" max|diff| {diff:.2g}, {'pixel' if per_pixel else 'top-1'} agreement {agreement:.1%}"
            if figures.get("miou") is not None:
                detail += f", mIoU {figures['reference_miou']:.4f} -> {figures['miou']:.4f}"
            latency = self.latency.get(fmt, {}).get("p50_ms")
            lines.append(f"  {fmt:15s} {self.sizes.get(fmt, 0) / 1024:9.1f} KiB  "
                         f"{'' if latency is None else f'{latency:8.2f} ms'}  parity {check}{detail}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ExportReport(version={self.version}, formats={list(self.paths)}, passed={self.passed})"
