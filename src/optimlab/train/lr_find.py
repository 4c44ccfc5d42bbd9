"""The learning-rate range test (notes 004, "Tuning Learning Rate with Batch Size"; Smith, 2017,
"Cyclical Learning Rates for Training Neural Networks"; fastai's ``lr_find``).

Train for at most N updates while the learning rate grows exponentially from ``start`` to
``end``, record the loss, smooth it, and read a learning rate off the curve:

    lr_i = start · (end/start)^(i/(N−1)),        i = 0 … N−1
    ℓ_i  = the loss of mini-batch i, measured in the forward pass before the update with lr_i
    v_i  = β·v_{i−1} + (1 − β)·ℓ_i,  v̂_i = v_i / (1 − β^(i+1))    (optimlab.ewa, bias-corrected,
                                                                  so v̂_0 = ℓ_0, not (1 − β)·ℓ_0)
    stop after step i ≥ s when v̂_i > diverge · min_{s≤j≤i} v̂_j  (the loss has blown up), or
    when ℓ_i is not finite; s = ⌊N/10⌋ (the first points, where the average rests on a few
    batches, cannot set the minimum: one lucky batch there would stop the test on noise)

The notes' ``find_lr`` stops when the raw loss passes 10 × the first loss; the rule here (fastai's)
compares the smoothed loss with its best value so far, which one noisy batch cannot trigger and
which still works when the first loss is already small. ``diverge`` sets the factor (default 4).

Suggestions, each read off the smoothed curve v̂ after its first ``N // 10`` points (where the
average still rests on a few batches):

* ``minimum`` (the default): the lr of the smallest v̂, divided by 10 — one decade below the
  point where the loss stops falling, which is the edge of instability;
* ``steepest``: the lr where v̂ falls fastest against log lr, argmin_i (v̂_{i+k} − v̂_{i−k}) /
  (ln lr_{i+k} − ln lr_{i−k}), the difference taken over the EWA's window (k = ½·1/(1 − β));
* ``valley`` (fastai's current default): along the longest decreasing subsequence of v̂ (taken
  to start its length before its end), the point ⌊L/3⌋ + ⌊L/6⌋ of its L steps in.

Why these defaults (measured by ``tests/test_lr_find.py`` and ``examples/lr-range-test``): on
a quadratic (least squares, full-batch gradient descent, curvature L known) the minimum rule
lands within 0.8–1.4 × 1/L, while valley lands below 0.01/L — a deterministic descent falls from
the first step, so the "longest valley" starts at the beginning — and steepest at 0.1–0.4/L.
β = 0.9 averages ≈ 1/(1 − β) = 10 of the 100 steps, a factor 6 in lr; fastai's β = 0.98 averages
half the test (4 decades), lags the descent, and on cat-vs-dog at B = 16 let the smoothed loss
fall so little that the minimum rule fell back to the first points.

The test changes nothing: :meth:`optimlab.train.Trainer.lr_find` restores the weights, the
optimizer's state and its learning rates to what they were, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimlab._checks import check_choice, check_number
from optimlab.smoothing import ewa

__all__ = ["DEFAULTS", "RULES", "LRFindResult", "Suggestion", "check_settings", "lr_schedule",
           "minimum", "range_test", "steepest", "suggest", "valley"]

#: the suggestion rules, in the order they are listed and drawn
RULES = ("valley", "steepest", "minimum")
#: the range test's settings when none are given
DEFAULTS: dict[str, Any] = {"start": 1e-7, "end": 10.0, "num_steps": 100, "beta": 0.9,
                            "diverge": 4.0, "rule": "minimum"}


@dataclass(frozen=True)
class Suggestion:
    """One rule's learning rate: ``lr``, the point of the curve it was read at (``index``,
    ``at_lr``, ``loss`` = the smoothed loss there) and how (``how``)."""

    rule: str
    lr: float
    index: int
    at_lr: float
    loss: float
    how: str


@dataclass
class LRFindResult:
    """One range test: the learning rates tried, the raw and smoothed losses, why it stopped,
    and the suggestions. ``lr`` is the suggestion of ``rule``; ``problem`` says why there is
    none (the test stopped before a curve could be read)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    start: float
    end: float
    num_steps: int
    beta: float
    diverge: float
    rule: str
    stop_reason: str
    diverged: bool
    batch_size: int | None = None
    suggestions: dict[str, Suggestion] = field(default_factory=dict)
    problem: str = ""

    @property
    def lr(self) -> float:
        """The learning rate of :attr:`rule`; ValueError with the reason when there is none."""
        if self.rule not in self.suggestions:
            raise ValueError(f"the learning-rate range test gave no suggestion: {self.problem}")
        return self.suggestions[self.rule].lr

    @property
    def descent(self) -> float:
        """How far the smoothed loss fell: 1 − min v̂ / v̂_0 (0 when it never fell)."""
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if not finite or finite[0] <= 0:
            return 0.0
        return max(0.0, 1.0 - min(finite) / finite[0])

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, strings, lists and dicts (JSON-ready; what the store keeps)."""
        return {"lrs": list(self.lrs), "losses": list(self.losses),
                "smoothed": list(self.smoothed), "start": self.start, "end": self.end,
                "num_steps": self.num_steps, "beta": self.beta, "diverge": self.diverge,
                "rule": self.rule, "stop_reason": self.stop_reason, "diverged": self.diverged,
                "batch_size": self.batch_size, "problem": self.problem,
                "suggestions": {k: vars(s).copy() for k, s in self.suggestions.items()},
                "lr": self.suggestions[self.rule].lr if self.rule in self.suggestions
                else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFindResult:
        return cls(lrs=list(data["lrs"]), losses=list(data["losses"]),
                   smoothed=list(data["smoothed"]), start=data["start"], end=data["end"],
                   num_steps=data["num_steps"], beta=data["beta"], diverge=data["diverge"],
                   rule=data["rule"], stop_reason=data["stop_reason"],
                   diverged=data["diverged"], batch_size=data.get("batch_size"),
                   suggestions={k: Suggestion(**s) for k, s in data["suggestions"].items()},
                   problem=data.get("problem", ""))


def check_settings(start: float, end: float, num_steps: int, beta: float, diverge: float,
                   rule: str) -> None:
    """ValueError naming the setting when the range test cannot run as asked."""
    check_number("start", start, low=0.0, low_open=True)
    check_number("end", end, low=0.0, low_open=True)
    if start >= end:
        raise ValueError(f"start={start:g} must be below end={end:g}: the learning rate grows "
                         "from start to end")
    check_number("num_steps", num_steps, low=10, integer=True)
    check_number("beta", beta, low=0.0, high=1.0, high_open=True)
    check_number("diverge", diverge, low=1.0, low_open=True)
    check_choice("rule", rule, RULES)


def lr_schedule(start: float, end: float, num_steps: int) -> np.ndarray:
    """``start · (end/start)^(i/(N−1))`` for i = 0 … N−1: geometric from start to end."""
    i = np.arange(num_steps, dtype=np.float64)
    return start * (end / start) ** (i / (num_steps - 1))


def range_test(step: Callable[[float], float], *, start: float = DEFAULTS["start"],
               end: float = DEFAULTS["end"], num_steps: int = DEFAULTS["num_steps"],
               beta: float = DEFAULTS["beta"], diverge: float = DEFAULTS["diverge"],
               rule: str = DEFAULTS["rule"], batch_size: int | None = None) -> LRFindResult:
    """Run the test with ``step(lr) -> loss`` (one update at ``lr``, returning the loss of the
    batch measured before it) and read the suggestions off the smoothed curve."""
    check_settings(start, end, num_steps, beta, diverge, rule)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed = np.empty(0)
    reason = f"reached end={end:g} after {num_steps} steps"
    diverged = False
    skip = _skip(num_steps)
    for lr in lr_schedule(start, end, num_steps):
        loss = float(step(float(lr)))
        if not math.isfinite(loss):
            reason = f"the loss became {loss} at lr={lr:.3g} (step {len(lrs) + 1})"
            diverged = True
            break
        lrs.append(float(lr))
        losses.append(loss)
        smoothed = ewa(losses, beta, bias_correction=True)
        if len(smoothed) <= skip:
            continue
        best = float(np.min(smoothed[skip:]))
        if smoothed[-1] > diverge * best:
            reason = (f"the smoothed loss {smoothed[-1]:.4g} passed {diverge:g} × its minimum "
                      f"{best:.4g} at lr={lr:.3g} (step {len(lrs)})")
            diverged = True
            break
    result = LRFindResult(lrs=lrs, losses=losses, smoothed=[float(v) for v in smoothed],
                          start=start, end=end, num_steps=num_steps, beta=beta,
                          diverge=diverge, rule=rule, stop_reason=reason, diverged=diverged,
                          batch_size=batch_size)
    try:
        result.suggestions = suggest(lrs, result.smoothed, beta, skip)
    except ValueError as err:
        result.problem = f"{err} ({reason}); lower start or give more num_steps"
    return result


def _skip(n: int) -> int:
    """The first points of an n-step test that set no minimum and get no suggestion."""
    return n // 10


def suggest(lrs: list[float] | np.ndarray, smoothed: list[float] | np.ndarray,
            beta: float = DEFAULTS["beta"], skip: int | None = None) -> dict[str, Suggestion]:
    """Every rule's suggestion for a smoothed curve, read after its first ``skip`` points
    (default a tenth of them); ValueError when fewer than 5 are left."""
    lr = np.asarray(lrs, dtype=np.float64)
    v = np.asarray(smoothed, dtype=np.float64)
    skip = _skip(len(v)) if skip is None else skip
    if len(v) - skip < 5:
        raise ValueError(f"the test stopped after {len(v)} steps, too few to read a curve "
                         f"from (at least 5 after the first {skip})")
    return {"valley": valley(lr, v, skip), "steepest": steepest(lr, v, skip, beta),
            "minimum": minimum(lr, v, skip)}


def steepest(lrs: np.ndarray, smoothed: np.ndarray, skip: int = 0, beta: float = 0.9
             ) -> Suggestion:
    """The lr where the smoothed loss falls fastest against log lr: the central difference
    (v̂_{i+k} − v̂_{i−k}) / (ln lr_{i+k} − ln lr_{i−k}) over the EWA's own window, k =
    max(1, round(½ / (1 − β))) points either side (a difference over fewer points than the
    average spans measures the batches' noise, not the curve)."""
    k = max(1, round(0.5 / (1.0 - beta)))
    first = max(skip, k)
    idx = np.arange(first, len(smoothed) - k)
    if idx.size == 0:  # too short for the window: adjacent points
        idx, k = np.arange(skip, len(smoothed) - 1), 0
        slope = np.diff(smoothed[skip:]) / np.diff(np.log(lrs[skip:]))
    else:
        slope = ((smoothed[idx + k] - smoothed[idx - k]) /
                 (np.log(lrs[idx + k]) - np.log(lrs[idx - k])))
    j = int(np.argmin(slope))
    i = int(idx[j])
    return Suggestion("steepest", float(lrs[i]), i, float(lrs[i]), float(smoothed[i]),
                      f"steepest descent of the smoothed loss, {slope[j]:.3g} per unit of ln lr")


def minimum(lrs: np.ndarray, smoothed: np.ndarray, skip: int = 0) -> Suggestion:
    """The lr of the smallest smoothed loss, divided by 10."""
    lr, v = lrs[skip:], smoothed[skip:]
    i = int(np.argmin(v))
    return Suggestion("minimum", float(lr[i]) / 10.0, skip + i, float(lr[i]), float(v[i]),
                      f"the smoothed loss is lowest at lr={lr[i]:.3g}; one tenth of it")


def valley(lrs: np.ndarray, smoothed: np.ndarray, skip: int = 0) -> Suggestion:
    """fastai's valley: along the longest decreasing subsequence of the smoothed loss (ending
    at ``end``, ``length`` points long, taken to start at ``end − length``), the point
    ⌊L/3⌋ + ⌊L/6⌋ steps in."""
    lr, v = lrs[skip:], smoothed[skip:]
    n = len(v)
    longest = np.ones(n, dtype=np.int64)  # longest decreasing subsequence ending at i
    for i in range(1, n):
        before = longest[:i][v[:i] > v[i]]
        if before.size:
            longest[i] = int(before.max()) + 1
    end = int(np.argmax(longest))  # the first index of the longest
    begin = max(0, end - int(longest[end]))
    sections = (end - begin) / 3
    i = begin + int(sections) + int(sections / 2)
    return Suggestion("valley", float(lr[i]), skip + i, float(lr[i]), float(v[i]),
                      f"half-way along the longest descent of the smoothed loss (lr "
                      f"{lr[begin]:.3g} to {lr[end]:.3g})")
