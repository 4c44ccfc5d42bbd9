"""The schedule contract: ``schedule(step) -> float``, the absolute learning rate at a step.

A schedule is a pure function of an integer time ``t`` (0-based): it holds no mutable state, so
the same step always gives the same value and a resumed run continues exactly. Every schedule is
a small frozen dataclass (comparable, hashable, picklable) whose ``repr`` is the call that builds
it, e.g. ``cosine(lr=0.1, total=1000, min_lr=0.0)``.

Time is abstract: the Trainer calls ``schedule(global_step)``, so ``t`` counts optimizer steps.
For a schedule written in epochs, ``schedule.per_epoch(steps_per_epoch)`` turns it into one of
optimizer steps whose value at step ``s`` is ``schedule(s // steps_per_epoch)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Callable
from typing import Any, ClassVar

from optimlab._checks import check_number

#: what composite schedules accept: a :class:`Schedule` or any pure function of the step
ScheduleLike = Callable[[int], float]


class ScheduleEndsEarly(UserWarning):
    """A schedule settles at its final rate (:attr:`Schedule.end`) before training ends."""


def as_step(step: Any) -> int:
    """``step`` as a Python ``int`` ≥ 0 (NumPy and torch integers accepted), else ValueError."""
    if type(step) is int and step >= 0:  # the fast path: every call goes through here
        return step
    try:
        if isinstance(step, bool):
            raise TypeError
        value = operator.index(step)
    except TypeError:
        raise ValueError(f"step={step!r} is not an integer; expected a value >= 0") from None
    if value < 0:
        raise ValueError(f"step={step!r} is out of range; expected a value >= 0")
    return value


def check_schedule(name: str, schedule: Any) -> None:
    """Raise ``ValueError`` unless ``schedule`` can be called with a step."""
    if not callable(schedule):
        raise ValueError(f"{name}={schedule!r} is not a schedule; expected a Schedule or a "
                         f"function of the step returning a learning rate")


def check_boundaries(name: str, boundaries: Any) -> tuple[int, ...]:
    """``boundaries`` as a tuple of strictly increasing integers ≥ 1, else ValueError."""
    try:
        values = tuple(boundaries)
    except TypeError:
        raise ValueError(f"{name}={boundaries!r} is not a sequence of integers; expected "
                         f"strictly increasing integers >= 1") from None
    for i, b in enumerate(values):
        check_number(f"{name}[{i}]", b, low=1, integer=True)
    values = tuple(int(b) for b in values)
    if any(a >= b for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name}={boundaries!r} is not strictly increasing; expected "
                         f"strictly increasing integers >= 1")
    return values


class Schedule:
    """Base class of every schedule: ``schedule(step)`` is the learning rate at ``step``.

    Subclasses are frozen dataclasses that implement ``__call__``; the public constructors
    (:func:`optimlab.schedules.cosine`, …) validate the arguments and build them.
    """

    #: the public constructor whose call the ``repr`` shows
    _constructor: ClassVar[str] = ""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    @property
    def end(self) -> int | None:
        """The step from which a schedule that runs to a close (cosine, polynomial, one-cycle,
        and warmups or joins ending in one) holds its final rate; None for one that goes on
        (a constant, a decay without end, a cycle). Training past it trains at that rate."""
        return None

    def per_epoch(self, steps_per_epoch: int) -> Schedule:
        """This schedule counted in epochs: the value at optimizer step ``s`` is
        ``self(s // steps_per_epoch)``, constant within an epoch."""
        check_number("steps_per_epoch", steps_per_epoch, low=1, integer=True)
        return PerEpoch(self, int(steps_per_epoch))

    def __repr__(self) -> str:
        if not dataclasses.is_dataclass(self):
            return f"{type(self).__name__}()"
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                         if f.repr)
        return f"{self._constructor or type(self).__name__}({args})"


@dataclasses.dataclass(frozen=True, repr=False)
class PerEpoch(Schedule):
    """``inner(s // steps_per_epoch)``: a schedule of epochs read at optimizer steps."""

    inner: ScheduleLike
    steps_per_epoch: int

    def __call__(self, step: int) -> float:
        return self.inner(as_step(step) // self.steps_per_epoch)

    @property
    def end(self) -> int | None:
        inner = getattr(self.inner, "end", None)
        return None if inner is None else inner * self.steps_per_epoch

    def __repr__(self) -> str:
        return f"{self.inner!r}.per_epoch({self.steps_per_epoch})"
