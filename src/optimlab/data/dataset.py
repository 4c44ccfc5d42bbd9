"""The ``Dataset`` record every loader returns, its validation, and label handling.

A dataset is two tensors and a few facts about them:

- ``X``: ``float32``, shape ``[n, *feature_shape]`` — ``[n, d]`` for tables, ``[n, C, H, W]`` for
  images;
- ``y``: ``int64`` class ids ``0..n_classes-1`` (shape ``[n]``) for ``"binary"`` and
  ``"multiclass"``; ``float32`` of shape ``[n]`` or ``[n, k]`` for ``"regression"``.

Construction checks what would otherwise fail far away, inside a training loop: matching lengths,
finite values, labels in range. Each error names the row (and column) at fault and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from optimlab._checks import check_choice

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")

#: An integer-valued target with at most this many distinct values is read as class labels
#: by ``infer_task`` (and by ``load_csv`` / ``load_npz`` when ``task=None``).
MAX_INFERRED_CLASSES = 20


@dataclass(eq=False)
class Dataset:
    """Features ``X``, targets ``y`` and what they mean.

    ``n_classes`` is ``None`` for regression; for classification it defaults to ``max(y) + 1``
    (``2`` for ``"binary"``). ``info`` holds generator facts (true weights, class names, label
    mapping, seed …). Numpy arrays are accepted and converted (``X`` to ``float32``; ``y`` to
    ``int64`` for classification, ``float32`` for regression).

    >>> ds = Dataset(torch.randn(4, 3), torch.tensor([0, 1, 1, 0]), task="binary")
    >>> len(ds), ds.n_features, ds.n_classes
    (4, 3, 2)
    """

    X: torch.Tensor
    y: torch.Tensor
    task: Task
    n_classes: int | None = None
    name: str = "dataset"
    feature_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        self.X = _as_tensor(self.X, "X")
        self.y = _as_tensor(self.y, "y")
        if self.X.dtype != torch.float32:
            if not (self.X.dtype.is_floating_point or _is_integer_dtype(self.X.dtype)
                    or self.X.dtype == torch.bool):
                raise ValueError(f"X has dtype {self.X.dtype}; features must be numbers")
            self.X = self.X.to(torch.float32)
        if self.X.ndim < 2:
            raise ValueError(
                f"X has shape {tuple(self.X.shape)}; it must be [n, features] "
                "(for a single feature use X.reshape(-1, 1))"
            )
        n = self.X.shape[0]
        if self.y.ndim == 0 or self.y.shape[0] != n:
            got = "a scalar" if self.y.ndim == 0 else f"{self.y.shape[0]} labels"
            raise ValueError(
                f"X has {n} rows but y has {got}; they must match one to one "
                "(take X and y from the same selection of samples)"
            )
        _check_finite(self.X, "X", self.feature_names)
        if self.task == "regression":
            self._check_regression()
        else:
            self._check_classification()
        if self.feature_names is not None:
            self.feature_names = [str(f) for f in self.feature_names]
            if self.X.ndim == 2 and len(self.feature_names) != self.X.shape[1]:
                raise ValueError(
                    f"feature_names has {len(self.feature_names)} names but X has "
                    f"{self.X.shape[1]} columns; give one name per column or None"
                )

    def _check_regression(self) -> None:
        if self.n_classes is not None:
            raise ValueError(
                f"n_classes={self.n_classes} was given for task='regression'; "
                "use n_classes=None, or task='binary'/'multiclass' for class labels"
            )
        if self.y.ndim > 2:
            raise ValueError(
                f"y has shape {tuple(self.y.shape)}; regression targets must be [n] or [n, k]"
            )
        if self.y.dtype != torch.float32:
            self.y = self.y.to(torch.float32)
        _check_finite(self.y, "y", None)

    def _check_classification(self) -> None:
        y = self.y
        if y.ndim != 1:
            raise ValueError(
                f"y has shape {tuple(y.shape)}; class labels must be a vector [n] of ids "
                "(turn one-hot rows into ids with y.argmax(1))"
            )
        if y.dtype.is_floating_point:
            _check_finite(y, "y", None)
            frac = y != torch.round(y)
            if bool(frac.any()):
                row = int(frac.nonzero()[0, 0])
                raise ValueError(
                    f"y has non-integer class label {float(y[row])!r} at row {row} for "
                    f"task={self.task!r}; use integer ids 0..n_classes-1, or task='regression'"
                )
        elif not (_is_integer_dtype(y.dtype) or y.dtype == torch.bool):
            raise ValueError(f"y has dtype {y.dtype}; class labels must be integers")
        self.y = y.to(torch.int64)
        if self.n_classes is None:
            top = int(self.y.max()) + 1 if len(self.y) else 0
            self.n_classes = 2 if self.task == "binary" else max(top, 1)
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int | np.integer):
            raise ValueError(f"n_classes={self.n_classes!r} is not an integer")
        self.n_classes = int(self.n_classes)
        if self.task == "binary" and self.n_classes != 2:
            raise ValueError(
                f"task='binary' needs n_classes=2, got n_classes={self.n_classes}; "
                "use task='multiclass' for more classes"
            )
        if self.n_classes < 1:
            raise ValueError(f"n_classes={self.n_classes} must be at least 1")
        bad = (self.y < 0) | (self.y >= self.n_classes)
        if bool(bad.any()):
            rows = bad.nonzero()[:, 0]
            row = int(rows[0])
            raise ValueError(
                f"y has {len(rows)} labels outside 0..{self.n_classes - 1} (first: "
                f"{int(self.y[row])} at row {row}) for n_classes={self.n_classes}; relabel the "
                "classes to 0..n_classes-1 (Dataset.from_arrays does it) or raise n_classes"
            )

    # ---------------------------------------------------------------- construction helpers
    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        task: Task | None = None,
        *,
        name: str = "dataset",
        feature_names: list[str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Dataset:
        """Build a dataset from arrays, inferring the task and encoding labels.

        ``task=None`` uses :func:`infer_task`. Class labels of any kind (strings, ``{-1, 1}``,
        ``{3, 7}``) are mapped to ``0..k-1`` in sorted order; ``info["classes"][i]`` is the
        original label of class ``i`` and ``info["label_map"]`` the mapping original → id.
        """
        y_arr = np.asarray(y.cpu().numpy() if isinstance(y, torch.Tensor) else y)
        if task is None:
            task = infer_task(y_arr)
        check_choice("task", task, TASKS)
        extra = dict(info or {})
        if task == "regression":
            if y_arr.dtype.kind not in "biuf":
                raise ValueError(
                    f"y holds non-numeric values (e.g. {y_arr.flat[0]!r}) but task='regression'; "
                    "use task='binary'/'multiclass' or convert the target to numbers"
                )
            y_t = torch.as_tensor(y_arr.astype(np.float32))
            n_classes = None
        else:
            ids, classes = encode_labels(y_arr)
            if task == "binary" and len(classes) != 2:
                raise ValueError(
                    f"task='binary' but y has {len(classes)} distinct labels {classes[:5]}; "
                    "use task='multiclass'"
                )
            y_t = torch.as_tensor(ids)
            n_classes = len(classes)
            extra.setdefault("classes", classes)
            extra.setdefault("label_map", {c: i for i, c in enumerate(classes)})
        X_arr = X if isinstance(X, torch.Tensor) else np.asarray(X)
        return cls(X_arr, y_t, task, n_classes, name, feature_names, extra)

    # ---------------------------------------------------------------- basic protocol
    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        classes = "" if self.n_classes is None else f", n_classes={self.n_classes}"
        return (
            f"Dataset(name={self.name!r}, X={tuple(self.X.shape)}, y={tuple(self.y.shape)}, "
            f"task={self.task!r}{classes}, device={self.X.device})"
        )

    @property
    def n_features(self) -> int:
        """Number of input values per sample: ``d`` for ``[n, d]``, ``C*H*W`` for images.

        The flat size is what a linear first layer needs; see ``feature_shape`` for the shape.
        """
        return int(math.prod(self.X.shape[1:]))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(d,)`` for tables, ``(C, H, W)`` for images."""
        return tuple(int(s) for s in self.X.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.X.device

    def subset(self, indices: Any) -> Dataset:
        """The samples at ``indices`` (ints, a boolean mask, a slice, a tensor or an array).

        Metadata (task, n_classes, names, ``info``) is kept; values are not re-validated.
        """
        if isinstance(indices, slice):
            return self._with(self.X[indices], self.y[indices])
        idx = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor)
                              else indices)
        if idx.dtype == torch.bool:
            idx = idx.nonzero()[:, 0]
        idx = idx.to(device=self.X.device, dtype=torch.int64).reshape(-1)
        if len(idx) and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise ValueError(
                f"subset indices reach {int(idx.max())} (or {int(idx.min())}) but the dataset "
                f"has {len(self)} samples; use indices in 0..{len(self) - 1}"
            )
        if len(idx):
            idx = idx % len(self)  # negative indices count from the end
        return self._with(self.X.index_select(0, idx), self.y.index_select(0, idx))

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with ``X`` and ``y`` on ``device`` (no copy if already there)."""
        return self._with(self.X.to(device), self.y.to(device))

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` as numpy arrays on the CPU (for scikit-learn)."""
        return self.X.detach().cpu().numpy(), self.y.detach().cpu().numpy()

    def _with(self, X: torch.Tensor, y: torch.Tensor, **changes: Any) -> Dataset:
        """A copy with new tensors, skipping validation (the values come from a valid set)."""
        out = object.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out.X, out.y = X, y
        out.info = dict(self.info)
        out.__dict__.update(changes)
        return out


# -------------------------------------------------------------------- label helpers
def infer_task(y: Any) -> Task:
    """Guess the task from the target values.

    Non-numeric labels → classification; integer-valued numbers with at most
    ``MAX_INFERRED_CLASSES`` (20) distinct values, fewer than the number of samples →
    classification; anything else → ``"regression"``. Classification with exactly two distinct
    values is ``"binary"``, otherwise ``"multiclass"``. Pass ``task=`` explicitly to override.
    """
    arr = np.asarray(y)
    if arr.ndim > 1 and arr.shape[1] > 1:
        return "regression"
    arr = arr.reshape(-1)
    if arr.dtype.kind in "biu":
        values = np.unique(arr)
    elif arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        if finite.size == 0 or np.any(finite != np.round(finite)):
            return "regression"
        values = np.unique(finite)
    else:
        values = np.unique(arr.astype(str))
        return "binary" if len(values) == 2 else "multiclass"
    if len(values) > MAX_INFERRED_CLASSES or (len(values) >= len(arr) and len(arr) > 2):
        return "regression"
    return "binary" if len(values) == 2 else "multiclass"


def encode_labels(y: Any) -> tuple[np.ndarray, list[Any]]:
    """Map labels to ``0..k-1`` in sorted order; return ``(ids, classes)`` with
    ``classes[id]`` the original label (numbers as Python ``int``/``float``, others as ``str``).
    """
    arr = np.asarray(y).reshape(-1)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"y has {int(bad.sum())} missing/non-finite labels (first at row {row}); "
                "drop those samples"
            )
    if arr.dtype.kind not in "biuf":
        arr = arr.astype(str)
    classes, ids = np.unique(arr, return_inverse=True)
    out: list[Any] = []
    for c in classes.tolist():
        if isinstance(c, float) and c.is_integer():
            c = int(c)
        out.append(c)
    return ids.astype(np.int64), out


# -------------------------------------------------------------------- validation helpers
def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has non-numeric dtype {arr.dtype}; convert it to numbers first "
            "(Dataset.from_arrays encodes string labels)"
        )
    return torch.as_tensor(arr)


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def _check_finite(t: torch.Tensor, name: str, feature_names: list[str] | None) -> None:
    if not t.dtype.is_floating_point or t.numel() == 0:
        return
    for kind, bad in (("NaN", torch.isnan(t)), ("Inf", torch.isinf(t))):
        if not bool(bad.any()):
            continue
        rows = bad.reshape(len(t), -1).any(dim=1).nonzero()[:, 0]
        first = int(rows[0])
        where = f"row {first}"
        if t.ndim == 2:
            col = int(bad[first].nonzero()[0, 0])
            label = f" {feature_names[col]!r}" if feature_names and col < len(feature_names) else ""
            where += f", column {col}{label}"
        if name == "X":
            fix = "drop or impute them"
        else:
            fix = "drop those samples or fill in their targets"
        raise ValueError(f"{name} has {len(rows)} rows with {kind} (first at {where}); {fix}")
