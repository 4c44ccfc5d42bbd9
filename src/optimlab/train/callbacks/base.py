"""Callbacks: small objects that react to training events.

The Trainer owns the loop and calls each callback's hooks in order with one :class:`State`:

    on_fit_start
      → (on_epoch_start
           → (on_step_start → forward, backward → on_before_update → step → on_step_end) × steps
         → on_epoch_end → on_epoch_close) × epochs
    → on_fit_end

``on_epoch_close`` runs after every callback's ``on_epoch_end``: writers that must capture the
epoch's final state (ModelCheckpoint) save there, whatever their place in the list.

Callbacks run in list order, so one that adds values to the epoch logs (EMA's ``ema_val_*``)
goes before those that read them (EarlyStopping, ModelCheckpoint).

``on_before_update`` runs once per update with the gradients in place (after gradient
accumulation and AMP unscaling, before clipping and ``optimizer.step()``).

A callback reads the state (model, optimizer, step, epoch, ``logs``, the data, and the
Trainer's ``evaluate``, ``score`` and ``trainer_state_dict``) and may ask the loop to stop
(:meth:`State.request_stop`), scale the learning rate (``State.lr_factor``) or replace it
(``State.lr_override``, read after ``on_step_start``; a torch ``LRScheduler`` given to the
Trainer — ``State.scheduler`` — owns the learning rate, and then neither applies). The State
is all a callback sees of the Trainer; callbacks never reach into each other. A callback with
state that must survive a resume implements ``state_dict``/``load_state_dict`` (plain numbers,
strings, lists, dicts and tensors only). An epoch's record in ``history.epochs`` is final once
the epoch closes: callbacks add to the current record in ``on_epoch_end``, never to older ones
(checkpoints write each record once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.train.history import History, Status

#: loss and metrics: ``{"loss": …, "accuracy": …}``
Scores = dict[str, float]


@dataclass
class State:
    """What callbacks see. ``logs`` holds the latest values: after a step ``loss``, ``lr`` and
    ``grad_norm``; after an epoch the epoch's record (``val_loss``, ``train_accuracy``, …)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    max_epochs: int | None = None
    max_steps: int | None = None
    steps_per_epoch: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    #: multiplies the learning rate the schedule gives (ReduceLROnPlateau lowers it)
    lr_factor: float = 1.0
    #: when set, every group's lr is this value (× the group's share), schedule or not (SWA)
    lr_override: float | None = None
    #: each group's learning rate before any schedule or factor (from the optimizer's config)
    base_lrs: list[float] = field(default_factory=list)
    #: the data of this fit, for callbacks that evaluate or refresh statistics
    train_data: Any = None
    val_data: Any = None
    #: seconds spent in fit so far (training and evaluation), resumed runs included
    elapsed: float = 0.0
    stop: bool = False
    #: True when this fit continues from a checkpoint (callbacks restore rather than reset)
    resumed: bool = False
    #: the torch ``LRScheduler`` given to the Trainer, which then owns the learning rate
    #: (``lr_factor`` and ``lr_override`` do not apply); None with an optimlab schedule or none
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    #: the task of this fit ("binary", "multiclass", "regression", …) and the device it runs on
    task: str | None = None
    device: torch.device | None = None
    #: loss and metrics of the model on data, in eval mode (``Trainer.evaluate``)
    evaluate: Callable[[Any], Scores] | None = None
    #: loss and metrics of given model outputs against targets, optionally with other metrics:
    #: ``score(outputs, targets, metrics=None)`` (what ``evaluate`` computes after predicting)
    score: Callable[..., Scores] | None = None
    #: everything needed to resume this fit exactly (``Trainer.state_dict``), for checkpoints
    trainer_state_dict: Callable[[], dict[str, Any]] | None = None
    #: False on the ranks other than 0 of a data parallel fit (``strategy="ddp"``), which do
    #: not run the callbacks marked ``main_only``; ``world_size`` processes train together
    is_main: bool = True
    world_size: int = 1

    def request_stop(self, reason: str, status: Status = "early_stopped") -> None:
        """End training after the current step or epoch, recording why."""
        self.stop = True
        self.history.status = status
        self.history.reason = reason


class Callback:
    """Base class: override the hooks you need; each receives the :class:`State`.

    ``main_only = True`` marks a callback that writes (files, a terminal): in a data parallel
    fit only rank 0 runs it; the others see the same logs and need not."""

    main_only: bool = False

    def on_fit_start(self, state: State) -> None: ...

    def on_epoch_start(self, state: State) -> None: ...

    def on_step_start(self, state: State) -> None: ...

    def on_before_update(self, state: State) -> None: ...

    def on_step_end(self, state: State) -> None: ...

    def on_epoch_end(self, state: State) -> None: ...

    def on_epoch_close(self, state: State) -> None: ...

    def on_fit_end(self, state: State) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep of this callback to resume exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({shown})"
