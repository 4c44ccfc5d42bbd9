"""Metrics that watch training, computed from the model's raw outputs.

A metric tracks performance for monitoring; it is not optimized (the loss is, and the Trainer
computes the loss itself). Every metric here takes what the model returns and the targets:

========== ======================================= =============================================
task       outputs                                 targets
========== ======================================= =============================================
binary     one logit per sample, [n] or [n, 1]     labels in {0, 1}, [n] or [n, 1]; float
                                                   targets in [0, 1] (BCE, label smoothing) are
                                                   read as label = (target ≥ 0.5)
multiclass K logits per sample, [n, K], K ≥ 2      int labels [n] or [n, 1], or one-hot /
                                                   probabilities [n, K] (label = argmax)
regression values, [n] or [n, k]                   values of the same shape ([n] and [n, 1] mix)
========== ======================================= =============================================

Predicted labels: binary ŷ = 1 when sigmoid(logit) ≥ 0.5, i.e. logit ≥ 0; multiclass ŷ = argmax
over the K logits. Scores: binary σ(logit), multiclass softmax(logits).

Counts (one class taken as positive): TP true positives, FP false positives, FN false negatives,
TN true negatives.

================== ==== ========================================================================
name               mode definition
================== ==== ========================================================================
accuracy           max  (number of ŷ = y) / n
precision          max  TP / (TP + FP)
recall             max  TP / (TP + FN)
f1                 max  2 · precision · recall / (precision + recall) = 2TP / (2TP + FP + FN)
roc_auc            max  area under the ROC curve (TPR against FPR over all thresholds) = the
                        probability that a random positive scores above a random negative
top_k_accuracy     max  (number of samples whose label is among the k largest logits) / n
confusion_matrix   —    C[i, j] = number of samples with label i predicted as j (K × K)
mse                min  (1/n) Σ (y − ŷ)²
mae                min  (1/n) Σ |y − ŷ|
rmse               min  √mse
r2                 max  1 − Σ (y − ŷ)² / Σ (y − ȳ)²
================== ==== ========================================================================

The values are scikit-learn's (its functions are the tests' reference), computed where they are
cheap: counting metrics from one confusion matrix, ROC-AUC by ranks, regression metrics as numpy
means (:mod:`optimlab.train.scores` has the formulas).

Averaging of precision / recall / f1 (sklearn's ``average``): ``precision``, ``recall`` and
``f1`` mean ``binary`` (class 1 is positive) on a binary task and ``macro`` on a multiclass one;
spell it out with a suffix: ``f1_macro`` (unweighted mean over classes), ``f1_weighted`` (mean
weighted by each class's support), ``f1_micro`` (global TP/FP/FN counts; equals accuracy for
single-label data), ``f1_binary`` (binary task only). The classes averaged over are those
present in the targets or the predictions (sklearn's default), so a class that a batch lacks
does not count as a zero. Any 0/0 is 0 (``zero_division=0``).

Example::

    compute(["accuracy", "f1_macro", "top_k_accuracy:3"], logits, labels, "multiclass")
    # {'accuracy': 0.81, 'f1_macro': 0.79, 'top_k_accuracy:3': 0.97}
    get_metric("rmse").mode   # 'min': smaller is better

Undefined values are NaN rather than errors, so a trainer can log them and go on:

- ``roc_auc`` when the targets hold a single class (no positive/negative pair to rank); on a
  multiclass task it averages one-vs-rest AUC over the classes present in the targets and is NaN
  when fewer than two are present.
- ``roc_auc``, ``top_k_accuracy`` and the regression metrics when the outputs hold NaN or ±inf
  (a diverged model); the label metrics use the labels those outputs give.
- ``r2`` with fewer than two samples. With constant targets sklearn gives 1.0 for a perfect fit
  and 0.0 otherwise.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from optimlab.train import scores
from optimlab.train.metric_inputs import (
    TASKS,
    MetricInputs,
    StackedInputs,
    check_task,
    prepare,
    prepare_stacked,
)

__all__ = [
    "TASKS",
    "Metric",
    "MetricInputs",
    "StackedInputs",
    "compute",
    "compute_stacked",
    "default_metrics",
    "get_metric",
    "metric_names",
    "prepare",
    "prepare_stacked",
]

_CLASSIFICATION = ("binary", "multiclass")
_AVERAGES = ("binary", "macro", "micro", "weighted")
_DEFAULT_TOP_K = 5

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro"),
    "regression": ("mse", "mae", "r2"),
}


# --------------------------------------------------------------------------------------------
# Metric
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Metric:
    """A named metric: which direction is better, which tasks it fits, how to compute it.

    ``mode`` tells EarlyStopping / ReduceLROnPlateau whether larger (``"max"``) or smaller
    (``"min"``) is better; it means nothing for a non-scalar metric (``scalar=False``, the
    confusion matrix), which such callbacks should refuse. ``needs_scores`` marks metrics that
    rank the outputs (ROC-AUC, top-k) and so need logits, not labels. ``fn`` receives a
    :class:`MetricInputs`; write your own metric the same way::

        Metric(name="balanced_accuracy", mode="max", tasks=("binary", "multiclass"),
               fn=lambda x: skm.balanced_accuracy_score(x.y_true, x.y_pred))

    ``from_counts``, for a classification metric that is a function of the confusion matrix
    alone, computes it for S matrices [S, K, K] at once (an array of S values); ``fn`` then
    reads it on one matrix, so both give the same number (:func:`compute_stacked`).
    """

    name: str
    mode: Literal["max", "min"]
    tasks: tuple[str, ...]
    fn: Callable[[MetricInputs], float | np.ndarray] = field(repr=False, compare=False)
    needs_scores: bool = False
    scalar: bool = True
    description: str = field(default="", repr=False, compare=False)
    from_counts: Callable[[np.ndarray, str], np.ndarray] | None = field(
        default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode={self.mode!r} is not allowed; choose 'max' or 'min'")
        unknown = [t for t in self.tasks if t not in TASKS]
        if not self.tasks or unknown:
            raise ValueError(
                f"tasks={self.tasks!r} must be a non-empty tuple drawn from {', '.join(TASKS)}"
            )

    def check_task(self, task: str) -> None:
        """Raise ``ValueError`` unless this metric applies to ``task``."""
        check_task(task)
        if task not in self.tasks:
            raise ValueError(
                f"metric {self.name!r} does not apply to task {task!r}; it applies to "
                f"{', '.join(self.tasks)}. Metrics for {task!r}: "
                f"{', '.join(metric_names(task))}"
            )

    def evaluate(self, inputs: MetricInputs) -> float | np.ndarray:
        """The metric on already prepared inputs (see :func:`prepare`)."""
        self.check_task(inputs.task)
        value = self.fn(inputs)
        return float(value) if self.scalar else np.asarray(value)

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor,
                 task: str) -> float | np.ndarray:
        """The metric of ``outputs`` (logits or values) against ``targets`` for ``task``."""
        self.check_task(task)
        return self.evaluate(prepare(outputs, targets, task))


# --------------------------------------------------------------------------------------------
# The metrics (the formulas are in optimlab.train.scores)
# --------------------------------------------------------------------------------------------


def _accuracy_counts(c: np.ndarray, task: str) -> np.ndarray:
    """accuracy = (number of ŷ = y) / n = trace(C) / ΣC."""
    return scores.accuracy(c)


_WHICH = {"precision": 0, "recall": 1, "f1": 2}


def _counting_counts(base: str, average: str | None) -> Callable[[np.ndarray, str], np.ndarray]:
    """precision = TP/(TP+FP), recall = TP/(TP+FN), f1 = 2TP/(2TP+FP+FN), averaged as asked
    (``None``: binary on a binary task, macro on a multiclass one); 0/0 = 0."""
    which = _WHICH[base]

    def fn(c: np.ndarray, task: str) -> np.ndarray:
        avg = average or ("binary" if task == "binary" else "macro")
        return scores.precision_recall_f1(c, avg)[which]

    return fn


def _on_one(from_counts: Callable[[np.ndarray, str], np.ndarray]
            ) -> Callable[[MetricInputs], float]:
    """A ``from_counts`` metric read on one evaluation's confusion matrix."""
    return lambda x: float(from_counts(x.confusion, x.task))


def _roc_auc(x: MetricInputs) -> float:
    """Area under the ROC curve. Binary: ranked by the logit itself (the same area as on σ(logit),
    without the ties σ's rounding makes at large |logit|). Multiclass: one-vs-rest on softmax
    probabilities, macro-averaged over the classes present in the targets. NaN with fewer than
    two classes present or non-finite outputs."""
    if not x.finite:
        return math.nan
    present = np.unique(x.y_true)
    if present.size < 2:
        return math.nan
    if x.task == "binary":
        return scores.roc_auc_binary(x.y_true == 1, x.scores)
    probs = x.probabilities
    return float(np.mean([scores.roc_auc_binary(x.y_true == c, probs[:, c]) for c in present]))


def _top_k(k: int) -> Callable[[MetricInputs], float]:
    """top-k accuracy = (number of samples whose label is among the k largest logits) / n;
    1.0 when k ≥ K. On exact ties the higher class index ranks first (as in sklearn)."""

    def fn(x: MetricInputs) -> float:
        if not x.finite:
            return math.nan
        n_classes = int(x.n_classes or 0)
        if k >= n_classes:
            return 1.0
        if n_classes == 2:  # k = 1 of 2 classes: plain accuracy
            return float(scores.accuracy(x.confusion))
        return scores.top_k_accuracy(x.y_true, x.scores, k)

    return fn


def _confusion_matrix(x: MetricInputs) -> np.ndarray:
    """C[i, j] = number of samples of label i predicted as j, K × K (binary: [[TN, FP],
    [FN, TP]])."""
    return x.confusion.copy()


def _regression(score: Callable[[np.ndarray, np.ndarray], float]
                ) -> Callable[[MetricInputs], float]:
    def fn(x: MetricInputs) -> float:
        if not x.finite:
            return math.nan
        return score(x.y_true, x.y_pred)

    return fn


def _rmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """rmse = √mse per output, then the mean over outputs."""
    return float(np.mean(np.sqrt(scores.mse_per_output(y, y_hat))))


def _r2(y: np.ndarray, y_hat: np.ndarray) -> float:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)², mean over outputs; NaN with fewer than two samples."""
    if y.shape[0] < 2:
        return math.nan
    return scores.r2(y, y_hat)


_CLS = _CLASSIFICATION
_REG = ("regression",)

_FIXED: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(name="accuracy", mode="max", tasks=_CLS, fn=_on_one(_accuracy_counts),
               from_counts=_accuracy_counts, description="(number of ŷ = y) / n"),
        Metric(name="roc_auc", mode="max", tasks=_CLS, fn=_roc_auc, needs_scores=True,
               description="area under the ROC curve (one-vs-rest macro for multiclass)"),
        Metric(name="confusion_matrix", mode="max", tasks=_CLS, fn=_confusion_matrix,
               scalar=False, description="C[i, j] = number of samples of label i predicted j"),
        Metric(name="mse", mode="min", tasks=_REG, fn=_regression(scores.mse),
               description="(1/n) Σ (y − ŷ)²"),
        Metric(name="mae", mode="min", tasks=_REG, fn=_regression(scores.mae),
               description="(1/n) Σ |y − ŷ|"),
        Metric(name="rmse", mode="min", tasks=_REG, fn=_regression(_rmse),
               description="√mse"),
        Metric(name="r2", mode="max", tasks=_REG, fn=_regression(_r2),
               description="1 − Σ (y − ŷ)² / Σ (y − ȳ)²"),
    )
}

_COUNTING: dict[str, str] = {
    "precision": "TP / (TP + FP)",
    "recall": "TP / (TP + FN)",
    "f1": "2 · precision · recall / (precision + recall)",
}
_COUNTING_RE = re.compile(r"^(precision|recall|f1)(?:_(binary|macro|micro|weighted))?$")
_TOP_K_RE = re.compile(r"^(?:top(\d+)_accuracy|top_k_accuracy(?::(\d+))?)$")

_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy", _CLS),
    *((f"{base}{suffix}", _CLS) for base in _COUNTING
      for suffix in ("", "_macro", "_micro", "_weighted")),
    *((f"{base}_binary", ("binary",)) for base in _COUNTING),
    ("roc_auc", _CLS),
    ("top_k_accuracy", ("multiclass",)),
    ("confusion_matrix", _CLS),
    ("mse", _REG),
    ("mae", _REG),
    ("rmse", _REG),
    ("r2", _REG),
)


def metric_names(task: str | None = None) -> list[str]:
    """Names :func:`get_metric` knows (for ``task`` only, if given). ``top_k_accuracy`` also
    reads ``top5_accuracy`` and ``top_k_accuracy:3``."""
    if task is not None:
        check_task(task)
    return [name for name, tasks in _NAMES if task is None or task in tasks]


def get_metric(spec: str | Metric, task: str | None = None) -> Metric:
    """The metric named ``spec`` (a :class:`Metric` passes through), checked against ``task``
    when given.

    Names: ``accuracy``; ``precision``, ``recall``, ``f1`` with an optional averaging suffix
    ``_macro`` / ``_micro`` / ``_weighted`` / ``_binary``; ``roc_auc``; ``top_k_accuracy``
    (k = 5), ``top3_accuracy`` or ``top_k_accuracy:3``; ``confusion_matrix``; ``mse``, ``mae``,
    ``rmse``, ``r2``. Names are case-insensitive; the metric's ``name`` is the spec in lower
    case (so ``compute`` reports ``"top_k_accuracy:3"`` under that key).

    Raises ``ValueError`` for an unknown name (listing the known ones) and, with ``task``, for a
    metric that does not apply to it.
    """
    if isinstance(spec, Metric):
        metric = spec
    elif isinstance(spec, str):
        metric = _parse(spec.strip().lower())
    else:
        raise TypeError(f"a metric is a name or a Metric; got {type(spec).__name__}")
    if task is not None:
        metric.check_task(task)
    return metric


def _parse(name: str) -> Metric:
    if name in _FIXED:
        return _FIXED[name]
    match = _COUNTING_RE.match(name)
    if match:
        base, average = match.group(1), match.group(2)
        formula = _COUNTING[base]
        tasks = ("binary",) if average == "binary" else _CLS
        how = average or "binary for binary tasks, macro for multiclass"
        counts = _counting_counts(base, average)
        return Metric(name=name, mode="max", tasks=tasks, fn=_on_one(counts),
                      from_counts=counts, description=f"{formula}, averaged: {how}")
    match = _TOP_K_RE.match(name)
    if match:
        digits = match.group(1) or match.group(2)
        k = int(digits) if digits else _DEFAULT_TOP_K
        if k < 1:
            raise ValueError(f"metric {name!r}: k must be at least 1; got {k}")
        return Metric(name=name, mode="max", tasks=("multiclass",), fn=_top_k(k),
                      needs_scores=True,
                      description=f"fraction of samples whose label is among the top {k} logits")
    if name == "loss":
        raise ValueError("'loss' is not a metric here: the Trainer computes the loss itself")
    known = [n for n, _ in _NAMES]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown metric {name!r}.{hint} Known metrics: {', '.join(known)} "
        f"(top-k also as 'top5_accuracy' or 'top_k_accuracy:3')"
    )


def default_metrics(task: str) -> list[str]:
    """Metrics reported when none are asked for: binary → accuracy, f1, roc_auc; multiclass →
    accuracy, f1_macro; regression → mse, mae, r2."""
    check_task(task)
    return list(_DEFAULTS[task])


def compute(metrics: Sequence[str | Metric], outputs: torch.Tensor, targets: torch.Tensor,
            task: str, *, include_nonscalar: bool = False) -> dict[str, Any]:
    """``{name: value}`` for each metric, moving the tensors to the CPU only once.

    Non-scalar metrics (the confusion matrix) are left out unless ``include_nonscalar``; then
    their value is a numpy array. Every metric is checked against ``task`` before any is
    computed.
    """
    resolved = [get_metric(m, task=task) for m in metrics]
    chosen = [m for m in resolved if m.scalar or include_nonscalar]
    if not chosen:
        return {}
    inputs = prepare(outputs, targets, task)
    return {m.name: m.evaluate(inputs) for m in chosen}


def compute_stacked(metrics: Sequence[str | Metric], outputs: torch.Tensor,
                    targets: torch.Tensor, task: str) -> list[dict[str, float]]:
    """:func:`compute` for S evaluations stacked along a new leading dimension (the seeds of
    one configuration trained together): ``outputs`` [S, n, …] and ``targets`` [S, n, …] give
    S dicts, entry s equal to ``compute(metrics, outputs[s], targets[s], task)``. The inputs
    are prepared once for all S rows (:func:`prepare_stacked`); a metric with ``from_counts``
    is computed for all S confusion matrices at once, any other on each seed. Scalar metrics
    only."""
    resolved = [get_metric(m, task=task) for m in metrics]
    chosen = [m for m in resolved if m.scalar]
    seeds = int(outputs.shape[0])
    if not chosen:
        return [{} for _ in range(seeds)]
    inputs = prepare_stacked(outputs, targets, task)
    columns = {m.name: m.from_counts(inputs.counts, task).tolist() for m in chosen
               if m.from_counts is not None and task in _CLASSIFICATION}
    each = inputs.each() if len(columns) < len(chosen) else []
    return [{m.name: columns[m.name][s] if m.name in columns else float(m.evaluate(each[s]))
             for m in chosen} for s in range(seeds)]
