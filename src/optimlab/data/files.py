"""Tables from local files: ``load_csv`` and ``load_npz``.

Both infer the task when ``task=None`` (see ``optimlab.data.dataset.infer_task``) and map class
labels to ``0..k-1``, keeping the original labels in ``info["classes"]`` and
``info["label_map"]``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from optimlab._checks import check_choice
from optimlab.data.dataset import TASKS, Dataset, Task

_MISSING = {"", "na", "nan", "null", "none", "?"}


def _number(cell: str) -> float | None:
    """The cell as a float, ``nan`` for an empty/missing marker, ``None`` if not a number."""
    text = cell.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(cell: str) -> bool:
    text = cell.strip()
    return bool(text) and text.lower() not in _MISSING and _number(text) is not None


def load_csv(
    path: str | os.PathLike[str],
    target: str | int,
    task: Task | None = None,
    delimiter: str = ",",
    header: bool | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a delimited text file; ``target`` picks the label column, every other column is a
    feature.

    ``target`` is a column name (needs a header) or an index (negative counts from the end).
    ``header=None`` detects a header: the first row is one when all its cells are non-numeric,
    or when a column is non-numeric in the first row but numeric in the second. Empty cells and
    ``NA``/``nan``/``?`` become NaN, which the ``Dataset`` check then reports by row and column.
    A non-numeric feature column raises ``ValueError`` naming it (encode or drop it first).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {str(path)!r} does not exist; check the path")
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw_bytes[:err.start].count(b"\n") + 1
        raise ValueError(
            f"{str(path)!r} is not UTF-8 text (line {line} holds a byte that UTF-8 does not "
            f"allow); save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > "
            f"{path.stem}-utf8{path.suffix}"
        ) from None
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{str(path)!r} is empty; it needs at least one row of data")
    if header is None:
        first = rows[0]
        second = rows[1] if len(rows) > 1 else []
        header = all(not _is_number(c) for c in first) or any(
            not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False)
        )
    columns = [c.strip() for c in rows[0]] if header else None
    data = rows[1:] if header else rows
    width = len(rows[0])
    for i, row in enumerate(data):
        if len(row) != width:
            line = i + 1 + (1 if header else 0)
            raise ValueError(
                f"{str(path)!r} line {line} has {len(row)} fields but the first row has {width}; "
                f"check the delimiter (delimiter={delimiter!r}) and quoting"
            )
    if not data:
        raise ValueError(f"{str(path)!r} has a header but no data rows")

    if isinstance(target, str):
        if columns is None:
            raise ValueError(
                f"target={target!r} is a column name but {str(path)!r} has no header; "
                "give the column index instead (e.g. target=-1 for the last column)"
            )
        if target not in columns:
            raise ValueError(f"target={target!r} is not a column of {str(path)!r}; "
                             f"columns are {columns}")
        t_col = columns.index(target)
    elif isinstance(target, int) and not isinstance(target, bool):
        if not -width <= target < width:
            raise ValueError(f"target={target} is out of range for {width} columns; "
                             f"use an index in {-width}..{width - 1}")
        t_col = target % width
    else:
        raise ValueError(f"target={target!r} must be a column name (str) or index (int)")

    col_name = (lambda j: columns[j]) if columns else (lambda j: f"column {j}")
    feature_cols = [j for j in range(width) if j != t_col]
    X = np.empty((len(data), len(feature_cols)), dtype=np.float32)
    for k, j in enumerate(feature_cols):
        column = np.array([row[j] for row in data])
        try:  # fast path: every cell a plain number
            X[:, k] = column.astype(np.float64)
            continue
        except ValueError:
            pass
        for i, row in enumerate(data):
            value = _number(row[j])
            if value is None:
                line = i + 1 + (1 if header else 0)
                raise ValueError(
                    f"feature column {col_name(j)!r} (index {j}) of {str(path)!r} is not "
                    f"numeric (e.g. {row[j]!r} on line {line}); encode it as numbers "
                    "(ordinal or one-hot) or drop the column before loading"
                )
            X[i, k] = value

    bad = ~np.isfinite(X)
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        line = i + 1 + (1 if header else 0)
        cell = data[i][feature_cols[k]].strip()
        what = "is empty or marked missing" if np.isnan(X[i, k]) else f"is {cell!r} (infinite)"
        rows_bad = int(bad.any(axis=1).sum())
        raise ValueError(
            f"feature column {col_name(feature_cols[k])!r} of {str(path)!r} {what} on line "
            f"{line} ({rows_bad} row{'s' if rows_bad != 1 else ''} in all hold a missing or "
            "infinite value); fill them in or drop those rows"
        )
    raw = [row[t_col].strip() for row in data]
    parsed = [_number(c) for c in raw]
    y: np.ndarray
    if all(p is not None for p in parsed):
        y = np.array(parsed, dtype=np.float64)
        missing = np.flatnonzero(np.isnan(y))
        if len(missing):
            line = int(missing[0]) + 1 + (1 if header else 0)
            raise ValueError(
                f"target column {col_name(t_col)!r} has {len(missing)} missing values (first on "
                f"line {line}); drop those rows"
            )
    else:
        y = np.array(raw, dtype=object).astype(str)
    if task is not None:
        check_choice("task", task, TASKS)
    feature_names = [col_name(j) for j in feature_cols] if columns else None
    info: dict[str, Any] = {"path": str(path), "target": col_name(t_col)}
    return Dataset.from_arrays(X, y, task, name=name or path.stem,
                               feature_names=feature_names, info=info)


def load_npz(
    path: str | os.PathLike[str],
    x_key: str = "X",
    y_key: str = "y",
    task: Task | None = None,
    name: str | None = None,
) -> Dataset:
    """Read features ``x_key`` and targets ``y_key`` from a numpy ``.npz`` archive.

    Loaded with ``allow_pickle=False``: object arrays are refused (they could run code).
    An optional ``feature_names`` array in the archive names the columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"npz file {str(path)!r} does not exist; check the path")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        raise ValueError(f"{str(path)!r} is not a numpy .npz archive of numeric arrays (write "
                         "one with numpy.savez(path, X=features, y=targets))") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{str(path)!r} holds a single array, not an .npz archive with X and "
                         "y (write one with numpy.savez(path, X=features, y=targets))")
    with archive:
        keys = list(archive.keys())
        for key, arg in ((x_key, "x_key"), (y_key, "y_key")):
            if key not in keys:
                raise ValueError(f"{arg}={key!r} is not in {str(path)!r}; its arrays are {keys}")
        try:
            X = archive[x_key]
            y = archive[y_key]
            names = ([str(s) for s in archive["feature_names"]] if "feature_names" in keys
                     else None)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError):
            raise ValueError(f"{str(path)!r}: its arrays cannot be read (damaged, or object "
                             "arrays, which are never loaded: they could run code)") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"array {x_key!r} in {str(path)!r} has dtype {X.dtype}; "
                         "features must be numeric")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if task is not None:
        check_choice("task", task, TASKS)
    return Dataset.from_arrays(X.astype(np.float32, copy=False), y, task, name=name or path.stem,
                               feature_names=names, info={"path": str(path)})
