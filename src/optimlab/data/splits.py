"""Train / validation / test splits and train-only standardization, every random one seeded.

- ``holdout``: random split (stratified by class for classification), 80/10/10 by default.
- ``time_split``: no shuffling — the past trains, the future validates and tests.
- ``kfold``: ``k`` (train, val) pairs whose val parts partition the data.
- ``standardize``: ``(x − mean) / std`` with statistics fitted on the train part only, so that
  nothing about validation or test leaks into training.

Part sizes: ``n_test = round(n·test)`` and ``n_val = round(n·val)`` (at least 1 when the
fraction is positive); train gets the rest. A zero fraction gives ``None`` for that part.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from optimlab._checks import check_number
from optimlab.data.dataset import Dataset


class Split(NamedTuple):
    """The parts of a dataset; ``val``/``test`` are ``None`` when their fraction is 0."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None


def _sizes(n: int, val: float, test: float) -> tuple[int, int, int]:
    check_number("val", val, low=0, high=1, high_open=True)
    check_number("test", test, low=0, high=1, high_open=True)
    if val + test >= 1:
        raise ValueError(f"val={val} + test={test} leaves nothing to train on; "
                         "make their sum less than 1")
    n_test = max(round(n * test), 1) if test > 0 else 0
    n_val = max(round(n * val), 1) if val > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} samples are too few for val={val}, test={test}: train would get "
                         f"{n_train}; lower the fractions or use more data")
    return n_train, n_val, n_test


def _part(ds: Dataset, idx: np.ndarray | slice | None, part: str) -> Dataset | None:
    if idx is None:
        return None
    out = ds.subset(idx)
    out.info["part"] = part
    return out


def holdout(
    ds: Dataset,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    stratify: bool | None = None,
) -> Split:
    """Random train/val/test split, 80/10/10 by default, reproducible from ``seed``.

    ``stratify`` (default: True for classification) keeps each class's share in every part:
    class ``c`` (``n_c`` samples) gets ``⌊q⌋`` or ``⌈q⌉`` samples in a part of size ``m``, with
    ``q = n_c·m/n`` — within one sample of exact, in all three parts at once (the counts are a
    controlled rounding of the table ``q``, solved as a tiny transportation problem; which
    classes round up is drawn from ``seed``), then each class's samples are shuffled and cut.
    Two chained scikit-learn ``train_test_split`` calls do not guarantee this: the train part
    collects both roundings and can be off by more than one (1.2 for 3 balanced classes).
    Without stratification the parts come from ``train_test_split`` (test first, then val from
    the rest, ``random_state=seed``).
    """
    n_train, n_val, n_test = _sizes(len(ds), val, test)
    if stratify is None:
        stratify = ds.task != "regression"
    if stratify and ds.task == "regression":
        raise ValueError("stratify=True needs class labels but the task is 'regression'; "
                         "use stratify=False")
    if stratify:
        parts = _stratified_parts(ds.y.detach().cpu().numpy(), [n_train, n_val, n_test], seed)
        train_idx, val_idx, test_idx = (p if len(p) else None for p in parts)
    else:
        idx = np.arange(len(ds))
        test_idx = val_idx = None
        if n_test:
            idx, test_idx = train_test_split(idx, test_size=n_test, random_state=seed)
        if n_val:
            idx, val_idx = train_test_split(idx, test_size=n_val, random_state=seed)
        train_idx = idx
    return Split(_part(ds, train_idx, "train"), _part(ds, val_idx, "val"),  # type: ignore[arg-type]
                 _part(ds, test_idx, "test"))


def stratified_counts(class_counts: Any, sizes: Any, seed: int = 0) -> np.ndarray:
    """Integer table ``[classes, parts]`` with the given row sums (``class_counts``) and column
    sums (``sizes``) whose every cell is ``⌊q⌋`` or ``⌈q⌉`` of ``q = n_c·m_p/n``.

    Such a rounding always exists; the cells to round up are found by a linear program over the
    fractional cells (a transportation problem, so its vertex solutions are integral) with a
    random cost drawn from ``seed`` to break ties.
    """
    cc = np.asarray(class_counts, dtype=np.int64)
    sz = np.asarray(sizes, dtype=np.int64)
    n = int(cc.sum())
    if n != int(sz.sum()):
        raise ValueError(f"class counts sum to {n} but part sizes to {int(sz.sum())}; "
                         "they must be equal")
    prod = cc[:, None] * sz[None, :]
    table = prod // n
    cells = np.argwhere(prod % n != 0)
    if len(cells) == 0:
        return table
    k, p = table.shape
    cols = np.arange(len(cells))
    A = sparse.csr_matrix(
        (np.ones(2 * len(cells)),
         (np.concatenate([cells[:, 0], k + cells[:, 1]]), np.concatenate([cols, cols]))),
        shape=(k + p, len(cells)))
    b = np.concatenate([cc - table.sum(1), sz - table.sum(0)])
    cost = np.random.default_rng(seed).random(len(cells))
    res = linprog(cost, A_eq=A, b_eq=b, bounds=(0, 1), method="highs-ds")
    x = np.rint(res.x).astype(np.int64) if res.success else None
    if x is None or not np.allclose(res.x, x, atol=1e-6):  # pragma: no cover - TU guarantees it
        raise RuntimeError(f"stratified rounding failed ({res.message}); use stratify=False")
    table[cells[:, 0], cells[:, 1]] += x
    return table


def _stratified_parts(labels: np.ndarray, sizes: list[int], seed: int) -> list[np.ndarray]:
    classes, inverse = np.unique(labels, return_inverse=True)
    table = stratified_counts(np.bincount(inverse, minlength=len(classes)), sizes, seed)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        cuts = np.cumsum(table[c])[:-1]
        for j, chunk in enumerate(np.split(members, cuts)):
            parts[j].append(chunk)
    return [rng.permutation(np.concatenate(chunks)) for chunks in parts]


def time_split(ds: Dataset, val: float = 0.1, test: float = 0.1) -> Split:
    """Ordered split, no shuffling: rows ``[0, n_train)`` train, then val, then test.

    For data whose row order is time: the model is always evaluated on the future.
    """
    n_train, n_val, _ = _sizes(len(ds), val, test)
    n = len(ds)
    cut1, cut2 = n_train, n_train + n_val
    train = _part(ds, slice(0, cut1), "train")  # slices: views of ds, no copy
    val_part = _part(ds, slice(cut1, cut2), "val") if cut2 > cut1 else None
    test_part = _part(ds, slice(cut2, n), "test") if n > cut2 else None
    return Split(train, val_part, test_part)  # type: ignore[arg-type]


def kfold(
    ds: Dataset,
    k: int = 5,
    seed: int = 0,
    stratified: bool | None = None,
    shuffle: bool = True,
) -> Iterator[tuple[Dataset, Dataset]]:
    """Yield ``k`` pairs ``(train, val)``; the ``k`` val parts partition the data.

    ``stratified`` (default: True for classification) uses ``StratifiedKFold``, otherwise
    ``KFold``; ``shuffle=True`` shuffles once with ``seed`` before cutting the folds.
    """
    check_number("k", k, low=2, high=len(ds), integer=True)
    if stratified is None:
        stratified = ds.task != "regression"
    if stratified and ds.task == "regression":
        raise ValueError("stratified=True needs class labels but the task is 'regression'; "
                         "use stratified=False")
    rs = seed if shuffle else None
    splitter: Any = (StratifiedKFold(k, shuffle=shuffle, random_state=rs) if stratified
                     else KFold(k, shuffle=shuffle, random_state=rs))
    labels = ds.y.detach().cpu().numpy() if stratified else None
    try:
        folds = list(splitter.split(np.zeros(len(ds)), labels))
    except ValueError as err:
        raise ValueError(f"cannot make {k} stratified folds ({err}); lower k or set "
                         "stratified=False") from err
    for i, (train_idx, val_idx) in enumerate(folds):
        train = ds.subset(train_idx)
        val = ds.subset(val_idx)
        train.info["fold"] = val.info["fold"] = i
        yield train, val


def standardize(split: Split | Dataset) -> tuple[Split, dict[str, Any]]:
    """Scale features to ``(x − mean_train) / std_train`` in every part.

    ``mean``/``std`` come from the train part only (scikit-learn ``StandardScaler``, population
    std); a constant feature gets ``std = 1`` so it becomes 0, never NaN. Images are scaled per
    pixel (features flattened, then reshaped back). Targets are left as they are. Returns the new
    split and ``{"mean", "std"}`` (tensors of the feature shape), ``"n"`` (train samples used)
    and ``"scaler"`` (the fitted ``StandardScaler``, to transform new data the same way).
    A bare ``Dataset`` is treated as a split with only a train part.
    """
    if isinstance(split, Dataset):
        split = Split(split, None, None)
    train = split.train
    shape = train.X.shape[1:]
    flat = train.X.detach().reshape(len(train), -1).cpu().numpy()
    scaler = StandardScaler().fit(flat)

    def apply(ds: Dataset | None) -> Dataset | None:
        if ds is None:
            return None
        x = ds.X.detach().reshape(len(ds), -1).cpu().numpy()
        z = torch.as_tensor(scaler.transform(x), dtype=torch.float32, device=ds.X.device)
        return ds._with(z.reshape(ds.X.shape), ds.y)

    info = {
        "mean": torch.as_tensor(scaler.mean_, dtype=torch.float32).reshape(shape),
        "std": torch.as_tensor(scaler.scale_, dtype=torch.float32).reshape(shape),
        "n": len(train),
        "scaler": scaler,
    }
    return Split(apply(train), apply(split.val), apply(split.test)), info  # type: ignore[arg-type]
