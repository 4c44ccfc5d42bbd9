"""Losses by name, on model **outputs** (logits for classification) — mean over the batch.

z: model outputs, y: targets, N rows (samples).

=======  =======================================================  ==========  ===============
name     formula (mean over rows; over elements for mse/mae/…)    tasks       ``name:x``
=======  =======================================================  ==========  ===============
mse      (z − y)²                                                 regression  —
mae      |z − y|                                                  regression  —
huber    ½r² if |r| ≤ δ else δ·(|r| − ½δ),  r = z − y            regression  delta (1.0)
cosine   1 − z·y / (‖z‖‖y‖)   per row                             regression  —
bce      −[y·log σ(z) + (1 − y)·log(1 − σ(z))]                    binary,     —
                                                                  multilabel
hinge    max(0, 1 − s·z),  s = +1 for y = 1, −1 for y = 0 (or −1) binary,     —
                                                                  multilabel
ce       −Σ_k y_k·log softmax(z)_k   (y one-hot/probabilities;    multiclass  label_smoothing
         integer labels c mean y = one-hot(c))                                (0.0)
kl_div   Σ_k y_k·(log y_k − log softmax(z)_k)   per row           multiclass  —
=======  =======================================================  ==========  ===============

``bce`` and ``ce`` are the notes' sigmoid + binary cross-entropy and softmax + categorical
(or sparse categorical) cross-entropy, computed from logits in torch's fused, stable form
(``binary_cross_entropy_with_logits``, ``cross_entropy``). ``kl_div`` uses ``batchmean``: the
true KL divergence per sample, averaged (torch's ``"mean"`` would also divide by K).

Target shapes are made to match the outputs before the loss: targets of shape (N,) against
outputs (N, 1) are reshaped rather than broadcast (broadcasting would silently give an N×N
loss). Any other mismatch raises ``ValueError`` saying what the model gives and what the targets
hold; :func:`check_targets` also checks the values (label range, probabilities) and is meant to
run once before training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.models._registry import Entry, Param, Registry, describe
from optimlab.models.tasks import TASKS, check_task

LOSSES = Registry(
    "loss",
    [
        Entry("mse", aliases=("mean_squared_error",)),
        Entry("mae", aliases=("mean_absolute_error",)),
        Entry("huber", {"delta": Param(1.0, low=0.0, low_open=True)}, "delta"),
        Entry("bce", aliases=("binary_crossentropy", "binary_cross_entropy", "log_loss")),
        Entry("hinge"),
        Entry(
            "ce",
            {"label_smoothing": Param(0.0, low=0.0, high=1.0, high_open=True)},
            "label_smoothing",
            ("cross_entropy", "categorical_crossentropy", "sparse_categorical_crossentropy"),
        ),
        Entry("kl_div", aliases=("kl", "kullback_leibler_divergence")),
        Entry("cosine", aliases=("cosine_proximity", "cosine_similarity")),
    ],
)


def loss_tasks(name: str) -> list[str]:
    """The tasks a (canonical) loss name fits."""
    return [t for t, d in TASKS.items() if name in d["losses"]]


class Loss:
    """A named loss: ``loss(outputs, targets) -> scalar tensor`` (mean reduction)."""

    def __init__(self, name: str, params: dict[str, Any], task: str | None) -> None:
        self.name = name
        self.params = dict(params)
        self.task = task
        self._fn: Callable[[Tensor, Tensor], Tensor] = _FUNCTIONS[name]

    def __call__(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if _aligned(self.name, outputs, targets):  # the usual case: nothing to convert
            return self._fn(outputs, targets, **self.params)
        o, t = _align(self.name, outputs, targets)
        return self._fn(o, t, **self.params)

    def stacked(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The loss of each of S batches stacked along a new leading dimension: outputs
        (S, N, …) and targets (S, N, …) give a tensor of S losses whose entry s is
        ``self(outputs[s], targets[s])`` (the same mean, over rows or elements, per batch), in
        one call instead of S (seeds trained together, ``optimlab.train.fit_together``)."""
        s, n = outputs.shape[0], outputs.shape[1]
        if self.name == "ce" and outputs.ndim == 3 and outputs.mT.is_contiguous() and \
                targets.shape == (s, n) and targets.dtype == torch.int64 and \
                targets.device == outputs.device:
            # classes first, [S, K, n] as the stacked dense model makes them: log-softmax over
            # the K classes runs across rows in vector lanes (16× faster than over rows of K = 10)
            return F.cross_entropy(outputs.mT, targets, reduction="none",
                                   **self.params).mean(1)
        o = outputs.reshape(s * n, *outputs.shape[2:])
        t = targets.reshape(s * n, *targets.shape[2:])
        if not _aligned(self.name, o, t):
            o, t = _align(self.name, o, t)
        each = _PER_ELEMENT[self.name](o, t, **self.params).reshape(s, -1)
        if self.name == "kl_div":  # batchmean: the sum over a batch's rows and classes / rows
            return each.sum(1) / n
        return each.mean(1)

    def __repr__(self) -> str:
        return f"Loss({describe(self.name, self.params)}, task={self.task!r})"


def get_loss(name: Any, task: str | None, *, path: str = "loss") -> Loss:
    """The loss ``name`` (``"huber"``, ``"huber:0.5"`` or ``{"name": "huber", "delta": 0.5}``)
    for ``task``; ``ValueError`` if it is unknown or does not fit the task (``task=None`` skips
    that check).

    >>> loss = get_loss("bce", "binary")
    >>> round(loss(torch.tensor([0.0]), torch.tensor([1.0])).item(), 4)   # −log σ(0) = log 2
    0.6931
    """
    canon, params = LOSSES.parse(name, path)
    if task is not None:
        check_task(task)
        fits = TASKS[task]["losses"]
        if canon not in fits:
            raise ValueError(
                f"{path}={name!r} does not fit task {task!r} ({canon} is for "
                f"{' / '.join(loss_tasks(canon))}); losses that fit {task}: {', '.join(fits)}"
            )
    return Loss(canon, params, task)


def available_losses() -> dict[str, dict[str, Any]]:
    """Loss name → ``{"tasks": [...], "params": {name: default}}``."""
    return {
        n: {"tasks": loss_tasks(n), "params": {k: p.default for k, p in e.params.items()}}
        for n, e in LOSSES.entries.items()
    }


# --- the losses (inputs already aligned by _align) ---------------------------------------


def _mse(z: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(z, y)


def _mae(z: Tensor, y: Tensor) -> Tensor:
    return F.l1_loss(z, y)


def _huber(z: Tensor, y: Tensor, delta: float) -> Tensor:
    return F.huber_loss(z, y, delta=delta)


def _bce(z: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(z, y)


def _hinge(z: Tensor, y: Tensor) -> Tensor:
    s = torch.where(y > 0, 1.0, -1.0).to(z.dtype)  # {0, 1} or {−1, +1} → ±1
    return F.relu(1.0 - s * z).mean()


def _ce(z: Tensor, y: Tensor, label_smoothing: float) -> Tensor:
    return F.cross_entropy(z, y, label_smoothing=label_smoothing)


def _kl_div(z: Tensor, y: Tensor) -> Tensor:
    return F.kl_div(F.log_softmax(z, dim=-1), y, reduction="batchmean")


def _cosine(z: Tensor, y: Tensor) -> Tensor:
    return (1.0 - F.cosine_similarity(z, y, dim=-1)).mean()


_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "mse": _mse,
    "mae": _mae,
    "huber": _huber,
    "bce": _bce,
    "hinge": _hinge,
    "ce": _ce,
    "kl_div": _kl_div,
    "cosine": _cosine,
}


#: the same losses before the mean: one value per element (per row for ce, cosine), which
#: ``Loss.stacked`` averages per batch; each equals its function above with reduction="none"
_PER_ELEMENT: dict[str, Callable[..., Tensor]] = {
    "mse": lambda z, y: F.mse_loss(z, y, reduction="none"),
    "mae": lambda z, y: F.l1_loss(z, y, reduction="none"),
    "huber": lambda z, y, delta: F.huber_loss(z, y, delta=delta, reduction="none"),
    "bce": lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none"),
    "hinge": lambda z, y: F.relu(1.0 - torch.where(y > 0, 1.0, -1.0).to(z.dtype) * z),
    "ce": lambda z, y, label_smoothing: F.cross_entropy(z, y, label_smoothing=label_smoothing,
                                                        reduction="none"),
    "kl_div": lambda z, y: F.kl_div(F.log_softmax(z, dim=-1), y, reduction="none"),
    "cosine": lambda z, y: 1.0 - F.cosine_similarity(z, y, dim=-1),
}


# --- shapes and values --------------------------------------------------------------------


def _cols(x: Tensor) -> int:
    return 1 if x.ndim == 1 else int(x.shape[1])


def _aligned(name: str, o: Tensor, t: Any) -> bool:
    """Whether ``_align`` would return ``(o, t)`` unchanged (checked in a few attribute reads:
    the loss runs every step)."""
    if not (isinstance(o, Tensor) and isinstance(t, Tensor)) or o.device != t.device:
        return False
    if name == "ce":
        return (o.ndim == 2 and o.shape[1] >= 2 and t.ndim == 1 and t.dtype == torch.int64
                and t.shape[0] == o.shape[0])
    if name in ("bce", "hinge", "mse", "mae", "huber"):
        return o.ndim >= 1 and t.shape == o.shape and t.dtype == o.dtype
    return False


def _align(name: str, o: Tensor, t: Any) -> tuple[Tensor, Tensor]:
    """Match the targets' shape and dtype to the outputs for loss ``name`` (shape checks only:
    no data-dependent work, so nothing waits on the device)."""
    if not isinstance(o, Tensor):
        raise TypeError(f"{name}: outputs must be a torch.Tensor, got {type(o).__name__}")
    t = torch.as_tensor(t, device=o.device)
    if o.ndim == 0 or t.ndim == 0:
        raise ValueError(
            f"{name}: outputs and targets need a batch dimension; got shapes "
            f"{tuple(o.shape)} and {tuple(t.shape)}"
        )
    n = o.shape[0]
    if t.shape[0] != n:
        raise ValueError(
            f"{name}: the model gives {n} rows of outputs but the targets have {t.shape[0]} rows"
        )
    if name in ("ce", "kl_div"):
        if o.ndim != 2:
            raise ValueError(
                f"{name} needs outputs of shape (N, K), one logit per class; the model gives "
                f"shape {tuple(o.shape)}"
            )
        k = o.shape[1]
        if k < 2:
            raise ValueError(
                f"{name} needs K >= 2 class logits but the model gives 1 output; for two classes "
                "with one logit use bce (task 'binary')"
            )
        if t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1):
            if name == "kl_div":
                raise ValueError(
                    "kl_div targets are probabilities of shape (N, K); for integer class labels "
                    "use ce"
                )
            return o, t.reshape(n).long()
        if t.ndim != 2:
            raise ValueError(
                f"{name}: targets of shape {tuple(t.shape)} are neither (N,) nor (N, K)"
            )
        if t.shape[1] != k:
            raise ValueError(
                f"{name}: the model gives {k} outputs but the targets are one-hot/probabilities "
                f"with {t.shape[1]} columns"
            )
        return o, t.to(o.dtype)
    if name in ("bce", "hinge"):
        if t.shape != o.shape:
            if _cols(o) > 1 and t.ndim == 1:
                raise ValueError(
                    f"{name}: the model gives {_cols(o)} outputs but the targets hold one label "
                    f"per row; for {_cols(o)} classes use ce (task 'multiclass'), for a binary "
                    "task build the model with n_outputs=1"
                )
            if t.numel() != o.numel() or _cols(o) != _cols(t):
                raise ValueError(
                    f"{name}: the model gives {_cols(o)} outputs per row but the targets have "
                    f"{_cols(t)} columns (shapes {tuple(o.shape)} and {tuple(t.shape)})"
                )
            t = t.reshape(o.shape)
        return o, t.to(o.dtype)
    # mse, mae, huber, cosine
    if name == "cosine" and o.ndim != 2:
        raise ValueError(
            f"cosine compares vectors: it needs outputs of shape (N, D); the model gives shape "
            f"{tuple(o.shape)}"
        )
    if t.shape != o.shape:
        if _cols(o) != _cols(t) or t.numel() != o.numel():
            raise ValueError(
                f"{name}: the model gives {_cols(o)} outputs per row but the targets have "
                f"{_cols(t)} columns (shapes {tuple(o.shape)} and {tuple(t.shape)})"
            )
        t = t.reshape(o.shape)
    return o, t.to(o.dtype)


def check_targets(
    loss: Any, outputs: Tensor, targets: Any, *, task: str | None = None
) -> None:
    """Raise ``ValueError`` before training if ``targets`` cannot go with ``outputs`` under
    ``loss``: row or column counts that differ ("the model gives 10 outputs but the targets are
    one-hot with 3 columns"), class labels outside 0..K−1 or not integers, probability rows that
    are negative or do not sum to 1, bce targets outside [0, 1], hinge labels other than 0/1/±1,
    NaN or inf. With ``task``, also that the loss fits the task.
    """
    name = get_loss(loss, task).name
    raw = torch.as_tensor(targets)
    o, t = _align(name, outputs, raw)
    with torch.no_grad():
        rawf = raw.detach()
        if rawf.is_floating_point() and not torch.isfinite(rawf).all():
            raise ValueError(f"{name}: the targets contain NaN or inf")
        if name == "ce" and t.ndim == 1:
            k = o.shape[1]
            if rawf.is_floating_point() and not (rawf == rawf.round()).all():
                raise ValueError(
                    "ce: targets of one value per row must be integer class labels 0.."
                    f"{k - 1}; they hold non-integers"
                )
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= k:
                raise ValueError(
                    f"ce: the targets hold class labels {lo}..{hi} but the model gives {k} "
                    f"outputs (labels must be 0..{k - 1})"
                )
        elif name in ("ce", "kl_div"):
            sums = t.sum(dim=1)
            rowbad = (t < 0).any(dim=1) | ((sums - 1).abs() > 1e-3)
            if rowbad.any():
                bad = int(rowbad.nonzero()[0, 0])
                raise ValueError(
                    f"{name}: targets with {t.shape[1]} columns must be one-hot or probabilities "
                    f"(each row >= 0, summing to 1); row {bad} sums to {float(sums[bad]):.4g}"
                    + (" and has negative entries" if (t[bad] < 0).any() else "")
                )
        elif name == "bce":
            if (t < 0).any() or (t > 1).any():
                raise ValueError(
                    f"bce: targets must lie in [0, 1] (labels 0/1 or probabilities); they range "
                    f"over [{float(t.min()):.4g}, {float(t.max()):.4g}]"
                )
        elif name == "hinge":
            ok = torch.isin(t, torch.tensor([-1.0, 0.0, 1.0], dtype=t.dtype, device=t.device))
            if not ok.all():
                raise ValueError("hinge: targets must be labels 0/1 (or -1/+1)")
