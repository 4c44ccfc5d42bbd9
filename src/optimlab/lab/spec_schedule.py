"""A spec's schedule has one owner of the learning rate: ``lr``.

In a study spec a schedule is written relative to the configuration's ``lr``: a schedule that
takes an ``lr`` and does not give one starts at it (:func:`resolve_schedule`). A schedule that
names its own ``lr`` must agree with an ``lr`` also given, and one whose rates are its own
arguments (:data:`OWN_RATES`) cannot be combined with ``lr`` (:func:`own_rates`,
:func:`explicit_lrs` find them, nested ones included). :func:`schedule_end` says when a schedule
settles at its final rate, so a schedule that ends before training does can be flagged.
"""

from __future__ import annotations

import inspect
from typing import Any

#: schedules whose rates are their own arguments (no single ``lr`` to start from)
OWN_RATES = {"cyclic": ("base_lr", "max_lr"), "one_cycle": ("max_lr",),
             "piecewise": ("values",)}


def own_rates(schedule: Any) -> str:
    """The rate arguments of a schedule (or of one inside it) that has no single ``lr``."""
    if not isinstance(schedule, dict):
        return ""
    name = str(schedule.get("name", "")).lower()
    if name in OWN_RATES:
        return ", ".join(f"{k} = {schedule[k]}" for k in OWN_RATES[name] if k in schedule)
    inner = [schedule.get("schedule"), *(schedule.get("schedules") or [])]
    return next((r for r in map(own_rates, inner) if r), "")


def explicit_lrs(schedule: Any) -> list[float]:
    """Every ``lr`` a schedule (or one inside it) names itself."""
    if not isinstance(schedule, dict):
        return []
    out = [schedule["lr"]] if "lr" in schedule else []
    for inner in [schedule.get("schedule"), *(schedule.get("schedules") or [])]:
        out += explicit_lrs(inner)
    return out


def resolve_schedule(schedule: dict[str, Any], lr: float) -> dict[str, Any]:
    """The schedule with ``lr`` filled in wherever it (or one inside it) takes an ``lr`` and
    does not give one: a spec's schedule starts at the configuration's lr."""
    from optimlab.schedules.registry import _CONSTRUCTORS

    out = dict(schedule)
    name = str(out.get("name", "")).lower()
    build = _CONSTRUCTORS.get(name, (None,))[0]
    if build is not None and "lr" in inspect.signature(build).parameters and "lr" not in out:
        out["lr"] = lr
    if isinstance(out.get("schedule"), dict):
        out["schedule"] = resolve_schedule(out["schedule"], lr)
    if isinstance(out.get("schedules"), list):
        out["schedules"] = [resolve_schedule(s, lr) if isinstance(s, dict) else s
                            for s in out["schedules"]]
    return out


def schedule_end(schedule: dict[str, Any]) -> int | None:
    """The step (in the schedule's unit) from which the schedule holds its final rate, or None
    if it never settles (a decay that goes on, a cycle): the built schedule's ``end``."""
    from optimlab.schedules import create  # lazy: optimlab.schedules imports torch

    return create(**schedule).end
