"""Wrappers around any ``torch.optim.Optimizer``: Lookahead, exact gradient accumulation, and an
exponential moving average of the weights.

A wrapper *shares* the inner optimizer's ``param_groups`` (the very same dicts), so an LR
scheduler attached to the wrapper drives the inner optimizer, and per-group hyperparameters stay
where they were. Its own state (slow weights, gradient sums, averages) is kept per parameter and
saved beside the inner optimizer's in ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab._checks import check_number
from optimlab.optim.optimizer import undecorated

_add_param_group = undecorated("add_param_group")
_state_dict = undecorated("state_dict")
_load_state_dict = undecorated("load_state_dict")


class Wrapper(Optimizer):
    """Base of the wrappers: delegates groups to ``inner`` and saves both states."""

    def __init__(self, inner: Optimizer) -> None:
        if not isinstance(inner, Optimizer):
            raise TypeError(f"expected a torch.optim.Optimizer to wrap; got {inner!r}")
        self.inner = inner
        super().__init__(inner.param_groups, inner.defaults)
        self.param_groups = inner.param_groups
        self.defaults = inner.defaults

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _add_param_group(self, param_group)

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "wrapper": _state_dict(self),
                "extra": self._extra_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.inner.load_state_dict(state_dict["inner"])
        _load_state_dict(self, state_dict["wrapper"])
        self.param_groups = self.inner.param_groups  # keep sharing the inner groups
        self._load_extra_state(state_dict.get("extra", {}))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        return None


class Lookahead(Wrapper):
    """Lookahead (Zhang et al., 2019): fast weights explore k steps, slow weights follow.

        every k steps:  φ ← φ + α·(θ − φ),   θ ← φ

    θ are the model's (fast) weights, updated by the inner optimizer; φ the slow copy.
    """

    def __init__(self, inner: Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        check_number("k", k, low=1, integer=True)
        check_number("alpha", alpha, low=0.0, high=1.0, low_open=True)
        super().__init__(inner)
        self.k, self.alpha, self.counter = k, alpha, 0
        for p in self._params():  # φ₀ = θ₀: the slow weights start where training starts
            self.state[p]["slow"] = p.detach().clone()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = self.inner.step(closure)
        self.counter += 1
        if self.counter % self.k:
            return loss
        fast = self._params()
        slow = [self.state[p]["slow"] for p in fast]
        torch._foreach_lerp_(slow, fast, self.alpha)
        torch._foreach_copy_(fast, slow)
        return loss

    def _extra_state(self) -> dict[str, Any]:
        return {"counter": self.counter}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.counter = int(extra.get("counter", 0))


class Accumulate(Wrapper):
    """Exact gradient accumulation: k micro-batches make one step of the inner optimizer.

    Call ``step()`` and ``zero_grad()`` after every micro-batch as usual. The wrapper adds each
    micro-batch's gradient to a buffer; on every k-th call it sets each gradient to the mean,

        g = (g₁ + … + g_k) / k,

    and steps the inner optimizer once. For equal micro-batches whose loss is a mean, g is the
    gradient of the k·B batch, so the update equals one k·B step — with weight decay applied
    once and Adam's step count (its bias correction) advanced once, the two places where
    accumulation is often inexact (keras-team/keras#19990). ``updated`` tells whether the
    last call stepped; step an LR scheduler only then.
    """

    def __init__(self, inner: Optimizer, k: int) -> None:
        check_number("k", k, low=1, integer=True)
        super().__init__(inner)
        self.k, self.micro_step, self.updated = k, 0, False

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for p in self._params() if p.grad is not None]
        fresh = [p for p in params if "acc" not in self.state[p]]
        for p in fresh:
            self.state[p]["acc"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if params:
            torch._foreach_add_([self.state[p]["acc"] for p in params], [p.grad for p in params])
        self.micro_step += 1
        self.updated = self.micro_step % self.k == 0
        if not self.updated:
            return loss
        summed = [p for p in self._params() if "acc" in self.state[p]]
        for p in summed:
            acc = self.state[p].pop("acc")
            p.grad = acc.div_(self.k)
        self.inner.step()
        return loss

    def _extra_state(self) -> dict[str, Any]:
        return {"micro_step": self.micro_step}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.micro_step = int(extra.get("micro_step", 0))


class Ema(Wrapper):
    """Exponential moving average of the weights, for evaluation (Polyak averaging).

        after each step:  w̄ ← β·w̄ + (1 − β)·w,   w̄ starts at the weights of the first step

    ``with opt.averaged(): evaluate(model)`` swaps the averages into the model and back;
    ``swap()`` does it by hand. Only parameters are averaged; buffers (batch-norm statistics)
    stay as they are.
    """

    def __init__(self, inner: Optimizer, decay: float = 0.999) -> None:
        check_number("decay", decay, low=0.0, high=1.0, high_open=True)
        super().__init__(inner)
        self.decay = decay

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = self.inner.step(closure)
        params, averages = [], []
        for p in self._params():
            st = self.state[p]
            if "ema" not in st:
                st["ema"] = p.detach().clone()
                continue
            params.append(p)
            averages.append(st["ema"])
        if params:
            torch._foreach_lerp_(averages, params, 1.0 - self.decay)
        return loss

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the weights and their averages (call again to swap back)."""
        for p in self._params():
            st = self.state[p]
            if "ema" in st:
                tmp = p.detach().clone()
                p.copy_(st["ema"])
                st["ema"].copy_(tmp)

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Use the averaged weights inside the ``with`` block, the trained ones after it."""
        self.swap()
        try:
            yield
        finally:
            self.swap()


def lookahead(optimizer: Optimizer, k: int = 5, alpha: float = 0.5) -> Lookahead:
    """Wrap ``optimizer`` in Lookahead (sync every ``k`` steps with step ``alpha``)."""
    return Lookahead(optimizer, k, alpha)


def accumulate(optimizer: Optimizer, k: int) -> Accumulate:
    """Accumulate ``k`` micro-batch gradients per step of ``optimizer``. See :class:`Accumulate`."""
    return Accumulate(optimizer, k)


def ema(optimizer: Optimizer, decay: float = 0.999) -> Ema:
    """Keep an exponential moving average of the weights. See :class:`Ema`."""
    return Ema(optimizer, decay)
