"""Weight averaging: Stochastic Weight Averaging (SWA) and an exponential moving average (EMA).

Both keep a second copy of the weights that moves more slowly than the trained ones and lands
in a wider, flatter part of the loss surface (the notes' "average weights from different points
along the optimization trajectory ... often generalizes better than any individual model").
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is not allowed; choose True or False")


def _batch_norms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recompute_bn(model: torch.nn.Module, X: Tensor, *, batch_size: int = 4096,
                 device: torch.device | str | None = None) -> None:
    """Recompute every batch-norm layer's running statistics with one pass over ``X``.

    Like ``torch.optim.swa_utils.update_bn``: the statistics are reset and each layer's
    momentum set to ``None`` (a cumulative average), so after the pass

        running_mean = (1/B) Σ_b mean_b(x),   running_var = (1/B) Σ_b var_b(x)  (unbiased)

    over the B batches of ``batch_size`` rows — with one batch, exactly the mean and unbiased
    variance of each layer's input over ``X``. Unlike ``update_bn``, only the batch-norm layers
    are put in training mode: dropout stays off, so the statistics are those the network sees
    at inference, and no random numbers are drawn. Modes and momenta are restored afterwards.
    """
    norms = _batch_norms(model)
    if not norms or len(X) == 0:
        return
    check_number("batch_size", batch_size, low=1, integer=True)
    if device is None:
        device = next((t.device for t in model.parameters()), X.device)
    modes = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in norms}
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    try:
        for start in range(0, len(X), batch_size):
            model(X[start:start + batch_size].to(device))
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for module, mode in modes.items():
            module.training = mode


class SWA(Callback):
    """Stochastic Weight Averaging (Izmailov et al., 2018).

    From epoch ``start_epoch`` on (0-based), the learning rate is held at ``swa_lr`` and, at
    the end of each epoch, the weights join an equal-weight running average:

        w̄ ← w̄ + (w − w̄)/(n + 1),   n ← n + 1      (so w̄ = (1/n) Σ_epochs w)

    With ``anneal_epochs = A > 0`` the rate first moves from α₀ (the rate in use when SWA
    starts) to ``swa_lr`` over the A·S updates of A epochs (S updates per epoch); at update
    s = 0, 1, … of that window, with p = (s + 1)/(A·S):

        cos:     α = swa_lr + (α₀ − swa_lr)·(1 + cos πp)/2
        linear:  α = α₀ + (swa_lr − α₀)·p

    ``swa_lr=None`` leaves the rate to the Trainer's schedule (e.g. a cyclic one) and only
    averages. At the end of ``fit`` the average is copied into the model and, with
    ``update_bn``, batch-norm running statistics are recomputed for the averaged weights by one
    pass over the training data (:func:`recompute_bn`, ``bn_batch_size`` rows at a time): the
    averaged weights never produced the running statistics the model carries.

    The average is a ``torch.optim.swa_utils.AveragedModel``; ``averaged_model`` is its module
    (evaluate it any time; its batch-norm buffers follow the live model until fit ends). The
    learning rate is set through ``State.lr_override``, so a ``torch.optim.lr_scheduler`` cannot
    be combined with ``swa_lr``. Put SWA before callbacks that change the weights at fit end
    (``EarlyStopping(restore_best=True)`` would otherwise replace the average).

    >>> Trainer(model, optimizer="sgd", lr=0.1, callbacks=[SWA(start_epoch=15, swa_lr=0.05)])
    """

    def __init__(self, start_epoch: int, swa_lr: float | None = None, anneal_epochs: int = 0,
                 update_bn: bool = True, *, anneal_strategy: str = "cos",
                 bn_batch_size: int = 4096) -> None:
        check_number("start_epoch", start_epoch, low=0, integer=True)
        if swa_lr is not None:
            check_number("swa_lr", swa_lr, low=0.0)
        check_number("anneal_epochs", anneal_epochs, low=0, integer=True)
        _check_bool("update_bn", update_bn)
        check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        check_number("bn_batch_size", bn_batch_size, low=1, integer=True)
        if anneal_epochs and swa_lr is None:
            raise ValueError(f"anneal_epochs={anneal_epochs} needs swa_lr, the rate to anneal to")
        self.start_epoch, self.swa_lr = start_epoch, swa_lr
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        self.update_bn, self.bn_batch_size = update_bn, bn_batch_size
        self._averaged: AveragedModel | None = None
        self._lr0: float | None = None
        self._step0: int | None = None
        self._last_epoch: int | None = None
        self._state: State | None = None
        self._pending: dict[str, Any] | None = None

    @property
    def averaged_model(self) -> torch.nn.Module | None:
        """The module holding the averaged weights (``None`` before the first fit)."""
        return self._averaged.module if self._averaged is not None else None

    @property
    def n_averaged(self) -> int:
        """How many epochs' weights the average holds."""
        return int(self._averaged.n_averaged) if self._averaged is not None else 0

    def on_fit_start(self, state: State) -> None:
        if self.swa_lr is not None and state.scheduler is not None:
            raise ValueError("SWA(swa_lr=...) sets the learning rate itself, but a "
                             "torch.optim.lr_scheduler owns it in this Trainer; use an optimlab "
                             "schedule, or swa_lr=None to average only")
        if state.max_epochs is not None and self.start_epoch >= state.max_epochs:
            raise ValueError(f"start_epoch={self.start_epoch} but this fit runs "
                             f"{state.max_epochs} epochs (0..{state.max_epochs - 1}); SWA would "
                             "never average")
        self._state = state
        self._averaged = AveragedModel(state.model)
        pending, self._pending = self._pending, None
        if pending is None:
            self._lr0 = self._step0 = self._last_epoch = None
            return
        if pending["averaged"] is not None:
            self._averaged.load_state_dict(pending["averaged"])
        self._lr0, self._step0 = pending["lr0"], pending["step0"]
        self._last_epoch = pending["last_epoch"]

    def _lr(self, step: int) -> float:
        assert self.swa_lr is not None and self._lr0 is not None and self._step0 is not None
        assert self._state is not None
        window = self.anneal_epochs * max(1, self._state.steps_per_epoch)
        s = step - self._step0
        if s >= window:
            return self.swa_lr
        p = (s + 1) / window
        if self.anneal_strategy == "linear":
            return self._lr0 + (self.swa_lr - self._lr0) * p
        return self.swa_lr + (self._lr0 - self.swa_lr) * (1 + math.cos(math.pi * p)) / 2

    def on_step_start(self, state: State) -> None:
        if self.swa_lr is None or state.epoch < self.start_epoch:
            return
        if self._step0 is None:
            factor = state.lr_factor
            current = float(state.optimizer.param_groups[0]["lr"])
            self._lr0 = current / factor if factor else self.swa_lr
            self._step0 = state.step
        state.lr_override = self._lr(state.step)

    def on_epoch_end(self, state: State) -> None:
        if state.epoch < self.start_epoch or self._last_epoch == state.epoch:
            return
        assert self._averaged is not None
        self._averaged.update_parameters(state.model)
        self._last_epoch = state.epoch

    @torch.no_grad()
    def on_fit_end(self, state: State) -> None:
        if self._averaged is None or self.n_averaged == 0:
            return
        model, module = state.model, self._averaged.module
        for p, q in zip(model.parameters(), module.parameters(), strict=True):
            p.copy_(q)
        if self.update_bn and _batch_norms(model) and state.train_data is not None:
            recompute_bn(model, state.train_data.X, batch_size=self.bn_batch_size,
                         device=state.device)
            for b, c in zip(module.buffers(), model.buffers(), strict=True):
                b.copy_(c)

    def _epoch_end_pending(self) -> bool:
        """True while another callback runs ``on_epoch_end`` before this one has averaged the
        epoch (the epoch's record is in the history, the average not yet updated)."""
        st = self._state
        if st is None or st.epoch < self.start_epoch or self._last_epoch == st.epoch or \
                st.history.status == "diverged":
            return False
        epochs = st.history.epochs
        return bool(epochs) and int(epochs[-1].get("epoch", -1)) == st.epoch

    def state_dict(self) -> dict[str, Any]:
        """The average as it stands after the current epoch, whatever the callback order."""
        averaged, last = self._averaged, self._last_epoch
        if averaged is not None and self._epoch_end_pending():
            assert self._state is not None
            averaged = copy.deepcopy(averaged)
            averaged.update_parameters(self._state.model)
            last = self._state.epoch
        return {"averaged": averaged.state_dict() if averaged is not None else None,
                "lr0": self._lr0, "step0": self._step0, "last_epoch": last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = dict(state)  # applied at on_fit_start, once the model is known


class EMA(Callback):
    """Exponential moving average of the weights (Polyak averaging), updated after every step:

        w̄ ← β·w̄ + (1 − β)·w      (β = ``decay``; w̄ starts at the weights after the first update)

    The average covers every floating-point entry of the model's ``state_dict`` — parameters
    and batch-norm running statistics alike; integer buffers (``num_batches_tracked``) are left
    alone. With ``evaluate`` and validation data, at each epoch end the averaged weights are
    swapped in, evaluated with the Trainer's ``evaluate``, and swapped back; ``ema_val_loss`` and
    ``ema_val_<metric>`` go into ``state.logs`` and the epoch's history record, so callbacks
    *after* this one can monitor them (``EarlyStopping("ema_val_loss", mode="min")``). With
    ``apply_at_end`` the model keeps the averaged weights when ``fit`` ends. Over n updates the
    average weighs update k by (1 − β)·β^(n−k): it remembers about 1/(1 − β) steps.

    ``with ema.averaged(): ...`` evaluates the averages on the trained model in between;
    ``averaged_state_dict()`` returns them as a model ``state_dict``. For the optimizer-level
    form see ``optimlab.optim.ema``.

    >>> Trainer(model, callbacks=[EMA(0.999), EarlyStopping("ema_val_loss", mode="min")])
    """

    def __init__(self, decay: float = 0.999, evaluate: bool = True,
                 apply_at_end: bool = True) -> None:
        check_number("decay", decay, low=0.0, high=1.0, high_open=True)
        _check_bool("evaluate", evaluate)
        _check_bool("apply_at_end", apply_at_end)
        self.decay, self.evaluate, self.apply_at_end = decay, evaluate, apply_at_end
        self.updates = 0
        self._model: torch.nn.Module | None = None
        self._names: list[str] = []
        self._live: list[Tensor] = []
        self._avg: list[Tensor] | None = None
        self._pending: dict[str, Any] | None = None

    def on_fit_start(self, state: State) -> None:
        self._model = state.model
        entries = state.model.state_dict()
        self._names = [k for k, v in entries.items() if v.is_floating_point()]
        self._live = [entries[k] for k in self._names]
        pending, self._pending = self._pending, None
        self._avg, self.updates = None, 0
        if pending is not None and pending["avg"] is not None:
            saved = pending["avg"]
            missing = [k for k in self._names if k not in saved]
            if missing:
                raise ValueError(f"the EMA state does not fit this model (missing {missing[:3]})")
            self._avg = [saved[k].to(t.device, t.dtype).clone()
                         for k, t in zip(self._names, self._live, strict=True)]
        if pending is not None:
            self.updates = int(pending["updates"])

    @torch.no_grad()
    def on_step_end(self, state: State) -> None:
        if self._avg is None:
            self._avg = [t.detach().clone() for t in self._live]
        elif self._live:
            torch._foreach_lerp_(self._avg, self._live, 1.0 - self.decay)
        self.updates += 1

    @torch.no_grad()
    def _swap(self) -> None:
        assert self._avg is not None
        for live, avg in zip(self._live, self._avg, strict=True):
            tmp = live.clone()
            live.copy_(avg)
            avg.copy_(tmp)

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Use the averaged weights inside the ``with`` block, the trained ones after it."""
        if self._avg is None:
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def averaged_state_dict(self) -> dict[str, Tensor]:
        """The model's ``state_dict`` with the averages in place of the floating-point entries."""
        if self._model is None:
            raise ValueError("EMA has no average yet: fit a Trainer with this callback first")
        out = {k: v.detach().clone() for k, v in self._model.state_dict().items()}
        if self._avg is not None:
            out.update({k: a.detach().clone()
                        for k, a in zip(self._names, self._avg, strict=True)})
        return out

    def on_epoch_end(self, state: State) -> None:
        if not self.evaluate or state.val_data is None or self._avg is None or \
                state.evaluate is None:
            return
        was_training = state.model.training
        with self.averaged():
            result = state.evaluate(state.val_data)
        state.model.train(was_training)
        record = {f"ema_val_{k}": float(v) for k, v in result.items()}
        state.logs.update(record)
        epochs = state.history.epochs
        if epochs and int(epochs[-1].get("epoch", -1)) == state.epoch:
            epochs[-1].update(record)

    @torch.no_grad()
    def on_fit_end(self, state: State) -> None:
        if self.apply_at_end and self._avg is not None:
            for live, avg in zip(self._live, self._avg, strict=True):
                live.copy_(avg)

    def state_dict(self) -> dict[str, Any]:
        avg = None
        if self._avg is not None:
            avg = {k: a.detach().clone() for k, a in zip(self._names, self._avg, strict=True)}
        return {"avg": avg, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = dict(state)  # applied at on_fit_start, once the model is known
