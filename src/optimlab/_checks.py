"""Argument checks shared by every package: each error names the argument, the value and what is
allowed, so that a user can fix the call from the message alone."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number in the given range.

    ``low_open``/``high_open`` exclude the bound itself: ``check_number("beta", b, low=0,
    high=1, high_open=True)`` allows ``0 <= b < 1``.
    """
    problem = None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        problem = f"is not {'an integer' if integer else 'a number'}"
    elif integer and not isinstance(value, numbers.Integral):
        problem = "is not an integer"
    elif not math.isfinite(value):
        problem = "is not finite"
    elif (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and (value >= high if high_open else value > high)):
        problem = "is out of range"
    if problem is not None:  # the message is built only when it is needed
        raise ValueError(f"{name}={value!r} {problem}; expected "
                         f"{_describe(low, high, low_open, high_open)}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    options = list(choices)
    if value not in options:
        shown = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {shown}")


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        return f"a value in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"a value {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a value {'<' if high_open else '<='} {high:g}"
    return "a finite number"
