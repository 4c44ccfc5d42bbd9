"""The Trainer: a compact, fast ``fit`` loop for any ``torch.nn.Module``.

One update of mini-batch gradient descent, as the notes write it — forward, cost, backward,
update — over batches sliced from tensors that already live on the device:

    for epoch:                      (a new seeded permutation of the rows each epoch)
        for (X{t}, Y{t}) in batches:
            J = loss(model(X{t}), Y{t}) [+ penalty]
            ∇J by backprop → [clip] → optimizer.step() with lr = schedule(step) · lr_factor

Everything random is seeded, inside a forked RNG, so one seed gives one history (bit for bit on
the CPU) and ``fit`` leaves the caller's random state as it found it. A NaN/Inf loss ends the run
as ``diverged`` (or skips the step, if asked) instead of raising.

(Over 500 lines on purpose: it is one class — set-up, the loop, its state dict, evaluation —
whose parts share the Trainer's fields, and a quarter of it is the documentation of its
arguments. What is not the Trainer lives beside it: what fit accepts in ``inputs``, the
callbacks, the metrics, the history.)
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler

from optimlab._checks import check_choice, check_number
from optimlab.data.batcher import Batcher, shard_bounds
from optimlab.data.dataset import Dataset
from optimlab.models.losses import check_targets, get_loss
from optimlab.models.penalties import l1_penalty, l2_penalty
from optimlab.models.spec import build_model
from optimlab.models.tasks import n_outputs, output_activation, task_defaults
from optimlab.optim import ChainOptimizer
from optimlab.optim import create as create_optimizer
from optimlab.schedules.base import ScheduleEndsEarly
from optimlab.train import distributed
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import read_checkpoint
from optimlab.train.callbacks.progress import ProgressBar
from optimlab.train.distributed import Distributed
from optimlab.train.history import History
from optimlab.train.inputs import Data, as_dataset
from optimlab.train.lr_find import DEFAULTS as LR_FIND
from optimlab.train.lr_find import LRFindResult, range_test
from optimlab.train.metrics import Metric, default_metrics, get_metric
from optimlab.train.metrics import compute as compute_metrics

LossFn = Callable[[Tensor, Tensor], Tensor]


class Trainer:
    """Train a model with any optimizer, schedule, metrics and callbacks.

    >>> from optimlab import Trainer, data
    >>> split = data.holdout(data.load("digits"))
    >>> trainer = Trainer("mlp", optimizer="adam", lr=1e-3, metrics=["accuracy"])
    >>> history = trainer.fit(split.train, split.val, epochs=20, batch_size=64)

    Parameters
    ----------
    model:
        A ``torch.nn.Module``, or a model spec (``"mlp"``, ``{"type": "mlp", "hidden": [128]}``)
        built for the data at the first ``fit``.
    loss:
        A loss name (``"ce"``, ``"bce"``, ``"mse"``, ``"huber:0.5"``, …) or a callable
        ``loss(outputs, targets)``; ``None`` takes the task's default (notes' table).
    optimizer:
        An optimizer name from ``optimlab.optim.available()`` (built with ``lr`` and
        ``optimizer_kwargs``), a function ``params -> torch.optim.Optimizer``, or an optimizer
        already built on the model's parameters.
    schedule:
        ``lr(t)`` — an optimlab schedule or any callable — evaluated at every update
        (``schedule_unit="step"``) or every epoch (``"epoch"``); or a
        ``torch.optim.lr_scheduler.LRScheduler`` stepped at that unit.
    clip_grad_norm, clip_grad_value:
        Gradient clipping before each update (``torch.nn.utils``).
    accumulate:
        Micro-batches per update: exact gradient accumulation. Each micro-batch loss is scaled
        by 1/k and its gradient summed into ``p.grad``, so clipping, callbacks and the recorded
        gradient norm see the mean gradient of the k micro-batches, and the optimizer steps
        once (weight decay and Adam's step count advance once). Micro-batches left over at the
        end of an epoch (fewer than k) are dropped.
    penalty:
        Coupled penalties added to the loss: ``{"l1": λ₁, "l2": λ₂}`` — λ₁·Σ|w| and the notes'
        λ₂/(2m)·Σ‖W‖² with m the batch size; biases and norm parameters excluded.
    precision:
        ``"fp32"``; ``"bf16"`` (autocast, CPU or CUDA) or ``"fp16"`` (CUDA, with a grad scaler).
    on_nonfinite:
        ``"stop"`` ends the run as diverged at the first NaN/Inf loss; ``"skip"`` skips that
        update and goes on (counted in ``history.skipped_steps``).
    progress:
        A rich progress bar (a :class:`ProgressBar` run after ``callbacks``); ``None`` shows it
        only when standard output is a terminal.
    strategy:
        ``"single"``: this process. ``"ddp"``: one of N processes launched by ``torchrun
        --nproc-per-node N`` (gloo on the CPU, NCCL on CUDA): each trains on its shard of every
        global batch of ``batch_size`` rows and DistributedDataParallel averages the gradients,
        so N processes follow one process's run (to float rounding); metrics are reduced across
        the ranks, only rank 0 runs the callbacks that write (checkpoints, loggers), and
        ``evaluate``/``predict`` are collective (call them on every rank). See
        :mod:`optimlab.train.distributed`.
    """

    def __init__(self, model: torch.nn.Module | str | dict[str, Any], *,
                 loss: str | LossFn | None = None, optimizer: Any = "adam",
                 lr: float | None = None, optimizer_kwargs: dict[str, Any] | None = None,
                 schedule: Any = None, schedule_unit: Literal["step", "epoch"] = "step",
                 metrics: Sequence[str | Metric] | None = None,
                 callbacks: Sequence[Callback] = (), device: str | torch.device = "cpu",
                 seed: int = 0, task: str | None = None, clip_grad_norm: float | None = None,
                 clip_grad_value: float | None = None, accumulate: int = 1,
                 penalty: dict[str, float] | None = None,
                 precision: Literal["fp32", "bf16", "fp16"] = "fp32",
                 on_nonfinite: Literal["stop", "skip"] = "stop", track_grad_norm: bool = True,
                 deterministic: bool = False, progress: bool | None = None,
                 strategy: Literal["single", "ddp"] = "single") -> None:
        check_choice("schedule_unit", schedule_unit, ("step", "epoch"))
        check_choice("precision", precision, ("fp32", "bf16", "fp16"))
        check_choice("on_nonfinite", on_nonfinite, ("stop", "skip"))
        check_choice("strategy", strategy, ("single", "ddp"))
        check_number("seed", seed, low=0, integer=True)
        check_number("accumulate", accumulate, low=1, integer=True)
        if lr is not None:
            check_number("lr", lr, low=0.0)
        for name, value in (("clip_grad_norm", clip_grad_norm),
                            ("clip_grad_value", clip_grad_value)):
            if value is not None:
                check_number(name, value, low=0.0, low_open=True)
        for key, value in (penalty or {}).items():
            check_choice("penalty", key, ("l1", "l2"))
            check_number(f"penalty.{key}", value, low=0.0)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ValueError(f"callbacks must be optimlab Callback objects; got {cb!r}")
        self.device = torch.device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision='fp16' needs a CUDA device (it uses a grad scaler); "
                             "use precision='bf16' on the CPU")
        self.model_spec = model
        self.model: torch.nn.Module | None = model if isinstance(model, torch.nn.Module) else None
        self.loss_spec, self.optimizer_spec = loss, optimizer
        self.lr, self.optimizer_kwargs = lr, dict(optimizer_kwargs or {})
        self.schedule, self.schedule_unit = schedule, schedule_unit
        self.metric_specs = list(metrics) if metrics is not None else None
        self.callbacks = list(callbacks)
        self.seed, self.task = seed, task
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.accumulate, self.penalty = accumulate, dict(penalty or {})
        self.precision, self.on_nonfinite = precision, on_nonfinite
        self.track_grad_norm, self.deterministic = track_grad_norm, deterministic
        self.progress = progress
        self.strategy = strategy
        self._dist: Distributed | None = None  # under DDP: this rank's place in the group
        self._ddp: torch.nn.Module | None = None  # the model in its DDP wrapper
        self.optimizer: torch.optim.Optimizer | None = None
        self.loss_fn: LossFn | None = None
        self.metrics: list[Metric] = []
        self.history: History | None = None
        self.state: State | None = None
        self._scaler: Any = None
        self._base_lrs: list[float] = []
        self._lr_factor_set: float | None = None  # factor last written with no schedule
        self._amp: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._rng_after_fit: dict[str, Any] | None = None  # None while fit runs

    # ------------------------------------------------------------------ setup
    def _setup(self, train: Dataset) -> None:
        """Build model, loss, metrics and optimizer for this data (once), checking they fit."""
        task = self.task or train.task
        if self.task is not None and self.task != train.task:
            raise ValueError(f"the Trainer was given task={self.task!r} but the training data "
                             f"is {train.task!r}")
        self.task = task
        if self.model is None:
            self.model = build_model(self.model_spec, tuple(train.X.shape[1:]),
                                     n_outputs(task, train.n_classes, tuple(train.y.shape)),
                                     task=task, seed=self.seed)
        self.model.to(self.device)
        if self.loss_fn is None:
            spec = self.loss_spec if self.loss_spec is not None else task_defaults(task)["loss"]
            self.loss_fn = get_loss(spec, task) if not callable(spec) else spec
        if not self.metrics:
            names = self.metric_specs if self.metric_specs is not None else default_metrics(task)
            self.metrics = [get_metric(m, task) for m in names]
            self.metrics = [m for m in self.metrics if m.scalar]
        if self.optimizer is None:
            self.optimizer = self._build_optimizer()
        if self.precision == "fp16" and self._scaler is None:
            self._scaler = torch.amp.GradScaler("cuda")

    def prepare(self, train: Data, val: Data | None = None) -> tuple[Dataset, Dataset | None]:
        """What ``fit`` does before training: build the model, loss, metrics and optimizer for
        this data (once) and check that the data fits them, with a clear error before any
        step. Returns the data as datasets. (``fit_together`` prepares each seed's Trainer so.)
        """
        train_ds = as_dataset(train, "train")
        val_ds = as_dataset(val, "val") if val is not None else None
        self._setup(train_ds)
        assert self.optimizer is not None
        self._check_fits(train_ds, "train")
        if val_ds is not None:
            self._check_fits(val_ds, "val")
        if len(self._base_lrs) != len(self.optimizer.param_groups):  # first fit: as configured
            self._base_lrs = [float(g.get("initial_lr", g["lr"]))
                              for g in self.optimizer.param_groups]
        return train_ds, val_ds

    @property
    def base_lrs(self) -> list[float]:
        """Each parameter group's learning rate before any schedule or factor (set by
        :meth:`prepare`; what ``State.base_lrs`` holds during a fit)."""
        return self._base_lrs

    def _build_optimizer(self) -> torch.optim.Optimizer:
        assert self.model is not None
        spec = self.optimizer_spec
        if isinstance(spec, torch.optim.Optimizer):
            return spec
        kwargs = dict(self.optimizer_kwargs)
        if self.lr is not None:
            kwargs["lr"] = self.lr
        if isinstance(spec, str):
            return create_optimizer(spec, self.model.parameters(), **kwargs)
        if callable(spec):
            return spec(self.model.parameters(), **kwargs)
        raise ValueError(f"optimizer={spec!r}: give a name from optimlab.optim.available(), a "
                         "function of the parameters, or a torch.optim.Optimizer")

    def _check_fits(self, data: Dataset, label: str) -> None:
        """Catch shape, label and loss mismatches before the first step, with a clear message."""
        assert self.model is not None and self.loss_fn is not None
        if data.task != self.task:
            raise ValueError(f"{label} data is {data.task!r} but training is {self.task!r}")
        if len(data) == 0:
            raise ValueError(f"{label} data is empty")
        probe = data.X[:2].to(self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(probe)
        except RuntimeError as err:
            expects = next((m.in_features for m in self.model.modules()
                            if isinstance(m, torch.nn.Linear)), None)
            hint = (f"the model's first Linear layer expects {expects} features"
                    if expects is not None else "the model rejects inputs of this shape")
            raise ValueError(f"{label} data has features of shape {tuple(data.X.shape[1:])} but "
                             f"{hint} ({err})") from None
        finally:
            self.model.train(was_training)
        if self.task == "multiclass" and data.n_classes is not None and out.shape[-1] != \
                data.n_classes:
            raise ValueError(f"the model gives {out.shape[-1]} outputs but the {label} data has "
                             f"{data.n_classes} classes; the output layer needs "
                             f"{data.n_classes} units")
        if isinstance(self.loss_fn, torch.nn.Module) or not hasattr(self.loss_fn, "name"):
            return
        check_targets(self.loss_fn.name, out, data.y[:2].to(self.device), task=self.task)

    # ------------------------------------------------------------------ fit
    def fit(self, train: Data, val: Data | None = None, *, epochs: int | None = None,
            max_steps: int | None = None, batch_size: int | None = 32, shuffle: bool = True,
            drop_last: bool = False,
            resume: str | os.PathLike[str] | dict[str, Any] | None = None) -> History:
        """Train; return the :class:`History`. Give ``epochs``, ``max_steps`` or both.

        ``batch_size=None`` is batch gradient descent (one update per epoch), ``1`` stochastic,
        ``n`` mini-batch. ``resume`` is a checkpoint file written by ``ModelCheckpoint`` (or a
        :meth:`state_dict`): the run continues exactly where that one stopped (model,
        optimizer, schedule position, RNG states, epoch, history, callback state).
        """
        check_length(epochs, max_steps)
        if self.strategy == "ddp" and self._dist is None:
            self._dist = distributed.setup(self.device)
            self.device = self._dist.device
        train_ds, val_ds = self.prepare(train, val)
        assert self.model is not None and self.optimizer is not None
        dist = self._dist
        if dist is not None and (self._ddp is None or self._ddp.module is not self.model):
            self._ddp = dist.wrap(self.model)
        batcher = Batcher(train_ds.X, train_ds.y, batch_size, shuffle=shuffle,
                          drop_last=drop_last, seed=self.seed, device=self.device,
                          rank=dist.rank if dist else 0,
                          world_size=dist.world_size if dist else 1)
        self.history = History()
        updates_per_epoch = max(1, len(batcher) // self.accumulate)
        if epochs is None:
            epochs = math.ceil(max_steps / updates_per_epoch)  # type: ignore[operator]
        _check_schedule_covers(self.schedule, self.schedule_unit, epochs, updates_per_epoch,
                               max_steps)
        scheduler = self.schedule if isinstance(self.schedule, LRScheduler) else None
        self.state = state = State(
            model=self.model, optimizer=self.optimizer, history=self.history, max_epochs=epochs,
            max_steps=max_steps, steps_per_epoch=updates_per_epoch, train_data=train_ds,
            val_data=val_ds, scheduler=scheduler, task=self.task, device=self.device,
            evaluate=self.evaluate, score=self.score, trainer_state_dict=self.state_dict,
            is_main=dist is None or dist.is_main, world_size=dist.world_size if dist else 1)
        state.base_lrs = self._base_lrs
        self._lr_factor_set = None
        self._amp = _autocast(self.device, self.precision)
        show = sys.stdout.isatty() if self.progress is None else self.progress
        bar = ProgressBar() if show else None
        callbacks = [*self.callbacks, bar] if bar is not None else list(self.callbacks)
        if not state.is_main:  # writers run on rank 0 only
            callbacks = [cb for cb in callbacks if not cb.main_only]
        self._rng_after_fit = None
        with _forked_rng(self.device), _deterministic(self.deterministic):
            torch.manual_seed(self.seed)
            start_epoch = 0
            if resume is not None:
                self.load_state_dict(resume if isinstance(resume, dict)
                                     else read_checkpoint(resume, self.device))
                start_epoch = state.epoch + 1
                state.resumed = True
                if state.history.status == "completed":  # a finished fit (a state_dict taken
                    state.history.status, state.history.reason = "running", ""  # after it) goes on
                elif state.history.status != "running":  # it had ended (early stop): stay ended
                    state.stop = True
            try:
                for cb in callbacks:
                    cb.on_fit_start(state)
                for epoch in range(start_epoch, epochs):
                    if state.stop:
                        break
                    self._run_epoch(epoch, batcher, val_ds, callbacks)
                if state.history.status == "running":
                    state.history.status = "completed"
                for cb in callbacks:
                    cb.on_fit_end(state)
            finally:
                self._rng_after_fit = _rng_state()  # state_dict() after fit: the fit's RNG
                if bar is not None:
                    bar.close()
        return state.history

    # ------------------------------------------------------------------ lr range test
    def lr_find(self, train: Data, *, start: float = LR_FIND["start"],
                end: float = LR_FIND["end"], num_steps: int = LR_FIND["num_steps"],
                batch_size: int | None = 32, beta: float = LR_FIND["beta"],
                diverge: float = LR_FIND["diverge"], rule: str = LR_FIND["rule"],
                shuffle: bool = True, drop_last: bool = False) -> LRFindResult:
        """The learning-rate range test (:mod:`optimlab.train.lr_find`): at most ``num_steps``
        updates of this Trainer's model and optimizer at batch size ``batch_size``, the lr
        growing exponentially from ``start`` to ``end``, stopped when the smoothed loss passes
        ``diverge`` × its minimum. Returns the curve and the suggestions (``result.lr`` is the
        one of ``rule``: "valley", "steepest" or "minimum").

        Nothing stays changed: the weights (and buffers), the optimizer's state and learning
        rates, and the grad scaler are restored bit for bit afterwards, and the random state
        is the caller's (the test runs in a forked RNG seeded with ``seed``), so a ``fit``
        after ``lr_find`` is the ``fit`` it would have been. Schedules, callbacks and metrics
        take no part; clipping, penalties, ``accumulate`` and the precision do.
        """
        train_ds = as_dataset(train, "train")
        self._setup(train_ds)
        assert self.model is not None and self.optimizer is not None
        self._check_fits(train_ds, "train")
        model, opt, scaler = self.model, self.optimizer, self._scaler
        saved_model = copy.deepcopy(model.state_dict())
        saved_opt = copy.deepcopy(opt.state_dict())
        saved_scaler = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
        was_training = model.training
        batcher = Batcher(train_ds.X, train_ds.y, batch_size, shuffle=shuffle,
                          drop_last=drop_last, seed=self.seed, device=self.device)
        groups = opt.param_groups
        shares = [g["lr"] / groups[0]["lr"] if groups[0]["lr"] else 1.0 for g in groups]
        params = [p for g in groups for p in g["params"]]
        update = opt.step_function() if isinstance(opt, ChainOptimizer) else opt.step

        def batches() -> Iterator[tuple[Tensor, Tensor]]:
            epoch = 0
            while True:
                yield from batcher.epoch(epoch)
                epoch += 1

        stream = batches()

        def step(lr: float) -> float:
            for g, share in zip(groups, shares, strict=True):
                g["lr"] = lr * share
            total = 0.0
            for _ in range(self.accumulate):
                xb, yb = next(stream)
                value, _ = self._train_step(xb, yb)
                if not math.isfinite(value):
                    _zero_grad(params)
                    return value
                total += value
            if scaler is not None:
                scaler.unscale_(opt)
            if self.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
            if self.clip_grad_value is not None:
                torch.nn.utils.clip_grad_value_(params, self.clip_grad_value)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                update()
            _zero_grad(params)
            return total / self.accumulate

        self._amp = _autocast(self.device, self.precision)
        model.train()
        try:
            with _forked_rng(self.device), _deterministic(self.deterministic):
                torch.manual_seed(self.seed)
                return range_test(step, start=start, end=end, num_steps=num_steps, beta=beta,
                                  diverge=diverge, rule=rule,
                                  batch_size=batcher.effective_batch_size)
        finally:
            _zero_grad(params)
            model.load_state_dict(saved_model)
            opt.load_state_dict(saved_opt)
            if scaler is not None and saved_scaler is not None:
                scaler.load_state_dict(saved_scaler)
            model.train(was_training)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume after the epoch just finished: model and optimizer state
        dicts, step, epoch, learning-rate factor, seconds so far, base learning rates, a torch
        LR scheduler's and grad scaler's state, the history, the RNG states and each callback's
        state — tensors, numbers, strings, lists and dicts only (``torch.load(weights_only=
        True)`` reads it back). ``ModelCheckpoint`` writes it to disk."""
        state = self.state
        if state is None or self.model is None or self.optimizer is None:
            raise ValueError("the Trainer has no state yet: call fit() first")
        return {
            "epoch": state.epoch, "step": state.step, "lr_factor": state.lr_factor,
            "elapsed": state.elapsed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "base_lrs": list(self._base_lrs),
            "torch_scheduler": state.scheduler.state_dict() if state.scheduler is not None
            else None,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
            "history": state.history.to_dict(),
            "rng": self._rng_after_fit or _rng_state(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "callback_types": self.callback_types(),
        }

    def callback_types(self) -> list[str]:
        """The class name of each callback, in order: a checkpoint keeps them, and resuming
        needs the same ones in the same order (each callback's state goes back to its own)."""
        return [type(cb).__name__ for cb in self.callbacks]

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (or a checkpoint read by
        ``read_checkpoint``). ``fit(resume=…)`` calls it and goes on from the next epoch; called
        between fits it needs the model and optimizer of an earlier fit, and the next ``fit``
        starts again from epoch 0 with the restored weights and optimizer state."""
        state = self.state
        if state is None or self.model is None or self.optimizer is None:
            raise ValueError("the Trainer builds its model and optimizer at the first fit: "
                             "resume with fit(..., resume=…)")
        if len(data["callbacks"]) != len(self.callbacks):
            raise ValueError(f"the checkpoint was written with {len(data['callbacks'])} "
                             f"callbacks but this Trainer has {len(self.callbacks)}; resume with "
                             "the same callbacks")
        written = data.get("callback_types")  # absent from checkpoints of older versions
        if written is not None and list(written) != self.callback_types():
            raise ValueError(f"the checkpoint was written with the callbacks {list(written)} but "
                             f"this Trainer has {self.callback_types()}; resume with the same "
                             "callbacks in the same order")
        if data["torch_scheduler"] is not None and state.scheduler is None:
            raise ValueError("the checkpoint holds a torch LR scheduler's state but this Trainer "
                             "has no torch scheduler; resume with the same schedule")
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if data["torch_scheduler"] is not None and state.scheduler is not None:
            state.scheduler.load_state_dict(data["torch_scheduler"])
        if data["scaler"] is not None and self._scaler is not None:
            self._scaler.load_state_dict(data["scaler"])
        self.history = state.history = History.from_dict(data["history"])
        state.step, state.epoch = int(data["step"]), int(data["epoch"])
        state.lr_factor, state.elapsed = float(data["lr_factor"]), float(data["elapsed"])
        torch.set_rng_state(data["rng"]["torch"].cpu())
        if data["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in data["rng"]["cuda"]])
        for cb, cb_state in zip(self.callbacks, data["callbacks"], strict=True):
            cb.load_state_dict(cb_state)
        self._base_lrs = [float(v) for v in data["base_lrs"]]
        state.base_lrs = self._base_lrs

    # ------------------------------------------------------------------ one epoch
    def _set_lr(self, t: int) -> None:
        """lr of each group = schedule(t) (scaled by the group's share of the first group's
        base lr) × the callbacks' factor; without a schedule, base lr × factor."""
        assert self.optimizer is not None and self.state is not None
        if self.state.scheduler is not None:
            return  # the torch scheduler owns the learning rate
        if self.schedule is None and self.state.lr_override is None and \
                self._lr_factor_set == self.state.lr_factor:
            return  # constant and already written
        self._lr_factor_set = self.state.lr_factor if self.schedule is None and \
            self.state.lr_override is None else None
        base = self._base_lrs
        if self.state.lr_override is not None:
            first = self.state.lr_override
            values = [first * b / base[0] if base[0] else first for b in base]
        elif self.schedule is None:
            values = base
        else:
            first = float(self.schedule(t))
            values = [first * b / base[0] if base[0] else first for b in base]
        for g, v in zip(self.optimizer.param_groups, values, strict=True):
            g["lr"] = v * self.state.lr_factor

    def _run_epoch(self, epoch: int, batcher: Batcher, val: Dataset | None,
                   callbacks: list[Callback]) -> None:
        """The epoch's updates (k = ``accumulate`` micro-batches each), then its record."""
        assert self.model is not None and self.optimizer is not None
        assert self.state is not None and self.history is not None
        state, history, model, opt = self.state, self.history, self.model, self.optimizer
        state.epoch = epoch
        started = time.perf_counter()
        dist = self._dist
        if dist is not None:  # random layers draw per rank, resumably
            torch.manual_seed(distributed.rank_seed(self.seed, epoch, dist.rank))
        for cb in callbacks:
            cb.on_epoch_start(state)
        model.train()
        if self.schedule_unit == "epoch":
            self._set_lr(epoch)
        losses: list[float] = []
        norms: list[Tensor] = []
        lrs: list[float] = []
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        params = [p for g in opt.param_groups for p in g["params"]]
        step = opt.step_function() if isinstance(opt, ChainOptimizer) else opt.step
        keep_outputs, k = bool(self.metrics), self.accumulate
        set_lr_each_step = self.schedule_unit == "step"
        scheduler, first_group = state.scheduler, opt.param_groups[0]
        micro, micro_loss = 0, 0.0  # micro-batches summed into p.grad since the last update
        for xb, yb in batcher.epoch(epoch):
            if micro == 0:
                for cb in callbacks:
                    cb.on_step_start(state)
                if set_lr_each_step or state.lr_override is not None:
                    self._set_lr(state.step)
            loss_value, out = self._train_step(xb, yb) if dist is None else \
                self._train_step_ddp(xb, yb, sync=micro + 1 >= k)
            if not math.isfinite(loss_value):
                _zero_grad(params)  # also drops a partial accumulation
                micro, micro_loss = 0, 0.0
                if self.on_nonfinite == "stop":
                    state.request_stop(f"the loss became {loss_value} at step {state.step + 1}",
                                       status="diverged")
                    history.stop_step = state.step + 1
                    break
                history.skipped_steps += 1
                continue
            micro, micro_loss = micro + 1, micro_loss + loss_value
            if keep_outputs:
                outputs.append(out.detach())
                targets.append(yb)
            if micro < k:
                continue
            update_loss = micro_loss / k
            micro, micro_loss = 0, 0.0
            norm = self._update(params, step, callbacks)
            if norm is not None:
                norms.append(norm)
            state.step += 1
            losses.append(update_loss)
            lrs.append(float(first_group["lr"]))
            if callbacks:
                state.logs = {"loss": update_loss, "lr": lrs[-1],
                              "grad_norm": float(norm) if norm is not None else math.nan}
                for cb in callbacks:
                    cb.on_step_end(state)
            if scheduler is not None and set_lr_each_step:
                scheduler.step()
            if (state.max_steps is not None and state.step >= state.max_steps) or state.stop:
                if not state.stop:
                    state.stop = True
                    history.reason = f"reached max_steps={state.max_steps}"
                break
        if micro:
            _zero_grad(params)  # fewer than k micro-batches left: dropped, not applied at a
            #                     wrong scale
        self._record_steps(epoch, losses, norms, lrs)
        if scheduler is not None and not set_lr_each_step:
            scheduler.step()
        record: dict[str, float] = {"epoch": float(epoch)}
        if losses:
            record["train_loss"] = math.fsum(losses) / len(losses)
        if outputs and history.status != "diverged":
            every_out, every_y = torch.cat(outputs), torch.cat(targets)
            if dist is not None:  # the metrics of the global batches: all ranks' rows
                every_out, every_y = dist.gather_rows(every_out), dist.gather_rows(every_y)
            record.update({f"train_{k}": v for k, v in compute_metrics(
                self.metrics, every_out, every_y, self.task).items()})
        if val is not None and history.status != "diverged":
            record.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            model.train()
        record["lr"] = float(opt.param_groups[0]["lr"])
        elapsed = time.perf_counter() - started
        record["time"] = elapsed
        state.elapsed += elapsed
        history.epochs.append(record)
        state.logs = dict(record)
        if history.status != "diverged":
            for cb in callbacks:
                cb.on_epoch_end(state)
            for cb in callbacks:
                cb.on_epoch_close(state)

    def _train_step(self, xb: Tensor, yb: Tensor) -> tuple[float, Tensor]:
        """One micro-batch: J = loss(model(X), Y) [+ penalty], in the precision of this fit;
        when J is finite, ∇(J/k) is added into ``p.grad`` (k = ``accumulate``; through the grad
        scaler with fp16). Returns (J, the model's outputs)."""
        assert self.model is not None and self.loss_fn is not None
        with self._amp:
            out = self.model(xb)
            loss = self.loss_fn(out, yb)
            if self.penalty:
                loss = loss + self._penalty(len(xb))
        value = loss.item()
        if math.isfinite(value):
            if self.accumulate > 1:
                loss = loss / self.accumulate
            if self._scaler is not None:
                loss = self._scaler.scale(loss)
            loss.backward()
        return value, out

    def _train_step_ddp(self, xb: Tensor, yb: Tensor, sync: bool) -> tuple[float, Tensor]:
        """One micro-batch under DDP: this rank's n_r rows of a global batch of B. J is the
        global batch's loss Σ_r ℓ̄_r·n_r / B [+ penalty with m = B], the same on every rank;
        when finite, backward runs on ℓ̄_r·n_r·N/B [+ penalty] (/k), which DDP's average over
        the N ranks turns into ∇J (/k). Gradients are synchronized on the last micro-batch of
        an update only (``sync``)."""
        assert self._ddp is not None and self._dist is not None and self.loss_fn is not None
        dist = self._dist
        with self._amp:
            out = self._ddp(xb)
            mean = self.loss_fn(out, yb)
        n = len(xb)
        total, rows = dist.all_sum([float(mean.detach()) * n, float(n)]).tolist()
        penalty = self._penalty(int(rows)) if self.penalty else None
        value = total / rows + (float(penalty.detach()) if penalty is not None else 0.0)
        if math.isfinite(value):
            loss = mean * (n * dist.world_size / rows)
            if penalty is not None:
                loss = loss + penalty
            if self.accumulate > 1:
                loss = loss / self.accumulate
            if self._scaler is not None:
                loss = self._scaler.scale(loss)
            with contextlib.nullcontext() if sync else self._ddp.no_sync():  # type: ignore[operator]
                loss.backward()
        return value, out

    def _update(self, params: list[Tensor], step: Callable[[], Any],
                callbacks: list[Callback]) -> Tensor | None:
        """One update from the gradients in ``p.grad``: unscale (fp16), measure the global
        gradient norm ‖g‖₂ (returned, before clipping; None when not tracked), let callbacks see
        the gradients, clip, step, and clear the gradients."""
        assert self.optimizer is not None and self.state is not None
        scaler = self._scaler
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        norm = None
        if self.track_grad_norm:
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        for cb in callbacks:
            cb.on_before_update(self.state)
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
        if self.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_grad_value)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            step()
        _zero_grad(params)
        return norm

    def _record_steps(self, epoch: int, losses: list[float], norms: list[Tensor],
                      lrs: list[float]) -> None:
        assert self.history is not None and self.state is not None
        n = len(losses)
        if not n:
            return
        steps = self.history.steps
        first = self.state.step - n + 1
        steps["step"].extend(range(first, first + n))
        steps["epoch"].extend([epoch] * n)
        steps["loss"].extend(losses)
        steps["lr"].extend(lrs)
        steps["grad_norm"].extend(torch.stack(norms).float().tolist() if norms
                                  else [math.nan] * n)

    def _penalty(self, batch: int) -> Tensor:
        assert self.model is not None
        total = torch.zeros((), device=self.device)
        if self.penalty.get("l1"):
            total = total + l1_penalty(self.model, self.penalty["l1"])
        if self.penalty.get("l2"):
            total = total + l2_penalty(self.model, self.penalty["l2"], batch)
        return total

    # ------------------------------------------------------------------ evaluate / predict
    @torch.no_grad()
    def predict(self, X: Tensor | Dataset, *, batch_size: int = 4096,
                proba: bool = False) -> Tensor:
        """Model outputs for ``X`` in eval mode (logits; probabilities with ``proba=True``)."""
        if self.model is None:
            raise ValueError("the model is not built yet: call fit() first")
        check_number("batch_size", batch_size, low=1, integer=True)
        X = X.X if isinstance(X, Dataset) else torch.as_tensor(X)
        dist = self._dist
        if dist is not None:  # each rank predicts its share of the rows; all get them all
            first, last = shard_bounds(len(X), dist.rank, dist.world_size)
            X = X[first:last]
        self.model.eval()
        chunks = []
        for start in range(0, len(X), batch_size):
            with _autocast(self.device, self.precision):
                chunks.append(self.model(X[start:start + batch_size].to(self.device)).float())
        out = torch.cat(chunks) if chunks else torch.empty(0)
        if dist is not None:
            out = dist.gather_rows(out if chunks else self._empty_outputs())
        if proba:
            out = output_activation(self.task or "regression")(out)
        return out

    def _empty_outputs(self) -> Tensor:
        """No rows of outputs, shaped like the model's (a rank with no rows to predict)."""
        assert self.model is not None and self.state is not None
        probe = self.state.train_data.X[:1].to(self.device)
        return self.model(probe).float()[:0]

    def evaluate(self, data: Data, *, batch_size: int = 4096) -> dict[str, float]:
        """Loss and metrics on ``data`` in eval mode: ``{"loss": …, "accuracy": …}``."""
        ds = as_dataset(data, "evaluate")
        if self.model is None or self.loss_fn is None:
            raise ValueError("the model is not built yet: call fit() first")
        out = self.predict(ds, batch_size=batch_size)
        return self.score(out, ds.y)

    def score(self, outputs: Tensor, targets: Tensor,
              metrics: Sequence[str | Metric] | None = None) -> dict[str, float]:
        """The loss and metrics (this Trainer's, or ``metrics``) of ``outputs`` against
        ``targets``: ``{"loss": …, "accuracy": …}``; no metrics when the loss is not finite."""
        if self.loss_fn is None:
            raise ValueError("the loss is not set up yet: call fit() first")
        y = targets.to(outputs.device)
        with torch.no_grad():
            loss = float(self.loss_fn(outputs, y))
        result = {"loss": loss}
        chosen = self.metrics if metrics is None else list(metrics)
        if chosen and math.isfinite(loss):
            result.update(compute_metrics(chosen, outputs, y, self.task))
        return result


def check_length(epochs: int | None, max_steps: int | None) -> None:
    """ValueError unless how long to train is said: ``epochs`` or ``max_steps`` (or both),
    each a whole number ≥ 1 (``fit`` and ``fit_together``)."""
    if epochs is None and max_steps is None:
        raise ValueError("give epochs=… or max_steps=… (or both) to say how long to train")
    if epochs is not None:
        check_number("epochs", epochs, low=1, integer=True)
    if max_steps is not None:
        check_number("max_steps", max_steps, low=1, integer=True)


def _check_schedule_covers(schedule: Any, unit: str, epochs: int, per_epoch: int,
                           max_steps: int | None) -> None:
    """Warn (:class:`~optimlab.schedules.base.ScheduleEndsEarly`) when a schedule that runs to a
    close reaches its end before training does: the rest would train at its final rate (for a
    cosine, lr = min_lr, often 0)."""
    end = getattr(schedule, "end", None)
    if end is None:
        return
    total = epochs if unit == "epoch" else epochs * per_epoch
    if unit == "step" and max_steps is not None:
        total = min(total, max_steps)
    if end >= total:
        return
    warnings.warn(f"the schedule {schedule!r} reaches its end at {unit} {end} but training runs "
                  f"{total} {unit}s, so the last {total - end} train at lr = {schedule(end):.3g};"
                  f" lengthen the schedule (e.g. total={total}) or train less",
                  ScheduleEndsEarly, stacklevel=3)


def _zero_grad(params: list[Tensor]) -> None:
    """What ``zero_grad(set_to_none=True)`` does, without its profiler range."""
    for p in params:
        p.grad = None


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


@contextlib.contextmanager
def _forked_rng(device: torch.device) -> Iterator[None]:
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        yield


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast to bf16/fp16 on ``device``; in fp32 a context that does nothing."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


__all__ = ["Data", "Trainer", "as_dataset"]
