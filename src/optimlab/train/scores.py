"""The numbers behind the metrics, computed where they are cheap: scikit-learn's values without
its per-call input checks (the Trainer computes a few metrics every epoch; scikit-learn spends
most of its 1–8 ms a call validating and re-encoding labels that ``metrics.prepare`` has
already checked).

- Counting metrics come from one K × K confusion matrix, ``C[i, j]`` = number of samples of
  label i predicted j (one ``bincount``). Per class c: TP = C[c, c], FP = Σ_i C[i, c] − TP,
  FN = Σ_j C[c, j] − TP, support = Σ_j C[c, j]; precision = TP/(TP + FP), recall =
  TP/(TP + FN), F1 = 2TP/(2TP + FP + FN), each 0 when its denominator is 0 (scikit-learn's
  ``zero_division=0``, the same divisions in the same order). Averaged over the classes present
  in the targets or the predictions: ``macro`` (mean), ``weighted`` (by support), ``micro``
  (from the summed counts), ``binary`` (class 1 alone).
- ROC-AUC by ranks (Mann–Whitney): with r the ranks of the scores (ties get their mean rank),
  n₁ positives and n₀ negatives, AUC = (Σ_positives r − n₁(n₁ + 1)/2) / (n₁·n₀) — the area
  scikit-learn's trapezoids give, ties included, up to rounding in the last digits.
- Top-k accuracy ranks the logits as scikit-learn does (a stable sort: on ties the higher class
  index first); regression metrics are the same numpy means and sums.
"""

from __future__ import annotations

import numpy as np

Averaging = str  # "binary" | "macro" | "micro" | "weighted"


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """``C[i, j]`` = number of samples with label i predicted as j, K × K (int64). Labels of
    shape [S, n] give S matrices [S, K, K] from one count: bincount(s·K² + i·K + j)."""
    if y_true.ndim == 1:
        return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    s = y_true.shape[0]
    cells = y_true * k + y_pred + (np.arange(s) * (k * k))[:, None]
    return np.bincount(cells.reshape(-1), minlength=s * k * k).reshape(s, k, k)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den elementwise, 0 where den is 0."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(c: np.ndarray, average: Averaging
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1) of the confusion matrices ``c`` [..., K, K], averaged as asked:
    three arrays of shape ``c.shape[:-2]`` (0-d for one K × K matrix). The classes averaged
    over (macro, weighted) are those present, Σ_j C[c, j] + Σ_i C[i, c] > 0, counted per matrix.
    """
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    pred = c.sum(axis=-2)
    true = c.sum(axis=-1)
    if average == "binary":
        tp, pred, true = tp[..., 1:2], pred[..., 1:2], true[..., 1:2]
        present = np.ones(tp.shape, dtype=bool)
    elif average == "micro":
        tp, pred, true = (a.sum(axis=-1, keepdims=True) for a in (tp, pred, true))
        present = np.ones(tp.shape, dtype=bool)
    else:
        present = (pred + true) > 0
    precision, recall = _divide(tp, pred), _divide(tp, true)
    f1 = _divide(2 * tp, true + pred)
    weights = np.where(present, true, 0) if average == "weighted" else present
    total = weights.sum(axis=-1)
    p, r, f = (_divide((v * weights).sum(axis=-1), total) for v in (precision, recall, f1))
    return p, r, f


def accuracy(c: np.ndarray) -> np.ndarray:
    """(number of ŷ = y) / n = trace(C) / ΣC, of the confusion matrices ``c`` [..., K, K]."""
    return np.trace(c, axis1=-2, axis2=-1) / c.sum(axis=(-2, -1))


def roc_auc_binary(positive: np.ndarray, scores: np.ndarray) -> float:
    """AUC of ``scores`` for the boolean labels ``positive`` (needs both kinds present)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    mean_rank = upper - (counts - 1) / 2.0  # ranks 1..n; tied scores share their mean rank
    n1 = int(positive.sum())
    n0 = positive.size - n1
    rank_sum = float(mean_rank[inverse.reshape(-1)][positive].sum())
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the k largest scores (stable sort: on ties the
    higher class index ranks first)."""
    ranked = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean((ranked == y_true[:, None]).any(axis=1)))


def _columns(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1) if a.ndim == 1 else a


def mse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """(1/n) Σ (y − ŷ)², averaged over outputs."""
    return float(np.average(np.average((_columns(y) - _columns(y_hat)) ** 2, axis=0)))


def mse_per_output(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    return np.average((_columns(y) - _columns(y_hat)) ** 2, axis=0)


def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    """(1/n) Σ |y − ŷ|, averaged over outputs."""
    return float(np.average(np.average(np.abs(_columns(y_hat) - _columns(y)), axis=0)))


def r2(y: np.ndarray, y_hat: np.ndarray) -> float:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² per output, averaged; an output with constant targets
    scores 1 when predicted exactly, else 0 (scikit-learn's ``force_finite``)."""
    y, y_hat = _columns(y), _columns(y_hat)
    numerator = ((y - y_hat) ** 2).sum(axis=0)
    denominator = ((y - np.average(y, axis=0)) ** 2).sum(axis=0)
    scores = np.ones(y.shape[1])
    valid = (denominator != 0) & (numerator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(np.average(scores))
