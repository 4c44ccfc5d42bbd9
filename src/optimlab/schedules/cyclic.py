"""Cyclic schedules: cosine with warm restarts (SGDR), cyclical learning rates (CLR) and the
1cycle policy. Each equals the torch scheduler of the same idea, step for step, because it
evaluates torch's formula in closed form with the same float64 arithmetic.
"""

from __future__ import annotations

import dataclasses
import math

from optimlab._checks import check_choice, check_number
from optimlab.schedules.base import Schedule, as_step

_frozen = dataclasses.dataclass(frozen=True, repr=False)


@_frozen
class CosineRestarts(Schedule):
    _constructor = "cosine_restarts"
    lr: float
    first_period: int
    period_mult: float
    min_lr: float
    peak_mult: float = 1.0

    def _period(self, t: int) -> tuple[int, float, float]:
        """(index i, start, length T_i) of the period holding step ``t``."""
        first, mult = self.first_period, self.period_mult
        if mult == 1:
            i = t // first
            return i, i * first, first
        if isinstance(mult, int):  # T₀·m^i: skip whole periods in integer arithmetic (exact)
            i, start, period = 0, 0, first
            while t >= start + period:
                i, start, period = i + 1, start + period, period * mult
            return i, start, period

        def start_of(k: int) -> float:  # T₀·(m^k − 1)/(m − 1), the sum of the first k periods
            return first * (mult**k - 1.0) / (mult - 1.0)

        # closed form for the index, then exact comparisons against the period starts
        i = max(0, math.floor(math.log1p(t * (mult - 1.0) / first) / math.log(mult)))
        while i > 0 and t < start_of(i):
            i -= 1
        while t >= start_of(i + 1):
            i += 1
        start = start_of(i)
        return i, start, start_of(i + 1) - start

    def __call__(self, step: int) -> float:
        i, start, period = self._period(as_step(step))
        t_cur = as_step(step) - start
        amplitude = (self.lr - self.min_lr) * (self.peak_mult**i if self.peak_mult != 1 else 1.0)
        return self.min_lr + amplitude * (1 + math.cos(math.pi * t_cur / period)) / 2


@_frozen
class Cyclic(Schedule):
    _constructor = "cyclic"
    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int
    mode: str
    gamma: float

    def __call__(self, step: int) -> float:
        t = as_step(step)
        total = float(self.step_size_up) + float(self.step_size_down)
        ratio = self.step_size_up / total
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        height = (self.max_lr - self.base_lr) * scale
        if self.mode == "triangular":
            amplitude = 1.0
        elif self.mode == "triangular2":
            amplitude = math.ldexp(1.0, 1 - cycle)  # 1/2^(cycle-1), no overflow
        else:  # exp_range
            amplitude = self.gamma**t
        return self.base_lr + height * amplitude


@_frozen
class OneCycle(Schedule):
    _constructor = "one_cycle"
    max_lr: float
    total_steps: int
    pct_start: float
    anneal: str
    div_factor: float
    final_div_factor: float
    three_phase: bool

    @property
    def end(self) -> int | None:
        return self.total_steps - 1

    def __call__(self, step: int) -> float:
        t = min(as_step(step), self.total_steps - 1)
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            phases = ((rise, initial, self.max_lr),
                      (float(2 * self.pct_start * self.total_steps) - 2, self.max_lr, initial),
                      (self.total_steps - 1, initial, final))
        else:
            phases = ((rise, initial, self.max_lr), (self.total_steps - 1, self.max_lr, final))
        start = 0.0
        for i, (end, a, b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start) if end > start else 1.0
                if self.anneal == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            start = end
        raise AssertionError("unreachable")  # pragma: no cover


def cosine_restarts(lr: float, first_period: int, period_mult: float = 1,
                    min_lr: float = 0.0, peak_mult: float = 1.0) -> Schedule:
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017):

    ``α(t) = α_min + (α₀ − α_min)·m^i·(1 + cos(π·t_cur/T_i))/2``, where period ``i`` lasts
    ``T_i = first_period·period_mult^i`` steps, ``t_cur`` counts steps since its start and
    ``m = peak_mult`` scales each restart's peak. With an integer ``period_mult`` and
    ``peak_mult=1`` this is torch's CosineAnnealingWarmRestarts step for step. A non-integer
    ``period_mult`` (periods of fractional length) and ``peak_mult`` are TensorFlow's and Keras's
    ``CosineDecayRestarts(t_mul=…, m_mul=…)`` with ``alpha = min_lr/lr``.
    """
    check_number("lr", lr, low=0.0)
    check_number("first_period", first_period, low=1, integer=True)
    check_number("period_mult", period_mult, low=1)
    check_number("min_lr", min_lr, low=0.0)
    check_number("peak_mult", peak_mult, low=0.0, low_open=True)
    mult = int(period_mult) if float(period_mult).is_integer() else float(period_mult)
    return CosineRestarts(float(lr), int(first_period), mult, float(min_lr), float(peak_mult))


def cyclic(base_lr: float, max_lr: float, step_size_up: int, step_size_down: int | None = None,
           mode: str = "triangular", gamma: float = 1.0) -> Schedule:
    """Cyclical learning rate (Smith, 2017), torch's CyclicLR (``cycle_momentum=False``):

    a cycle rises linearly from ``base_lr`` to ``max_lr`` in ``step_size_up`` steps and falls
    back in ``step_size_down`` (default: the same). With ``x`` the position in the cycle,
    ``α(t) = base_lr + (max_lr − base_lr)·h(x)·s``, where ``s`` is 1 (``"triangular"``),
    ``1/2^(cycle−1)`` (``"triangular2"``: the amplitude halves each cycle) or ``γᵗ``
    (``"exp_range"``).
    """
    check_number("base_lr", base_lr, low=0.0)
    check_number("max_lr", max_lr, low=base_lr)
    check_number("step_size_up", step_size_up, low=1, integer=True)
    if step_size_down is None:
        step_size_down = step_size_up
    check_number("step_size_down", step_size_down, low=0, integer=True)
    check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
    check_number("gamma", gamma, low=0.0, high=1.0, low_open=True)
    return Cyclic(float(base_lr), float(max_lr), int(step_size_up), int(step_size_down), mode,
                  float(gamma))


def one_cycle(max_lr: float, total_steps: int, pct_start: float = 0.3, anneal: str = "cos",
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              three_phase: bool = False) -> Schedule:
    """The 1cycle policy (Smith & Topin, 2018), torch's OneCycleLR (``cycle_momentum=False``):

    from ``max_lr/div_factor`` up to ``max_lr`` over the first ``pct_start`` of ``total_steps``,
    then down to ``max_lr/(div_factor·final_div_factor)`` at step ``total_steps − 1``; each
    phase a half cosine (``anneal="cos"``) or a line (``"linear"``). ``three_phase=True`` comes
    back down to ``max_lr/div_factor`` symmetrically before the final annihilation phase.
    After ``total_steps − 1`` it holds the final rate (torch raises after ``total_steps``).
    """
    check_number("max_lr", max_lr, low=0.0)
    check_number("total_steps", total_steps, low=1, integer=True)
    check_number("pct_start", pct_start, low=0.0, high=0.5 if three_phase else 1.0)
    check_choice("anneal", anneal, ("cos", "linear"))
    check_number("div_factor", div_factor, low=0.0, low_open=True)
    check_number("final_div_factor", final_div_factor, low=0.0, low_open=True)
    check_choice("three_phase", three_phase, (False, True))
    return OneCycle(float(max_lr), int(total_steps), float(pct_start), anneal, float(div_factor),
                    float(final_div_factor), bool(three_phase))
