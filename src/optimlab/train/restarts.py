"""Random restarts (notes 003, "Random Restart and Local Minima Solutions"): train the same
recipe from N independent initializations and keep the best — the notes' pseudocode:

    best_loss = inf
    for restart in range(num_restarts):
        model = NeuralNetwork(random_seed=restart)       # a new initialization
        trained_model, validation_loss = train_model(model, train_data, validation_data)
        if validation_loss < best_loss:
            best_loss, best_model = validation_loss, trained_model

Restart r trains from ``restart_seed(seed, r)``: the seed itself for r = 0 (so one restart is
the plain run), a hash of (seed, r) for the others — a new initialization and a new batch
order. The restart kept is the best by the **validation** value of the monitored metric for the
weights the run ends with (a diverged restart is the worst; the first wins a tie): choosing by a
test value would report the luck of the choice as skill. The lab's studies with ``restarts = N``
use the same two rules (:func:`restart_seed`, :func:`best_restart`).

>>> from optimlab import Trainer, data
>>> from optimlab.train import restarts
>>> split = data.holdout(data.load("digits"))
>>> out = restarts(lambda seed: Trainer("mlp", optimizer="sgd", lr=0.1, seed=seed), 5,
...                split.train, split.val, monitor="val_accuracy", epochs=10)
>>> out.best_index, out.values                                   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optimlab._checks import check_choice, check_number

if TYPE_CHECKING:
    from optimlab.train.history import History

__all__ = ["Restarts", "best_restart", "restart_seed", "restarts"]


def restart_seed(seed: int, restart: int) -> int:
    """The seed of restart ``restart`` of a run with seed ``seed``: ``seed`` for restart 0,
    else the first 31 bits of SHA-256 of ``"restart:seed:restart"``."""
    check_number("seed", seed, low=0, integer=True)
    check_number("restart", restart, low=0, integer=True)
    if restart == 0:
        return int(seed)
    digest = hashlib.sha256(f"restart:{seed}:{restart}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def best_restart(values: Sequence[float], mode: str) -> int | None:
    """The index of the best finite value ("min" or "max"; the first of equal ones), None
    when no value is finite (every restart diverged or failed)."""
    check_choice("mode", mode, ("min", "max"))
    best: int | None = None
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            continue
        if best is None or (v < values[best] if mode == "min" else v > values[best]):
            best = i
    return best


@dataclass
class Restarts:
    """N restarts of one recipe: the trainer kept (``best``, restart ``best_index``; None when
    every restart diverged), each restart's seed, validation value of ``monitor`` (NaN when it
    diverged) and history."""

    best: Any
    best_index: int | None
    seeds: list[int]
    values: list[float]
    histories: list[History] = field(default_factory=list)
    monitor: str = "val_loss"
    mode: str = "min"

    @property
    def gain(self) -> float:
        """What keeping the best gained over the average restart on the validation value
        (positive = better; optimistic by construction, since the choice was made on it)."""
        finite = [v for v in self.values if math.isfinite(v)]
        if self.best_index is None or not finite:
            return math.nan
        sign = 1.0 if self.mode == "max" else -1.0
        return sign * (self.values[self.best_index] - sum(finite) / len(finite))


def restarts(make_trainer: Callable[[int], Any], n: int, train: Any, val: Any, *, seed: int = 0,
             monitor: str = "val_loss", mode: str | None = None,
             **fit: Any) -> Restarts:
    """Train ``make_trainer(restart_seed(seed, r))`` for r = 0 … n−1 on ``train`` (``fit``'s
    keyword arguments: ``epochs``, ``batch_size``, …), measure each on ``val`` and keep the best
    by ``monitor`` (``val_loss``, ``val_accuracy``, …; ``mode`` from its name by default).
    Only the best trainer is kept in memory; every restart's history is returned."""
    from optimlab.train.callbacks.monitoring import metric_mode  # (loads torch)

    check_number("restarts", n, low=1, integer=True)
    if val is None:
        raise ValueError("restarts choose by validation data: pass val (a held-out split)")
    if not monitor.startswith("val_"):
        raise ValueError(f"monitor={monitor!r}: restarts are chosen on validation data; use a "
                         "val_ value such as val_loss or val_accuracy")
    mode = mode or metric_mode(monitor)
    check_choice("mode", mode, ("min", "max"))
    key = monitor.removeprefix("val_")
    seeds = [restart_seed(seed, r) for r in range(n)]
    values: list[float] = []
    histories: list[History] = []
    best: Any = None
    for r, s in enumerate(seeds):
        trainer = make_trainer(s)
        history = trainer.fit(train, val, **fit)
        histories.append(history)
        if history.status == "diverged":
            values.append(math.nan)
            continue
        scores = trainer.evaluate(val)
        if key not in scores:
            raise ValueError(f"monitor={monitor!r} is not measured by the trainer (it gives "
                             f"{', '.join('val_' + k for k in scores)}); add the metric")
        values.append(float(scores[key]))
        if best_restart(values, mode) == r:
            best = trainer
    return Restarts(best=best, best_index=best_restart(values, mode), seeds=seeds, values=values,
                    histories=histories, monitor=monitor, mode=mode)
