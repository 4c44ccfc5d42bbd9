"""One trial: its identity, its trainer, and training it into a result that others record.

A :class:`Trial` is (configuration, seed) under a stable key. :func:`build_trainer` turns a
configuration's settings into a :class:`~optimlab.train.Trainer`: the model for the data, the
optimizer, the schedule (relative to ``lr``, scaled by the linear scaling rule) and the callbacks
the settings ask for (early stopping, reduce-on-plateau, SWA, EMA, snapshot ensembles).

:func:`train_trial` is the compute side of the lab — a plain function of (spec, trial,
checkpoint folder, per-epoch report) that never touches the store: it adds the bookkeeping (time
to target, per-layer gradients, an epoch checkpoint), resumes from the trial's checkpoint when it
is usable — an unreadable or foreign one is set aside with a warning — trains, and returns a
:class:`~optimlab.lab.store.TrialResult` with the metrics of the weights the trial ends with (the
restored best epoch, the SWA or EMA average, the snapshot ensemble). It runs wherever an executor
puts it (this process, a worker process, a Ray task); the driver records the result
(:func:`record_trial`, one transaction) and is the store's only writer.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.lab.spec import StudySpec, TrainSpec
from optimlab.lab.spec_schedule import resolve_schedule
from optimlab.lab.store import FINISHED, Store, TrialResult, TrialRow
from optimlab.lab.studydata import StudyData
from optimlab.train.callbacks import (
    EMA,
    SWA,
    Callback,
    EarlyStopping,
    GradientMonitor,
    ModelCheckpoint,
    ReduceLROnPlateau,
    SnapshotEnsemble,
    TimeToTarget,
    read_checkpoint,
)
from optimlab.train.callbacks.monitoring import metric_mode

__all__ = ["Report", "Trial", "TrialStopped", "build_trainer", "effect_callbacks", "environment",
           "monitor_for", "record_trial", "run_trial", "train_trial"]

#: what a running trial calls after each epoch (once its checkpoint is written):
#: ``report(epoch, logs)`` with the epoch's record; raising stops the trial (pruning)
Report = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Trial:
    """One unit of a study: a configuration's settings and a seed, under a stable key."""

    key: str
    label: str
    settings: dict[str, Any]
    seed: int

    @classmethod
    def from_row(cls, row: TrialRow) -> Trial:
        return cls(row.key, row.label, row.config, row.seed)


class TrialStopped(Exception):
    """Raised inside a trial whose report was answered "stop" by the driver."""


def monitor_for(spec: StudySpec, task: str) -> str:
    """The metric the study ranks by: ``train.monitor``, else val accuracy or val loss."""
    if spec.train.monitor:
        return spec.train.monitor
    return "val_accuracy" if task in ("binary", "multiclass") else "val_loss"


class _Reporter(Callback):
    """Calls ``report(epoch, logs)`` once each epoch is closed (tells the driver this trial is
    alive, shows progress, and lets it stop the trial)."""

    def __init__(self, report: Report | None) -> None:
        self.report = report

    def on_epoch_close(self, state: Any) -> None:
        if self.report is not None:
            self.report(state.epoch, dict(state.logs))


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


def build_trainer(spec: StudySpec, settings: dict[str, Any], seed: int, split: Any,
                  callbacks: list[Callback], device: str = "cpu") -> Any:
    """A Trainer for one trial's settings: the model, optimizer, schedule (relative to lr,
    scaled by the linear scaling rule) and the callbacks the settings ask for, then
    ``callbacks`` (bookkeeping: they see the others' results)."""
    from optimlab.models import build_model, n_outputs
    from optimlab.schedules import create as create_schedule
    from optimlab.schedules import linear_scaling
    from optimlab.train import Trainer

    settings = TrainSpec.model_validate(settings).model_dump()  # settings stored before new
    train = split.train                                          # fields get their defaults
    task = train.task
    shape = tuple(train.X.shape[1:])
    model = build_model(settings["model"], shape if len(shape) > 1 else shape[0],
                        n_outputs(task, train.n_classes, tuple(train.y.shape)),
                        task=task, seed=seed)
    lr = settings["lr"]
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


def train_trial(spec: StudySpec, trial: Trial, ckpt_dir: Path, report: Report | None = None,
                *, data: StudyData | None = None, device: str = "cpu",
                on_warning: Callable[[str], None] | None = None) -> TrialResult:
    """Train one trial and return its result; write nothing but its checkpoint folder.

    ``ckpt_dir`` holds the trial's epoch checkpoint (``last.pt``): a run that finds a usable
    one there continues from it, exactly. ``report(epoch, logs)`` is called after each epoch,
    once the checkpoint is written; an exception it raises ends the trial and propagates.
    Warnings (a checkpoint set aside) go to ``on_warning`` as they happen and into the result.
    """
    started = time.perf_counter()
    data = data if data is not None else StudyData(spec.data)
    settings = TrainSpec.model_validate(trial.settings).model_dump()
    seed = trial.seed
    split = data.split(seed)
    task = split.train.task
    monitor = settings["monitor"] or monitor_for(spec, task)
    callbacks: list[Callback] = []
    target_cb = None
    if spec.target is not None:
        target_cb = TimeToTarget(spec.target.metric, spec.target.value)
        callbacks.append(target_cb)
    grads = None
    if settings["layer_grads"]:
        grads = GradientMonitor(vanishing=None, exploding=None, record=False)
        callbacks.append(grads)
    callbacks.append(ModelCheckpoint(ckpt_dir, monitor=monitor, save_best=False))
    callbacks.append(_Reporter(report))  # after the checkpoint: a report follows its epoch's save
    trainer = build_trainer(spec, settings, seed, split, callbacks, device=device)
    warnings: list[str] = []
    last = _usable_checkpoint(ckpt_dir / "last.pt", trainer, warnings)
    for text in warnings:
        if on_warning is not None:
            on_warning(f"{trial.label} (seed {seed}): {text}")
    history = trainer.fit(split.train, split.val, epochs=settings["epochs"],
                          max_steps=settings["max_steps"], batch_size=settings["batch_size"],
                          drop_last=settings["drop_last"], resume=last)
    final = _final(trainer, history, split, settings)
    best: dict[str, Any] = {}
    for key, key_mode in ((monitor, metric_mode(monitor)), ("val_loss", "min")):
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
    layer_grads = [{k: g[k] for k in ("epoch", "mean", "min", "max")}
                   for g in grads.summary] if grads is not None else []
    return TrialResult(
        status=history.status if history.status in FINISHED else "completed",
        wall_time=time.perf_counter() - started,
        train_time=sum(e.get("time", 0.0) for e in history.epochs), steps=history.n_steps,
        stop_step=history.stop_step, reason=history.reason, env=environment(trainer.device),
        final=final, best=best, target=target, epochs=history.epochs,
        step_rows=history.steps, device=str(trainer.device), layer_grads=layer_grads,
        warnings=warnings)


def record_trial(store: Store, row: TrialRow, result: TrialResult, ckpt_dir: Path) -> None:
    """Store a finished trial (one transaction), then remove its checkpoint folder: from then
    on the store holds its results. The driver's half of a trial."""
    store.finish(row.id, result)
    shutil.rmtree(ckpt_dir, ignore_errors=True)


def run_trial(store: Store, spec: StudySpec, row: TrialRow, ckpt_root: Path,
              data: StudyData | None = None, device: str = "cpu",
              on_warning: Callable[[str], None] | None = None) -> str:
    """Train one claimed trial in this process, telling the store every epoch that it is
    alive, and record it; return its status (:func:`train_trial` + :func:`record_trial`)."""
    ckpt_dir = ckpt_root / row.key
    result = train_trial(spec, Trial.from_row(row), ckpt_dir,
                         lambda epoch, logs: store.heartbeat(row.id), data=data, device=device,
                         on_warning=on_warning)
    record_trial(store, row, result, ckpt_dir)
    return result.status


def _final(trainer: Any, history: Any, split: Any, settings: dict[str, Any]) -> dict[str, float]:
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
