"""Running a study: check it, expand it into trials, and run each trial once, resumably.

A trial is (configuration, seed) — (configuration, fold, restart, seed) in a study with k-fold
cross-validation or restarts; the fold is absent and the restart 0 otherwise. Its key is a hash
of everything that decides its result — the data (its source and a hash of its content), the
full settings, the seed, the target, the fold and the restart — so running the same study
again finds the trials already finished and skips them, while a changed setting, an edited data
file or another target makes new trials. Each trial
checkpoints after every epoch (``<store>.ckpt/<key>/last.pt``); a trial that was interrupted
continues from there, exactly (a checkpoint that cannot be read is set aside with a warning and
the trial starts again). Trials are claimed through the store, so any number of runners —
``--workers N`` processes here, or other machines on a shared file — divide the work without
running anything twice. Every worker runs the spec it was given (never one re-read by name).

A trial that fails is recorded with its reason and printed as it happens; it is not retried in
the run it failed in (a bad input fails the same way again) but is by the next run, after the
cause is fixed. A failure that is not a user error is a bug: its traceback goes to the store and
to a log file named in the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import is_user_error, one_line, save_traceback
from optimlab.lab.checks import StudyFacts, check_study, resolve_device, updates_per_epoch
from optimlab.lab.grid import configurations
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.stacked import run_configuration
from optimlab.lab.store import FINISHED, Store, StoreError, TrialRow
from optimlab.lab.studydata import StudyData, prepare_data
from optimlab.lab.trial import build_trainer, environment, monitor_for, run_trial, trial_where

__all__ = ["Outcome", "Trial", "build_trainer", "choose_threads", "expand", "monitor_for",
           "prepare_data", "register_study", "run_study", "run_trial", "trial_key", "work"]

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


@dataclass(frozen=True)
class Trial:
    key: str
    label: str
    settings: dict[str, Any]
    seed: int
    #: the k-fold part it validates on (None without k-fold), and which restart it is
    fold: int | None = None
    restart: int = 0


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
    """What must agree between two runs of one study at the same time (not the device)."""
    return json.dumps({k: v for k, v in spec_json.items() if k not in ("device", "description")},
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


def _print_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _warm_up(spec: StudySpec, data: StudyData, device: str) -> None:
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


def _siblings(spec: StudySpec, keys: list[str]) -> dict[str, list[str]]:
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


def work(db_path: str, spec: StudySpec | dict[str, Any], keys: list[str] | None = None,
         threads: int | None = None,
         on_trial: Callable[[TrialRow, str], None] | None = None, *, run: str | None = None,
         device: str | None = None, on_failure: Callable[[str], None] | None = _print_line,
         on_warning: Callable[[str], None] | None = _print_line, ready: Any = None,
         together: bool | None = None) -> int:
    """Claim and run trials of ``spec`` until none is left; return how many this ran.

    With a trial it claims the other runnable seeds of its configuration and trains them
    together (:mod:`optimlab.lab.stacked`; ``together=False`` or ``OPTIMLAB_TOGETHER=0``: one
    at a time). ``on_trial(row, status)`` is called after each trial with its row as stored
    (``row.error`` holds a failure's reason); ``on_failure`` and ``on_warning`` get lines to
    show the user (stderr by default), ``on_warning`` also the reason a configuration's seeds
    train one at a time. ``ready`` is a barrier the workers of one run wait at before their
    first claim.
    """
    from optimlab.lab.stacked import enabled
    spec = spec if isinstance(spec, StudySpec) else parse_spec(spec)
    run = run or uuid.uuid4().hex[:12]  # a call is one run: what fails in it is not retried
    if keys is None:  # only this spec's trials: others of the study may be on other data
        keys = [t.key for t in expand(spec)]
    if threads:
        torch.set_num_threads(threads)
    chosen = resolve_device(device or spec.device)
    siblings = _siblings(spec, keys) if enabled(together) else {}
    off = None if enabled(together) or len(spec.seed_list) < 2 else \
        {"seeds": "one at a time: asked for (--one-at-a-time or OPTIMLAB_TOGETHER=0)"}
    ran = 0
    ckpt_root = ckpt_root_for(db_path)
    with Store(db_path) as store:
        study_id = store.study(spec.name)[0]
        data: StudyData | None = None
        data_error: BaseException | None = None
        try:
            data = StudyData(spec.data)
            _warm_up(spec, data, chosen)
        except Exception as err:  # recorded with each trial it stops, below
            data_error = err
        if ready is not None:  # workers start claiming together, each with its data loaded
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.wait(timeout=300)
        while (row := store.claim(study_id, keys, run=run)) is not None:
            rows, others = [row], list(siblings.get(row.key, []))
            while others and (more := store.claim(study_id, others, run=run)) is not None:
                rows.append(more)
                others.remove(more.key)
            done: list[tuple[TrialRow, str]] = []
            try:
                if data_error is not None:
                    raise data_error
                if not siblings.get(row.key):  # one seed, or seeds trained one at a time
                    done = [(row, run_trial(store, spec, row, ckpt_root, data, chosen,
                                            on_warning, off))]
                else:
                    assert data is not None
                    done = run_configuration(store, spec, rows, ckpt_root, data, chosen,
                                             on_warning, on_warning, together)
            except Exception as err:  # a bad trial is recorded; the study goes on
                for r in rows:  # those of the unit not recorded yet
                    if store.trial(r.id).status not in FINISHED:
                        _record_failure(store, r, err, on_failure)
                        done.append((r, "failed"))
            ran += len(done)
            if on_trial is not None:
                for r, status in done:
                    on_trial(store.trial(r.id), status)
    return ran


def _record_failure(store: Store, row: TrialRow, err: BaseException,
                    on_failure: Callable[[str], None] | None) -> None:
    detail = one_line(err)
    where = f"{row.label} ({trial_where(row)})"
    if is_user_error(err):
        store.fail(row.id, detail)
        message = f"  {where} FAILED: {detail}"
    else:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        log = save_traceback(err, context=f"study trial {where}, key {row.key}")
        store.fail(row.id, f"{detail} (a bug in optimlab"
                   + (f"; traceback in {log})" if log else ")"), traceback=text)
        message = (f"  {where} FAILED by an unexpected error (a bug in optimlab): {detail}"
                   + (f"\n    traceback: {log}" if log else ""))
    if on_failure is not None:
        on_failure(message)


def _work_process(db_path: str, spec_json: dict[str, Any], keys: list[str] | None,
                  threads: int, run: str, device: str, ready: Any,
                  together: bool | None = None) -> None:
    work(db_path, spec_json, keys, threads, run=run, device=device, ready=ready,
         together=together)


def run_study(spec: StudySpec, db_path: str | os.PathLike[str], *, workers: int = 1,
              threads: int | None = None, device: str | None = None,
              on_trial: Callable[[TrialRow, str], None] | None = None,
              on_poll: Callable[[dict[str, int]], None] | None = None,
              on_failure: Callable[[str], None] | None = _print_line,
              on_warning: Callable[[str], None] | None = _print_line,
              together: bool | None = None) -> Outcome:
    """Check ``spec`` against its data, then run every unfinished trial; trials already
    finished in the store are kept. The seeds of a configuration train together where they
    can (``together=False``, or ``OPTIMLAB_TOGETHER=0``: one at a time; see
    :mod:`optimlab.lab.stacked`).

    ``threads`` sets torch's intra-op threads per process; by default :func:`choose_threads`
    picks them from the cores, the workers and the size of the models (1 for small ones).
    Results are reproducible for a given thread count; a different count may change the last
    digits (the order of floating-point sums changes). ``device`` ("cpu", "cuda", "auto")
    overrides the spec's. Failures and warnings go to ``on_failure`` / ``on_warning`` as they
    happen (stderr by default; worker processes always print to stderr).
    """
    from optimlab._checks import check_number

    check_number("workers", workers, low=1, integer=True)
    if threads is not None:
        check_number("threads", threads, low=1, integer=True)
    db_path = str(db_path)
    spec, facts = check_study(spec, device)
    if on_warning is not None:
        for text in facts.warnings:
            on_warning(f"warning: {text}")
    threads = threads or choose_threads(workers, facts.work_per_step)
    run = uuid.uuid4().hex[:12]
    with Store(db_path) as store:
        study_id, trials = register_study(store, spec)
    keys = [t.key for t in trials]
    ran = 0
    if workers <= 1:
        previous = torch.get_num_threads()
        try:
            ran = work(db_path, spec, keys, threads, on_trial, run=run, device=facts.device,
                       on_failure=on_failure, on_warning=on_warning, together=together)
        finally:
            torch.set_num_threads(previous)
    else:
        ctx = multiprocessing.get_context("spawn")
        spec_json = spec.model_dump(mode="json")
        ready = ctx.Barrier(workers)
        procs = [ctx.Process(target=_work_process,
                             args=(db_path, spec_json, keys, threads, run, facts.device, ready,
                                   together))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        with Store(db_path) as store:
            while any(p.is_alive() for p in procs):
                if any(p.exitcode not in (None, 0) for p in procs):
                    ready.abort()  # a worker died before it could start: the rest go on
                if on_poll is not None:
                    on_poll(_counts(store, study_id, keys))
                time.sleep(0.5)
        for p in procs:
            p.join()
    with Store(db_path) as store:
        counts = _counts(store, study_id, keys)
    with contextlib.suppress(OSError):  # no trial left mid-way: the checkpoint folder goes too
        ckpt_root_for(db_path).rmdir()
    if on_poll is not None:
        on_poll(counts)
    return Outcome(study_id, spec.name, counts, ran, facts)


def _counts(store: Store, study_id: int, keys: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in store.trials(study_id, keys):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


__all__ += ["ckpt_root_for", "environment", "finite", "updates_per_epoch"]
