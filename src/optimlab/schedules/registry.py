"""Schedules by name: :func:`available` lists them, :func:`create` builds one from keywords
(as a TOML spec or a command line gives them)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from optimlab.schedules.base import Schedule
from optimlab.schedules.compose import join, warmup
from optimlab.schedules.cyclic import cosine_restarts, cyclic, one_cycle
from optimlab.schedules.decay import (
    constant,
    cosine,
    exponential,
    inverse_time,
    multi_step,
    piecewise,
    polynomial,
    step_decay,
)

_CONSTRUCTORS: dict[str, tuple[Callable[..., Schedule], str]] = {
    "constant": (constant, "α₀ at every step"),
    "inverse_time": (inverse_time, "1/t decay: α₀/(1 + k·t)"),
    "exponential": (exponential, "exponential decay: α₀·rᵗ"),
    "step_decay": (step_decay, "staircase: α₀·factor^⌊t/every⌋ (halve every k)"),
    "multi_step": (multi_step, "α₀·γ^(number of milestones ≤ t)"),
    "piecewise": (piecewise, "piecewise constant: values[i] between boundaries"),
    "polynomial": (polynomial, "(α₀ − α_end)·(1 − t/T)^p + α_end, then α_end (or cycle)"),
    "cosine": (cosine, "cosine annealing from α₀ to α_min over T steps, then α_min"),
    "cosine_restarts": (cosine_restarts,
                        "cosine with warm restarts (SGDR), periods T₀·mⁱ, peaks scaled"),
    "cyclic": (cyclic, "cyclical learning rate between base_lr and max_lr (CLR)"),
    "one_cycle": (one_cycle, "1cycle: up to max_lr, then down far below the start"),
    "warmup": (warmup, "linear warmup for n steps, then the wrapped schedule from its t=0"),
    "join": (join, "schedules end to end, each from its own t=0 after its boundary"),
}


def available() -> dict[str, str]:
    """Every schedule name with a one-line description."""
    return {name: summary for name, (_, summary) in _CONSTRUCTORS.items()}


def create(name: str, **kwargs: Any) -> Schedule:
    """The schedule called ``name`` (see :func:`available`) built with ``kwargs``.

    For ``warmup`` and ``join``, a schedule argument may itself be a mapping with a ``"name"``
    key, built recursively: ``create("warmup", schedule={"name": "cosine", "lr": 0.1,
    "total": 900}, steps=100)``.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _CONSTRUCTORS:
        raise ValueError(f"unknown schedule {name!r}; available: {', '.join(_CONSTRUCTORS)}")
    build = _CONSTRUCTORS[key][0]
    if "schedule" in kwargs:
        kwargs["schedule"] = _build(kwargs["schedule"])
    if "schedules" in kwargs and isinstance(kwargs["schedules"], list | tuple):
        kwargs["schedules"] = [_build(s) for s in kwargs["schedules"]]
    signature = inspect.signature(build)
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        raise ValueError(f"{key} has no argument {', '.join(map(repr, unknown))}; it takes "
                         f"{', '.join(signature.parameters)}")
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        takes = ", ".join(signature.parameters)
        raise ValueError(f"{key}: {error}; it takes {takes}") from None
    return build(**kwargs)


def _build(spec: Any) -> Any:
    if isinstance(spec, Mapping) and "name" in spec:
        rest = {k: v for k, v in spec.items() if k != "name"}
        return create(spec["name"], **rest)
    return spec
