"""Pieces that keep a step safe: clipping, gradient noise, skipping non-finite steps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab._checks import check_number
from optimlab.optim.base import Context, Lane, Slots, Transform
from optimlab.optim.update import Update


class ClipByValue(Transform):
    """Clip each coordinate:  update = clamp(update, −c, c)."""

    def __init__(self, max_value: float) -> None:
        check_number("max_value", max_value, low=0.0, low_open=True)
        super().__init__()
        self.max_value = max_value

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        values = u.owned_value(ctx.params)
        torch._foreach_clamp_min_(values, -self.max_value)
        torch._foreach_clamp_max_(values, self.max_value)
        return u

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(self.max_value,)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.u = torch.minimum(torch.maximum(lane.u, -s[0]), s[0])


class ClipByGlobalNorm(Transform):
    """Rescale the update when its norm is too large (Pascanu et al., 2013):

        n = ‖update‖₂ over all tensors,   update = update · min(1, c / (n + 10⁻⁶))

    as ``torch.nn.utils.clip_grad_norm_`` does. The norm is taken over the tensors that the
    chain updates together — one parameter group on one device and dtype; to clip a whole model
    with several groups, clip before ``step()`` (the Trainer's ``clip_grad_norm`` does). A fused
    step computes the norm first (at the start of a chain) and fuses the rest.
    """

    fusion = "reduction"

    def __init__(self, max_norm: float) -> None:
        check_number("max_norm", max_norm, low=0.0, low_open=True)
        super().__init__()
        self.max_norm = max_norm

    def update(self, u: Update, ctx: Context) -> Update:
        if u.is_plain:
            norms = [n * abs(s) for n, s in zip(torch._foreach_norm(u.num), u.scale, strict=True)]
        else:
            norms = list(torch._foreach_norm(u.value(ctx.params)))
        total = float(torch.linalg.vector_norm(torch.stack([torch.as_tensor(n) for n in norms])))
        return u.mul(min(1.0, self.max_norm / (total + 1e-6)))


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), so each tensor and step gets its own."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class AddNoise(Transform):
    """Annealed Gaussian gradient noise (Neelakantan et al., 2015):

        update = update + N(0, σ_t²),   σ_t² = η / (1 + t)^γ,   t = 0, 1, 2, …

    The noise of tensor i at step t comes from its own generator seeded with (seed, i, t), so
    one seed gives one sequence and a resumed run draws exactly what an uninterrupted one would.
    """

    needs_param_ids = True

    def __init__(self, eta: float = 0.01, gamma: float = 0.55, seed: int = 0) -> None:
        check_number("eta", eta, low=0.0)
        check_number("gamma", gamma, low=0.0)
        check_number("seed", seed, low=0, integer=True)
        super().__init__()
        self.eta, self.gamma, self.seed = eta, gamma, seed

    def _noise(self, p: Tensor, param_id: int, step: int) -> Tensor:
        gen = torch.Generator(device=p.device)
        gen.manual_seed(_mix(self.seed, param_id, step))
        return torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)

    def update(self, u: Update, ctx: Context) -> Update:
        if not self.eta:
            return u
        values = u.owned_value(ctx.params)
        for v, p, pid, t in zip(values, ctx.params, ctx.param_ids, ctx.steps, strict=True):
            sigma = math.sqrt(self.eta / (1.0 + (t - 1)) ** self.gamma)
            v.add_(self._noise(p, pid, t), alpha=sigma)
        return u


class SkipNonFinite(Transform):
    """Skip the whole step when any gradient is NaN or ±Inf.

    The optimizer checks every gradient before any state changes; a skipped step changes no
    weight, no moment and no step count, and is counted in ``optimizer.skipped_steps``.
    """

    skips_nonfinite = True
    fusion = "scale"  # the optimizer checks before the step; the piece itself changes nothing

    def update(self, u: Update, ctx: Context) -> Update:
        return u

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        return None


def clip_by_value(max_value: float) -> ClipByValue:
    """Clamp each coordinate of the update to [−max_value, max_value]."""
    return ClipByValue(max_value)


def clip_by_global_norm(max_norm: float) -> ClipByGlobalNorm:
    """Rescale the update to norm at most ``max_norm``. See :class:`ClipByGlobalNorm`."""
    return ClipByGlobalNorm(max_norm)


def add_noise(eta: float = 0.01, gamma: float = 0.55, seed: int = 0) -> AddNoise:
    """Add annealed Gaussian noise N(0, η/(1+t)^γ). See :class:`AddNoise`."""
    return AddNoise(eta, gamma, seed)


def skip_nonfinite() -> SkipNonFinite:
    """Skip steps whose gradients contain NaN/Inf. See :class:`SkipNonFinite`."""
    return SkipNonFinite()
