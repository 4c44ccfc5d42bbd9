"""ReduceLROnPlateau: lower the learning rate when the monitored value stops improving."""

from __future__ import annotations

import logging
import math
from typing import Any

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import improves, monitor_mode

log = logging.getLogger(__name__)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    The rules of ``torch.optim.lr_scheduler.ReduceLROnPlateau``, checked once per epoch on
    ``monitor``. An epoch improves on the best value b when (mode "min"; mirror images for
    "max")

        value < b − δ            min_delta_mode="abs"
        value < b − |b|·δ        min_delta_mode="rel"   (torch: b·(1 − δ); equal for b ≥ 0)

    Otherwise it is a bad epoch (NaN always is; ±inf compare as numbers, as in torch). When
    more than ``patience`` bad epochs have passed in a row, the learning rate is reduced and
    ``cooldown`` epochs follow in which bad epochs are not counted. Unlike torch's scheduler
    it does not write ``lr`` itself: it scales ``State.lr_factor``, so the Trainer uses

        lr(t) = schedule(t) · lr_factor        (base lr · lr_factor without a schedule)

    and it composes with any optimlab schedule or callable (not with a torch LR scheduler, which
    owns ``lr``). A reduction sets

        lr_factor ← max(lr_factor · factor, min_lr / lr₀)

    where lr₀ is the first parameter group's learning rate without the factor at that moment
    (the base lr without a schedule, which gives torch's ``max(lr · factor, min_lr)`` exactly;
    schedule(t) with one). As in torch, a reduction that would lower the lr by no more than
    ``eps`` is skipped. When lr₀ = 0 (a schedule at zero) the factor is just multiplied.
    Every reduction is kept in ``reductions`` (epoch, step, factor) and logged at INFO level.

    >>> Trainer(model, lr=0.1, schedule=cosine, callbacks=[ReduceLROnPlateau(patience=3)])
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", factor: float = 0.1,
                 patience: int = 10, cooldown: int = 0, min_lr: float = 0.0,
                 min_delta: float = 1e-4, min_delta_mode: str = "rel", *,
                 eps: float = 1e-8) -> None:
        check_choice("mode", mode, ("auto", "min", "max"))
        check_choice("min_delta_mode", min_delta_mode, ("abs", "rel"))
        check_number("factor", factor, low=0.0, high=1.0, high_open=True)
        check_number("patience", patience, low=0, integer=True)
        check_number("cooldown", cooldown, low=0, integer=True)
        check_number("min_lr", min_lr, low=0.0)
        check_number("min_delta", min_delta, low=0.0)
        check_number("eps", eps, low=0.0)
        self.monitor, self.mode, self.factor = monitor, mode, factor
        self.patience, self.cooldown, self.min_lr = patience, cooldown, min_lr
        self.min_delta, self.min_delta_mode, self.eps = min_delta, min_delta_mode, eps
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.reductions: list[dict[str, float]] = []

    def on_fit_start(self, state: State) -> None:
        if state.scheduler is not None:
            raise ValueError("ReduceLROnPlateau scales State.lr_factor, which a torch LR "
                             "scheduler ignores (it owns lr); give the Trainer an optimlab "
                             "schedule or a callable of the step, or use torch's "
                             "ReduceLROnPlateau in your own loop")
        if not state.history.epochs:  # a fresh fit; a resumed one keeps the loaded state
            self._reset()
        if self.mode == "auto":
            self.mode = monitor_mode(self.monitor)

    def on_epoch_end(self, state: State) -> None:
        if self.monitor not in state.logs:
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r} but the epoch logs "
                             f"have {', '.join(sorted(state.logs))}; pass validation data to "
                             "fit() or monitor a train_ key")
        if self.mode == "auto":  # driven without on_fit_start
            self.mode = monitor_mode(self.monitor)
        value = float(state.logs[self.monitor])
        if improves(value, self.best, self.mode, self.min_delta, self.min_delta_mode,
                    allow_inf=True):  # as torch does
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce(state)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _reduce(self, state: State) -> None:
        old = state.lr_factor
        if old <= 0.0:
            return
        lr0 = float(state.optimizer.param_groups[0]["lr"]) / old
        if lr0 > 0.0 and math.isfinite(lr0):
            old_lr = lr0 * old
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr <= self.eps:
                return
            new = old * self.factor if new_lr == old_lr * self.factor else new_lr / lr0
        else:
            new = old * self.factor
        state.lr_factor = new
        self.reductions.append({"epoch": state.epoch, "step": state.step, "factor": new})
        log.info("ReduceLROnPlateau: %s has not improved for %d epochs (best %.6g); lr factor "
                 "%.4g -> %.4g at epoch %d", self.monitor, self.patience + 1,
                 self.best if self.best is not None else math.nan, old, new, state.epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "mode": self.mode,
                "reductions": [dict(r) for r in self.reductions]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.mode = state["best"], state["mode"]
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.reductions = [dict(r) for r in state["reductions"]]
