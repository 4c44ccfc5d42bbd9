"""The seeds of one configuration trained together, in the lab.

The driver (:func:`optimlab.lab.executors.drive`) that claims a trial also claims the other
runnable seeds of its configuration and fold and hands them to its executor as one unit; the
executor trains them as one stacked model (:func:`optimlab.train.fit_together`):
:func:`train_configuration` — "train the S seeds of one configuration together and return S
results", touching no store — and the driver records each result as its own trial exactly as a
trial trained alone is (same key, same rows). Each seed is built, checked and checkpointed as
:func:`~optimlab.lab.trial.train_trial` builds it (its own Trainer, callbacks and ``last.pt``),
so a run killed mid-way resumes — together when the seeds' checkpoints are at the same epoch, in
groups of equal epochs otherwise (a kill between two seeds' checkpoint writes, a seed that
diverged after its last checkpoint).

When a configuration cannot train together (:func:`optimlab.train.together_problem`: dropout,
ReduceLROnPlateau, …) its seeds run one at a time, each trial's environment records the
reason (``"seeds"``; the driver says it once on the terminal, :func:`one_at_a_time_reason`);
the report's environment sums it up for the study (:func:`summary`). A seed's times are its
share of the unit's: each epoch's time is split equally among the seeds that trained in it
(``"time"`` in the environment says so).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimlab.errors import one_line
from optimlab.lab import trial
from optimlab.lab.spec import StudySpec
from optimlab.lab.store import TrialResult
from optimlab.lab.studydata import StudyData
from optimlab.schedules.base import ScheduleEndsEarly
from optimlab.train.callbacks.checkpoint import read_checkpoint
from optimlab.train.restarts import restart_seed

__all__ = ["ENV", "ONE_AT_A_TIME", "asked_alone", "enabled", "one_at_a_time_reason", "summary",
           "train_configuration", "train_together"]

#: the environment variable that turns training seeds together off (``OPTIMLAB_TOGETHER=0``)
ENV = "OPTIMLAB_TOGETHER"
TIME_NOTE = "each epoch's time shared equally among the seeds trained together in it"
#: how a trial's environment says its seeds trained one at a time (then the reason)
ONE_AT_A_TIME = "one at a time: "


def enabled(together: bool | None = None) -> bool:
    """Whether seeds train together: ``together`` when given, else unless ``OPTIMLAB_TOGETHER``
    says 0/false/no/off."""
    if together is not None:
        return together
    return os.environ.get(ENV, "").strip().lower() not in ("0", "false", "no", "off")


def asked_alone() -> dict[str, str]:
    """The environment note of a trial whose seeds train one at a time because the user said
    so."""
    return {"seeds": f"{ONE_AT_A_TIME}asked for (--one-at-a-time or {ENV}=0)"}


def one_at_a_time_reason(result: TrialResult) -> str | None:
    """Why ``result``'s seeds trained one at a time (from its environment), or None."""
    said = str((result.env or {}).get("seeds", ""))
    return said.removeprefix(ONE_AT_A_TIME) if said.startswith(ONE_AT_A_TIME) else None


class _Seed:
    """One trial of the unit: its split, settings, Trainer and bookkeeping."""

    def __init__(self, spec: StudySpec, unit: trial.Trial, ckpt_dir: Path, data: StudyData,
                 device: str, report: trial.Report | None = None) -> None:
        self.trial = unit
        self.settings = trial.trial_settings(unit.settings)
        self.split = data.split(unit.seed, unit.fold)  # its fold's split (k-fold)
        self.monitor = self.settings["monitor"] or trial.monitor_for(spec,
                                                                     self.split.train.task)
        self.ckpt_dir = ckpt_dir
        self.kept = trial.bookkeeping(None, spec, unit, self.settings, self.monitor,
                                      self.ckpt_dir, report)
        self.trainer = trial.build_trainer(spec, self.settings,
                                           restart_seed(unit.seed, unit.restart or 0),
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


def train_together(spec: StudySpec, seeds: Sequence[_Seed]) -> list[TrialResult | BaseException]:
    """Train ``seeds`` (one configuration, checkpoints at one position) together and return
    their results, in order, without recording them (a seed the driver stopped:
    :class:`~optimlab.lab.trial.TrialStopped`)."""
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
    out: list[TrialResult | BaseException] = []
    for s, h in zip(seeds, histories, strict=True):
        if s.kept.stopped is not None:
            out.append(trial.TrialStopped(s.kept.stopped))
            continue
        out.append(trial.trial_result(spec, s.settings, s.trainer, h, s.split, s.monitor,
                                      s.kept, s.warnings, wall, env))
    return out


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


def train_configuration(spec: StudySpec, trials: Sequence[trial.Trial],
                        ckpt_dirs: Sequence[Path], data: StudyData, device: str,
                        reports: Sequence[trial.Report | None] | None = None,
                        together: bool | None = None) -> list[TrialResult | BaseException]:
    """Train ``trials`` (seeds of one configuration and fold) and return, per trial, its
    result or the exception that ended it; write nothing but their checkpoint folders.

    Together when they can (:func:`train_together`; in groups of equal checkpoint epochs),
    else one at a time, each trial's environment saying why (``"seeds"``). A seed of a
    configuration that can train together always trains through the stacked path, even alone
    (the others finished, or resuming from another epoch): a seed's result does not depend on
    which seeds it is stacked with, except through float rounding (the kernels can round a
    seed's slices differently by their place in the stack; measured up to 5e-7 in the weights
    after 60 epochs on iris)."""
    from optimlab.train.stacked import together_problem

    said = list(reports) if reports is not None else [None] * len(trials)
    why = None if enabled(together) else f"asked for (--one-at-a-time or {ENV}=0)"
    if why is None and trials[0].settings.get("lr") == "find":
        why = 'lr = "find": each trial trains at the lr its own range test suggests'
    seeds: list[_Seed] = []
    if why is None:
        try:
            seeds = [_Seed(spec, t, Path(d), data, device, r)
                     for t, d, r in zip(trials, ckpt_dirs, said, strict=True)]
            why = together_problem([s.trainer for s in seeds],
                                   [s.split.train for s in seeds],
                                   [s.split.val for s in seeds])
        except Exception as err:  # each seed then meets it alone, recorded with that seed
            why = f"setting up its seeds failed ({one_line(err)})"
    if why is not None:
        note = {"seeds": f"{ONE_AT_A_TIME}{why}"}
        out: list[TrialResult | BaseException] = []
        for t, d, r in zip(trials, ckpt_dirs, said, strict=True):
            try:
                out.append(trial.train_trial(spec, t, Path(d), r, data=data, device=device,
                                             note=note))
            except Exception as err:  # that trial's failure; the others go on
                out.append(err)
        return out
    done: dict[int, TrialResult | BaseException] = {}
    for group in _groups(seeds):
        try:
            results = train_together(spec, group)
        except Exception as err:  # the group's failure, recorded with each of its seeds
            results = [err] * len(group)
        for s, result in zip(group, results, strict=True):
            done[id(s)] = result
    return [done[id(s)] for s in seeds]


def summary(envs: Sequence[dict[str, Any] | None]) -> str | None:
    """How a study's seeds trained, from its trials' environments: "together", "one at a time:
    <reasons>", or both with counts; None when no trial says (stored before this existed)."""
    said = [str(e["seeds"]) for e in envs if e and "seeds" in e]
    if not said:
        return None
    together = sum(1 for s in said if not s.startswith("one at a time"))
    alone = sorted({s.removeprefix(ONE_AT_A_TIME) for s in said
                    if s.startswith("one at a time")})
    parts = []
    if together:
        parts.append(f"{together} trials trained with their configuration's other seeds "
                     "together (time per seed: a share of each epoch)")
    if alone:
        parts.append(f"{len(said) - together} one seed at a time ({'; '.join(alone)})")
    return "; ".join(parts)
