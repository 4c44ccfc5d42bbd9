"""Composition: a linear warmup in front of a schedule, and schedules joined end to end.

Both *shift* the schedules they hold, as optax (``join_schedules``) and torch (``SequentialLR``)
do: the schedule that takes over at a boundary starts from its own ``t = 0``. So
``warmup(cosine(lr, 900), 100)`` ramps for 100 steps and then runs the whole cosine, reaching
``min_lr`` at step 1000.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable

from optimlab._checks import check_number
from optimlab.schedules.base import (
    Schedule,
    ScheduleLike,
    as_step,
    check_boundaries,
    check_schedule,
)

_frozen = dataclasses.dataclass(frozen=True, repr=False)


@_frozen
class Warmup(Schedule):
    _constructor = "warmup"
    schedule: ScheduleLike
    steps: int
    start_factor: float

    def __call__(self, step: int) -> float:
        t = as_step(step)
        if t >= self.steps:
            return self.schedule(t - self.steps)
        peak = self.schedule(0)
        return peak * (self.start_factor + (1.0 - self.start_factor) * t / self.steps)

    @property
    def end(self) -> int | None:
        inner = getattr(self.schedule, "end", None)
        return None if inner is None else self.steps + inner


@_frozen
class Join(Schedule):
    _constructor = "join"
    schedules: tuple[ScheduleLike, ...]
    boundaries: tuple[int, ...]

    def __call__(self, step: int) -> float:
        t = as_step(step)
        i = bisect.bisect_right(self.boundaries, t)
        start = self.boundaries[i - 1] if i else 0
        return self.schedules[i](t - start)

    @property
    def end(self) -> int | None:
        last = getattr(self.schedules[-1], "end", None)
        return None if last is None else self.boundaries[-1] + last


def warmup(schedule: ScheduleLike, steps: int, start_factor: float = 0.0) -> Schedule:
    """Linear warmup into ``schedule``; the wrapped schedule is shifted by ``steps``:

    ``α(t) = schedule(0)·(f + (1 − f)·t/steps)`` for ``t < steps`` (``f = start_factor``), and
    ``α(t) = schedule(t − steps)`` after, so the ramp ends exactly where the schedule begins.
    This is torch's ``SequentialLR([LinearLR(start_factor=f, total_iters=steps), …],
    milestones=[steps])``; optax's ``warmup_cosine_decay_schedule(init, peak, W, D, end)`` is
    ``warmup(cosine(peak, D - W, end), W, init/peak)``. ``steps=0`` is no warmup.

    The notes' "warmup + cosine" (``α₀·(e+1)/W`` for ``e < W``, then a cosine over the
    remaining ``T − W`` epochs, which starts at α₀ again at ``e = W``) is
    ``join([warmup(constant(α₀), W - 1, 1/W), cosine(α₀, T - W, α_min)], [W])``.
    """
    check_schedule("schedule", schedule)
    check_number("steps", steps, low=0, integer=True)
    check_number("start_factor", start_factor, low=0.0, high=1.0)
    return Warmup(schedule, int(steps), float(start_factor))


def join(schedules: Iterable[ScheduleLike], boundaries: Iterable[int]) -> Schedule:
    """Run ``schedules[i]`` on ``[boundaries[i-1], boundaries[i])``, each from its own ``t = 0``:

    ``α(t) = schedules[i](t − boundaries[i−1])`` (optax's ``join_schedules``, torch's
    ``SequentialLR``). ``boundaries`` are strictly increasing integers ≥ 1, one fewer than
    ``schedules``.
    """
    try:
        parts = tuple(schedules)
    except TypeError:
        raise ValueError(f"schedules={schedules!r} is not a sequence of schedules") from None
    if not parts:
        raise ValueError("schedules=() is empty; expected at least one schedule")
    for i, s in enumerate(parts):
        check_schedule(f"schedules[{i}]", s)
    bounds = check_boundaries("boundaries", boundaries)
    if len(bounds) != len(parts) - 1:
        raise ValueError(f"boundaries={boundaries!r} has {len(bounds)} entries; expected "
                         f"len(schedules) - 1 = {len(parts) - 1}")
    return Join(parts, bounds)
