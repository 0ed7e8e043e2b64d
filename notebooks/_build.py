"""Write the notebooks from their cell sources and execute them, so they are committed with real outputs.

    python notebooks/_build.py            # all notebooks, full settings
    python notebooks/_build.py 01 02      # only those
CI re-executes the committed notebooks with `pytest --nbmake` in quick mode (CNNZOO_QUICK=1, see conftest.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
SETUP = """import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
QUICK = os.environ.get("CNNZOO_QUICK") == "1"   # CI sets it: smaller models, fewer epochs
import numpy as np
import matplotlib
import matplotlib.pyplot as plt
import cnnzoo"""


def cells_of(source: str) -> list:
    """Split a script into cells at lines '# %%' (code) and '# %% [markdown]' (markdown)."""
    cells, kind, lines = [], "code", []

    def flush():
        text = "\n".join(lines).strip("\n")
        if text:
            if kind == "markdown":
                text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.split("\n"))
                cells.append(nbformat.v4.new_markdown_cell(text))
            else:
                cells.append(nbformat.v4.new_code_cell(text))

    for line in source.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return cells


def _only_tf_noise(text: str) -> bool:
    noise = ("WARNING: All log messages before absl", "I0000 ", "E0000 ", "W0000 ", "INFO:tensorflow:",
             "fully_quantize:", "INFO: Created TensorFlow Lite", "WARNING:absl:")
    return all(line.startswith(noise) or not line.strip() for line in text.splitlines())


def build(script: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells_of(script.read_text().replace("#SETUP", SETUP))
    out = HERE / (script.stem + ".ipynb")
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in nb.cells:  # TensorFlow's start-up log lines are noise in a committed notebook
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr"
                                                            and _only_tf_noise(o.text))]
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for script in sorted((HERE / "src").glob("*.py")):
        if not wanted or any(script.name.startswith(w) for w in wanted):
            print("built", build(script))
