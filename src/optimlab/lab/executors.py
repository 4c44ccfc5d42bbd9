"""Executors: where a study's trials train, while the driver alone writes the store.

The driver (:func:`drive`; ``run_study`` calls it) claims runnable trials from the store, hands
them to an executor as :class:`Unit` s — one trial, or the seeds and restarts of one
configuration and fold claimed together, which the executor trains as one stacked model where
they can (:mod:`optimlab.lab.stacked`) — and records what comes back, trial by trial: the
executor never opens the store. Three executors share this loop and its guarantees:

* :class:`~optimlab.lab.executors_local.InProcess` trains in the driver's own process;
* :class:`~optimlab.lab.executors_local.Processes` in N worker processes of this machine;
* :class:`~optimlab.lab.executors_ray.RayExecutor` as Ray tasks, on a local or remote cluster.

What an executor does (:class:`Executor`): ``start(job)`` starts its workers (each loads the
study's data once and warms up), ``free()`` says how many more units it can take now,
``submit(unit)`` starts one, ``poll(report, timeout)`` returns the units that finished with
one :data:`Outcome` per trial — while it waits it passes each per-epoch report of a running
trial to ``report(unit, index, epoch, logs)`` (``index``: the trial's place in the unit) and
hands the trial the driver's answer (:func:`answer_report` where the driver is,
:func:`follow` where the trial trains): go on; stop (the report raised
:class:`~optimlab.lab.trial.TrialStopped`); or pruned (it raised
:class:`~optimlab.train.callbacks.Pruned`: the trial ends as ``pruned`` after this epoch, with
the reason, and its result comes back like any other) — and ``close()`` stops everything.
A unit whose worker process dies is started again from its last epoch checkpoint, at most
:data:`RETRIES` more times in one run (then it is recorded as failed with the reason, and the
next run tries it again).

Guarantees, whatever the executor: a finished trial is recorded once, in one transaction, by the
driver; a trial whose driver is killed (``kill -9``) is left ``running`` under the dead driver's
process id and is claimed again by the next run, which continues it from its epoch checkpoint
where the checkpoint storage is reachable; a trial that fails is not retried in the run it failed
in. Per-epoch reports reach the driver as they happen (``on_report``), so progress can be shown
and a search can stop or prune a trial: ``on_report`` raising
:class:`~optimlab.train.callbacks.Pruned` ends that trial as ``pruned`` (it is recorded with its
epochs, as a trial pruned where it trains would be); raising anything else ends it, and
``on_stopped`` records it (by default as failed with the exception as its reason).
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from optimlab.errors import is_user_error, one_line, save_traceback
from optimlab.lab import stacked as _stacked
from optimlab.lab import trial as _trial
from optimlab.lab.spec import StudySpec
from optimlab.lab.store import Store, TrialResult, TrialRow
from optimlab.lab.trial import Trial, TrialStopped, record_trial, trial_where
from optimlab.train.callbacks import Pruned

__all__ = ["RETRIES", "Answer", "Executor", "Failure", "Job", "Lost", "Outcome", "Stopped",
           "Unit", "answer_report", "drive", "follow", "print_line"]

#: a unit whose worker process dies mid-trial is started again at most this many times in one
#: run (so it is tried RETRIES + 1 times), each time from its last epoch checkpoint
RETRIES = 2
#: seconds between the driver's heartbeats for the trials it holds (another host takes a trial
#: over when its heartbeat is older than the store's ``stale_after``, 900 s)
HEARTBEAT_EVERY = 30.0


def print_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Job:
    """What every unit of one run shares: the spec it trains (the one the driver was given,
    never one re-read by name), where checkpoints go, torch threads per worker, the device,
    and whether per-epoch reports are wanted by the driver."""

    spec: StudySpec
    storage: Path
    threads: int | None = None
    device: str = "cpu"
    reports: bool = False


@dataclass(frozen=True)
class Unit:
    """Trials handed to an executor together: their store rows' ids, the trials and the
    folders of their epoch checkpoints (in the same order). Several trials are the seeds and
    restarts of one configuration and fold (``together``: trained as one stacked model where
    they can, :func:`optimlab.lab.stacked.train_configuration`); ``note`` joins each one's
    environment record (why its seeds train one at a time, when the user asked for it)."""

    ids: tuple[int, ...]
    trials: tuple[Trial, ...]
    ckpt_dirs: tuple[str, ...]
    together: bool = False
    note: dict[str, Any] | None = None

    @property
    def id(self) -> int:
        """The driver's handle of the unit: its first trial's row id."""
        return self.ids[0]


@dataclass(frozen=True)
class Failure:
    """A trial that raised, described where it ran (a traceback does not cross processes):
    its one-line reason, whether it was the user's mistake (no traceback kept) or a bug."""

    detail: str
    user: bool
    traceback: str | None = None

    @classmethod
    def of(cls, err: BaseException) -> Failure:
        user = is_user_error(err)
        text = None if user else "".join(
            traceback.format_exception(type(err), err, err.__traceback__))
        return cls(one_line(err), user, text)


@dataclass(frozen=True)
class Stopped:
    """A trial ended because the driver's ``on_report`` raised (the exception is the driver's)."""


@dataclass(frozen=True)
class Lost:
    """A trial whose worker process died more than :data:`RETRIES` times."""

    reason: str


#: how a unit ended
Outcome = TrialResult | Failure | Stopped | Lost
#: the driver's side of a per-epoch report of the unit's trial ``index``; raises TrialStopped
#: to stop that trial, Pruned to end it as pruned
ReportHook = Callable[[Unit, int, int, dict[str, float]], None]
#: the driver's answer to a per-epoch report, as it travels to the trial: None (go on),
#: ("stop", "") or ("pruned", reason)
Answer = tuple[str, str] | None


def answer_report(report: ReportHook, unit: Unit, index: int, epoch: int,
                  logs: dict[str, float]) -> Answer:
    """Ask the driver about one per-epoch report (an executor's side, where the driver is)."""
    try:
        report(unit, index, epoch, logs)
    except TrialStopped:
        return ("stop", "")
    except Pruned as signal:
        return ("pruned", str(signal))
    return None


def follow(answer: Answer) -> None:
    """Act on the driver's answer inside the trial (where it trains): return to go on, raise
    :class:`TrialStopped` to stop, :class:`Pruned` to end the trial as pruned."""
    if answer is None:
        return
    kind, reason = answer
    if kind == "pruned":
        raise Pruned(reason)
    raise TrialStopped()


class Executor(Protocol):
    """Runs units of one job (see the module docstring)."""

    name: str

    def start(self, job: Job) -> None: ...

    def free(self) -> int: ...

    def submit(self, unit: Unit) -> None: ...

    def poll(self, report: ReportHook, timeout: float) -> list[tuple[Unit, list[Outcome]]]: ...

    def close(self) -> None: ...


def compute(job: Job, unit: Unit,
            report: Callable[[int, int, dict[str, float]], None] | None,
            data: Any = None) -> list[Outcome]:
    """Train ``unit`` where this runs (any executor's worker) and describe how each of its
    trials ended: the result, a stop asked by the driver, or the failure — never an exception.
    ``report(index, epoch, logs)`` gets each trial's per-epoch reports."""
    n = len(unit.trials)

    def told(index: int) -> _trial.Report | None:
        if report is None:
            return None
        return lambda epoch, logs: report(index, epoch, logs)

    def outcome(got: TrialResult | BaseException) -> Outcome:
        if isinstance(got, TrialResult):
            return got
        if isinstance(got, TrialStopped):
            return Stopped()
        return Failure.of(got)

    try:
        if isinstance(data, BaseException):  # the data could not be loaded in this worker
            raise data
        if not unit.together:
            out: list[Outcome] = []
            for i, (t, d) in enumerate(zip(unit.trials, unit.ckpt_dirs, strict=True)):
                try:
                    out.append(_trial.train_trial(job.spec, t, Path(d), told(i), data=data,
                                                  device=job.device, note=unit.note))
                except Exception as err:  # a bad trial is recorded by the driver
                    out.append(outcome(err))
            return out
        results = _stacked.train_configuration(job.spec, unit.trials,  # the driver chose
                                               [Path(d) for d in unit.ckpt_dirs], data,
                                               job.device, [told(i) for i in range(n)],
                                               together=True)
        return [outcome(r) for r in results]
    except Exception as err:  # a bad unit is recorded by the driver; the study goes on
        return [outcome(err)] * n


def record_failure(store: Store, row: TrialRow, failure: Failure,
                   on_failure: Callable[[str], None] | None, *, where: str | None = None,
                   context: str | None = None, bug: str = "a bug in optimlab") -> None:
    """Store a failed trial: the reason; for a bug also its traceback, saved to a log file
    named in the reason and the message. ``where`` names the trial in the message (its label,
    fold, seed and restart by default), ``context`` in the log, ``bug`` whose bug it may be."""
    where = where or f"{row.label} ({trial_where(row)})"
    if failure.user:
        store.fail(row.id, failure.detail)
        message = f"  {where} FAILED: {failure.detail}"
    else:
        log = save_traceback(None, context=context or f"study trial {where}, key {row.key}",
                             text=failure.traceback or failure.detail)
        store.fail(row.id, f"{failure.detail} ({bug}"
                   + (f"; traceback in {log})" if log else ")"), traceback=failure.traceback)
        message = (f"  {where} FAILED by an unexpected error ({bug}): "
                   f"{failure.detail}" + (f"\n    traceback: {log}" if log else ""))
    if on_failure is not None:
        on_failure(message)


def _stopped_as_failure(store: Store, row: TrialRow, err: BaseException,
                        on_failure: Callable[[str], None] | None) -> str:
    record_failure(store, row, Failure.of(err), on_failure)
    return "failed"


def drive(executor: Executor, db_path: str, job: Job,
          keys: Sequence[str] | Callable[[], Sequence[str]], *, run: str,
          siblings: dict[str, list[str]] | None = None, note: dict[str, Any] | None = None,
          on_trial: Callable[[TrialRow, str], None] | None = None,
          on_report: Callable[[TrialRow, int, dict[str, float]], None] | None = None,
          on_stopped: Callable[..., str] | None = None,
          on_failure: Callable[[str], None] | None = print_line,
          on_warning: Callable[[str], None] | None = print_line,
          on_poll: Callable[[dict[str, int]], None] | None = None,
          poll_every: float = 0.5) -> int:
    """Claim the runnable trials among ``keys`` (a callable is asked again whenever a unit
    ends, so a search can add trials from ``on_trial``), run them on ``executor`` and record
    each as it ends; return how many ended in this call.

    ``siblings`` maps a trial's key to the keys of the other trials of its configuration and
    fold: with a trial the driver claims those of them that are runnable and hands them over
    as one unit, trained together (:mod:`optimlab.lab.stacked`; the reason they could not is
    said once per configuration, to ``on_warning``). ``note`` joins the environment record of
    trials handed over alone (why, when the user asked for it). ``on_trial(row, status)`` gets
    each trial's row as stored; ``on_report(row, epoch, logs)`` each per-epoch report as it
    arrives (raising stops that trial, which is then recorded by
    ``on_stopped(store, row, err, on_failure) -> status``; by default as failed);
    ``on_poll(counts)`` the study's counts by status every ``poll_every`` seconds. All of them
    run here, in the driver.
    """
    ran = 0
    stops: dict[int, BaseException] = {}
    held: dict[int, TrialRow] = {}  # trial id -> its row, while its unit runs
    beats: dict[int, float] = {}
    said_alone: set[str] = set()  # configurations whose one-at-a-time reason was said
    stopped = on_stopped or _stopped_as_failure
    siblings = siblings or {}
    with Store(db_path) as store:
        study_id = store.study(job.spec.name)[0]

        def wanted() -> list[str]:
            return list(keys() if callable(keys) else keys)

        def claim() -> Unit | None:
            row = store.claim(study_id, wanted(), run=run)
            if row is None:
                return None
            rows, others = [row], list(siblings.get(row.key, []))
            while others and (more := store.claim(study_id, others, run=run)) is not None:
                rows.append(more)
                others.remove(more.key)
            for r in rows:
                held[r.id] = r
                beats[r.id] = time.monotonic()
            together = bool(siblings.get(row.key))
            return Unit(tuple(r.id for r in rows), tuple(Trial.from_row(r) for r in rows),
                        tuple(str(job.storage / r.key) for r in rows), together=together,
                        note=None if together else note)

        def report(unit: Unit, index: int, epoch: int, logs: dict[str, float]) -> None:
            trial_id = unit.ids[index]
            row = held[trial_id]
            now = time.monotonic()
            if now - beats.get(trial_id, -math.inf) >= 1.0:
                store.heartbeat(trial_id)
                beats[trial_id] = now
            if on_report is not None:
                try:
                    on_report(row, epoch, logs)
                except Pruned:  # the trial ends as pruned where it trains, and reports back
                    raise
                except BaseException as err:  # the driver's decision: stop this trial
                    stops[trial_id] = err
                    raise TrialStopped(str(err)) from None

        try:
            executor.start(job)
            exhausted, last_poll, last_beat = False, 0.0, time.monotonic()
            while True:
                while not exhausted and executor.free() > 0:
                    unit = claim()
                    if unit is None:
                        exhausted = True
                        break
                    executor.submit(unit)
                if not held and exhausted:
                    break
                for unit, outcomes in executor.poll(report, timeout=poll_every):
                    for trial_id, outcome, ckpt_dir in zip(unit.ids, outcomes, unit.ckpt_dirs,
                                                           strict=True):
                        row = held.pop(trial_id)
                        beats.pop(trial_id, None)
                        if (isinstance(outcome, TrialResult) and on_warning is not None
                                and len(unit.ids) > 1 and row.label not in said_alone
                                and (why := _stacked.one_at_a_time_reason(outcome))):
                            said_alone.add(row.label)
                            on_warning(f"  {row.label}: its seeds train one at a time: {why}")
                        status = _settle(store, row, Path(ckpt_dir), outcome,
                                         stops.pop(trial_id, None), stopped, on_failure,
                                         on_warning)
                        ran += 1
                        if on_trial is not None:
                            on_trial(store.trial(row.id), status)
                    exhausted = False  # a search may have added trials
                now = time.monotonic()
                if held and now - last_beat >= HEARTBEAT_EVERY:
                    for trial_id in held:
                        store.heartbeat(trial_id)
                    last_beat = now
                if on_poll is not None and now - last_poll >= poll_every:
                    on_poll(counts(store, study_id, wanted()))
                    last_poll = now
        finally:
            executor.close()
    return ran


def _settle(store: Store, row: TrialRow, ckpt_dir: Path, outcome: Outcome,
            stop: BaseException | None, stopped: Callable[..., str],
            on_failure: Callable[[str], None] | None,
            on_warning: Callable[[str], None] | None) -> str:
    """Record how one trial ended; return its status."""
    if isinstance(outcome, TrialResult):
        if on_warning is not None:
            for text in outcome.warnings:
                on_warning(f"{row.label} ({trial_where(row)}): {text}")
        record_trial(store, row, outcome, ckpt_dir)
        return outcome.status
    if isinstance(outcome, Stopped) and stop is not None:
        return stopped(store, row, stop, on_failure)
    if isinstance(outcome, Lost):
        outcome = Failure(outcome.reason, user=True)
    elif isinstance(outcome, Stopped):  # a stop nobody asked for: a bug of the executor
        outcome = Failure("the trial stopped without a request from the driver", user=False)
    record_failure(store, row, outcome, on_failure)
    return "failed"


def counts(store: Store, study_id: int, keys: Sequence[str]) -> dict[str, int]:
    """The study's trials among ``keys`` by status."""
    out: dict[str, int] = {}
    for row in store.trials(study_id, keys):
        out[row.status] = out.get(row.status, 0) + 1
    return out
