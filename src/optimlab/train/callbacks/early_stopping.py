"""EarlyStopping: stop when the monitored value has not improved for ``patience`` epochs."""

from __future__ import annotations

from typing import Any

import torch

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import improves, monitor_mode


class EarlyStopping(Callback):
    """Stop training when ``monitor`` stops improving, and keep the best weights.

    An epoch improves on the best value b when (mode "min")

        value < b − δ            min_delta_mode="abs"
        value < b · (1 − δ)      min_delta_mode="rel"   (mirror images for mode "max")

    After ``patience`` epochs without improvement the run ends as ``early_stopped``. With
    ``smoothing=β`` the monitored value is first smoothed by a bias-corrected EWA,
    v̂_t = v_t/(1 − βᵗ) with v_t = β v_{t−1} + (1 − β) value_t, so one noisy epoch neither
    resets nor triggers the count. With ``restore_best`` the model gets back the weights of its
    best epoch when training ends — by patience or by reaching the epoch limit.

    >>> EarlyStopping("val_loss", patience=5, restore_best=True)
    """

    def __init__(self, monitor: str = "val_loss", *, mode: str = "auto", patience: int = 5,
                 min_delta: float = 0.0, min_delta_mode: str = "abs",
                 smoothing: float | None = None, restore_best: bool = True,
                 start_from_epoch: int = 0) -> None:
        check_choice("mode", mode, ("auto", "min", "max"))
        check_choice("min_delta_mode", min_delta_mode, ("abs", "rel"))
        check_number("patience", patience, low=0, integer=True)
        check_number("min_delta", min_delta, low=0.0)
        check_number("start_from_epoch", start_from_epoch, low=0, integer=True)
        if smoothing is not None:
            check_number("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.min_delta_mode = min_delta, min_delta_mode
        self.smoothing, self.restore_best = smoothing, restore_best
        self.start_from_epoch = start_from_epoch
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self._ewa, self._t = 0.0, 0
        self._best_weights: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, state: State) -> None:
        if self.mode == "auto":
            self.mode = monitor_mode(self.monitor)

    def _value(self, raw: float) -> float:
        if self.smoothing is None:
            return raw
        beta = self.smoothing
        self._t += 1
        self._ewa = beta * self._ewa + (1 - beta) * raw
        return self._ewa / (1 - beta**self._t)

    def on_epoch_end(self, state: State) -> None:
        if self.monitor not in state.logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r} but the epoch logs have "
                             f"{', '.join(sorted(state.logs))}; pass validation data to fit() or "
                             "monitor a train_ key")
        value = self._value(float(state.logs[self.monitor]))
        if state.epoch < self.start_from_epoch:
            return
        if improves(value, self.best, self.mode, self.min_delta, self.min_delta_mode):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best:
                self._best_weights = {k: v.detach().clone()
                                      for k, v in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.request_stop(f"{self.monitor} did not improve for {self.patience} epochs "
                               f"(best {self.best:.6g} after epoch {self.best_epoch + 1} "
                               f"of {state.epoch + 1})")

    def on_fit_end(self, state: State) -> None:
        if self.restore_best and self._best_weights is not None:
            state.model.load_state_dict(self._best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "ewa": self._ewa, "t": self._t, "mode": self.mode,
                "best_weights": self._best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self._ewa, self._t = state["wait"], state["ewa"], state["t"]
        self.mode, self._best_weights = state["mode"], state["best_weights"]
