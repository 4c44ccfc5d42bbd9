"""Snapshot ensembles (Huang et al., 2017): M models for the price of one training run."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab._checks import check_number
from optimlab.data.dataset import Dataset
from optimlab.models.tasks import TASKS, output_activation
from optimlab.schedules import cosine_restarts
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.inputs import as_dataset
from optimlab.train.metrics import Metric


class SnapshotEnsemble(Callback):
    """Cosine annealing with warm restarts, a snapshot of the weights at the end of each cycle,
    and the ensemble of the last ``keep`` snapshots.

    With T = ``epochs_per_cycle`` × (updates per epoch) and t the number of updates done, the
    learning rate of update t + 1 is (set through ``State.lr_override``)

        α(t) = lr_min + (lr_max − lr_min)/2 · (1 + cos(π · (t mod T)/T))

    — high after each restart, to leave the current minimum; near ``lr_min`` at the end of a
    cycle, where the model settles into one and the weights (the full ``state_dict``, batch-norm
    statistics included) are saved. ``epochs_per_cycle`` defaults to ``max_epochs // cycles``,
    ``lr_max`` to the Trainer's base learning rate, ``keep`` to ``cycles``. The restarts go on
    for as long as ``fit`` runs; with ``epochs = cycles × epochs_per_cycle`` it ends on the last
    snapshot. A torch ``lr_scheduler`` on the Trainer cannot be combined with this callback.

    The ensemble averages the snapshots' probabilities, p̄ = (1/M) Σ_m f(z_m) with f the task's
    output activation (softmax, sigmoid; identity for regression, where it averages outputs):
    ``predict(X, proba=True)`` gives p̄; ``predict(X)`` gives scores whose activation is p̄
    (log p̄ for softmax, log p̄ − log(1 − p̄) for sigmoid, computed in log space), so the
    Trainer's loss and metrics apply to them unchanged — ``evaluate(data)`` does just that.

    >>> snap = SnapshotEnsemble(cycles=5)
    >>> Trainer(model, optimizer="sgd", lr=0.2, callbacks=[snap]).fit(train, epochs=50)
    >>> snap.evaluate(test)["accuracy"]
    """

    def __init__(self, cycles: int, epochs_per_cycle: int | None = None,
                 lr_max: float | None = None, lr_min: float = 0.0,
                 keep: int | None = None) -> None:
        check_number("cycles", cycles, low=1, integer=True)
        if epochs_per_cycle is not None:
            check_number("epochs_per_cycle", epochs_per_cycle, low=1, integer=True)
        check_number("lr_min", lr_min, low=0.0)
        if lr_max is not None:
            check_number("lr_max", lr_max, low=lr_min)
        if keep is not None:
            check_number("keep", keep, low=1, integer=True)
        self.cycles, self.epochs_per_cycle = cycles, epochs_per_cycle
        self.lr_max, self.lr_min = lr_max, lr_min
        self.keep = keep if keep is not None else cycles
        self._snapshots: list[dict[str, Tensor]] = []
        self._snapshot_steps: list[int] = []
        self._cycle_steps = 0
        self._lr_max: float | None = None
        self._schedule: Any = None
        self._model: torch.nn.Module | None = None
        self._task: str | None = None
        self._score: Callable[..., dict[str, float]] | None = None
        self._work: torch.nn.Module | None = None
        self._pending: dict[str, Any] | None = None

    # ------------------------------------------------------------------ training
    @property
    def snapshots(self) -> list[dict[str, Tensor]]:
        """The kept snapshots (``state_dict`` copies), oldest first."""
        return list(self._snapshots)

    @property
    def snapshot_steps(self) -> list[int]:
        """The update count at which each kept snapshot was taken."""
        return list(self._snapshot_steps)

    @property
    def cycle_steps(self) -> int:
        """T, the updates per cycle of this fit (0 before it starts)."""
        return self._cycle_steps

    def on_fit_start(self, state: State) -> None:
        if state.scheduler is not None:
            raise ValueError("SnapshotEnsemble sets the learning rate itself, but a "
                             "torch.optim.lr_scheduler owns it in this Trainer; drop the "
                             "scheduler")
        epochs_per_cycle = self.epochs_per_cycle
        if epochs_per_cycle is None:
            epochs = state.max_epochs or 0
            epochs_per_cycle = epochs // self.cycles
            if epochs_per_cycle == 0:
                raise ValueError(f"cycles={self.cycles} is more than the {epochs} epochs of "
                                 "this fit; train longer or pass epochs_per_cycle")
        self._cycle_steps = epochs_per_cycle * max(1, state.steps_per_epoch)
        pending, self._pending = self._pending, None
        lr_max = self.lr_max
        if lr_max is None:
            if pending is not None and pending.get("lr_max") is not None:
                lr_max = float(pending["lr_max"])
            else:
                base = state.base_lrs
                lr_max = float(base[0] if base else state.optimizer.param_groups[0]["lr"])
        if lr_max < self.lr_min:
            raise ValueError(f"lr_max={lr_max!r} (the Trainer's learning rate) is below "
                             f"lr_min={self.lr_min!r}")
        self._lr_max = lr_max
        self._schedule = cosine_restarts(lr_max, self._cycle_steps, 1, self.lr_min)
        self._model, self._work = state.model, None
        self._task, self._score = state.task, state.score
        self._snapshots, self._snapshot_steps = [], []
        if pending is not None:
            self._snapshots = [dict(s) for s in pending["snapshots"]]
            self._snapshot_steps = [int(s) for s in pending["steps"]]

    def lr(self, step: int) -> float:
        """α(step) of this fit: the rate of the update that follows ``step`` updates."""
        if self._schedule is None:
            raise ValueError("the cycle length is known once fit starts")
        return float(self._schedule(step))

    def on_step_start(self, state: State) -> None:
        state.lr_override = self.lr(state.step)

    @torch.no_grad()
    def on_step_end(self, state: State) -> None:
        if state.step % self._cycle_steps:
            return
        self._snapshots.append({k: v.detach().clone()
                                for k, v in state.model.state_dict().items()})
        self._snapshot_steps.append(state.step)
        del self._snapshots[:-self.keep], self._snapshot_steps[:-self.keep]

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": [dict(s) for s in self._snapshots],
                "steps": list(self._snapshot_steps), "lr_max": self._lr_max}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = dict(state)  # applied at on_fit_start

    # ------------------------------------------------------------------ the ensemble
    def models(self) -> list[torch.nn.Module]:
        """One copy of the model per kept snapshot, in eval mode."""
        self._need_snapshots()
        assert self._model is not None
        out = []
        for snap in self._snapshots:
            model = copy.deepcopy(self._model)
            model.load_state_dict(snap)
            out.append(model.eval())
        return out

    def _need_snapshots(self) -> None:
        if not self._snapshots:
            raise ValueError("the ensemble has no snapshots yet: fit until at least one cycle "
                             f"ends (T={self._cycle_steps or '?'} updates)")

    @torch.no_grad()
    def predict(self, X: Any, *, proba: bool = False, batch_size: int = 4096) -> Tensor:
        """Ensemble outputs for ``X`` (a tensor or Dataset): the mean probability p̄ with
        ``proba=True``; otherwise scores s with f(s) = p̄ (see the class docstring)."""
        self._need_snapshots()
        check_number("batch_size", batch_size, low=1, integer=True)
        X = X.X if isinstance(X, Dataset) else torch.as_tensor(X)
        assert self._model is not None
        task = self._task or "regression"
        kind = TASKS[task]["output_activation"]
        activation = output_activation(task)
        if self._work is None:
            self._work = copy.deepcopy(self._model)
        work = self._work.eval()
        device = next((p.device for p in work.parameters()), torch.device("cpu"))
        total: Tensor | None = None
        neg: Tensor | None = None
        for snap in self._snapshots:
            work.load_state_dict(snap)
            chunks = [work(X[i:i + batch_size].to(device)).float()
                      for i in range(0, len(X), batch_size)]
            out = torch.cat(chunks) if chunks else torch.empty(0, device=device)
            if proba or kind == "identity":
                term = activation(out)
                total = term if total is None else total + term
            elif kind == "softmax":  # log Σ_m p_m, accumulated in log space
                term = torch.log_softmax(out, dim=-1)
                total = term if total is None else torch.logaddexp(total, term)
            else:  # sigmoid: log Σ_m σ(z_m) and log Σ_m σ(−z_m)
                pos, minus = torch.nn.functional.logsigmoid(out), \
                    torch.nn.functional.logsigmoid(-out)
                total = pos if total is None else torch.logaddexp(total, pos)
                neg = minus if neg is None else torch.logaddexp(neg, minus)
        assert total is not None
        m = len(self._snapshots)
        if proba or kind == "identity":
            return total / m
        if kind == "softmax":
            return total - math.log(m)
        assert neg is not None
        return total - neg  # logit(p̄) = log p̄ − log(1 − p̄); the 1/M cancels

    def evaluate(self, data: Any, *, metrics: Sequence[str | Metric] | None = None,
                 batch_size: int = 4096) -> dict[str, float]:
        """Loss and metrics of the ensemble on ``data`` (the Trainer's loss and metrics, unless
        ``metrics`` is given): ``{"loss": …, "accuracy": …}``."""
        ds = as_dataset(data, "evaluate")
        scores = self.predict(ds.X, batch_size=batch_size)
        assert self._score is not None
        return self._score(scores, ds.y, metrics)
