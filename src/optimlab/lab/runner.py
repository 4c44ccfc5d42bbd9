"""Running a study: expand it into trials, and run each trial once, resumably.

A trial is (configuration, seed). Its key is a hash of its full settings and seed, so running the
same study again finds the trials already finished and skips them, while a changed setting makes
a new trial. Each trial checkpoints after every epoch (``<store>.ckpt/<key>/last.pt``); a trial
that was interrupted continues from there, exactly. Trials are claimed through the store, so any
number of runners — ``--workers N`` processes here, or other machines on a shared file — divide
the work without running anything twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.lab.spec import DataSpec, StudySpec, configurations, parse_spec
from optimlab.lab.store import FINISHED, Store, TrialRow
from optimlab.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, TimeToTarget
from optimlab.train.callbacks.monitoring import metric_mode


@dataclass(frozen=True)
class Trial:
    key: str
    label: str
    settings: dict[str, Any]
    seed: int


def trial_key(settings: dict[str, Any], seed: int, data: dict[str, Any]) -> str:
    """A stable id for (data, settings, seed): the same trial always gets the same key."""
    blob = json.dumps({"data": data, "settings": settings, "seed": seed}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand(spec: StudySpec) -> list[Trial]:
    """Every (configuration, seed), configurations in spec order, seeds inside."""
    data = spec.data.model_dump()
    return [Trial(trial_key(settings, seed, data), label, settings, seed)
            for label, settings in configurations(spec) for seed in spec.seed_list]


def monitor_for(spec: StudySpec, task: str) -> str:
    """The metric the study ranks by: ``train.monitor``, else val accuracy or val loss."""
    if spec.train.monitor:
        return spec.train.monitor
    return "val_accuracy" if task in ("binary", "multiclass") else "val_loss"


# -- data ----------------------------------------------------------------------------------------
_DATA_CACHE: dict[str, Any] = {}


def prepare_data(data: DataSpec) -> Any:
    """Load, split and standardize the study's data (cached per process: every trial of a study
    trains on the very same split)."""
    from optimlab.data import holdout, load, load_csv, load_npz, standardize, time_split

    key = json.dumps(data.model_dump(), sort_keys=True, default=str)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if data.dataset is not None:
        ds = load(data.dataset, **data.options)
    elif data.csv is not None:
        ds = load_csv(data.csv, data.target, task=data.task, **data.options)  # type: ignore[arg-type]
    else:
        ds = load_npz(data.npz, task=data.task, **data.options)  # type: ignore[arg-type]
    if data.split == "time":
        split = time_split(ds, val=data.val, test=data.test)
    else:
        split = holdout(ds, val=data.val, test=data.test, seed=data.seed)
    if data.standardize and split.train.X.dtype.is_floating_point:
        split, _ = standardize(split)
    _DATA_CACHE[key] = split
    return split


# -- one trial -----------------------------------------------------------------------------
class _Heartbeat(Callback):
    """Tells the store every epoch that this trial's process is alive."""

    def __init__(self, store: Store, trial_id: int) -> None:
        self.store, self.trial_id = store, trial_id

    def on_epoch_end(self, state: Any) -> None:
        self.store.heartbeat(self.trial_id)


def environment(device: torch.device) -> dict[str, Any]:
    import numpy
    import sklearn

    import optimlab

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
            "optimlab": optimlab.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "host": socket.gethostname(), "device": str(device),
            "threads": torch.get_num_threads()}


def build_trainer(spec: StudySpec, settings: dict[str, Any], seed: int, split: Any,
                  callbacks: list[Callback]) -> Any:
    """A Trainer for one trial's settings."""
    from optimlab.models import build_model, n_outputs
    from optimlab.schedules import create as create_schedule
    from optimlab.schedules import linear_scaling
    from optimlab.train import Trainer

    train = split.train
    task = train.task
    model = build_model(settings["model"], tuple(train.X.shape[1:]),
                        n_outputs(task, train.n_classes, tuple(train.y.shape)), task=task,
                        seed=seed)
    lr = settings["lr"]
    if lr is None:
        from optimlab.optim import available

        lr = available()[settings["optimizer"]]["defaults"]["lr"]
    if settings["linear_scaling"]:
        batch = settings["batch_size"] or len(train)
        lr = linear_scaling(lr, batch, settings["base_batch_size"])
    schedule = create_schedule(**settings["schedule"]) if settings["schedule"] else None
    penalty = {k: settings[k] for k in ("l1", "l2") if settings[k]}
    return Trainer(model, loss=settings["loss"], optimizer=settings["optimizer"], lr=lr,
                   optimizer_kwargs=settings["optimizer_kwargs"], schedule=schedule,
                   schedule_unit=settings["schedule_unit"], metrics=settings["metrics"],
                   callbacks=callbacks, seed=seed, accumulate=settings["accumulate"],
                   clip_grad_norm=settings["clip_grad_norm"], penalty=penalty or None,
                   progress=False)


def run_trial(store: Store, spec: StudySpec, row: TrialRow, ckpt_root: Path) -> str:
    """Train one claimed trial and record it (one transaction); return its status."""
    started = time.perf_counter()
    settings, seed = row.config, row.seed
    split = prepare_data(spec.data)
    task = split.train.task
    monitor = monitor_for(spec, task)
    ckpt_dir = ckpt_root / row.key
    callbacks: list[Callback] = []
    target_cb = None
    if spec.target is not None:
        target_cb = TimeToTarget(spec.target.metric, spec.target.value)
        callbacks.append(target_cb)
    if settings["early_stopping"]:
        callbacks.append(EarlyStopping(monitor, patience=settings["early_stopping"]))
    stopper = None
    if settings["early_stopping"]:
        stopper = callbacks[-1]
    callbacks.append(_Heartbeat(store, row.id))
    callbacks.append(ModelCheckpoint(ckpt_dir, monitor=monitor, save_best=False))
    trainer = build_trainer(spec, settings, seed, split, callbacks)
    last = ckpt_dir / "last.pt"
    history = trainer.fit(split.train, split.val, epochs=settings["epochs"],
                          max_steps=settings["max_steps"], batch_size=settings["batch_size"],
                          drop_last=settings["drop_last"],
                          resume=last if last.is_file() else None)
    final = dict(history.epochs[-1]) if history.epochs else {}
    if stopper is not None and stopper.best_epoch is not None:  # the weights it restored
        final = dict(next(e for e in history.epochs if e["epoch"] == stopper.best_epoch))
    for key in ("epoch", "time"):  # the record's bookkeeping, not metrics
        final.pop(key, None)
    if split.test is not None and history.status != "diverged":
        final.update({f"test_{k}": v for k, v in trainer.evaluate(split.test).items()})
    best: dict[str, Any] = {}
    mode = metric_mode(monitor)
    for key, key_mode in ((monitor, mode), ("val_loss", "min")):
        try:
            epoch, value = history.best(key, key_mode)
            best[key] = {"epoch": epoch, "value": value}
        except KeyError:
            pass
    target = None
    if target_cb is not None:
        target = {"metric": spec.target.metric, "value": spec.target.value,  # type: ignore[union-attr]
                  "reached": target_cb.reached, "step": target_cb.step,
                  "seconds": target_cb.seconds, "epoch": target_cb.epoch}
    train_time = sum(e.get("time", 0.0) for e in history.epochs)
    store.finish(row.id, status=history.status if history.status in FINISHED else "completed",
                 wall_time=time.perf_counter() - started, train_time=train_time,
                 steps=history.n_steps, stop_step=history.stop_step, reason=history.reason,
                 env=environment(trainer.device), final=final, best=best, target=target,
                 epochs=history.epochs, step_rows=history.steps)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the store holds the results
    return history.status


# -- running a study -----------------------------------------------------------------------
@dataclass
class Outcome:
    """How a run ended: counts by status over the study's current trials."""

    study_id: int
    study: str
    counts: dict[str, int]
    ran: int

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def unfinished(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in FINISHED)


def ckpt_root_for(db_path: str | os.PathLike[str]) -> Path:
    return Path(f"{db_path}.ckpt")


def register_study(store: Store, spec: StudySpec) -> tuple[int, list[Trial]]:
    """Record the study and its trials (new ones only); return (study id, trials)."""
    trials = expand(spec)
    study_id = store.ensure_study(spec.name, spec.model_dump(mode="json"))
    store.add_trials(study_id, [(t.key, t.label, t.settings, t.seed) for t in trials])
    return study_id, trials


def work(db_path: str, study_name: str, keys: list[str] | None, threads: int | None = None,
         on_trial: Callable[[TrialRow, str], None] | None = None) -> int:
    """Claim and run trials of one study until none is left; return how many this ran."""
    if threads:
        torch.set_num_threads(threads)
    ran = 0
    with Store(db_path) as store:
        study_id, _, spec_data = store.study(study_name)
        spec = parse_spec(spec_data)
        ckpt_root = ckpt_root_for(db_path)
        while (row := store.claim(study_id, keys)) is not None:
            try:
                status = run_trial(store, spec, row, ckpt_root)
            except Exception as err:  # a bad trial is recorded; the study goes on
                detail = "".join(traceback.format_exception_only(type(err), err)).strip()
                store.fail(row.id, detail)
                status = "failed"
            ran += 1
            if on_trial is not None:
                on_trial(row, status)
    return ran


def _work_process(db_path: str, study_name: str, keys: list[str] | None, threads: int) -> None:
    work(db_path, study_name, keys, threads)


def run_study(spec: StudySpec, db_path: str | os.PathLike[str], *, workers: int = 1,
              threads: int | None = None,
              on_trial: Callable[[TrialRow, str], None] | None = None,
              on_poll: Callable[[dict[str, int]], None] | None = None) -> Outcome:
    """Run every unfinished trial of ``spec``; trials already finished in the store are kept.

    ``threads`` sets torch's intra-op threads per process (default: torch's own choice with one
    worker, cores ÷ workers with several). Results are reproducible for a given thread count;
    a different count may change the last digits (the order of floating-point sums changes).
    """
    db_path = str(db_path)
    with Store(db_path) as store:
        study_id, trials = register_study(store, spec)
    keys = [t.key for t in trials]
    ran = 0
    if workers <= 1:
        previous = torch.get_num_threads()
        try:
            ran = work(db_path, spec.name, keys, threads, on_trial)
        finally:
            torch.set_num_threads(previous)
    else:
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_work_process, args=(db_path, spec.name, keys, threads))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        with Store(db_path) as store:
            while any(p.is_alive() for p in procs):
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
    return Outcome(study_id, spec.name, counts, ran)


def _counts(store: Store, study_id: int, keys: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in store.trials(study_id, keys):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)
