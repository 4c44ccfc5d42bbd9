"""A study's data: loaded once, checked, fingerprinted, and split for each trial.

``load_dataset`` reads the ``[data]`` of a spec and turns every way the data can be unusable
into a :class:`~optimlab.errors.DataError` that names the file (and the row or column) and the
fix. ``fingerprint`` hashes the loaded content: it is part of every trial's key, so editing a
CSV under the same path makes new trials instead of reusing results trained on the old rows.
``StudyData`` holds one process's copy and gives each trial its split — the same split for every
trial, or with ``resplit`` a new one per seed, drawn from the seed (split seed =
``split_seed(data.seed, trial seed)``), or with ``split = "kfold"`` the trial's fold
(:func:`kfold_split`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from optimlab.errors import DataError
from optimlab.lab.spec import DataSpec


def load_dataset(data: DataSpec) -> Any:
    """The dataset ``data`` describes, before any split; ``DataError`` if it cannot train."""
    from optimlab.data import load, load_csv, load_npz

    try:
        if data.dataset is not None:
            ds = load(data.dataset, **data.options)
            source = f"dataset {data.dataset!r}"
            if data.task is not None and data.task != ds.task:
                classes = f" with {ds.n_classes} classes" if ds.n_classes else ""
                raise DataError(f"task = {data.task!r} but {source} is {ds.task!r}{classes}; "
                                "remove task (the dataset gives its own) or choose another "
                                "dataset")
        elif data.csv is not None:
            source = f"{data.csv}"
            ds = load_csv(data.csv, data.target, task=data.task,  # type: ignore[arg-type]
                          **data.options)
        else:
            source = f"{data.npz}"
            ds = load_npz(data.npz, task=data.task, **data.options)  # type: ignore[arg-type]
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(str(err)) from None
    except (ValueError, TypeError) as err:
        where = data.dataset or data.csv or data.npz
        text = str(err)
        raise DataError(text if str(where) in text else f"{where}: {text}") from None
    if len(ds) < 3:
        raise DataError(f"{source} has {len(ds)} row{'s' if len(ds) != 1 else ''}; a study "
                        "needs rows to train on and rows to validate on (at least 3)")
    if ds.task != "regression" and (ds.n_classes or 0) < 2:
        labels = ds.info.get("classes", [])
        raise DataError(f"{source}: the target has a single class {labels[:1] or ''}; a "
                        "classifier needs at least two classes to learn anything — check the "
                        "target column, or use task = \"regression\" for a numeric target")
    return ds


def fingerprint(ds: Any) -> str:
    """SHA-256 of the data's content (features, targets, task, classes), 16 hex digits."""
    h = hashlib.sha256()
    for t in (ds.X, ds.y):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    h.update(json.dumps([ds.task, ds.n_classes], default=str).encode())
    return h.hexdigest()[:16]


def split_seed(data_seed: int, trial_seed: int) -> int:
    """The split seed of a trial under ``resplit``: a hash of the data seed and the trial's."""
    digest = hashlib.sha256(f"{data_seed}:{trial_seed}".encode()).hexdigest()
    return int(digest[:8], 16)


def split(data: DataSpec, ds: Any, trial_seed: int = 0) -> Any:
    """Split ``ds`` as ``data`` says (and standardize with the train part's statistics); for
    k-fold, the first fold (:func:`kfold_split` gives the others)."""
    from optimlab.data import holdout, standardize, time_split

    if data.split == "kfold":
        return kfold_split(data, ds, 0)
    try:
        if data.split == "time":
            parts = time_split(ds, val=data.val, test=data.test)
        else:
            seed = split_seed(data.seed, trial_seed) if data.resplit else data.seed
            parts = holdout(ds, val=data.val, test=data.test, seed=seed)
    except ValueError as err:
        raise DataError(f"{data.dataset or data.csv or data.npz}: cannot split {len(ds)} rows "
                        f"with val = {data.val:g}, test = {data.test:g}: {err}") from None
    if data.standardize and parts.train.X.dtype.is_floating_point:
        parts, _ = standardize(parts)
    return parts


def kfold_parts(data: DataSpec, ds: Any, repeat: int) -> tuple[list[tuple[Any, Any]], Any]:
    """The (train, val) pairs of one repeat of a k-fold split, and the test part.

    The test share is held out first, stratified, from ``data.seed`` (the same rows for every
    fold and repeat); the rest is cut into ``data.n_folds`` folds by
    :func:`optimlab.data.kfold` (stratified for classification), shuffled from ``data.seed``
    for the first repeat and from ``split_seed(data.seed, repeat)`` for the others."""
    from optimlab.data import holdout, kfold

    k = data.n_folds
    where = data.dataset or data.csv or data.npz
    test = None
    pool = ds
    if data.test > 0:
        try:
            pool, _, test = holdout(ds, val=0.0, test=data.test, seed=data.seed)
        except ValueError as err:
            raise DataError(f"{where}: cannot hold out test = {data.test:g} of {len(ds)} rows: "
                            f"{err}") from None
    if k > len(pool):
        raise DataError(f"folds={k} but {where} has {len(pool)} rows outside the test split; "
                        f"each fold needs a row to validate on: use folds <= {len(pool)}")
    if pool.task != "regression":
        labels = pool.y.detach().cpu().numpy()
        values, counts = np.unique(labels, return_counts=True)
        fewest = int(counts.min())
        if k > fewest:
            names = pool.info.get("classes") or []
            c = values[int(counts.argmin())]
            shown = names[int(c)] if len(names) > int(c) else c
            raise DataError(f"folds={k} but class {shown!r} of {where} has only {fewest} rows "
                            f"outside the test split; stratified folds need at least one row "
                            f"of every class in each fold: use folds <= {fewest}")
    seed = data.seed if repeat == 0 else split_seed(data.seed, repeat)
    return list(kfold(pool, k, seed=seed)), test


def kfold_split(data: DataSpec, ds: Any, fold: int, parts: Any = None) -> Any:
    """The split of trial fold ``fold`` (= repeat · folds + part): train on every part but one,
    validate on that one, the held-out test part; standardized with the statistics of this
    fold's training part only (its validation part and the test part never enter them)."""
    from optimlab.data import standardize
    from optimlab.data.splits import Split

    repeat, part = divmod(fold, data.n_folds)
    folds, test = parts if parts is not None else kfold_parts(data, ds, repeat)
    train, val = folds[part]
    train.info["part"], val.info["part"] = "train", "val"
    out = Split(train, val, test)
    if data.standardize and train.X.dtype.is_floating_point:
        out, _ = standardize(out)
    return out


class StudyData:
    """One process's copy of a study's data: loaded once, checked against the fingerprint the
    study's trials were keyed with, and split per trial (cached per split seed)."""

    def __init__(self, data: DataSpec) -> None:
        self.spec = data
        self.dataset, self.fingerprint = _loaded(data)
        if data.fingerprint is not None and data.fingerprint != self.fingerprint:
            raise DataError(f"the data of {data.describe()} changed since the study started "
                            f"(content {self.fingerprint}, the trials were keyed with "
                            f"{data.fingerprint}); run the study again to train on the new data")
        self._splits: dict[Any, Any] = {}

    def split(self, trial_seed: int, fold: int | None = None) -> Any:
        """The split of a trial: by its seed (with ``resplit``) or its fold (k-fold; the
        first fold when ``fold`` is None)."""
        if self.spec.split == "kfold":
            fold = fold or 0
            repeat = fold // self.spec.n_folds
            if ("parts", repeat) not in self._splits:
                self._splits[("parts", repeat)] = kfold_parts(self.spec, self.dataset, repeat)
            key: Any = ("fold", fold)
            if key not in self._splits:
                self._splits[key] = kfold_split(self.spec, self.dataset, fold,
                                                self._splits[("parts", repeat)])
            return self._splits[key]
        key = trial_seed if self.spec.resplit else -1
        if key not in self._splits:
            self._splits[key] = split(self.spec, self.dataset, trial_seed)
        return self._splits[key]


def _stamp(data: DataSpec) -> str:
    """A hash of the data file's bytes (empty for a named dataset): far cheaper than parsing
    it again, and exact where a size and a modification time can repeat."""
    for name in (data.csv, data.npz):
        if name is not None and os.path.isfile(name):
            h = hashlib.sha256()
            with open(name, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
    return ""


_LOADED: dict[str, tuple[Any, str]] = {}


def _loaded(data: DataSpec) -> tuple[Any, str]:
    """(dataset, fingerprint), loaded once per process while the file is unchanged (the check
    before a run and the run itself share one load)."""
    key = json.dumps([data.identity(), _stamp(data)], sort_keys=True, default=str)
    if key not in _LOADED:
        _LOADED.clear()  # one study's data at a time
        ds = load_dataset(data)
        _LOADED[key] = (ds, fingerprint(ds))
    return _LOADED[key]


def prepare_data(data: DataSpec, trial_seed: int = 0, fold: int | None = None) -> Any:
    """The split a trial with seed ``trial_seed`` (and fold ``fold``) trains on."""
    return StudyData(data).split(trial_seed, fold)
