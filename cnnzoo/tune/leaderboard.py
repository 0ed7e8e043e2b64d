"""The leaderboard of a search: one row per trial, best first, kept next to KerasTuner's own files.

Sources, all inside the project directory (`directory/project_name`), so a finished, resumed or distributed
search (shared directory) reads the same:
    trial_*/trial.json     KerasTuner's trials: status, hyperparameters, score
    cnnzoo_runs.jsonl      one line per trial run by a cnnzoo tuner: tuner id, epochs trained, wall time
    cnnzoo_search.json     the search settings (objective and direction among them)

Example:
    >>> cnnzoo.tune.load_leaderboard("cnnzoo_tune", "search").head()      # doctest: +SKIP
"""
from __future__ import annotations

import glob
import json
import math
import os

import pandas as pd

from cnnzoo._checks import received

__all__ = ["load_leaderboard", "build_leaderboard", "write_leaderboard", "append_run", "read_runs", "load_trials"]

RUN_LOG = "cnnzoo_runs.jsonl"
SETTINGS = "cnnzoo_search.json"
CSV = "leaderboard.csv"
MARKDOWN = "leaderboard.md"


def append_run(project_dir: str, record: dict) -> None:
    """Append one run record; a single short line per write, so workers sharing the directory do not mix."""
    os.makedirs(project_dir, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(os.path.join(project_dir, RUN_LOG), "a", encoding="utf-8") as f:
        f.write(line)


def read_runs(project_dir: str) -> list[dict]:
    """Every run record, oldest first (a torn last line from a killed process is skipped)."""
    path = os.path.join(project_dir, RUN_LOG)
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def load_trials(project_dir: str) -> list:
    """KerasTuner's trials from their `trial.json` files."""
    from keras_tuner.engine.trial import Trial

    return [Trial.load(path) for path in sorted(glob.glob(os.path.join(project_dir, "trial_*", "trial.json")))]


def _hp_names(trials) -> list[str]:
    names = []
    for trial in trials:
        for hp in trial.hyperparameters.space:
            if hp.name not in names:
                names.append(hp.name)
        for name in trial.hyperparameters.values:
            if name not in names:
                names.append(name)
    return names


def build_leaderboard(trials, *, direction: str = "max", runs=()) -> pd.DataFrame:
    """Trials as a DataFrame: trial_id, status, tuner_id, every hyperparameter, objective, epochs, seconds.

    Completed trials come first, best objective first (`direction` "max" or "min"); the others follow in
    trial order with an empty objective.
    """
    last_run, completed_run = {}, {}
    for record in runs:
        last_run[record["trial_id"]] = record
        if record.get("status") == "completed":
            completed_run[record["trial_id"]] = record
    names = _hp_names(trials)
    rows = []
    for trial in trials:
        run = completed_run.get(trial.trial_id, last_run.get(trial.trial_id, {}))
        score = trial.score if trial.status == "COMPLETED" and trial.score is not None else math.nan
        row = {"trial_id": trial.trial_id, "status": trial.status.lower(), "tuner_id": run.get("tuner_id")}
        row.update({name: trial.hyperparameters.values.get(name) for name in names})
        row.update(objective=float(score), epochs=run.get("epochs"), seconds=run.get("seconds"))
        rows.append(row)
    columns = ["trial_id", "status", "tuner_id", *names, "objective", "epochs", "seconds"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    frame["_done"] = frame["objective"].notna()
    frame = frame.sort_values(["_done", "objective", "trial_id"], ascending=[False, direction == "min", True],
                              na_position="last", kind="mergesort")
    return frame.drop(columns="_done").reset_index(drop=True)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def to_markdown(frame: pd.DataFrame, title: str = "") -> str:
    """A GitHub-flavoured Markdown table (pandas' own needs the optional `tabulate` package)."""
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(map(str, frame.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(frame: pd.DataFrame, project_dir: str, *, objective: str = "", direction: str = "") -> dict:
    """Write `leaderboard.csv` and `leaderboard.md` into the project directory; returns their paths."""
    os.makedirs(project_dir, exist_ok=True)
    paths = {"csv": os.path.join(project_dir, CSV), "markdown": os.path.join(project_dir, MARKDOWN)}
    frame.to_csv(paths["csv"], index=False)
    title = f"Leaderboard: objective {objective} ({direction})" if objective else "Leaderboard"
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(to_markdown(frame, title))
    return paths


def read_settings(project_dir: str) -> dict | None:
    path = os.path.join(project_dir, SETTINGS)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_leaderboard(directory: str, project_name: str = "search") -> pd.DataFrame:
    """The leaderboard of a search saved under `directory/project_name` (finished or not), best first.

    Example:
        >>> board = cnnzoo.tune.load_leaderboard("cnnzoo_tune", "search")      # doctest: +SKIP
    """
    project_dir = os.path.join(os.fspath(directory), project_name)
    if not os.path.isdir(project_dir):
        raise ValueError(f"No search found in {project_dir!r}. {received('directory', directory)}")
    settings = read_settings(project_dir) or {}
    return build_leaderboard(load_trials(project_dir), direction=settings.get("direction", "max"),
                             runs=read_runs(project_dir))
