"""A configuration's trials as the units its statistics rest on: one unit per (fold, seed) — per
seed in a study without k-fold — holding the unit's restarts, and the restart kept.

The unit is what the lab pairs across configurations (the same fold and seed: the same training
rows, initial weights and batch order) and what a summary averages over. Its value is that of
the restart with the best monitored validation value (:func:`optimlab.train.restarts.
best_restart`), once every restart has finished or failed; a unit with a restart still pending
or running is unfinished and left out. With one restart the unit is the trial itself.

What restarts are worth is measured per unit (:func:`restart_summary`): the spread of the
restarts' validation values, and the gain of the kept restart over the average restart — on
validation (where the choice was made: optimistic by construction) and on the test split (the
honest measure: the test value of the restart chosen on validation, never the best test value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab import stats
from optimlab.lab.store import FINISHED, TrialRow
from optimlab.train.restarts import best_restart

__all__ = ["RestartSummary", "Unit", "group", "restart_summary", "unit_id"]

#: trial statuses that count (failed = the worst value)
COUNTED = (*FINISHED, "failed")
#: unit ids of k-fold studies: fold · FOLD_STRIDE + seed (seeds are below 2³¹)
FOLD_STRIDE = 2**31


def unit_id(fold: int | None, seed: int) -> int:
    """The seed itself without k-fold (so an ordinary study's units are its seeds), else
    ``fold · 2³¹ + seed``: one integer per (fold, seed), the same in every configuration."""
    return seed if fold is None else fold * FOLD_STRIDE + seed


@dataclass
class Unit:
    """One (fold, seed) of a configuration: its restarts (``rows``, by restart index) and the
    one kept (``chosen``; None while the unit is unfinished)."""

    id: int
    fold: int | None
    seed: int
    rows: list[TrialRow]
    chosen: TrialRow | None = None
    values: list[float] = field(default_factory=list)
    tests: list[float] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.chosen is not None

    @property
    def where(self) -> str:
        return f"fold {self.fold}, seed {self.seed}" if self.fold is not None else \
            f"seed {self.seed}"


def group(trials: Sequence[TrialRow], value: Callable[[TrialRow], float],
          test: Callable[[TrialRow], float], mode: str) -> dict[int, Unit]:
    """The units of one configuration's trials (in the trials' order), each with the restart
    kept: the best ``value`` (validation) by ``mode`` once all its restarts are counted; the
    first restart when none has a finite value (it diverged or failed: the unit's value is
    NaN)."""
    units: dict[int, Unit] = {}
    for r in trials:
        uid = unit_id(r.fold, r.seed)
        units.setdefault(uid, Unit(uid, r.fold, r.seed, [])).rows.append(r)
    for u in units.values():
        u.rows.sort(key=lambda r: r.restart or 0)
        if all(r.status in COUNTED for r in u.rows):
            u.values = [value(r) for r in u.rows]
            u.tests = [test(r) for r in u.rows]
            best = best_restart(u.values, mode)
            u.chosen = u.rows[best if best is not None else 0]
    return units


@dataclass
class RestartSummary:
    """What restarts did for one configuration: ``restarts`` per unit; ``spread`` the mean
    over units of the restarts' sample std of the validation value; ``gain_val`` and
    ``gain_test`` the kept restart minus the mean restart per unit (positive = better, by the
    metric's direction), summarized over the units (t interval); ``chosen`` the restart index
    kept per unit; ``values``/``tests`` every restart's validation and test value per unit."""

    restarts: int
    spread: float
    gain_val: stats.Summary
    gain_test: stats.Summary
    chosen: dict[int, int]
    values: dict[int, list[float]]
    tests: dict[int, list[float]]
    diverged: int = 0

    @property
    def has_test(self) -> bool:
        return self.gain_test.n_finite > 0


def _mean(xs: Sequence[float]) -> float:
    finite = [x for x in xs if math.isfinite(x)]
    return sum(finite) / len(finite) if finite else math.nan


def _std(xs: Sequence[float]) -> float:
    finite = [x for x in xs if math.isfinite(x)]
    if len(finite) < 2:
        return math.nan
    m = sum(finite) / len(finite)
    return math.sqrt(sum((x - m) ** 2 for x in finite) / (len(finite) - 1))


def restart_summary(units: dict[int, Unit], mode: str) -> RestartSummary | None:
    """The restarts of a configuration's finished units (None when it does not restart)."""
    done = [u for u in units.values() if u.done]
    n = max((len(u.rows) for u in units.values()), default=1)
    if n <= 1:
        return None
    sign = 1.0 if mode == "max" else -1.0
    gain_val: dict[int, float] = {}
    gain_test: dict[int, float] = {}
    chosen: dict[int, int] = {}
    spreads = []
    diverged = 0
    for u in done:
        assert u.chosen is not None
        k = u.rows.index(u.chosen)
        chosen[u.id] = u.chosen.restart or 0
        diverged += sum(not math.isfinite(v) for v in u.values)
        gain_val[u.id] = sign * (u.values[k] - _mean(u.values))
        gain_test[u.id] = sign * (u.tests[k] - _mean(u.tests))
        spreads.append(_std(u.values))
    return RestartSummary(
        restarts=n, spread=_mean(spreads), gain_val=stats.summarize(gain_val),
        gain_test=stats.summarize(gain_test), chosen=chosen,
        values={u.id: list(u.values) for u in done}, tests={u.id: list(u.tests) for u in done},
        diverged=diverged)


def describe(units: dict[int, Unit]) -> dict[str, Any]:
    """How many folds, seeds and restarts a configuration's units hold."""
    folds = {u.fold for u in units.values() if u.fold is not None}
    seeds = {u.seed for u in units.values()}
    return {"folds": len(folds), "seeds": len(seeds),
            "restarts": max((len(u.rows) for u in units.values()), default=1)}
