"""One trial: its identity, its trainer, and training it into a result that others record.

A :class:`Trial` is (configuration, fold, seed, restart) under a stable key.
:func:`build_trainer` turns a configuration's settings into a :class:`~optimlab.train.Trainer`:
the model for the data, the optimizer, the schedule (relative to ``lr``, scaled by the linear
scaling rule) and the callbacks the settings ask for (early stopping, reduce-on-plateau, SWA,
EMA, snapshot ensembles).

:func:`train_trial` is the compute side of the lab — a plain function of (spec, trial,
checkpoint folder, per-epoch report) that never touches the store: it adds the bookkeeping (time
to target, per-layer gradients, an epoch checkpoint), resumes from the trial's checkpoint when it
is usable — an unreadable or foreign one is set aside with a warning — trains, and returns a
:class:`~optimlab.lab.store.TrialResult` with the metrics of the weights the trial ends with (the
restored best epoch, the SWA or EMA average, the snapshot ensemble). It runs wherever an executor
puts it (this process, a worker process, a Ray task); the driver records the result
(:func:`record_trial`, one transaction) and is the store's only writer. :func:`run_trial` is
both halves in this process (train, with a heartbeat to the store every epoch, then record).

A trial trains on its fold's split (k-fold) from the seed of its restart
(:func:`optimlab.train.restarts.restart_seed`: the seed itself for restart 0); with
``lr = "find"`` it first runs the learning-rate range test on its training data and trains with
the suggested lr (the test's result is kept in the checkpoint folder, so a resumed trial does not
test again, and stored with the trial).

Two hooks serve whoever drives a trial from outside (the lab's driver, a hyperparameter search,
:mod:`optimlab.tune`): ``report(epoch, logs)`` is called after every epoch, once the epoch's
checkpoint is written; raising :class:`~optimlab.train.callbacks.Pruned` there ends the trial as
``pruned``, raising :class:`TrialStopped` ends it as stopped by the driver (:func:`train_trial`
then raises it). ``model`` trains a given ``torch.nn.Module`` (a user's own model) instead of the
one the settings describe — then the settings' ``model`` entry only describes it for the record.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import time
import warnings as warnings_module  # `warnings` names a trial's list of them below
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.lab.lr_range import find_for_trial
from optimlab.lab.spec import StudySpec, TrainSpec
from optimlab.lab.spec_schedule import resolve_schedule
from optimlab.lab.store import FINISHED, Store, TrialResult, TrialRow
from optimlab.lab.studydata import StudyData
from optimlab.schedules.base import ScheduleEndsEarly
from optimlab.train.callbacks import (
    EMA,
    SWA,
    Callback,
    EarlyStopping,
    EpochReport,
    GradientMonitor,
    ModelCheckpoint,
    ReduceLROnPlateau,
    SnapshotEnsemble,
    TimeToTarget,
    read_checkpoint,
)
from optimlab.train.callbacks.monitoring import metric_mode
from optimlab.train.restarts import restart_seed

__all__ = ["Bookkeeping", "Report", "Trial", "TrialStopped", "bookkeeping", "build_trainer",
           "effect_callbacks", "environment", "final_metrics", "monitor_for", "record_trial",
           "run_trial", "train_trial", "trial_result", "trial_settings", "trial_where"]

#: what a running trial calls after each epoch (once its checkpoint is written):
#: ``report(epoch, logs)`` with the epoch's record; raising stops the trial (pruning)
Report = Callable[[int, dict[str, float]], None]

#: the lr a trainer is built with before the range test of ``lr = "find"`` replaces it
FIND_PLACEHOLDER = 1e-3


def trial_where(row: Any) -> str:
    """``seed 3``, ``fold 2, seed 3``, ``seed 3, restart 1``: which trial of a configuration."""
    parts = [f"fold {row.fold}"] if getattr(row, "fold", None) is not None else []
    parts.append(f"seed {row.seed}")
    if getattr(row, "restart", None):
        parts.append(f"restart {row.restart}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Trial:
    """One unit of a study: a configuration's settings, its fold (None without k-fold), seed
    and restart, under a stable key."""

    key: str
    label: str
    settings: dict[str, Any]
    seed: int
    fold: int | None = None
    restart: int = 0

    @classmethod
    def from_row(cls, row: TrialRow) -> Trial:
        return cls(row.key, row.label, row.config, row.seed, row.fold, row.restart or 0)


class TrialStopped(Exception):
    """Raised inside a trial whose report was answered "stop" by the driver."""


def monitor_for(spec: StudySpec, task: str) -> str:
    """The metric the study ranks by: ``train.monitor``, else val accuracy or val loss."""
    if spec.train.monitor:
        return spec.train.monitor
    return "val_accuracy" if task in ("binary", "multiclass") else "val_loss"


class _Heartbeat(Callback):
    """Tells the store every epoch that this trial's process is alive (when the trial is
    trained where the store is: :func:`run_trial`; under the driver it beats for the trials it
    holds)."""

    def __init__(self, store: Store | None, trial_id: int | None) -> None:
        self.store, self.trial_id = store, trial_id

    def on_epoch_end(self, state: Any) -> None:
        if self.store is not None and self.trial_id is not None:
            self.store.heartbeat(self.trial_id)


class _Reporter(EpochReport):
    """:class:`~optimlab.train.callbacks.EpochReport` called once each epoch is closed (its
    checkpoint written): tells the driver the trial is alive, shows progress, and lets it end
    the trial — :class:`~optimlab.train.callbacks.Pruned` as ``pruned``, :class:`TrialStopped`
    as stopped by the driver (``stopped`` holds the reason; :func:`train_trial` raises it after
    the fit)."""

    def __init__(self, report: Report | None) -> None:
        self.report = report  # type: ignore[assignment]  # None: nobody listens
        self.stopped: str | None = None

    def on_epoch_end(self, state: Any) -> None:
        pass  # reported at the epoch's close instead

    def on_epoch_close(self, state: Any) -> None:
        if self.report is None:
            return
        try:
            super().on_epoch_end(state)
        except TrialStopped as signal:
            self.stopped = str(signal) or f"stopped by the driver after epoch {state.epoch}"
            state.request_stop(self.stopped, status="stopped")


@dataclass(frozen=True)
class _Scaled:
    """``factor · schedule(t)``: a spec's schedule under the linear scaling rule."""

    schedule: Any
    factor: float

    def __call__(self, step: int) -> float:
        return self.factor * float(self.schedule(step))


def environment(device: torch.device) -> dict[str, Any]:
    import numpy
    import sklearn

    import optimlab

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
            "optimlab": optimlab.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "host": socket.gethostname(), "pid": os.getpid(), "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": torch.get_num_threads()}


def effect_callbacks(spec: StudySpec, settings: dict[str, Any], task: str) -> list[Callback]:
    """The callbacks a configuration's settings ask for, which change its result: early
    stopping, reduce-on-plateau, SWA, EMA, snapshot ensembles."""
    monitor = settings["monitor"] or monitor_for(spec, task)
    out: list[Callback] = []
    if settings.get("swa"):
        s = settings["swa"]
        out.append(SWA(s["start_epoch"], s["lr"], s["anneal_epochs"]))
    if settings.get("ema"):
        out.append(EMA(settings["ema"]["decay"]))
    if settings.get("snapshot"):
        s = settings["snapshot"]
        out.append(SnapshotEnsemble(s["cycles"], lr_min=s["lr_min"]))
    if settings.get("plateau"):
        p = settings["plateau"]
        out.append(ReduceLROnPlateau(monitor, factor=p["factor"], patience=p["patience"],
                                     cooldown=p["cooldown"], min_lr=p["min_lr"],
                                     min_delta=p["min_delta"]))
    if settings["early_stopping"]:
        out.append(EarlyStopping(monitor, patience=settings["early_stopping"]))
    return out


def trial_settings(config: dict[str, Any], model: torch.nn.Module | None = None
                   ) -> dict[str, Any]:
    """A trial's settings, validated, with every field present (settings stored before a field
    existed get its default). With a given ``model`` (a user's module) the ``model`` entry only
    describes it and is kept as it is."""
    if model is None:
        return TrainSpec.model_validate(config).model_dump()
    out = TrainSpec.model_validate({**config, "model": "mlp"}).model_dump()
    out["model"] = config.get("model")
    return out


def build_trainer(spec: StudySpec, settings: dict[str, Any], seed: int, split: Any,
                  callbacks: list[Callback], device: str = "cpu",
                  model: torch.nn.Module | None = None) -> Any:
    """A Trainer for one trial's settings: the model (``model`` if given, else the one the
    settings describe), optimizer, schedule (relative to lr, scaled by the linear scaling rule)
    and the callbacks the settings ask for, then ``callbacks`` (bookkeeping: they see the
    others' results)."""
    from optimlab.models import build_model, n_outputs
    from optimlab.schedules import create as create_schedule
    from optimlab.schedules import linear_scaling
    from optimlab.train import Trainer

    settings = trial_settings(settings, model)
    train = split.train
    task = train.task
    shape = tuple(train.X.shape[1:])
    if model is None:
        model = build_model(settings["model"], shape if len(shape) > 1 else shape[0],
                            n_outputs(task, train.n_classes, tuple(train.y.shape)),
                            task=task, seed=seed)
    lr = settings["lr"]
    if lr == "find":  # built for the range test, which sets its own rates
        lr = FIND_PLACEHOLDER
    if lr is None:
        from optimlab.optim import available

        lr = available()[settings["optimizer"]]["defaults"]["lr"]
    factor = 1.0
    if settings["linear_scaling"]:
        batch = settings["batch_size"] or len(train)
        factor = linear_scaling(lr, batch, settings["base_batch_size"]) / lr if lr else 1.0
    schedule = None
    if settings["schedule"]:
        schedule = create_schedule(**resolve_schedule(settings["schedule"], lr))
        if factor != 1.0:
            schedule = _Scaled(schedule, factor)
    kwargs = dict(settings["optimizer_kwargs"])
    if isinstance(kwargs.get("betas"), list):
        kwargs["betas"] = tuple(kwargs["betas"])
    penalty = {k: settings[k] for k in ("l1", "l2") if settings[k]}
    return Trainer(model, loss=settings["loss"], optimizer=settings["optimizer"],
                   lr=lr * factor, optimizer_kwargs=kwargs, schedule=schedule,
                   schedule_unit=settings["schedule_unit"], metrics=settings["metrics"],
                   callbacks=[*effect_callbacks(spec, settings, task), *callbacks], seed=seed,
                   accumulate=settings["accumulate"], clip_grad_norm=settings["clip_grad_norm"],
                   clip_grad_value=settings["clip_grad_value"], penalty=penalty or None,
                   device=device, progress=False)


def _usable_checkpoint(path: Path, trainer: Any, warnings: list[str]) -> Path | None:
    """``path`` if it holds a checkpoint this trial can resume from; otherwise None, with an
    unreadable or foreign file moved aside (to ``<store>.ckpt/set-aside/``) and a warning."""
    if not path.is_file():
        return None
    try:
        data = read_checkpoint(path)
        if len(data["callbacks"]) != len(trainer.callbacks):
            raise ValueError(f"it was written with {len(data['callbacks'])} callbacks, this "
                             f"trial has {len(trainer.callbacks)}")
        written = data.get("callback_types")
        if written is not None and list(written) != trainer.callback_types():
            raise ValueError(f"it was written with the callbacks {list(written)}, this trial "
                             f"has {trainer.callback_types()}")
        ours = {k: tuple(v.shape) for k, v in trainer.model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in data["model"].items()}
        if ours != theirs:
            raise ValueError("its model does not match this trial's model")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        aside = (path.parent.parent / "set-aside" /
                 f"{path.parent.name}-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        with contextlib.suppress(OSError):
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, aside)
        reason = str(err).removeprefix(f"{path} ")
        warnings.append(f"its checkpoint could not be used ({reason}); set aside as "
                        f"{aside}, the trial starts again from scratch")
        return None
    return path


@dataclass
class Bookkeeping:
    """The callbacks that record a trial without changing it (time to target, per-layer
    gradients, heartbeat, checkpoint, the driver's per-epoch report) — the same for a trial
    trained alone or with its seeds, wherever it trains (so its checkpoint resumes anywhere)."""

    callbacks: list[Callback]
    target: TimeToTarget | None
    grads: GradientMonitor | None
    reporter: _Reporter | None = None

    @property
    def stopped(self) -> str | None:
        """The reason the driver stopped the trial (its report raised TrialStopped), or None."""
        return self.reporter.stopped if self.reporter is not None else None


def bookkeeping(store: Store | None, spec: StudySpec, row: Any, settings: dict[str, Any],
                monitor: str, ckpt_dir: Path,
                report: Callable[[int, dict[str, float]], None] | None = None) -> Bookkeeping:
    """Time to target, per-layer gradients (``layer_grads``), heartbeat (to ``store``, for the
    trial ``row.id``; none without a store: the driver beats for the trials it holds),
    ``last.pt`` in ``ckpt_dir`` and ``report``, in that order (after the settings' own
    callbacks; the list is the same with or without a store or a report)."""
    callbacks: list[Callback] = []
    target_cb = None
    if spec.target is not None:
        target_cb = TimeToTarget(spec.target.metric, spec.target.value)
        callbacks.append(target_cb)
    grads = None
    if settings["layer_grads"]:
        grads = GradientMonitor(vanishing=None, exploding=None, record=False)
        callbacks.append(grads)
    callbacks.append(_Heartbeat(store, getattr(row, "id", None)))
    callbacks.append(ModelCheckpoint(ckpt_dir, monitor=monitor, save_best=False))
    reporter = _Reporter(report)  # after the checkpoint: a report follows its epoch's save
    callbacks.append(reporter)
    return Bookkeeping(callbacks, target_cb, grads, reporter)


def trial_result(spec: StudySpec, settings: dict[str, Any], trainer: Any, history: Any,
                 split: Any, monitor: str, kept: Bookkeeping, warnings: list[str],
                 wall_time: float, env: dict[str, Any],
                 lr_find: dict[str, Any] | None = None) -> TrialResult:
    """What the store records of a trained trial: status, times, the final metrics (of the
    weights it ends with: :func:`final_metrics`), the best epochs, time to target, the curves,
    per-layer gradients, the learning-rate range test of ``lr = "find"``."""
    final = final_metrics(trainer, history, split, settings)
    best: dict[str, Any] = {}
    for key, key_mode in ((monitor, metric_mode(monitor)), ("val_loss", "min")):
        try:
            epoch, value = history.best(key, key_mode)
            best[key] = {"epoch": epoch, "value": value}
        except KeyError:
            pass
    target = None
    target_cb = kept.target
    if target_cb is not None:
        target = {"metric": spec.target.metric, "value": spec.target.value,  # type: ignore[union-attr]
                  "reached": target_cb.reached, "step": target_cb.step,
                  "seconds": target_cb.seconds, "epoch": target_cb.epoch}
    layer_grads = [{k: g[k] for k in ("epoch", "mean", "min", "max")}
                   for g in kept.grads.summary] if kept.grads is not None else []
    return TrialResult(
        status=history.status if history.status in FINISHED else "completed",
        wall_time=wall_time,
        train_time=sum(e.get("time", 0.0) for e in history.epochs), steps=history.n_steps,
        stop_step=history.stop_step, reason=history.reason, env=env,
        final=final, best=best, target=target, epochs=history.epochs,
        step_rows=history.steps, device=str(trainer.device), layer_grads=layer_grads,
        warnings=warnings, lr_find=lr_find)


def train_trial(spec: StudySpec, trial: Trial, ckpt_dir: Path, report: Report | None = None,
                *, data: StudyData | None = None, device: str = "cpu",
                on_warning: Callable[[str], None] | None = None,
                note: dict[str, Any] | None = None, model: torch.nn.Module | None = None,
                store: Store | None = None, trial_id: int | None = None) -> TrialResult:
    """Train one trial and return its result; write nothing but its checkpoint folder.

    ``ckpt_dir`` holds the trial's epoch checkpoint (``last.pt``): a run that finds a usable
    one there continues from it, exactly. The trial trains on its fold's split from its
    restart's seed; ``lr = "find"`` runs the range test first (its result in
    ``TrialResult.lr_find``). ``report(epoch, logs)`` is called after each epoch, once the
    checkpoint is written: :class:`~optimlab.train.callbacks.Pruned` from it ends the trial as
    ``pruned``, :class:`TrialStopped` ends it and is raised from here. Warnings (a checkpoint
    set aside) go to ``on_warning`` as they happen and into the result; ``note`` joins its
    environment record (why its seeds trained one at a time, say); ``model`` trains this
    module instead of the one the settings describe. ``store`` and ``trial_id``: a heartbeat
    every epoch (only where the trial trains next to its store: :func:`run_trial`).
    """
    started = time.perf_counter()
    data = data if data is not None else StudyData(spec.data)
    settings = trial_settings(trial.settings, model)
    seed = restart_seed(trial.seed, trial.restart or 0)
    split = data.split(trial.seed, trial.fold)
    task = split.train.task
    monitor = settings["monitor"] or monitor_for(spec, task)
    kept = bookkeeping(store, spec, _Id(trial_id), settings, monitor, ckpt_dir, report)
    found = None
    if settings["lr"] == "find":
        found = find_for_trial(lambda lr: build_trainer(spec, {**settings, "lr": lr}, seed,
                                                        split, [], device=device,
                                                        model=model),
                               split.train, settings, saved=ckpt_dir / "lr_find.json")
        settings = {**settings, "lr": found.lr}  # no suggestion: a ValueError saying why
    trainer = build_trainer(spec, settings, seed, split, kept.callbacks, device=device,
                            model=model)
    warnings: list[str] = []
    last = _usable_checkpoint(ckpt_dir / "last.pt", trainer, warnings)
    for text in warnings:
        if on_warning is not None:
            on_warning(f"{trial.label} ({trial_where(trial)}): {text}")
    with warnings_module.catch_warnings():  # the study's checks said it once, before training
        warnings_module.simplefilter("ignore", ScheduleEndsEarly)
        history = trainer.fit(split.train, split.val, epochs=settings["epochs"],
                              max_steps=settings["max_steps"],
                              batch_size=settings["batch_size"],
                              drop_last=settings["drop_last"], resume=last)
    if kept.stopped is not None:
        raise TrialStopped(kept.stopped)
    return trial_result(spec, settings, trainer, history, split, monitor, kept, warnings,
                        time.perf_counter() - started,
                        {**environment(trainer.device), **(note or {})},
                        lr_find=found.to_dict() if found is not None else None)


@dataclass(frozen=True)
class _Id:
    id: int | None


def record_trial(store: Store, row: TrialRow, result: TrialResult, ckpt_dir: Path) -> None:
    """Store a finished trial (one transaction), then remove its checkpoint folder: from then
    on the store holds its results. The driver's half of a trial."""
    store.finish(row.id, result)
    shutil.rmtree(ckpt_dir, ignore_errors=True)


def run_trial(store: Store, spec: StudySpec, row: TrialRow, ckpt_root: Path,
              data: StudyData | None = None, device: str = "cpu",
              on_warning: Callable[[str], None] | None = None,
              note: dict[str, Any] | None = None, *,
              report: Callable[[int, dict[str, float]], None] | None = None,
              model: torch.nn.Module | None = None) -> str:
    """Train one claimed trial in this process, telling the store every epoch that it is
    alive, and record it (one transaction); return its status (:func:`train_trial` +
    :func:`record_trial`).

    ``note`` joins its environment record (why its seeds trained one at a time, say).
    ``report(epoch, logs)``: called after every epoch; raising
    :class:`~optimlab.train.callbacks.Pruned` ends the trial as ``pruned``. ``model``: train
    this module instead of the one the settings describe."""
    ckpt_dir = ckpt_root / row.key
    result = train_trial(spec, Trial.from_row(row), ckpt_dir, report, data=data, device=device,
                         on_warning=on_warning, note=note, model=model, store=store,
                         trial_id=row.id)
    record_trial(store, row, result, ckpt_dir)
    return result.status


def final_metrics(trainer: Any, history: Any, split: Any,
                  settings: dict[str, Any]) -> dict[str, float]:
    """The metrics the trial is scored on: the last epoch's (early stopping: the restored
    epoch's); with SWA, EMA or a snapshot ensemble, validation and test are measured again on
    the averaged weights or the ensemble the trial ends with."""
    final = dict(history.epochs[-1]) if history.epochs else {}
    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    if stopper is not None and stopper.best_epoch is not None:  # the weights it restored
        final = dict(next(e for e in history.epochs if e["epoch"] == stopper.best_epoch))
    for key in ("epoch", "time"):  # the record's bookkeeping, not metrics
        final.pop(key, None)
    if history.status == "diverged":
        return final
    evaluate = trainer.evaluate
    snapshot = next((c for c in trainer.callbacks if isinstance(c, SnapshotEnsemble)), None)
    if snapshot is not None and snapshot.snapshots:
        evaluate = snapshot.evaluate
    if settings.get("swa") or settings.get("ema") or settings.get("snapshot"):
        final.update({f"val_{k}": v for k, v in evaluate(split.val).items()})
    if split.test is not None:
        final.update({f"test_{k}": v for k, v in evaluate(split.test).items()})
    return final
