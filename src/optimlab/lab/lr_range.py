"""The learning-rate range test in the lab: across batch sizes and seeds with the fitted power
law between batch size and suggested lr (``optimlab lr-find --batch-sizes …``), and before a
trial whose configuration says ``lr = "find"``.

Across batch sizes, each (batch size B, seed) gets its own range test (a fresh model from the
seed, the same training data); the suggested lrs are fitted as lr ≈ c·B^b on log–log axes
(:func:`optimlab.lab.stats.loglog_slope`). The slope b is what the notes' table claims to be 1
("B = 16: ≈ 0.01 … B = 128: ≈ 0.08", the linear scaling rule); b = 0.5 is the square-root rule.
Its interval treats the range tests as independent (each has its own initial weights and batch
order; they share the training data).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.lab import stats, words
from optimlab.train.lr_find import DEFAULTS, LRFindResult

__all__ = ["NOTES_CLAIM", "BatchSweep", "find_for_trial", "lr_find_settings", "sweep"]

#: the notes' "typical results" (004, "Tuning Learning Rate with Batch Size"), as printed
NOTES_CLAIM: dict[int, float] = {16: 0.01, 32: 0.02, 64: 0.04, 128: 0.08}


@dataclass
class BatchSweep:
    """Range tests per batch size and seed, and the power law fitted to the suggestions."""

    rule: str
    results: dict[int, list[LRFindResult]]
    seeds: list[int]
    slope: stats.Slope | None = None
    failed: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def batch_sizes(self) -> list[int]:
        return sorted(self.results)

    def suggested(self, batch_size: int) -> list[float]:
        """The suggested lrs at ``batch_size``, one per seed that gave one."""
        return [r.suggestions[self.rule].lr for r in self.results[batch_size]
                if self.rule in r.suggestions]

    def median(self, batch_size: int) -> float:
        values = sorted(self.suggested(batch_size))
        if not values:
            return math.nan
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else math.sqrt(values[mid - 1] * values[mid])

    def sentences(self) -> list[str]:
        """The fitted law in words, against the linear (1) and square-root (0.5) rules and the
        notes' printed table."""
        s = self.slope
        n_tests = sum(len(v) for v in self.results.values())
        out = []
        if s is None or not math.isfinite(s.slope):
            return [f"No power law can be fitted: it needs suggestions at two batch sizes or "
                    f"more ({n_tests} range tests gave "
                    f"{sum(len(self.suggested(b)) for b in self.batch_sizes)} suggestions)."]
        slope = words.fmt(s.slope, 2)  # two decimals: a rule's slope (1, 0.5) is read off it
        if math.isfinite(s.ci_low):
            ci = (f", {words.plain(s.confidence * 100)}% CI [{words.fmt(s.ci_low, 2)}, "
                  f"{words.fmt(s.ci_high, 2)}]")
        else:
            ci = " (no interval: it needs three suggestions or more)"
        out.append(f"The suggested lr ({self.rule} rule) grows as B^{slope}{ci}, fitted on "
                   f"log–log axes over {s.n} suggestions ({len(self.batch_sizes)} batch sizes × "
                   f"{words.plural(len(self.seeds), 'seed')}).")
        if math.isfinite(s.ci_low):
            verdicts = []
            for value, name in ((1.0, "the linear scaling rule (slope 1)"),
                                (0.5, "the square-root rule (slope 0.5)")):
                inside = "inside" if s.covers(value) else "outside"
                verdicts.append(f"{name} is {inside} the interval")
            out.append("Against the rules: " + "; ".join(verdicts) + ".")
        claim = [b for b in self.batch_sizes if b in NOTES_CLAIM]
        if claim:
            parts = [f"B = {b}: notes ≈ {NOTES_CLAIM[b]:g}, measured {self.median(b):.2g}"
                     for b in claim]
            out.append("The notes' table (median suggestion over the seeds): "
                       + "; ".join(parts) + ".")
        if self.failed:
            out.append("Range tests without a suggestion (left out of the fit): " + "; ".join(
                f"B = {b}, seed {seed}: {why}" for b, seed, why in self.failed) + ".")
        return out

    def to_dict(self) -> dict[str, Any]:
        s = self.slope
        return words.clean({
            "rule": self.rule, "seeds": self.seeds, "batch_sizes": self.batch_sizes,
            "suggested": {str(b): self.suggested(b) for b in self.batch_sizes},
            "median": {str(b): self.median(b) for b in self.batch_sizes},
            "slope": None if s is None else {"slope": s.slope, "intercept": s.intercept,
                                             "ci_low": s.ci_low, "ci_high": s.ci_high,
                                             "n": s.n, "confidence": s.confidence},
            "notes_claim": {str(b): v for b, v in NOTES_CLAIM.items()},
            "answer": self.sentences(),
            "curves": {str(b): [r.to_dict() for r in rs] for b, rs in self.results.items()},
        })


def sweep(make_trainer: Callable[[int], Any], train: Any, batch_sizes: Sequence[int],
          seeds: Sequence[int], *, on_result: Callable[[int, int, LRFindResult], None] | None
          = None, **lr_find: Any) -> BatchSweep:
    """A range test for every (batch size, seed) — ``make_trainer(seed).lr_find(train,
    batch_size=B, **lr_find)`` — and the power law fitted to the suggestions of
    ``lr_find["rule"]`` (default :data:`~optimlab.train.lr_find.DEFAULTS`)."""
    rule = lr_find.get("rule", DEFAULTS["rule"])
    results: dict[int, list[LRFindResult]] = {}
    failed: list[tuple[int, int, str]] = []
    xs: list[float] = []
    ys: list[float] = []
    for b in batch_sizes:
        for seed in seeds:
            result = make_trainer(seed).lr_find(train, batch_size=b, **lr_find)
            results.setdefault(b, []).append(result)
            if rule in result.suggestions:
                xs.append(float(result.batch_size or b))
                ys.append(result.suggestions[rule].lr)
            else:
                failed.append((b, seed, result.problem))
            if on_result is not None:
                on_result(b, seed, result)
    slope = stats.loglog_slope(xs, ys) if len(set(xs)) >= 2 else None
    return BatchSweep(rule=rule, results=results, seeds=list(seeds), slope=slope, failed=failed)


def lr_find_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The range test's keyword arguments from a configuration's ``lr_find`` table (its
    defaults where it gives none)."""
    given = settings.get("lr_find") or {}
    return {k: given.get(k) if given.get(k) is not None else DEFAULTS[k] for k in DEFAULTS}


def find_for_trial(build: Callable[[float], Any], train: Any, settings: dict[str, Any],
                   saved: Path | None = None) -> LRFindResult:
    """The range test of a trial whose ``lr`` is ``"find"``: ``build(lr)`` makes the trial's
    trainer (any lr: the test sets its own), the test runs on ``train`` at the configuration's
    batch size. With ``saved`` (a file in the trial's checkpoint folder) the result is written
    there, and read back by a resumed trial instead of testing again."""
    if saved is not None and saved.is_file():
        try:
            return LRFindResult.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            pass  # a partial write: test again
    trainer = build(1e-3)
    result = trainer.lr_find(train, batch_size=settings["batch_size"],
                             drop_last=settings["drop_last"], **lr_find_settings(settings))
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_name(saved.name + ".tmp")
        tmp.write_text(json.dumps(result.to_dict(), allow_nan=True), encoding="utf-8")
        tmp.replace(saved)
    return result
