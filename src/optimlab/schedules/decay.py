"""Decay schedules of the notes: α starts at α₀ (``lr``) and shrinks with time ``t``.

Each constructor's docstring gives its formula. ``t`` is whatever the caller counts (optimizer
steps, or epochs through ``.per_epoch(steps_per_epoch)``). Rates are computed in float64 and, where
torch has the same schedule, with torch's closed-form arithmetic.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable

from optimlab._checks import check_choice, check_number
from optimlab.schedules.base import Schedule, as_step, check_boundaries

_frozen = dataclasses.dataclass(frozen=True, repr=False)


@_frozen
class Constant(Schedule):
    _constructor = "constant"
    lr: float

    def __call__(self, step: int) -> float:
        as_step(step)
        return self.lr


@_frozen
class InverseTime(Schedule):
    _constructor = "inverse_time"
    lr: float
    decay_rate: float

    def __call__(self, step: int) -> float:
        return self.lr / (1.0 + self.decay_rate * as_step(step))


@_frozen
class Exponential(Schedule):
    _constructor = "exponential"
    lr: float
    rate: float

    def __call__(self, step: int) -> float:
        try:
            return self.lr * self.rate ** as_step(step)
        except OverflowError:  # rate > 1 for a very long time
            return math.inf if self.lr > 0 else 0.0


@_frozen
class StepDecay(Schedule):
    _constructor = "step_decay"
    lr: float
    every: int
    factor: float

    def __call__(self, step: int) -> float:
        return self.lr * self.factor ** (as_step(step) // self.every)


@_frozen
class MultiStep(Schedule):
    _constructor = "multi_step"
    lr: float
    milestones: tuple[int, ...]
    gamma: float

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** bisect.bisect_right(self.milestones, as_step(step))


@_frozen
class Piecewise(Schedule):
    _constructor = "piecewise"
    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def __call__(self, step: int) -> float:
        return self.values[bisect.bisect_right(self.boundaries, as_step(step))]


@_frozen
class Polynomial(Schedule):
    _constructor = "polynomial"
    lr: float
    total: int
    power: float
    end_lr: float
    cycle: bool = False

    def __call__(self, step: int) -> float:
        t, total = as_step(step), self.total
        if self.cycle:  # the first multiple of T at or after t (T itself at t = 0)
            total *= max(1, -(-t // total))
        else:
            t = min(t, total)
        return (self.lr - self.end_lr) * (1.0 - t / total) ** self.power + self.end_lr

    @property
    def end(self) -> int | None:
        return None if self.cycle else self.total


@_frozen
class Cosine(Schedule):
    _constructor = "cosine"
    lr: float
    total: int
    min_lr: float

    def __call__(self, step: int) -> float:
        t = min(as_step(step), self.total)
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total)) / 2

    @property
    def end(self) -> int | None:
        return self.total


# -- constructors ---------------------------------------------------------------------------------
def _check_lr(name: str, value: float) -> float:
    check_number(name, value, low=0.0)
    return float(value)


def constant(lr: float) -> Schedule:
    """Constant learning rate, ``α(t) = α₀``."""
    return Constant(_check_lr("lr", lr))


def inverse_time(lr: float, decay_rate: float) -> Schedule:
    """The notes' 1/t decay, ``α(t) = α₀ / (1 + k·t)`` with ``k = decay_rate``.

    With α₀ = 0.2 and k = 1, epochs 0, 1, 2, 3 give 0.2, 0.1, 0.0667, 0.05.
    """
    check_number("decay_rate", decay_rate, low=0.0)
    return InverseTime(_check_lr("lr", lr), float(decay_rate))


def exponential(lr: float, rate: float) -> Schedule:
    """Exponential decay, ``α(t) = α₀·rᵗ`` (the notes' ``0.95^epoch·α₀``; torch's ExponentialLR).

    The notes' other form ``α₀·exp(−k·t)`` is ``rate = exp(−k)``. ``rate > 1`` grows.
    """
    check_number("rate", rate, low=0.0, low_open=True)
    return Exponential(_check_lr("lr", lr), float(rate))


def step_decay(lr: float, every: int, factor: float = 0.5) -> Schedule:
    """Staircase decay, ``α(t) = α₀·factor^⌊t/every⌋`` ("halve every k epochs"; torch's StepLR
    with ``step_size=every, gamma=factor``)."""
    check_number("every", every, low=1, integer=True)
    check_number("factor", factor, low=0.0, low_open=True)
    return StepDecay(_check_lr("lr", lr), int(every), float(factor))


def multi_step(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> Schedule:
    """Decay by ``gamma`` at each milestone, ``α(t) = α₀·γ^#{m ∈ milestones : m ≤ t}``
    (torch's MultiStepLR; the new rate starts at the milestone itself; a repeated milestone
    counts twice)."""
    try:
        values = sorted(milestones)
    except TypeError:
        raise ValueError(f"milestones={milestones!r} is not a sequence of integers; expected "
                         f"integers >= 1") from None
    for i, m in enumerate(values):
        check_number(f"milestones[{i}]", m, low=1, integer=True)
    check_number("gamma", gamma, low=0.0, low_open=True)
    return MultiStep(_check_lr("lr", lr), tuple(int(m) for m in values), float(gamma))


def piecewise(boundaries: Iterable[int], values: Iterable[float]) -> Schedule:
    """Piecewise constant: ``values[i]`` for ``boundaries[i-1] ≤ t < boundaries[i]``.

    ``values`` has one more entry than ``boundaries`` (strictly increasing integers ≥ 1); the
    value changes *at* each boundary: ``piecewise([10], [0.1, 0.01])(10) == 0.01``.
    """
    bounds = check_boundaries("boundaries", boundaries)
    try:
        vals = tuple(values)
    except TypeError:
        raise ValueError(f"values={values!r} is not a sequence of learning rates") from None
    if len(vals) != len(bounds) + 1:
        raise ValueError(f"values={values!r} has {len(vals)} entries; expected "
                         f"len(boundaries) + 1 = {len(bounds) + 1}")
    return Piecewise(bounds, tuple(_check_lr(f"values[{i}]", v) for i, v in enumerate(vals)))


def polynomial(lr: float, total: int, power: float = 1.0, end_lr: float = 0.0,
               cycle: bool = False) -> Schedule:
    """Polynomial decay, ``α(t) = (α₀ − α_end)·(1 − min(t, T)/T)^p + α_end`` with ``T = total``.

    ``power=1`` is a straight line from ``lr`` to ``end_lr``; after ``total`` it holds ``end_lr``
    (with ``end_lr=0`` this is torch's PolynomialLR). ``cycle=True`` decays again instead of
    holding, over a horizon stretched to the first multiple of T at or after t:
    ``α(t) = (α₀ − α_end)·(1 − t/T_c)^p + α_end`` with ``T_c = T·max(1, ⌈t/T⌉)``, as
    TensorFlow's and Keras's ``PolynomialDecay(cycle=True)``.
    """
    check_number("total", total, low=1, integer=True)
    check_number("power", power, low=0.0, low_open=True)
    check_choice("cycle", cycle, (False, True))
    return Polynomial(_check_lr("lr", lr), int(total), float(power), _check_lr("end_lr", end_lr),
                      bool(cycle))


def cosine(lr: float, total: int, min_lr: float = 0.0) -> Schedule:
    """Cosine annealing, ``α(t) = α_min + (α₀ − α_min)·(1 + cos(π·min(t, T)/T))/2``, ``T = total``.

    Equals torch's CosineAnnealingLR on ``[0, total]``. After ``total`` it holds ``min_lr``
    (torch's would climb back up; use :func:`cosine_restarts` for restarts).
    """
    check_number("total", total, low=1, integer=True)
    return Cosine(_check_lr("lr", lr), int(total), _check_lr("min_lr", min_lr))
