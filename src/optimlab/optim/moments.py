"""First-moment transforms: averages of past updates (momentum and its relatives).

Each keeps one buffer per parameter, starts it at zero and replaces the update by it. The first
one in a chain also fixes the *gradient* that later second-moment pieces take statistics of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab._checks import check_choice, check_number
from optimlab.optim.base import Context, Lane, ScaleTransform, Slots, Transform
from optimlab.optim.update import Update, pick, runs


def _zeros(p: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def check_beta(name: str, beta: float) -> None:
    """β of an average must lie in [0, 1): β = 1 would never forget and never learn."""
    check_number(name, beta, low=0.0, high=1.0, high_open=True)


class Ewa(Transform):
    """Exponentially weighted average of the update — the course's momentum.

        v_t = β · v_{t−1} + (1 − β) · g_t,   v_0 = 0,   update = v_t

    It averages about 1/(1 − β) recent updates. Without :class:`BiasCorrection` the first
    values are pulled towards 0 (v_1 = (1 − β) g_1).
    """

    state_names = ("ewa",)

    def __init__(self, beta: float = 0.9) -> None:
        check_beta("beta", beta)
        super().__init__()
        self.beta = beta

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"ewa": _zeros(p)}

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        u.gradient(ctx.params)
        buf = self.state(ctx, "ewa")
        u.accumulate_into(buf, self.beta, [1.0 - self.beta] * len(u), ctx.params)
        return u.replace(buf)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(1.0 - self.beta,)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.gradient()
        buf = state["ewa"]
        buf.lerp_(lane.u, s[0])
        lane.u = buf


class Trace(Transform):
    """Heavy-ball momentum trace, as torch.optim.SGD computes it.

        v_1 = g_1,   v_t = μ · v_{t−1} + (1 − dampening) · g_t,   update = v_t

    The velocity adds gradients without the (1 − β) factor of the EWA form, so the same step
    needs a learning rate about (1 − μ) times smaller. torch starts the buffer at the first
    gradient itself, undampened; so does this piece (it matters only when dampening ≠ 0).
    """

    state_names = ("trace",)

    def __init__(self, momentum: float = 0.9, dampening: float = 0.0) -> None:
        check_beta("momentum", momentum)
        check_number("dampening", dampening, low=0.0, high=1.0)
        super().__init__()
        self.momentum, self.dampening = momentum, dampening

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"trace": _zeros(p)}

    fusion = "elementwise"

    def _weights(self, ctx: Context) -> list[float]:
        return [1.0 if s == 1 else 1.0 - self.dampening for s in ctx.steps]

    def update(self, u: Update, ctx: Context) -> Update:
        u.gradient(ctx.params)
        buf = self.state(ctx, "trace")
        u.accumulate_into(buf, self.momentum, self._weights(ctx), ctx.params)
        return u.replace(buf)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(self.momentum, w) for w in self._weights(ctx)]

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.gradient()
        buf = state["trace"]
        buf.mul_(s[0]).add_(lane.u * s[1])
        lane.u = buf


class Nesterov(Transform):
    """Nesterov look-ahead: step with the gradient plus the velocity it is about to have.

        heavy_ball form:  update = g_t + μ · v_t              (torch.optim.SGD, nesterov=True)
        ewa form:         update = (1 − β) · g_t + β · v_t    (the EWA analogue)

    This is the gradient at the look-ahead point w − α·β·v rewritten so that only the current
    gradient is needed (Sutskever et al., 2013). Place it right after :class:`Trace` or
    :class:`Ewa`.
    """

    def __init__(self, momentum: float = 0.9, form: str = "heavy_ball") -> None:
        check_beta("momentum", momentum)
        check_choice("form", form, ("heavy_ball", "ewa"))
        super().__init__()
        self.momentum, self.form = momentum, form

    fusion = "elementwise"

    def structure(self) -> tuple[Any, ...]:
        return (self.form,)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(self.momentum,)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        grad = lane.gradient()
        if structure[0] == "heavy_ball":
            lane.u = grad + lane.u * s[0]
        else:
            lane.u = torch.lerp(grad, lane.u, s[0])

    def update(self, u: Update, ctx: Context) -> Update:
        grad = u.gradient(ctx.params)
        mu = self.momentum
        g_weight = 1.0 if self.form == "heavy_ball" else 1.0 - mu
        if u.is_plain:  # v stays a separate term: two in-place adds at the final write
            velocity, v_scale = u.num, u.scale
            u.replace(grad)
            u.mul(g_weight)
            return u.add_term(velocity, [mu * s for s in v_scale], ctx.params)
        velocity = u.value(ctx.params)
        if self.form == "heavy_ball":
            out = torch._foreach_add(grad, velocity, alpha=mu)
        else:
            out = torch._foreach_lerp(grad, velocity, mu)
        return u.replace(list(out), owned=True)


class BiasCorrection(ScaleTransform):
    """Bias correction of a zero-started average:  v̂_t = v_t / (1 − β^t).

    Early on β^t is large and the division lifts v_t to the scale of the data (v̂_1 = g_1);
    later the factor tends to 1. Costs nothing: it folds into the final scalar.
    """

    def __init__(self, beta: float = 0.9) -> None:
        check_beta("beta", beta)
        super().__init__()
        self.beta = beta

    def factors(self, ctx: Context) -> list[float]:
        return [1.0 / (1.0 - self.beta**t) for t in ctx.steps]


class NadamMomentum(Transform):
    """Nadam's first moment: Adam's EWA with a Nesterov look-ahead and a momentum schedule.

        m_t = β₁ m_{t−1} + (1 − β₁) g_t
        μ_t = β₁ (1 − ½ · 0.96^(t·ψ))            (schedule=True; μ_t = β₁ when schedule=False)
        Π_t = μ_1 ⋯ μ_t
        update = (1 − μ_t)/(1 − Π_t) · g_t + μ_{t+1}/(1 − Π_{t+1}) · m_t

    With the schedule (ψ = momentum_decay = 0.004) this is torch.optim.NAdam (and Dozat's
    paper); without it, μ is the constant β₁ and the update is
    (1 − β₁) g/(1 − β₁^t) + β₁ m/(1 − β₁^{t+1}), the form optax.nadam uses. Follow it with
    :class:`~optimlab.optim.scaling.ScaleByRms` (bias-corrected) for the denominator.
    """

    state_names = ("exp_avg", "mu_product")

    def __init__(self, beta1: float = 0.9, momentum_decay: float = 4e-3,
                 schedule: bool = True) -> None:
        check_beta("beta1", beta1)
        check_number("momentum_decay", momentum_decay, low=0.0)
        super().__init__()
        self.beta1, self.momentum_decay, self.schedule = beta1, momentum_decay, schedule

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"exp_avg": _zeros(p), "mu_product": 1.0}

    def _mu(self, t: int) -> float:
        if not self.schedule:
            return self.beta1
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    fusion = "elementwise"

    def _advance(self, ctx: Context) -> tuple[list[float], list[float]]:
        """Advance the μ product of every tensor; return the factors a (of g) and b/a (of m)."""
        products = [pr * self._mu(t) for pr, t in zip(self.state(ctx, "mu_product"), ctx.steps,
                                                       strict=True)]
        self.set_state(ctx, "mu_product", products)
        a = [(1.0 - self._mu(t)) / (1.0 - pr) for t, pr in zip(ctx.steps, products, strict=True)]
        b = [self._mu(t + 1) / (1.0 - pr * self._mu(t + 1))
             for t, pr in zip(ctx.steps, products, strict=True)]
        return a, [bi / ai for ai, bi in zip(a, b, strict=True)]

    def update(self, u: Update, ctx: Context) -> Update:
        grad = u.value(ctx.params)
        u.gradient(ctx.params)
        m = self.state(ctx, "exp_avg")
        u.accumulate_into(m, self.beta1, [1.0 - self.beta1] * len(u), ctx.params)
        a, ratio = self._advance(ctx)
        out: list[Tensor] = [None] * len(u)  # type: ignore[list-item]
        for r, idx in runs(ratio):
            fresh = torch._foreach_add(pick(grad, idx), pick(m, idx), alpha=r)
            for i, t in zip(range(len(u)) if idx is None else idx, fresh, strict=True):
                out[i] = t
        return u.replace(out, owned=True).mul(a)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        a, ratio = self._advance(ctx)
        return [(1.0 - self.beta1, r, ai) for ai, r in zip(a, ratio, strict=True)]

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        grad = lane.gradient()
        m = state["exp_avg"]
        m.lerp_(grad, s[0])
        lane.u = (grad + m * s[1]) * s[2]


class LionMomentum(Transform):
    """Lion's interpolated direction and its slower momentum (Chen et al., 2023).

        c_t = β₁ · m_{t−1} + (1 − β₁) · g_t       (update = c_t; follow with sign())
        m_t = β₂ · m_{t−1} + (1 − β₂) · g_t
    """

    state_names = ("exp_avg",)

    def __init__(self, beta1: float = 0.9, beta2: float = 0.99) -> None:
        check_beta("beta1", beta1)
        check_beta("beta2", beta2)
        super().__init__()
        self.beta1, self.beta2 = beta1, beta2

    def init(self, p: Tensor) -> dict[str, Any]:
        return {"exp_avg": _zeros(p)}

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        grad = u.gradient(ctx.params)
        m = self.state(ctx, "exp_avg")
        direction = torch._foreach_lerp(m, grad, 1.0 - self.beta1)
        torch._foreach_lerp_(m, grad, 1.0 - self.beta2)
        return u.replace(list(direction), owned=True)

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(1.0 - self.beta1, 1.0 - self.beta2)] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        grad = lane.gradient()
        m = state["exp_avg"]
        diff = grad - m  # both lerps share g − m (torch's lerp for weights below ½)
        lane.u = m + diff * s[0]
        m.add_(diff * s[1])


def ewa(beta: float = 0.9) -> Ewa:
    """EWA of updates, ``v = βv + (1−β)g`` (the course's momentum). See :class:`Ewa`."""
    return Ewa(beta)


def trace(momentum: float = 0.9, dampening: float = 0.0) -> Trace:
    """Heavy-ball trace, ``v = μv + (1−d)g`` (torch's SGD momentum). See :class:`Trace`."""
    return Trace(momentum, dampening)


def nesterov(momentum: float = 0.9, form: str = "heavy_ball") -> Nesterov:
    """Nesterov look-ahead after a trace or EWA. See :class:`Nesterov`."""
    return Nesterov(momentum, form)


def bias_correction(beta: float = 0.9) -> BiasCorrection:
    """Divide the update by ``1 − β^t``. See :class:`BiasCorrection`."""
    return BiasCorrection(beta)


def nadam_momentum(beta1: float = 0.9, momentum_decay: float = 4e-3,
                   schedule: bool = True) -> NadamMomentum:
    """Nadam's look-ahead first moment. See :class:`NadamMomentum`."""
    return NadamMomentum(beta1, momentum_decay, schedule)


def lion_momentum(beta1: float = 0.9, beta2: float = 0.99) -> LionMomentum:
    """Lion's direction ``β₁m + (1−β₁)g`` and momentum. See :class:`LionMomentum`."""
    return LionMomentum(beta1, beta2)
