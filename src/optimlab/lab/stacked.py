"""The seeds of one configuration trained together, in the lab.

A worker that claims a trial also claims the other runnable seeds of its configuration and
trains them as one stacked model (:func:`optimlab.train.fit_together`): one unit of work, "train
the S seeds of one configuration together and return S results" (:func:`train_together`), each
result recorded as its own trial exactly as a trial trained alone is (same key, same rows). Each
seed is built, checked and checkpointed as :func:`~optimlab.lab.trial.run_trial` builds it (its
own Trainer, callbacks and ``last.pt``), so a run killed mid-way resumes — together when the
seeds' checkpoints are at the same epoch, in groups of equal epochs otherwise (a kill between
two seeds' checkpoint writes, a seed that diverged after its last checkpoint).

When a configuration cannot train together (:func:`optimlab.train.together_problem`: dropout,
ReduceLROnPlateau, …) its seeds run one at a time, the reason is said once on the terminal, and
each trial's environment records it (``"seeds"``); the report's environment sums it up for the
study (:func:`summary`). A seed's times are its share of the unit's: each epoch's time is split
equally among the seeds that trained in it (``"time"`` in the environment says so).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from optimlab.errors import one_line
from optimlab.lab import trial
from optimlab.lab.spec import StudySpec
from optimlab.lab.store import Store, TrialResult, TrialRow
from optimlab.lab.studydata import StudyData
from optimlab.schedules.base import ScheduleEndsEarly
from optimlab.train.callbacks.checkpoint import read_checkpoint
from optimlab.train.restarts import restart_seed

__all__ = ["ENV", "enabled", "run_configuration", "summary", "train_together"]

#: the environment variable that turns training seeds together off (``OPTIMLAB_TOGETHER=0``)
ENV = "OPTIMLAB_TOGETHER"
TIME_NOTE = "each epoch's time shared equally among the seeds trained together in it"


def enabled(together: bool | None = None) -> bool:
    """Whether seeds train together: ``together`` when given, else unless ``OPTIMLAB_TOGETHER``
    says 0/false/no/off."""
    if together is not None:
        return together
    return os.environ.get(ENV, "").strip().lower() not in ("0", "false", "no", "off")


class _Seed:
    """One claimed trial of the unit: its row, split, settings, Trainer and bookkeeping."""

    def __init__(self, store: Store, spec: StudySpec, row: TrialRow, ckpt_root: Path,
                 data: StudyData, device: str) -> None:
        self.row = row
        self.settings = trial.trial_settings(row.config)
        self.split = data.split(row.seed, row.fold)  # its fold's split (k-fold)
        self.monitor = self.settings["monitor"] or trial.monitor_for(spec,
                                                                     self.split.train.task)
        self.ckpt_dir = ckpt_root / row.key
        self.kept = trial.bookkeeping(store, spec, row, self.settings, self.monitor,
                                      self.ckpt_dir)
        self.trainer = trial.build_trainer(spec, self.settings,
                                           restart_seed(row.seed, row.restart or 0),
                                           self.split, self.kept.callbacks, device=device)
        self.warnings: list[str] = []
        self.last = trial._usable_checkpoint(self.ckpt_dir / "last.pt", self.trainer,
                                             self.warnings)

    def position(self) -> tuple[int, int] | None:
        """(epoch, step) its checkpoint resumes from; (-1, 0) without one; None when it had
        ended (it trains no more, whoever it joins)."""
        if self.last is None:
            return (-1, 0)
        data = read_checkpoint(self.last, history=False)
        if data["history"]["status"] not in ("running", "completed"):
            return None
        return (int(data["epoch"]), int(data["step"]))


def train_together(store: Store, spec: StudySpec, seeds: Sequence[_Seed]) -> list[TrialResult]:
    """Train ``seeds`` (one configuration, checkpoints at one position) together and return
    their results, in order, without recording them."""
    from optimlab.train.stacked import fit_together

    started = time.perf_counter()
    first = seeds[0].settings
    with warnings.catch_warnings():  # the study's checks said it once, before training
        warnings.simplefilter("ignore", ScheduleEndsEarly)
        histories = fit_together(
            [s.trainer for s in seeds], [s.split.train for s in seeds],
            [s.split.val for s in seeds], epochs=first["epochs"], max_steps=first["max_steps"],
            batch_size=first["batch_size"], drop_last=first["drop_last"],
            resume=[s.last for s in seeds])
    wall = (time.perf_counter() - started) / len(seeds)
    env = {**trial.environment(seeds[0].trainer.device),
           "seeds": f"{len(seeds)} trained together", "time": TIME_NOTE}
    return [trial.trial_result(spec, s.settings, s.trainer, h, s.split, s.monitor, s.kept,
                         s.warnings, wall, env)
            for s, h in zip(seeds, histories, strict=True)]


def _groups(seeds: list[_Seed]) -> list[list[_Seed]]:
    """The seeds split by the position their checkpoints resume from; seeds that had ended
    join the first group (they only get their results measured)."""
    by_position: dict[tuple[int, int], list[_Seed]] = {}
    ended = []
    for s in seeds:
        pos = s.position()
        if pos is None:
            ended.append(s)
        else:
            by_position.setdefault(pos, []).append(s)
    groups = [by_position[k] for k in sorted(by_position)]
    if not groups:
        return [ended]
    groups[0] = [*groups[0], *ended]
    return groups


def run_configuration(store: Store, spec: StudySpec, rows: list[TrialRow], ckpt_root: Path,
                      data: StudyData, device: str,
                      on_warning: Callable[[str], None] | None = None,
                      on_note: Callable[[str], None] | None = None,
                      together: bool | None = None) -> list[tuple[TrialRow, str]]:
    """Train the claimed trials ``rows`` (seeds of one configuration) and record each; return
    (row, status) per trial. Together when they can (:func:`train_together`; in groups of
    equal checkpoint epochs), else one at a time, saying why once (``on_note``) and in each
    trial's environment. A seed of a configuration that can train together always trains
    through the stacked path, even alone (the others finished, or resuming from another
    epoch): a seed's result does not depend on which seeds it is stacked with, except through
    float rounding (the kernels can round a seed's slices differently by their place in the
    stack; measured up to 1e-6 in the weights after 60 epochs on iris)."""
    from optimlab.train.stacked import together_problem

    why = None if enabled(together) else f"asked for (--one-at-a-time or {ENV}=0)"
    if why is None and rows[0].config.get("lr") == "find":
        why = 'lr = "find": each trial trains at the lr its own range test suggests'
    seeds: list[_Seed] = []
    if why is None:
        try:
            seeds = [_Seed(store, spec, row, ckpt_root, data, device) for row in rows]
            why = together_problem([s.trainer for s in seeds],
                                   [s.split.train for s in seeds],
                                   [s.split.val for s in seeds])
        except Exception as err:  # each seed then meets it alone, recorded with that seed
            why = f"setting up its seeds failed ({one_line(err)})"
    if why is not None:
        if on_note is not None and len(rows) > 1:
            on_note(f"  {rows[0].label}: its seeds train one at a time: {why}")
        note = {"seeds": f"one at a time: {why}"}
        return [(row, trial.run_trial(store, spec, row, ckpt_root, data, device, on_warning,
                                      note))
                for row in rows]
    out: list[tuple[TrialRow, str]] = []
    for group in _groups(seeds):
        for s in group:
            for text in s.warnings:
                if on_warning is not None:
                    on_warning(f"{s.row.label} ({trial.trial_where(s.row)}): {text}")
        results = train_together(store, spec, group)
        for s, result in zip(group, results, strict=True):
            store.finish(s.row.id, result)
            shutil.rmtree(s.ckpt_dir, ignore_errors=True)  # the store holds the results
            out.append((s.row, result.status))
    return out


def summary(envs: Sequence[dict[str, Any] | None]) -> str | None:
    """How a study's seeds trained, from its trials' environments: "together", "one at a time:
    <reasons>", or both with counts; None when no trial says (stored before this existed)."""
    said = [str(e["seeds"]) for e in envs if e and "seeds" in e]
    if not said:
        return None
    together = sum(1 for s in said if not s.startswith("one at a time"))
    alone = sorted({s.removeprefix("one at a time: ") for s in said
                    if s.startswith("one at a time")})
    parts = []
    if together:
        parts.append(f"{together} trials trained with their configuration's other seeds "
                     "together (time per seed: a share of each epoch)")
    if alone:
        parts.append(f"{len(said) - together} one seed at a time ({'; '.join(alone)})")
    return "; ".join(parts)
