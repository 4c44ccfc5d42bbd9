"""A search whose trials train on an executor (Ray): this process asks, the executor trains,
this process tells — and it alone writes the store.

The lab's driver loop (:func:`optimlab.lab.executors.drive`) runs the search with its keys
given as a function: whenever the executor has room, the function asks the next trial exactly
as a local worker does (:meth:`optimlab.tune.worker.Worker.ask`: an abandoned trial is taken
over first, otherwise the sampler draws one from every stored trial, in one transaction) and
returns the key of its lab trial, which the driver then claims and hands to the executor. The
task trains it from its stored settings and streams each epoch back; here the worker's report
function records the monitored value and asks the pruner, whose "prune" goes back to the task
(:class:`~optimlab.train.callbacks.Pruned`: the trial ends there as ``pruned`` after that
epoch, and its result comes back like any other). When a lab trial is recorded, every search
trial that drew its configuration is told (:meth:`~optimlab.tune.worker.Worker.tell`), so the
next ask sees it.

With room for one trial at a time (``num_cpus`` a trial equal to the cluster's) the trials are
asked, pruned and told in the order a single local worker would: the same seed gives the same
search. With room for more, a trial is drawn while others run (as with ``--workers N``).

A configuration drawn again while it trains, or trained by another process on the same store,
is told once that lab trial ends (this process waits for it, beating the search trial's
heartbeat). Killed with ``kill -9``, the driver leaves its search trials and lab trials
``running`` under its dead process id: the next run takes the search trials over and claims
their lab trials, which continue from their epoch checkpoints (in ``storage``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable

from optimlab.errors import UserError
from optimlab.lab.executors import Executor, Job, drive
from optimlab.lab.spec import StudySpec
from optimlab.lab.store import FINISHED, Store, TrialRow
from optimlab.tune import store as tstore
from optimlab.tune.worker import Job as SearchJob
from optimlab.tune.worker import Setup, Worker, _print

__all__ = ["drive_search"]

#: seconds between looks at a configuration another process is training
_WAIT = 0.5


class _Driver:
    """The search's side of :func:`~optimlab.lab.executors.drive` (see the module docstring)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.open: dict[int, SearchJob] = {}  # trials this process owns, not yet told
        self.reporters: dict[int, Callable[[int, dict[str, float]], None]] = {}
        self.done = 0

    # -- keys: ask while the executor has room -------------------------------------------------
    def keys(self) -> list[str]:
        """The keys of the trials to claim next: an owned trial whose lab trial can be
        claimed, else a newly asked one; [] when the search has its trials."""
        if ready := self._sweep():
            return ready
        while (job := self.worker.ask()) is not None:
            if job.error is not None:  # the user's function raised: stop the search, loudly
                raise job.error
            if job.key is None:  # its settings could not train: recorded as failed
                self._announce(job.number)
                continue
            self.open[job.number] = job
            if ready := self._sweep():
                return ready
        return []

    def _sweep(self) -> list[str]:
        """Tell the owned trials whose lab trial has ended; return the keys of those whose lab
        trial can be claimed (pending, failed in an earlier run, or abandoned)."""
        ready = []
        for number, job in sorted(self.open.items()):
            assert job.key is not None
            lab = self.worker._lab_row(job.key)
            if lab.status in FINISHED or (lab.status == "failed" and lab.run == self.run):
                self._tell(number)
            elif lab.status != "running" or not self._busy(lab):
                ready.append(job.key)
        return ready

    @property
    def run(self) -> str:
        return self.worker.setup.run

    def _busy(self, lab: TrialRow) -> bool:
        """Whether a running lab trial is held: by this driver, or by a live process."""
        if lab.host == socket.gethostname() and lab.pid == os.getpid():
            if lab.run != self.run:
                raise UserError(f"{lab.label}: its lab trial is marked running by this process, "
                                "from a run that was interrupted here; run the search again "
                                "from a new process")
            return True
        return self.worker.store.held(lab.id)

    # -- the driver's hooks --------------------------------------------------------------------
    def on_report(self, row: TrialRow, epoch: int, logs: dict[str, float]) -> None:
        number = self._owner(row.key)
        if number is None:
            return
        if number not in self.reporters:
            self.reporters[number] = self.worker._reporter(self.open[number])
        self.reporters[number](epoch, logs)  # Pruned: the trial ends there, as pruned

    def on_trial(self, row: TrialRow, status: str) -> None:
        for number, job in sorted(self.open.items()):
            if job.key == row.key:
                self._tell(number)

    def _owner(self, key: str) -> int | None:
        """The search trial that records a lab trial's per-epoch values (the first that drew
        its configuration; the others get its values when told)."""
        return min((n for n, j in self.open.items() if j.key == key), default=None)

    def _tell(self, number: int) -> None:
        job = self.open.pop(number)
        self.reporters.pop(number, None)
        self.worker.tell(job)
        self._announce(number)

    def _announce(self, number: int) -> None:
        self.done += 1
        self.worker._announce(number)

    # -- what is left after the loop ----------------------------------------------------------
    def wait(self) -> bool:
        """After the loop: wait while owned trials have their lab trial held by another
        process (telling those that end); True when one can be claimed here (run the loop
        again), False when none is left."""
        while self.open:
            if self._sweep():
                return True
            for number in self.open:
                tstore.heartbeat(self.worker.store, self.worker.search_id, number)
            time.sleep(_WAIT)
        return False


def drive_search(setup: Setup, executor: Executor, spec: StudySpec, *,
                 threads: int | None = None,
                 device: str = "cpu",
                 on_trial: Callable[[tstore.SearchTrial], None] | None = None,
                 on_failure: Callable[[str], None] | None = _print,
                 on_warning: Callable[[str], None] | None = _print) -> int:
    """Run the search ``setup`` describes on ``executor`` until it has its trials (see the
    module docstring); return how many trials this call finished. ``spec``: the study every
    trial trains on (its data, [train], device). The trials' epoch checkpoints go where a
    local worker keeps them (``setup.storage``, else ``<db>.ckpt``)."""
    with Store(setup.db) as store:
        tstore.check_store(store)
        driver = _Driver(Worker(setup, store, on_trial, on_failure, on_warning))
        root = driver.worker.ckpt_root
        job = Job(spec, root, threads, device, reports=True)
        while True:
            drive(executor, setup.db, job, driver.keys, run=setup.run,
                  on_trial=driver.on_trial, on_report=driver.on_report,
                  on_failure=on_failure, on_warning=on_warning)
            if not driver.wait():
                break
    with contextlib.suppress(OSError):  # no trial left mid-way: the checkpoint folder goes too
        root.rmdir()
    return driver.done
