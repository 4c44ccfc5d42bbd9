"""The local executors: trials in the driver's own process, or in N worker processes.

:class:`InProcess` trains each unit in the calling process (``--workers 1``). :class:`Processes`
starts N worker processes (``spawn``); each sets its torch threads, loads the study's data once
and warms up, then says it is ready; once all are ready, the driver hands each one unit at a
time over a pipe and gets the unit's outcomes (one per trial) — and, when the driver wants them,
its trials' per-epoch reports, each answered go on, stop or pruned — back on the same pipe. Workers
never open the store.

A worker that dies mid-trial (killed, out of memory) is replaced, and its unit is started again
in the new worker from its last epoch checkpoint, at most :data:`~optimlab.lab.executors.RETRIES`
times; the trial's warnings say so. A worker whose driver dies goes too (on Linux the kernel
kills it at once, ``PR_SET_PDEATHSIG``; elsewhere it notices within a second), so a driver
killed with ``kill -9`` leaves no process that goes on writing the trial's checkpoint.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from optimlab.lab.executors import (
    RETRIES,
    Job,
    Lost,
    Outcome,
    ReportHook,
    Unit,
    answer_report,
    compute,
    follow,
)
from optimlab.lab.grid import configurations
from optimlab.lab.spec import StudySpec
from optimlab.lab.store import TrialResult
from optimlab.lab.studydata import StudyData
from optimlab.lab.trial import build_trainer

__all__ = ["InProcess", "Processes", "load_and_warm_up", "warm_up"]

#: seconds the driver waits for every worker process to be ready before it hands out the first
#: units (so that one worker does not take them all while the others still load their data)
START_WAIT = 300.0


def warm_up(spec: StudySpec, data: StudyData, device: str) -> None:
    """One update of the first configuration on a few rows, so that what a process pays once
    (lazy imports, first kernels) is not counted in its first trial's time."""
    settings = configurations(spec)[0][1]
    split = data.split(spec.seed_list[0])
    rows = min(len(split.train), 16)
    small = split.train.subset(slice(0, rows))
    settings = {**settings, "epochs": 1, "max_steps": 1, "batch_size": rows, "accumulate": 1,
                "swa": None, "ema": None, "snapshot": None, "plateau": None,
                "early_stopping": None}
    trainer = build_trainer(spec, settings, 0, split, [], device=device)
    with contextlib.suppress(Exception):  # a real problem shows in the trial, with its reason
        trainer.fit(small, split.val.subset(slice(0, min(len(split.val), 16))), max_steps=1,
                    batch_size=rows)
        trainer.evaluate(small)


def load_and_warm_up(job: Job) -> StudyData | BaseException:
    """This process's copy of the study's data, warmed up; the error that stops every trial
    when it cannot be loaded (each trial is then recorded as failed with it)."""
    try:
        data = StudyData(job.spec.data)
        warm_up(job.spec, data, job.device)
        return data
    except Exception as err:  # recorded with each trial it stops
        return err


class InProcess:
    """Trains each unit in this process, one at a time (``--workers 1``)."""

    name = "local"

    def __init__(self) -> None:
        self._unit: Unit | None = None
        self._threads_before: int | None = None

    def start(self, job: Job) -> None:
        self.job = job
        if job.threads:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(job.threads)
        self.data = load_and_warm_up(job)

    def free(self) -> int:
        return 0 if self._unit is not None else 1

    def submit(self, unit: Unit) -> None:
        self._unit = unit

    def poll(self, report: ReportHook, timeout: float) -> list[tuple[Unit, list[Outcome]]]:
        if self._unit is None:
            return []
        unit, self._unit = self._unit, None

        def tell(index: int, epoch: int, logs: dict[str, float]) -> None:  # the heartbeat
            report(unit, index, epoch, logs)

        return [(unit, compute(self.job, unit, tell, self.data))]

    def close(self) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


def _wait_for(conn: Connection, parent: int) -> None:
    """Block until ``conn`` has a message; leave at once if the driver has died."""
    while not conn.poll(1.0):
        if os.getppid() != parent:
            os._exit(1)


def _worker(conn: Connection, job: Job, parent: int) -> None:
    """A worker process: load the data, say ready, then train the units it is sent."""
    _die_with_parent(parent)
    if job.threads:
        torch.set_num_threads(job.threads)
    data = load_and_warm_up(job)
    conn.send(("ready",))
    while True:
        _wait_for(conn, parent)
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "quit":
            return
        unit: Unit = message[1]

        def report(index: int, epoch: int, logs: dict[str, float]) -> None:
            conn.send(("report", index, epoch, logs))
            _wait_for(conn, parent)
            follow(conn.recv())

        conn.send(("done", compute(job, unit, report if job.reports else None, data)))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    unit: Unit | None = None
    notes: list[str] = field(default_factory=list)


class Processes:
    """Trains units in ``workers`` processes of this machine (``--workers N``)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.n = workers
        self._workers: list[_Worker] = []
        self._retry: deque[Unit] = deque()
        self._tries: dict[int, int] = {}
        self._notes: dict[int, list[str]] = {}
        self._failed_starts = 0

    def start(self, job: Job) -> None:
        self.job = job
        self._ctx = multiprocessing.get_context("spawn")
        self._workers = [self._spawn() for _ in range(self.n)]
        self._started_all, self._since = False, time.monotonic()

    def _spawn(self) -> _Worker:
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker, args=(theirs, self.job, os.getpid()),
                                    name="optimlab-worker")
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def free(self) -> int:
        if not self._started_all:  # the workers start together, each with its data loaded
            if all(w.ready for w in self._workers) or \
                    time.monotonic() - self._since > START_WAIT:
                self._started_all = True
            else:
                return 0
        idle = sum(w.ready and w.unit is None for w in self._workers)
        return max(0, idle - len(self._retry))

    def submit(self, unit: Unit) -> None:
        worker = next(w for w in self._workers if w.ready and w.unit is None)
        self._send(worker, unit)

    def _send(self, worker: _Worker, unit: Unit) -> None:
        worker.unit = unit
        worker.conn.send(("unit", unit))

    def poll(self, report: ReportHook, timeout: float) -> list[tuple[Unit, list[Outcome]]]:
        by_conn = {w.conn: w for w in self._workers}
        by_sentinel = {w.process.sentinel: w for w in self._workers}
        finished: list[tuple[Unit, list[Outcome]]] = []
        for ready in wait([*by_conn, *by_sentinel], timeout):
            worker = by_conn.get(ready) or by_sentinel[ready]  # type: ignore[call-overload]
            if worker not in self._workers:
                continue  # already replaced (its pipe and its sentinel both fired)
            if ready is worker.conn:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    self._died(worker, finished)
                    continue
                self._handle(worker, message, report, finished)
            else:
                self._died(worker, finished)
        for worker in self._workers:  # a replacement that is ready takes a unit to retry
            if worker.ready and worker.unit is None and self._retry:
                self._send(worker, self._retry.popleft())
        return finished

    def _handle(self, worker: _Worker, message: tuple[Any, ...], report: ReportHook,
                finished: list[tuple[Unit, list[Outcome]]]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "report":
            assert worker.unit is not None
            answer = answer_report(report, worker.unit, message[1], message[2], message[3])
            with contextlib.suppress(OSError):
                worker.conn.send(answer)
        elif kind == "done":
            unit, outcomes = worker.unit, message[1]
            assert unit is not None
            worker.unit = None
            notes = self._notes.pop(unit.id, [])
            for outcome in outcomes:
                if notes and isinstance(outcome, TrialResult):
                    outcome.warnings = [*notes, *outcome.warnings]
            self._tries.pop(unit.id, None)
            finished.append((unit, outcomes))

    def _died(self, worker: _Worker, finished: list[tuple[Unit, list[Outcome]]]) -> None:
        """Replace a worker that died; start its unit again, or give it up after RETRIES."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        self._workers.remove(worker)
        with contextlib.suppress(OSError):
            worker.conn.close()
        if not worker.ready:
            self._failed_starts += 1
            if self._failed_starts > RETRIES * max(1, self.n):
                raise RuntimeError(f"optimlab's worker processes die as they start (exit code "
                                   f"{code}); run with --workers 1 to see why")
        unit = worker.unit
        if unit is not None:
            tries = self._tries.get(unit.id, 0) + 1
            self._tries[unit.id] = tries
            what = f"its worker process died (exit code {code})"
            if tries > RETRIES:
                self._notes.pop(unit.id, None)
                self._tries.pop(unit.id, None)
                lost = Lost(f"{what} {tries} times; it was given up in this run (the next run "
                            "tries it again)")
                finished.append((unit, [lost] * len(unit.ids)))
            else:
                self._notes.setdefault(unit.id, []).append(
                    f"{what}; it was started again from its last epoch checkpoint")
                self._retry.append(unit)
        self._workers.append(self._spawn())

    def close(self) -> None:
        for worker in self._workers:
            if worker.unit is not None:  # the driver is leaving mid-trial: stop it now
                worker.process.kill()
            else:
                with contextlib.suppress(OSError):
                    worker.conn.send(("quit",))
        for worker in self._workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            with contextlib.suppress(OSError):
                worker.conn.close()
        self._workers = []
