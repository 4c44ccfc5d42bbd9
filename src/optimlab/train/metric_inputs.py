"""What a metric receives: a model's outputs and the targets, checked against the task and moved
to the CPU as numpy once per evaluation (:func:`prepare` → :class:`MetricInputs`), with the
predicted labels derived — binary ŷ = 1 when the logit ≥ 0 (σ ≥ 0.5), multiclass ŷ = argmax.
The shapes each task accepts are tabled in :mod:`optimlab.train.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from optimlab.train.scores import confusion

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class MetricInputs:
    """Outputs and targets of one evaluation, on the CPU as numpy.

    ``y_true``/``y_pred`` are int64 labels for classification and float64 values for
    regression; ``scores`` are the raw outputs as float64 (binary logits [n], multiclass logits
    [n, K], regression values). Build it with :func:`prepare`.
    """

    task: str
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray
    n_classes: int | None = None
    #: the confusion matrix when it was counted already (:func:`prepare_stacked`)
    counts: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.y_true.shape[0])

    @cached_property
    def probabilities(self) -> np.ndarray:
        """σ(logit) for binary [n], softmax(logits) for multiclass [n, K]."""
        if self.task == "binary":
            z = self.scores
            e = np.exp(-np.abs(z))  # σ(z) = 1/(1 + e^−z) for z ≥ 0, e^z/(1 + e^z) below
            return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        if self.task == "multiclass":
            shifted = np.exp(self.scores - np.amax(self.scores, axis=1, keepdims=True))
            return shifted / np.sum(shifted, axis=1, keepdims=True)
        raise ValueError("probabilities exist only for classification tasks")

    @cached_property
    def confusion(self) -> np.ndarray:
        """The K × K confusion matrix of ``y_true`` and ``y_pred`` (classification)."""
        if self.n_classes is None:
            raise ValueError("a confusion matrix exists only for classification tasks")
        if self.counts is not None:
            return self.counts
        return confusion(self.y_true, self.y_pred, int(self.n_classes))

    @cached_property
    def finite(self) -> bool:
        """Whether every output is finite (no NaN, no ±inf)."""
        return bool(np.isfinite(self.scores).all())


def prepare(outputs: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray,
            task: str) -> MetricInputs:
    """Check shapes, move ``outputs`` and ``targets`` to CPU numpy once, derive labels.

    Raises ``ValueError`` on an unknown task, an empty batch, shapes that don't fit the task,
    labels out of range or non-finite targets.
    """
    check_task(task)
    out = _to_numpy(outputs, floating=True)
    tgt = _to_numpy(targets, floating=None)
    if out.ndim == 0 or out.shape[0] == 0:
        raise ValueError(f"outputs hold no samples (shape {tuple(out.shape)})")
    if tgt.ndim == 0 or tgt.shape[0] != out.shape[0]:
        raise ValueError(
            f"outputs and targets disagree on the number of samples: outputs shape "
            f"{tuple(out.shape)}, targets shape {tuple(tgt.shape)}"
        )
    if np.issubdtype(tgt.dtype, np.floating) and not np.isfinite(tgt).all():
        raise ValueError("targets contain NaN or ±inf")
    if task == "binary":
        return _prepare_binary(out, tgt)
    if task == "multiclass":
        return _prepare_multiclass(out, tgt)
    return _prepare_regression(out, tgt)


@dataclass(frozen=True)
class StackedInputs:
    """The inputs of S evaluations of the same rows' shapes, stacked along a new leading
    dimension (the seeds of one configuration trained together): ``flat`` holds all S·n rows
    (``y_true``/``y_pred``/``scores`` of seed s are rows s·n … s·n + n − 1). Build it with
    :func:`prepare_stacked`."""

    flat: MetricInputs
    seeds: int

    @cached_property
    def counts(self) -> np.ndarray:
        """The S confusion matrices [S, K, K], from one count."""
        if self.flat.n_classes is None:
            raise ValueError("a confusion matrix exists only for classification tasks")
        return confusion(self.flat.y_true.reshape(self.seeds, -1),
                         self.flat.y_pred.reshape(self.seeds, -1), int(self.flat.n_classes))

    def each(self) -> list[MetricInputs]:
        """One :class:`MetricInputs` per seed (views of ``flat``; the counts shared)."""
        x, s = self.flat, self.seeds
        counts = self.counts if x.n_classes is not None else [None] * s
        split = [a.reshape(s, -1, *a.shape[1:]) for a in (x.y_true, x.y_pred, x.scores)]
        return [MetricInputs(x.task, t, p, z, x.n_classes, counts=c)
                for t, p, z, c in zip(*split, counts, strict=True)]


def prepare_stacked(outputs: torch.Tensor, targets: torch.Tensor, task: str) -> StackedInputs:
    """:func:`prepare` for S evaluations stacked along a new leading dimension: ``outputs``
    [S, n, …] and ``targets`` [S, n, …]; seed s's inputs equal ``prepare(outputs[s],
    targets[s], task)`` (every check and label is per row, so all S·n rows are prepared at
    once: one copy to the CPU, one argmax)."""
    if outputs.ndim < 2 or targets.ndim < 2 or outputs.shape[:2] != targets.shape[:2]:
        raise ValueError(f"stacked outputs and targets must be [S, n, …] with the same S and n; "
                         f"got outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}")
    s = int(outputs.shape[0])
    return StackedInputs(prepare(outputs.reshape(-1, *outputs.shape[2:]),
                                 targets.reshape(-1, *targets.shape[2:]), task), s)


def _to_numpy(x: torch.Tensor | np.ndarray | Sequence[Any], *, floating: bool | None
              ) -> np.ndarray:
    """One copy to the CPU; floats become float64 (bf16/fp16 included), ints int64."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if floating or x.is_floating_point():
            return x.to(device="cpu", dtype=torch.float64).numpy()
        return x.to(device="cpu", dtype=torch.int64).numpy()
    arr = np.asarray(x)
    if floating or np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64, copy=False)
    return arr.astype(np.int64, copy=False)


def _drop_unit_column(a: np.ndarray) -> np.ndarray:
    return a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a


def _prepare_binary(out: np.ndarray, tgt: np.ndarray) -> MetricInputs:
    logits = _drop_unit_column(out)
    if logits.ndim != 1:
        raise ValueError(
            f"binary outputs must be one logit per sample, shape [n] or [n, 1]; got "
            f"{tuple(out.shape)} (for K logits per sample use task='multiclass')"
        )
    t = _drop_unit_column(tgt)
    if t.ndim != 1:
        raise ValueError(f"binary targets must have shape [n] or [n, 1]; got {tuple(tgt.shape)}")
    if np.issubdtype(t.dtype, np.floating):
        if ((t < 0) | (t > 1)).any():
            raise ValueError("binary float targets must lie in [0, 1]")
        y_true = (t >= 0.5).astype(np.int64)
    else:
        if not np.isin(t, (0, 1)).all():
            raise ValueError(f"binary labels must be 0 or 1; got {np.unique(t)[:10].tolist()}")
        y_true = t.astype(np.int64, copy=False)
    y_pred = (logits >= 0).astype(np.int64)  # σ(z) ≥ 0.5 ⇔ z ≥ 0; NaN → 0
    return MetricInputs("binary", y_true, y_pred, logits, n_classes=2)


def _prepare_multiclass(out: np.ndarray, tgt: np.ndarray) -> MetricInputs:
    if out.ndim != 2 or out.shape[1] < 2:
        raise ValueError(
            f"multiclass outputs must be K ≥ 2 logits per sample, shape [n, K]; got "
            f"{tuple(out.shape)} (for one logit per sample use task='binary')"
        )
    k = out.shape[1]
    t = _drop_unit_column(tgt)
    if t.ndim == 2 and t.shape[1] == k:
        t = t.argmax(axis=1)  # one-hot or probabilities
    elif t.ndim != 1:
        raise ValueError(
            f"multiclass targets must be labels [n] / [n, 1] or one-hot [n, {k}]; got "
            f"{tuple(tgt.shape)}"
        )
    elif np.issubdtype(t.dtype, np.floating) and not (t == np.round(t)).all():
        raise ValueError("multiclass targets of shape [n] must be integer labels")
    y_true = t.astype(np.int64, copy=False)
    if ((y_true < 0) | (y_true >= k)).any():
        raise ValueError(
            f"multiclass labels must lie in [0, {k - 1}] for {k} outputs; got values from "
            f"{int(y_true.min())} to {int(y_true.max())}"
        )
    y_pred = out.argmax(axis=1).astype(np.int64)
    return MetricInputs("multiclass", y_true, y_pred, out, n_classes=k)


def _prepare_regression(out: np.ndarray, tgt: np.ndarray) -> MetricInputs:
    t = tgt.astype(np.float64, copy=False)
    o = out
    if o.shape != t.shape:
        o, t = _drop_unit_column(o), _drop_unit_column(t)
    if o.shape != t.shape or o.ndim > 2:
        raise ValueError(
            f"regression outputs and targets must have the same shape [n] or [n, k]; got "
            f"outputs {tuple(out.shape)}, targets {tuple(tgt.shape)}"
        )
    return MetricInputs("regression", t, o, o)


def check_task(task: str) -> None:
    """ValueError unless ``task`` is one the metrics know."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed; choose one of {', '.join(TASKS)}")
