"""The Ray executor: each trial a Ray task, on a local cluster or one that already runs.

The driver (this process) keeps the store and is its only writer; a task gets the job (the
spec, where checkpoints go) and one unit (a trial, or the seeds of one configuration trained
together), trains it and returns its outcomes — the result with
its whole history, or the failure described where it happened. Each Ray worker process loads
the study's data once and warms up before its first trial. A task asks for ``num_cpus`` CPUs and
``num_gpus`` GPUs (the spec's ``[resources]``, or ``--num-cpus``/``--num-gpus``); the driver
keeps as many tasks in flight as the cluster has room for, so a claimed trial is a running one.

Per-epoch reports go through a small actor (no CPU of its own): the task hands it (unit, epoch,
logs) and waits for the driver's answer, go on, stop or pruned — so progress is live and a
search can prune. They are sent only when the driver asked for them (``on_report``).

Faults: a task whose worker process or node dies is started again by Ray, at most
:data:`~optimlab.lab.executors.RETRIES` more times (``max_retries``), and continues from its
last epoch checkpoint when the checkpoint storage is shared by the nodes (``--storage``, a
folder every node reaches at the same path; with a local cluster, any local folder). A driver
killed with ``kill -9`` takes its tasks with it (Ray ends a job's tasks when its driver dies, and
a local cluster started by the driver goes too); the trials it held are claimed again by the
next run, which continues them from their checkpoints.

What every node needs: optimlab installed (the same version), the spec's data files at the same
paths (a named dataset needs nothing), and the checkpoint storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from optimlab.errors import UserError, one_line
from optimlab.lab.executors import (
    RETRIES,
    Answer,
    Failure,
    Job,
    Lost,
    Outcome,
    ReportHook,
    Unit,
    answer_report,
    compute,
    follow,
)

__all__ = ["INSTALL", "RayExecutor"]

INSTALL = 'pip install -e ".[ray]"'


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed here: {INSTALL} "
                        '(or pip install "ray>=2.9"), then run again') from None
    return ray


#: one Ray worker process's copy of a study's data: {data identity: StudyData or its error}
_DATA: dict[str, Any] = {}


def _data_for(job: Job) -> Any:
    from optimlab.lab.executors_local import load_and_warm_up

    key = json.dumps([job.spec.data.model_dump(mode="json"), job.device], sort_keys=True)
    if key not in _DATA:
        _DATA.clear()  # one study's data at a time
        _DATA[key] = load_and_warm_up(job)
    return _DATA[key]


def _train(job: Job, unit: Unit, box: Any) -> list[Outcome]:
    """A Ray task: train one unit in this worker (see the module docstring)."""
    import ray
    import torch

    from optimlab.lab.checks import resolve_device

    if job.device == "auto":
        job = dataclasses.replace(job, device=resolve_device("auto"))
    if job.threads:
        torch.set_num_threads(job.threads)
    report = None
    if box is not None:
        def report(index: int, epoch: int, logs: dict[str, float]) -> None:
            follow(ray.get(box.report.remote(unit.id, index, epoch, logs)))

    return compute(job, unit, report, _data_for(job))


class _ReportBox:
    """Per-epoch reports from the tasks to the driver, and the driver's answers back (an
    asyncio actor: a task waits for its answer without blocking the others)."""

    def __init__(self) -> None:
        self.queue: list[tuple[int, int, int, dict[str, float]]] = []
        self.arrived = asyncio.Event()
        self.answers: dict[tuple[int, int, int], asyncio.Future[Answer]] = {}

    async def report(self, unit_id: int, index: int, epoch: int,
                     logs: dict[str, float]) -> Answer:
        """Called by a task: wait for the driver's answer (:data:`~optimlab.lab.executors.
        Answer`)."""
        future = asyncio.get_running_loop().create_future()
        self.answers[(unit_id, index, epoch)] = future
        self.queue.append((unit_id, index, epoch, logs))
        self.arrived.set()
        return await future

    async def take(self) -> list[tuple[int, int, int, dict[str, float]]]:
        """Called by the driver: the reports that arrived (waits for at least one)."""
        await self.arrived.wait()
        out, self.queue = self.queue, []
        self.arrived.clear()
        return out

    async def answer(self, unit_id: int, index: int, epoch: int, answer: Answer) -> None:
        future = self.answers.pop((unit_id, index, epoch), None)
        if future is not None and not future.done():
            future.set_result(answer)


class RayExecutor:
    """Trials as Ray tasks (``--executor ray``); see the module docstring."""

    name = "ray"
    #: trials run on other processes or machines: the driver does not choose their device
    remote = True

    def __init__(self, address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None) -> None:
        _ray()  # without Ray: the install command, before anything is checked or trained
        self.address = address
        self.num_cpus = 1.0 if num_cpus is None else float(num_cpus)
        self.num_gpus = 0.0 if num_gpus is None else float(num_gpus)
        if not self.num_cpus > 0 or self.num_gpus < 0:
            raise UserError(f"num_cpus={self.num_cpus:g}, num_gpus={self.num_gpus:g}: a trial "
                            "needs more than 0 CPUs and 0 or more GPUs")
        self._running: dict[Any, Unit] = {}
        self._take: Any = None
        self._box: Any = None
        self._started_ray = False

    # -- set-up -------------------------------------------------------------------------------
    def start(self, job: Job) -> None:
        ray = _ray()
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False,
                         logging_level=logging.WARNING)
            except ConnectionError as err:
                raise UserError(f"cannot reach a Ray cluster at {self.address!r} ({err}); "
                                "start one (ray start --head) or leave --address out to start "
                                "a local one") from None
            self._started_ray = True
        threads = job.threads or max(1, math.floor(self.num_cpus))
        if job.device == "cuda" and self.num_gpus == 0:
            self.num_gpus = 1.0
        data = job.spec.data
        for name in ("csv", "npz"):  # the nodes find the files at the driver's absolute path
            value = getattr(data, name)
            if value is not None:
                data = data.model_copy(update={name: os.path.abspath(value)})
        spec = job.spec.model_copy(update={"data": data})
        self.job = dataclasses.replace(job, spec=spec, storage=Path(job.storage).resolve(),
                                       threads=threads)
        self._capacity, self._checked = self._room(), time.monotonic()
        self._job_ref = ray.put(self.job)
        self._task = ray.remote(_train).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=RETRIES,
            retry_exceptions=False, name="optimlab-trial")
        if job.reports:
            self._box = ray.remote(_ReportBox).options(num_cpus=0,
                                                       max_concurrency=1000).remote()

    def _room(self) -> int:
        """How many trials the cluster can run at once with these resources."""
        total = _ray().cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        room = math.floor(cpus / self.num_cpus + 1e-9)
        if self.num_gpus > 0:
            room = min(room, math.floor(gpus / self.num_gpus + 1e-9))
        if room < 1:
            raise UserError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; a trial "
                            f"asks for {self.num_cpus:g} CPUs and {self.num_gpus:g} GPUs "
                            "(--num-cpus/--num-gpus or the spec's [resources]); ask for less "
                            "or add nodes")
        return room

    # -- running -------------------------------------------------------------------------------
    def free(self) -> int:
        if time.monotonic() - self._checked > 10.0:  # a cluster may grow or shrink
            self._capacity, self._checked = self._room(), time.monotonic()
        return max(0, self._capacity - len(self._running))

    def submit(self, unit: Unit) -> None:
        ref = self._task.remote(self._job_ref, unit, self._box)
        self._running[ref] = unit

    def poll(self, report: ReportHook, timeout: float) -> list[tuple[Unit, list[Outcome]]]:
        ray = _ray()
        waiting = list(self._running)
        if self._box is not None:
            if self._take is None:
                self._take = self._box.take.remote()
            waiting.append(self._take)
        if not waiting:
            return []
        ready, _ = ray.wait(waiting, num_returns=1, timeout=timeout)
        if ready:  # whatever else is ready too
            ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0)
        finished: list[tuple[Unit, list[Outcome]]] = []
        for ref in ready:
            if ref is self._take:
                self._take = None
                self._answer(ray.get(ref), report)
                continue
            unit = self._running.pop(ref)
            finished.append((unit, self._outcomes(ray, ref, len(unit.ids))))
        return finished

    def _answer(self, reports: list[tuple[int, int, int, dict[str, float]]],
                report: ReportHook) -> None:
        units = {u.id: u for u in self._running.values()}
        for unit_id, index, epoch, logs in reports:
            answer: Answer = ("stop", "")  # a unit no longer running: it is stopping anyway
            if unit_id in units:
                answer = answer_report(report, units[unit_id], index, epoch, logs)
            self._box.answer.remote(unit_id, index, epoch, answer)

    @staticmethod
    def _outcomes(ray: Any, ref: Any, n: int) -> list[Outcome]:
        """The unit's outcomes, one per trial (a task that failed outside the trials, or
        whose worker died too often, is the same outcome for each)."""
        failed: Outcome
        try:
            return ray.get(ref)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as err:  # outside the trial: unpickling, imports
            cause = err.cause if getattr(err, "cause", None) is not None else err
            failed = Failure(f"the Ray task failed outside the trial: {one_line(cause)}; is "
                             "the same optimlab installed on every node?", user=False,
                             traceback=str(err))
        except ray.exceptions.RayError as err:  # the worker or its node died RETRIES + 1 times
            failed = Lost(f"its Ray worker died {RETRIES + 1} times ({type(err).__name__}); "
                          "it was given up in this run (the next run tries it again)")
        return [failed] * n

    def close(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            return
        for ref in list(self._running):  # the driver is leaving mid-trial
            ray.cancel(ref, force=True)
        self._running.clear()
        if self._box is not None:
            ray.kill(self._box)
            self._box = self._take = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
