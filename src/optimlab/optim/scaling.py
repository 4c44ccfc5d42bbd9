"""Per-parameter scaling: the adaptive denominators (RMSprop, Adam, Adagrad, Adamax), the sign
update and the learning rate.

The adaptive pieces take their statistics of the *gradient* (see ``Update.gradient``) and divide
the current update by them, so ``chain(ewa(β₁), scale_by_rms(β₂))`` gives Adam's m/√v while
``chain(scale_by_rms(β), trace(μ))`` gives torch's RMSprop with momentum (a trace of g/√v).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab._checks import check_choice, check_number
from optimlab.optim.base import Context, Lane, ScaleTransform, Slots, Transform
from optimlab.optim.moments import _zeros, check_beta
from optimlab.optim.update import Update


def _check_eps(eps: float) -> None:
    check_number("eps", eps, low=0.0, low_open=True)


def _shift(c: float, eps: float, eps_inside: bool, eps_hat: bool) -> float:
    """What is added to the root's argument (inside) or to the root (outside); see below."""
    if eps_inside:
        return eps * c * c
    return eps if eps_hat else eps * c


def _divide_by_root(u: Update, ctx: Context, base: list[Tensor], owned: bool, c: list[float],
                    eps: float, eps_inside: bool, eps_hat: bool = False) -> Update:
    """Divide ``u`` by the root of ``base / c²`` with ε outside or inside the root.

        outside:  u / (√(base)/c + ε)  =  c·u / (√base + ε·c)
        inside:   u / √(base/c² + ε)   =  c·u / √(base + ε·c²)
        hat:      c·u / (√base + ε)        (ε added to the uncorrected root: Keras's ε̂)

    Writing it with c pulled out saves torch's separate division pass; ``c`` carries the bias
    correction (c = √(1 − β^t) for a corrected second moment, 1 without correction).
    """
    plain = all(ci == 1.0 for ci in c)
    shift: float | list[float] = (_shift(1.0, eps, eps_inside, eps_hat) if plain
                                  else [_shift(ci, eps, eps_inside, eps_hat) for ci in c])
    if eps_inside:
        if owned:
            torch._foreach_add_(base, shift)
            den = base
        else:
            den = list(torch._foreach_add(base, shift))
        torch._foreach_sqrt_(den)
    else:
        if owned:
            torch._foreach_sqrt_(base)
            den = base
        else:
            den = list(torch._foreach_sqrt(base))
        torch._foreach_add_(den, shift)
    u.divide(den, ctx.params)
    return u if plain else u.mul(c)


def _fused_divide_by_root(lane: Lane, base: Tensor, c: Tensor, shift: Tensor,
                          eps_inside: bool) -> None:
    """:func:`_divide_by_root` on one tensor: ``c·u / √(base + shift)`` or ``/ (√base + shift)``."""
    den = (base + shift).sqrt() if eps_inside else base.sqrt() + shift
    lane.u = lane.u / den * c


class ScaleByRms(Transform):
    """Divide by the root mean square of recent gradients — RMSprop's second moment.

        s_t = β · s_{t−1} + (1 − β) · g_t²
        ŝ_t = s_t / (1 − β^t)                     bias_correction=True (Adam); else ŝ_t = s_t
        centered=True:  ŝ_t − ḡ_t², with ḡ_t = β ḡ_{t−1} + (1 − β) g_t (a variance)
        amsgrad=True:   ŝ_t is replaced by its running maximum
        update = u / (√ŝ_t + ε)                   eps_inside=False (default)
        update = u / √(ŝ_t + ε)                   eps_inside=True
        update = u·√(1 − β^t) / (√s_t + ε)        eps_form="hat" (with bias_correction)

    ε outside the root is what torch.optim (RMSprop, Adam) and the course's RMSprop notes
    compute; inside is the other form found in the notes and papers. ``eps_form="hat"`` adds ε
    to the uncorrected root, as Keras and TensorFlow's Adam do (the ε̂ of Kingma & Ba, §2);
    ``"corrected"`` (the default) adds it to the corrected one. ``amsgrad_max="raw"`` takes
    the maximum of the uncorrected s_t and then corrects it (torch.optim.Adam(amsgrad=True));
    ``"corrected"`` takes the maximum of the corrected ŝ_t (optax.amsgrad).
    """

    state_names = ("sq_avg", "grad_avg", "max_sq_avg")

    def __init__(self, beta: float = 0.999, eps: float = 1e-8, *, eps_inside: bool = False,
                 eps_form: str = "corrected", bias_correction: bool = False,
                 centered: bool = False, amsgrad: bool = False,
                 amsgrad_max: str = "raw") -> None:
        check_beta("beta", beta)
        _check_eps(eps)
        check_choice("amsgrad_max", amsgrad_max, ("raw", "corrected"))
        check_choice("eps_form", eps_form, ("corrected", "hat"))
        if centered and amsgrad:
            raise ValueError("centered=True and amsgrad=True cannot be combined; choose one")
        if eps_form == "hat":
            if eps_inside:
                raise ValueError("eps_form='hat' adds ε outside the root; it cannot be combined "
                                 "with eps_inside=True")
            if not bias_correction:
                raise ValueError("eps_form='hat' says where the bias correction goes; it needs "
                                 "bias_correction=True")
            if amsgrad and amsgrad_max == "corrected":
                raise ValueError("eps_form='hat' (Keras) takes the maximum of the raw v; use "
                                 "amsgrad_max='raw' with it")
            if centered:
                raise ValueError("eps_form='hat' is Adam's form; it cannot be combined with "
                                 "centered=True")
        super().__init__()
        self.beta, self.eps, self.eps_inside, self.eps_form = beta, eps, eps_inside, eps_form
        self.bias_correction, self.centered = bias_correction, centered
        self.amsgrad, self.amsgrad_max = amsgrad, amsgrad_max

    def init(self, p: Tensor) -> dict[str, Any]:
        state = {"sq_avg": _zeros(p)}
        if self.centered:
            state["grad_avg"] = _zeros(p)
        if self.amsgrad:
            state["max_sq_avg"] = _zeros(p)
        return state

    fusion = "elementwise"

    def _corrections(self, ctx: Context) -> list[float]:
        return [1.0 - self.beta**t if self.bias_correction else 1.0 for t in ctx.steps]

    def _root_factor(self, bc: float) -> float:
        """c of :func:`_divide_by_root`: the root is √base / c."""
        if self.centered:
            return bc  # ŝ − ḡ̂² = (s·bc − ḡ²)/bc²
        if self.amsgrad and self.amsgrad_max == "corrected":
            return 1.0  # the maximum is of ŝ itself
        return math.sqrt(bc)

    def update(self, u: Update, ctx: Context) -> Update:
        g = u.gradient(ctx.params)
        s = self.state(ctx, "sq_avg")
        torch._foreach_mul_(s, self.beta)
        torch._foreach_addcmul_(s, g, g, 1.0 - self.beta)
        bc = self._corrections(ctx)
        c = [self._root_factor(b) for b in bc] if self.bias_correction else bc
        hat = self.eps_form == "hat"
        if self.centered:
            avg = self.state(ctx, "grad_avg")
            torch._foreach_lerp_(avg, g, 1.0 - self.beta)
            # ŝ − ḡ̂² = (s·bc − ḡ²) / bc²: its root is √(s·bc − ḡ²) / bc
            if self.bias_correction:
                base = list(torch._foreach_mul(s, bc))
                torch._foreach_addcmul_(base, avg, avg, -1.0)
            else:
                base = list(torch._foreach_addcmul(s, avg, avg, -1.0))
            # a variance is ≥ 0, but s − ḡ² can round to −10⁻¹⁸ (exactly 0 at t = 1 when corrected)
            torch._foreach_clamp_min_(base, 0.0)
            return _divide_by_root(u, ctx, base, True, c, self.eps, self.eps_inside)
        if self.amsgrad:
            smax = self.state(ctx, "max_sq_avg")
            if self.amsgrad_max == "corrected":
                torch._foreach_maximum_(smax, torch._foreach_div(s, bc))
            else:
                torch._foreach_maximum_(smax, s)
            s = smax
        return _divide_by_root(u, ctx, s, False, c, self.eps, self.eps_inside, hat)

    def structure(self) -> tuple[Any, ...]:
        return (self.eps_inside, self.centered, self.amsgrad, self.amsgrad_max)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        hat = self.eps_form == "hat"
        rows = []
        for b in self._corrections(ctx):
            c = self._root_factor(b)
            rows.append((self.beta, 1.0 - self.beta, b, c,
                         _shift(c, self.eps, self.eps_inside, hat)))
        return rows

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        eps_inside, centered, amsgrad, amsgrad_max = structure
        g = lane.gradient()
        sq = state["sq_avg"]
        sq.mul_(s[0]).addcmul_(g, g, value=s[1])
        if centered:
            avg = state["grad_avg"]
            avg.lerp_(g, s[1])
            base = (sq * s[2] - avg * avg).clamp_min(0.0)
        elif amsgrad:
            smax = state["max_sq_avg"]
            smax.copy_(torch.maximum(smax, sq / s[2] if amsgrad_max == "corrected" else sq))
            base = smax
        else:
            base = sq
        _fused_divide_by_root(lane, base, s[3], s[4], eps_inside)


class ScaleByAdagrad(Transform):
    """Adagrad: divide by the root of the sum of all past squared gradients.

        s_t = s_{t−1} + g_t²,   s_0 = initial_accumulator_value
        update = u / (√s_t + ε)      eps_inside=False (torch.optim.Adagrad)
        update = u / √(s_t + ε)      eps_inside=True (ε under the root)

    The effective step only shrinks, quickly for frequent features, slowly for rare ones.
    """

    state_names = ("sum",)

    def __init__(self, eps: float = 1e-10, initial_accumulator_value: float = 0.0, *,
                 eps_inside: bool = False) -> None:
        _check_eps(eps)
        check_number("initial_accumulator_value", initial_accumulator_value, low=0.0)
        super().__init__()
        self.eps, self.initial_accumulator_value = eps, initial_accumulator_value
        self.eps_inside = eps_inside

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"sum": torch.full_like(p, self.initial_accumulator_value,
                                       memory_format=torch.preserve_format)}

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        g = u.gradient(ctx.params)
        s = self.state(ctx, "sum")
        torch._foreach_addcmul_(s, g, g, 1.0)
        return _divide_by_root(u, ctx, s, False, [1.0] * len(u), self.eps, self.eps_inside)

    def structure(self) -> tuple[Any, ...]:
        return (self.eps_inside,)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(1.0, self.eps)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        g = lane.gradient()
        total = state["sum"]
        total.addcmul_(g, g)
        _fused_divide_by_root(lane, total, s[0], s[1], structure[0])


class ScaleByInfNorm(Transform):
    """Adamax's exponentially weighted infinity norm (Kingma & Ba, 2015, §7.1).

        u_t = max(β · u_{t−1}, |g_t| + ε),   update = update / u_t            eps_form="inside"
        u_t = max(β · u_{t−1}, |g_t|),       update = update / (u_t + ε)      eps_form="outside"

    ε inside the maximum is torch.optim.Adamax's form; outside is Keras's.
    """

    state_names = ("exp_inf",)
    fusion = "elementwise"

    def __init__(self, beta: float = 0.999, eps: float = 1e-8, *,
                 eps_form: str = "inside") -> None:
        check_beta("beta", beta)
        _check_eps(eps)
        check_choice("eps_form", eps_form, ("inside", "outside"))
        super().__init__()
        self.beta, self.eps, self.eps_form = beta, eps, eps_form

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"exp_inf": _zeros(p)}

    def update(self, u: Update, ctx: Context) -> Update:
        g = u.gradient(ctx.params)
        norm = self.state(ctx, "exp_inf")
        torch._foreach_mul_(norm, self.beta)
        mag = torch._foreach_abs(g)
        if self.eps_form == "inside":
            torch._foreach_add_(mag, self.eps)
            torch._foreach_maximum_(norm, mag)
            return u.divide(norm, ctx.params)
        torch._foreach_maximum_(norm, mag)
        return u.divide(list(torch._foreach_add(norm, self.eps)), ctx.params)

    def structure(self) -> tuple[Any, ...]:
        return (self.eps_form,)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(self.beta, self.eps)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        g = lane.gradient()
        norm = state["exp_inf"]
        if structure[0] == "inside":
            norm.copy_(torch.maximum(norm * s[0], g.abs() + s[1]))
            lane.u = lane.u / norm
        else:
            norm.copy_(torch.maximum(norm * s[0], g.abs()))
            lane.u = lane.u / (norm + s[1])


class Sign(Transform):
    """Keep only the direction of each coordinate:  update = sign(update)  (Lion, signSGD)."""

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        torch._foreach_sign_(u.owned_value(ctx.params))
        return u

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.u = torch.sign(lane.u)


class ScaleByLr(ScaleTransform):
    """Scale by the learning rate, turning a direction into a step:  update = −α · update.

    With ``lr=None`` (the default) α is the parameter group's ``lr``, so per-group rates and
    ``torch.optim.lr_scheduler`` schedulers drive it.
    """

    def __init__(self, lr: float | None = None) -> None:
        if lr is not None:
            check_number("lr", lr, low=0.0)
        super().__init__()
        self.lr = lr

    def _factor(self, ctx: Context) -> float:
        return -(ctx.lr if self.lr is None else self.lr)

    def factors(self, ctx: Context) -> list[float]:
        return [self._factor(ctx)] * len(ctx.params)

    def update(self, u: Update, ctx: Context) -> Update:
        return u.mul(self._factor(ctx))  # one number for every tensor


class Scale(ScaleTransform):
    """Multiply the update by a constant:  update = factor · update."""

    def __init__(self, factor: float) -> None:
        check_number("factor", factor)
        super().__init__()
        self.factor = factor

    def factors(self, ctx: Context) -> list[float]:
        return [self.factor] * len(ctx.params)

    def update(self, u: Update, ctx: Context) -> Update:
        return u.mul(self.factor)  # one number for every tensor


class LrDecay(ScaleTransform):
    """Inverse-time decay by step inside the optimizer, as torch.optim.Adagrad's ``lr_decay``:

        update = update / (1 + (t − 1) · k)
    """

    def __init__(self, decay: float) -> None:
        check_number("lr_decay", decay, low=0.0)
        super().__init__()
        self.decay = decay

    def factors(self, ctx: Context) -> list[float]:
        return [1.0 / (1.0 + (t - 1) * self.decay) for t in ctx.steps]

    def update(self, u: Update, ctx: Context) -> Update:
        return super().update(u, ctx) if self.decay else u


def scale_by_rms(beta: float = 0.999, eps: float = 1e-8, *, eps_inside: bool = False,
                 eps_form: str = "corrected", bias_correction: bool = False,
                 centered: bool = False, amsgrad: bool = False,
                 amsgrad_max: str = "raw") -> ScaleByRms:
    """Divide by √(EWA of g²) + ε (RMSprop; Adam with bias_correction). See :class:`ScaleByRms`."""
    return ScaleByRms(beta, eps, eps_inside=eps_inside, eps_form=eps_form,
                      bias_correction=bias_correction, centered=centered, amsgrad=amsgrad,
                      amsgrad_max=amsgrad_max)


def scale_by_adagrad(eps: float = 1e-10, initial_accumulator_value: float = 0.0, *,
                     eps_inside: bool = False) -> ScaleByAdagrad:
    """Divide by √(Σ g²) + ε. See :class:`ScaleByAdagrad`."""
    return ScaleByAdagrad(eps, initial_accumulator_value, eps_inside=eps_inside)


def scale_by_inf_norm(beta: float = 0.999, eps: float = 1e-8, *,
                      eps_form: str = "inside") -> ScaleByInfNorm:
    """Divide by Adamax's infinity norm. See :class:`ScaleByInfNorm`."""
    return ScaleByInfNorm(beta, eps, eps_form=eps_form)


def sign() -> Sign:
    """Replace the update by its sign. See :class:`Sign`."""
    return Sign()


def scale_by_lr(lr: float | None = None) -> ScaleByLr:
    """Multiply by −lr (the group's lr when None). See :class:`ScaleByLr`."""
    return ScaleByLr(lr)


def scale(factor: float) -> Scale:
    """Multiply the update by a constant. See :class:`Scale`."""
    return Scale(factor)


def lr_decay(decay: float) -> LrDecay:
    """Divide the update by 1 + (t − 1)·decay. See :class:`LrDecay`."""
    return LrDecay(decay)
