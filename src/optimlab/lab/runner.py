"""Running a study: check it, expand it into trials, and run each trial once, resumably.

A trial is (configuration, seed) — (configuration, fold, restart, seed) in a study with k-fold
cross-validation or restarts; the fold is absent and the restart 0 otherwise. Its key is a hash
of everything that decides its result — the data (its source and a hash of its content), the
full settings, the seed, the target, the fold and the restart — so running the same study
again finds the trials already finished and skips them, while a changed setting, an edited data
file or another target makes new trials. Each trial checkpoints after every epoch
(``<store>.ckpt/<key>/last.pt``, or under ``storage``); a trial that was interrupted continues
from there, exactly (a checkpoint that cannot be read is set aside with a warning and the trial
starts again). Trials are claimed through the store, so any number of runners on one machine
divide the work without running anything twice; machines beyond this one join through an
executor (``executor="ray"``), never through a shared SQLite file. Every worker runs the spec
it was given (never one re-read by name).

The driver — the process that called :func:`run_study` — claims the trials and records their
results; they train in an executor (:mod:`optimlab.lab.executors`): this process, worker
processes (``workers``), or Ray tasks. With a trial the driver claims the other runnable seeds
and restarts of its configuration and fold, which train together as one stacked model where
they can (:mod:`optimlab.lab.stacked`). A trial that fails is recorded with its reason and
printed as it happens; it is not retried in the run it failed in (a bad input fails the same
way again) but is by the next run, after the cause is fixed. A failure that is not a user error
is a bug: its traceback goes to the store and to a log file named in the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab.checks import StudyFacts, check_study, resolve_device, updates_per_epoch
from optimlab.lab.executors import Executor, Job, counts, drive, print_line
from optimlab.lab.executors_local import InProcess, Processes
from optimlab.lab.grid import configurations
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.store import FINISHED, Store, StoreError, TrialRow
from optimlab.lab.studydata import prepare_data
from optimlab.lab.trial import (
    Trial,
    build_trainer,
    environment,
    monitor_for,
    run_trial,
    train_trial,
)

__all__ = ["EXECUTORS", "Outcome", "Trial", "build_trainer", "choose_threads", "executor_for",
           "expand", "make_executor", "monitor_for", "prepare_data", "register_study", "run_study",
           "run_trial", "train_trial", "trial_key", "work"]

#: the executors ``run_study`` and the CLI know by name
EXECUTORS = ("local", "ray")

#: settings added after schema 1, left out of a trial's key while they hold these defaults (so
#: the keys of studies stored before them stay what they were)
_LATER_SETTINGS: dict[str, Any] = {"clip_grad_value": None, "swa": None, "ema": None,
                                   "snapshot": None, "plateau": None, "layer_grads": False,
                                   "lr_find": None}
_LATER_DATA: dict[str, Any] = {"resplit": False, "fingerprint": None, "folds": None,
                               "repeats": None}
#: settings that decide how many trials a configuration has, not what one of them computes
#: (``restarts``: the restart index is part of the key instead)
_COUNTS = ("restarts",)

#: below this many multiply-adds per forward pass (parameters × rows per update) one thread per
#: process is fastest: more threads cost more in synchronisation than they save (measured by
#: benchmarks/threads.py)
SMALL_WORK = 2e7


def trial_key(settings: dict[str, Any], seed: int, data: dict[str, Any],
              target: dict[str, Any] | None = None, *, fold: int | None = None,
              restart: int | None = None) -> str:
    """A stable id for (data, settings, seed, target, fold, restart): the same trial always
    gets the same key.

    ``data`` includes the content's fingerprint once the runner has loaded it; the target is
    part of the key from then on (it changes what is recorded). A spec without a fingerprint
    (a study stored by optimlab before schema 2) keys as it did then. The fold enters the key
    when there is one, the restart when the configuration restarts (``restart`` is None for
    one with ``restarts = 1``: its trials are the plain ones). The number of restarts does not
    enter it: raising it from 3 to 5 adds restarts 3 and 4.
    """
    settings = {k: v for k, v in settings.items()
                if not (k in _LATER_SETTINGS and v == _LATER_SETTINGS[k]) and k not in _COUNTS}
    data = {k: v for k, v in data.items() if not (k in _LATER_DATA and v == _LATER_DATA[k])}
    blob: dict[str, Any] = {"data": data, "settings": settings, "seed": seed}
    if data.get("fingerprint") is not None and target is not None:
        blob["target"] = target
    if fold is not None:
        blob["fold"] = fold
    if restart is not None:
        blob["restart"] = restart
    text = json.dumps(blob, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(spec: StudySpec) -> list[Trial]:
    """Every (configuration, fold, seed, restart): configurations in spec order, then folds,
    seeds, restarts."""
    data = spec.data.model_dump()
    target = spec.target.model_dump() if spec.target is not None else None
    return [Trial(trial_key(settings, seed, data, target, fold=fold,
                            restart=restart if settings["restarts"] > 1 else None),
                  label, settings, seed, fold, restart)
            for label, settings in configurations(spec) for fold in spec.data.fold_ids
            for seed in spec.seed_list for restart in range(settings["restarts"])]


def choose_threads(workers: int, work_per_step: float, cores: int | None = None,
                   load: float | None = None) -> int:
    """torch threads per worker process.

    1 for small models (parameters × rows per update below :data:`SMALL_WORK`): their matrix
    products are too small for threads to pay for their synchronisation. Otherwise the cores
    that are idle — ``cores − load`` (the 1-minute load average: other work on the machine) —
    shared out among the workers, at least 1: a thread that waits for a core another process
    holds stalls its siblings at every operation, which on a busy machine costs many times
    what it gains (``benchmarks/threads.py``).
    """
    cores = cores or os.cpu_count() or 1
    if work_per_step < SMALL_WORK:
        return 1
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    idle = max(1, int(cores - load + 0.5))
    return max(1, min(cores, idle) // max(1, workers))


# -- running a study -----------------------------------------------------------------------
@dataclass
class Outcome:
    """How a run ended: counts by status over the study's current trials."""

    study_id: int
    study: str
    counts: dict[str, int]
    ran: int
    facts: StudyFacts | None = None

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def unfinished(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in FINISHED)


def ckpt_root_for(db_path: str | os.PathLike[str]) -> Path:
    return Path(f"{db_path}.ckpt")


def _content(spec_json: dict[str, Any]) -> str:
    """What must agree between two runs of one study at the same time (not the device nor the
    resources: where the trials run does not change them)."""
    return json.dumps({k: v for k, v in spec_json.items()
                       if k not in ("device", "description", "resources")},
                      sort_keys=True, default=str)


def register_study(store: Store, spec: StudySpec) -> tuple[int, list[Trial]]:
    """Record the study and its trials (new ones only); return (study id, trials).

    The same name with other data is refused (``StoreError`` naming both): a study's trials
    share their data. So is a different spec while another process runs this study now.
    A spec without its data's fingerprint is checked first (:func:`check_study`).
    """
    if spec.data.fingerprint is None:
        spec = check_study(spec)[0]
    trials = expand(spec)
    spec_json = spec.model_dump(mode="json")

    def check(stored: dict[str, Any], busy: list[str]) -> None:
        try:
            old = parse_spec(stored)
        except ValueError:
            old = None  # a stored spec this version no longer reads: it is replaced
        if old is not None and old.data.identity() != spec.data.identity():
            raise StoreError(f"study {spec.name!r} in {store.path} was run on "
                             f"{old.data.describe()}, but this spec uses "
                             f"{spec.data.describe()}; a study's trials must share their data: "
                             "give this spec another name, or use another --db")
        if busy and _content(stored) != _content(spec_json):
            raise StoreError(f"study {spec.name!r} in {store.path} is being run now by another "
                             f"process ({', '.join(busy)}) with a different spec; wait for it "
                             "to finish, or give this spec another name")

    study_id = store.ensure_study(spec.name, spec_json, check)
    store.add_trials(study_id, [(t.key, t.label, t.settings, t.seed, t.fold, t.restart)
                                for t in trials])
    return study_id, trials


def make_executor(name: str | Executor = "local", *, workers: int = 1,
                  address: str | None = None, num_cpus: float | None = None,
                  num_gpus: float | None = None) -> Executor:
    """An executor by name: ``"local"`` (this process for one worker, else ``workers``
    processes) or ``"ray"`` (Ray tasks on the cluster at ``address``, ``"auto"`` for the one
    this machine belongs to, or a local one started here; ``num_cpus``/``num_gpus`` per trial).
    An :class:`~optimlab.lab.executors.Executor` is returned as it is. Without Ray installed,
    ``"ray"`` is a :class:`~optimlab.errors.UserError` that gives the install command."""
    if not isinstance(name, str):
        return name
    if name == "local":
        return InProcess() if workers <= 1 else Processes(workers)
    if name == "ray":
        from optimlab.lab.executors_ray import RayExecutor

        return RayExecutor(address=address, num_cpus=num_cpus, num_gpus=num_gpus)
    raise UserError(f"executor={name!r} is not known; choose from {', '.join(EXECUTORS)}")


def executor_for(spec: StudySpec, name: str | Executor = "local", *, workers: int = 1,
                 address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None) -> Executor:
    """:func:`make_executor` with the resources per trial given here, else the spec's
    ``[resources]``."""
    resources = spec.resources
    return make_executor(name, workers=workers, address=address,
                         num_cpus=num_cpus if num_cpus is not None else
                         resources.num_cpus if resources is not None else None,
                         num_gpus=num_gpus if num_gpus is not None else
                         resources.num_gpus if resources is not None else None)


def _siblings(spec: StudySpec, keys: Sequence[str]) -> dict[str, list[str]]:
    """For each trial key, the keys of the other trials of its configuration and fold (among
    ``keys``): its other seeds and restarts, which train on the same rows (another fold's
    training set may have another size)."""
    wanted = set(keys)
    by_config: dict[str, list[str]] = {}
    for t in expand(spec):
        if t.key in wanted:
            by_config.setdefault(json.dumps([t.settings, t.fold], sort_keys=True, default=str),
                                 []).append(t.key)
    return {k: [o for o in ks if o != k] for ks in by_config.values() for k in ks}


def work(db_path: str, spec: StudySpec | dict[str, Any],
         keys: Sequence[str] | Callable[[], Sequence[str]] | None = None,
         threads: int | None = None,
         on_trial: Callable[[TrialRow, str], None] | None = None, *, run: str | None = None,
         device: str | None = None, on_failure: Callable[[str], None] | None = print_line,
         on_warning: Callable[[str], None] | None = print_line,
         executor: Executor | None = None, storage: str | os.PathLike[str] | None = None,
         on_report: Callable[[TrialRow, int, dict[str, float]], None] | None = None,
         on_stopped: Callable[..., str] | None = None,
         on_poll: Callable[[dict[str, int]], None] | None = None,
         together: bool | None = None) -> int:
    """Claim and run trials of ``spec`` until none is left; return how many this ran.

    Trials train in ``executor`` (this process by default; see :func:`make_executor`) and are
    recorded here, by this process alone. With a trial the driver claims the other runnable
    seeds of its configuration and fold and they train together (:mod:`optimlab.lab.stacked`;
    ``together=False`` or ``OPTIMLAB_TOGETHER=0``: one at a time; the reason a configuration's
    seeds train one at a time goes to ``on_warning`` once). ``keys`` limits the trials to
    those keys (default: the spec's); a callable is asked again after each unit, so a search
    can register trials as it goes (its trials then train one at a time). ``on_trial(row,
    status)`` is called after each trial with its row as stored (``row.error`` holds a
    failure's reason); ``on_failure`` and ``on_warning`` get lines to show the user (stderr by
    default); ``on_report(row, epoch, logs)`` each epoch of a running trial — raising there
    stops the trial, which ``on_stopped(store, row, err, on_failure)`` records (default: as
    failed; see :func:`optimlab.lab.executors.drive`).
    """
    from optimlab.lab.stacked import asked_alone, enabled

    spec = spec if isinstance(spec, StudySpec) else parse_spec(spec)
    run = run or uuid.uuid4().hex[:12]  # a call is one run: what fails in it is not retried
    if keys is None:  # only this spec's trials: others of the study may be on other data
        keys = [t.key for t in expand(spec)]
    siblings = _siblings(spec, keys) if enabled(together) and not callable(keys) else {}
    note = None if enabled(together) or len(spec.seed_list) < 2 else asked_alone()
    executor = executor or InProcess()
    remote = getattr(executor, "remote", False)
    chosen = (device or spec.device) if remote else resolve_device(device or spec.device)
    job = Job(spec, Path(storage) if storage is not None else ckpt_root_for(db_path), threads,
              chosen, reports=on_report is not None)
    return drive(executor, db_path, job, keys, run=run, siblings=siblings, note=note,
                 on_trial=on_trial, on_report=on_report, on_stopped=on_stopped,
                 on_failure=on_failure, on_warning=on_warning, on_poll=on_poll)


def run_study(spec: StudySpec, db_path: str | os.PathLike[str], *, workers: int = 1,
              threads: int | None = None, device: str | None = None,
              executor: str | Executor = "local", address: str | None = None,
              storage: str | os.PathLike[str] | None = None, num_cpus: float | None = None,
              num_gpus: float | None = None,
              on_trial: Callable[[TrialRow, str], None] | None = None,
              on_report: Callable[[TrialRow, int, dict[str, float]], None] | None = None,
              on_poll: Callable[[dict[str, int]], None] | None = None,
              on_failure: Callable[[str], None] | None = print_line,
              on_warning: Callable[[str], None] | None = print_line,
              together: bool | None = None) -> Outcome:
    """Check ``spec`` against its data, then run every unfinished trial; trials already
    finished in the store are kept. The seeds of a configuration train together where they
    can (``together=False``, or ``OPTIMLAB_TOGETHER=0``: one at a time; see
    :mod:`optimlab.lab.stacked`), whatever the executor.

    ``executor``: ``"local"`` (``workers`` processes of this machine) or ``"ray"`` (Ray tasks;
    ``address``, and ``num_cpus``/``num_gpus`` per task, else the spec's ``[resources]``), or
    an :class:`~optimlab.lab.executors.Executor`. ``storage`` is the folder of the trials'
    epoch checkpoints (default ``<db>.ckpt``); with Ray on several machines it must be one
    every node can reach. ``threads`` sets torch's intra-op threads per process; by default
    :func:`choose_threads` picks them from the cores, the workers and the size of the models
    (1 for small ones). Results are reproducible for a given thread count; a different count
    may change the last digits (the order of floating-point sums changes). ``device`` ("cpu",
    "cuda", "auto") overrides the spec's. Failures and warnings go to ``on_failure`` /
    ``on_warning`` as they happen (stderr by default); ``on_trial``, ``on_report`` and
    ``on_poll`` run in this process, whatever the executor.
    """
    from optimlab._checks import check_number

    check_number("workers", workers, low=1, integer=True)
    if threads is not None:
        check_number("threads", threads, low=1, integer=True)
    ex = executor_for(spec, executor, workers=workers, address=address, num_cpus=num_cpus,
                      num_gpus=num_gpus)
    db_path = str(db_path)
    remote = getattr(ex, "remote", False)
    asked = device or spec.device
    # a cluster's GPUs are on its nodes: the driver checks the study on its CPU
    spec, facts = check_study(spec, "cpu" if remote and asked != "cpu" else device)
    if remote:
        spec = spec.model_copy(update={"device": asked})
    if on_warning is not None:
        for text in facts.warnings:
            on_warning(f"warning: {text}")
    if threads is None and not remote:
        threads = choose_threads(workers, facts.work_per_step)
    run = uuid.uuid4().hex[:12]
    with Store(db_path) as store:
        study_id, trials = register_study(store, spec)
    keys = [t.key for t in trials]
    root = Path(storage) if storage is not None else ckpt_root_for(db_path)
    ran = work(db_path, spec, keys, threads, on_trial, run=run,
               device=asked if remote else facts.device, on_failure=on_failure,
               on_warning=on_warning, executor=ex, storage=root, on_report=on_report,
               on_poll=on_poll, together=together)
    with Store(db_path) as store:
        final = counts(store, study_id, keys)
    with contextlib.suppress(OSError):  # no trial left mid-way: the checkpoint folder goes too
        root.rmdir()
    if on_poll is not None:
        on_poll(final)
    return Outcome(study_id, spec.name, final, ran, facts)


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


__all__ += ["ckpt_root_for", "environment", "finite", "updates_per_epoch"]
