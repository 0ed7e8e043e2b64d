"""The zoo at a glance: parameters and MACs of every registered model, and one row per family.

`model_info` builds a model to count it (seconds for the large ones), so `cnnzoo list --long`, the README's
family table and notebook 01 read the counts from `FIGURES`, a table `model_info` wrote and
tests/models/test_figures.py holds equal to it. Regenerate after changing an architecture:

    python -m cnnzoo.models.figures        # rewrites cnnzoo/models/_figures_table.py

Example:
    >>> rows = zoo_table("densenet*")
    >>> rows[0]["name"], rows[0]["params"]
    ('densenet121', 8062504)
"""
from __future__ import annotations

from pathlib import Path

from cnnzoo.models._figures_table import FIGURES


def _row(name: str) -> dict:
    from cnnzoo import models

    entry = models.get_entry(name)
    if name in FIGURES:
        params, macs = FIGURES[name]
    else:  # registered outside the zoo (or the table is stale): count it
        info = models.model_info(name)
        params, macs = info.params, info.macs
    return {"name": name, "family": entry.family, "params": params, "macs": macs,
            "default_input_size": entry.default_input_size, "paper": entry.paper}


def zoo_table(pattern: str = "*") -> list[dict]:
    """One row per model matching `pattern`: name, family, params, macs, default_input_size, paper."""
    from cnnzoo import models

    return [_row(name) for name in models.list_models(pattern)]


def family_table(pattern: str = "*") -> list[dict]:
    """One row per family: its names, the range of params and MACs, default sizes and paper."""
    families: dict[str, list[dict]] = {}
    for row in zoo_table(pattern):
        families.setdefault(row["family"], []).append(row)
    out = []
    for family, rows in families.items():
        sizes = sorted({r["default_input_size"] for r in rows})
        out.append({"family": family, "models": len(rows), "names": [r["name"] for r in rows],
                    "params": (min(r["params"] for r in rows), max(r["params"] for r in rows)),
                    "macs": (min(r["macs"] for r in rows), max(r["macs"] for r in rows)),
                    "default_input_size": (sizes[0], sizes[-1]), "paper": rows[0]["paper"]})
    return out


def write_table(path: Path | None = None) -> Path:
    """Count every registered model with `model_info` and write the table module."""
    import keras

    from cnnzoo import models

    path = Path(path or Path(__file__).with_name("_figures_table.py"))
    lines = ['"""Written by `python -m cnnzoo.models.figures` from `cnnzoo.model_info`: name -> (params, macs)."""',
             "FIGURES = {"]
    for name in models.list_models():
        info = models.model_info(name)
        lines.append(f"    {name!r}: ({info.params}, {info.macs}),")
        keras.backend.clear_session()
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(write_table())
