"""Multi-label targets: several classes per image, as multi-hot rows (`from_arrays(x, y_multi_hot)`,
`from_directory(path, labels_csv=...)`).

A labels CSV has one row per image: a path relative to the dataset folder, then its labels separated by ";"
(an empty field: no label of these classes, a true negative for all of them). A first row `file,labels` (or any
first row whose path is not a file while the rest are) is a header.

    beach/01.jpg,sea;sky;sand
    street/7.png,car;person
    forest/2.jpg,

Example:
    >>> rows, problems = read_labels_csv("photos/labels.csv", "photos")      # doctest: +SKIP
    >>> names, hot = multi_hot([labels for _, labels in rows])               # doctest: +SKIP
"""
from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

from cnnzoo._checks import received

__all__ = ["read_labels_csv", "multi_hot", "as_multi_hot", "LABEL_SEPARATOR"]

LABEL_SEPARATOR = ";"


def read_labels_csv(csv_path: str, root: str) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str]]]:
    """([(absolute image path, [label, ...]), ...], [(path or "csv line N", reason), ...]) from a labels CSV."""
    if not os.path.isfile(csv_path):
        raise ValueError(f"`labels_csv` must be an existing CSV file. {received('labels_csv', csv_path)}")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"`labels_csv` could not be read as UTF-8 CSV ({error}). "
                         f"{received('labels_csv', csv_path)}") from None
    rows, problems, seen = [], [], {}
    for number, line in enumerate(lines, start=1):
        if not line or not any(cell.strip() for cell in line):
            continue
        name = line[0].strip()
        if number == 1 and (name.lower() in ("file", "filename", "path", "image")
                            or not os.path.exists(os.path.join(root, name))) and len(lines) > 1:
            continue    # a header row
        if len(line) > 2:
            problems.append((f"{csv_path} line {number}", f"{len(line)} fields; expected 'file,label;label;...'"))
            continue
        labels = [part.strip() for part in (line[1] if len(line) > 1 else "").split(LABEL_SEPARATOR)]
        labels = sorted(set(label for label in labels if label))
        path = os.path.normpath(os.path.join(root, name))
        if path in seen:
            problems.append((path, f"listed twice in {csv_path} (lines {seen[path]} and {number}); the first kept"))
            continue
        seen[path] = number
        if not os.path.exists(path):
            problems.append((path, f"listed in {csv_path} (line {number}) but not found"))
            continue
        rows.append((path, labels))
    if not rows:
        raise ValueError(f"`labels_csv` lists no images (rows 'file,label;label;...'). "
                         f"{received('labels_csv', csv_path)}")
    return rows, problems


def multi_hot(label_lists: Sequence[Sequence[str]], class_names: Sequence[str] | None = None
              ) -> tuple[list[str], np.ndarray]:
    """(class names, float32 [N, K] multi-hot) from per-image label lists; classes sorted unless given."""
    present = sorted({label for labels in label_lists for label in labels})
    if class_names is None:
        class_names = present
    class_names = [str(c) for c in class_names]
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise ValueError(f"Labels {unknown[:10]} are missing from `class_names`. {received('class_names', class_names)}")
    if len(class_names) < 2:
        raise ValueError(f"Multi-label data needs at least two classes. {received('class_names', class_names)}")
    index = {name: i for i, name in enumerate(class_names)}
    hot = np.zeros((len(label_lists), len(class_names)), np.float32)
    for row, labels in enumerate(label_lists):
        hot[row, [index[label] for label in labels]] = 1.0
    return class_names, hot


def as_multi_hot(y, class_names) -> tuple[np.ndarray, list[str]]:
    """A user's [N, K] 0/1 array checked: float32 multi-hot and class names ("0".."K-1" by default)."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] < 2:
        raise ValueError(f"Multi-label `y` must be an [N, K] array of 0/1 with K >= 2. Received: y.shape={y.shape}")
    if y.dtype.kind not in "biuf" or not np.all(np.isin(y, (0, 1))):
        raise ValueError("Multi-label `y` must hold only 0 and 1 (one column per class). "
                         f"Received: y values {np.unique(y)[:6].tolist()}")
    if class_names is None:
        class_names = [str(i) for i in range(y.shape[1])]
    class_names = [str(c) for c in class_names]
    if len(class_names) != y.shape[1]:
        raise ValueError(f"`class_names` must name the {y.shape[1]} columns of `y`. "
                         f"{received('class_names', class_names)}")
    return y.astype(np.float32), class_names
