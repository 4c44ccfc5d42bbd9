"""A study's configurations: the axes' grid, the named [[configs]], or both crossed.

:func:`configurations` turns a :class:`~optimlab.lab.spec.StudySpec` into (label, full train
settings) pairs, each validated as a :class:`~optimlab.lab.spec.TrainSpec`: dotted axis keys
reach into tables (``"model.init"``), labels are plain text and unique, and two configurations
with identical settings are refused (they would share their trials).
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from pydantic import ValidationError

from optimlab.lab.spec_models import (
    MAX_TRIALS,
    SpecError,
    StudySpec,
    TrainSpec,
    check_text,
    first_error,
)


def _set_dotted(settings: dict[str, Any], key: str, value: Any) -> None:
    """``settings["model"]["init"] = value`` for ``key = "model.init"``."""
    head, _, rest = key.partition(".")
    if not rest:
        settings[head] = value
        return
    inner = settings.get(head)
    if isinstance(inner, str):
        inner = {"type": inner}
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise SpecError(f"axis {key!r}: {head} is {inner!r}, not a table to reach into")
    inner = dict(inner)
    _set_dotted(inner, rest, value)
    settings[head] = inner


def _short(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true / false / null, as TOML and JSON write them
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def configurations(spec: StudySpec) -> list[tuple[str, dict[str, Any]]]:
    """(label, full train settings) for every configuration.

    The axes' grid; or the [[configs]]; or, with both, every config crossed with every
    combination of the axes (configs outer, labelled ``"config, axis=value"``). Each is
    validated as a :class:`TrainSpec`; labels are unique, and so are the settings (two labels
    for one configuration would share its trials).
    """
    base = spec.train.model_dump()
    grid: list[tuple[str, list[tuple[str, Any]]]] = []
    if spec.axes:
        keys = list(spec.axes)
        for combo in itertools.product(*(spec.axes[k] for k in keys)):
            label = (_short(combo[0]) if len(keys) == 1 else
                     ", ".join(f"{k}={_short(v)}" for k, v in zip(keys, combo, strict=True)))
            grid.append((label, list(zip(keys, combo, strict=True))))
    named: list[tuple[str, list[tuple[str, Any]]]] = []
    for i, config in enumerate(spec.configs):
        config = dict(config)
        raw = config.pop("label", "")
        if not isinstance(raw, str):
            raise SpecError(f"configs[{i}].label={raw!r} must be a string")
        label = raw or ", ".join(f"{k}={_short(v)}" for k, v in config.items())
        named.append((label or f"config {i}", list(config.items())))
    if grid and named:
        for label, items in named:
            clash = sorted({k for k, _ in items} & set(spec.axes))
            if clash:
                raise SpecError(f"configuration {label!r} sets {', '.join(clash)}, which the "
                                "axes sweep; leave it to the axes or remove the axis")
        combos = [(f"{c_label}, {a_label}" if len(spec.axes) > 1 else
                   f"{c_label}, {next(iter(spec.axes))}={a_label}", c_items + a_items)
                  for c_label, c_items in named for a_label, a_items in grid]
    else:
        combos = grid or named
    out: list[tuple[str, dict[str, Any]]] = []
    for label, items in combos or [("base", [])]:
        settings = copy.deepcopy(base)
        for k, v in items:
            _set_dotted(settings, k, v)
        out.append((label, settings))
    seen: dict[str, str] = {}
    restarted: dict[str, str] = {}
    checked: list[tuple[str, dict[str, Any]]] = []
    for label, settings in out:
        try:
            check_text("label", label)
        except ValueError as err:
            raise SpecError(f"configuration {label!r}: {err}") from None
        if label in seen:
            raise SpecError(f"two configurations are both labelled {label!r}; give each a "
                            "distinct label")
        try:
            full = TrainSpec.model_validate(settings).model_dump()
        except ValidationError as err:
            raise SpecError(f"configuration {label!r}: {first_error(err)}") from None
        except ValueError as err:
            raise SpecError(f"configuration {label!r}: {err}") from None
        same = json.dumps(full, sort_keys=True, default=str)
        twin = next((other for other, text in seen.items() if text == same), None)
        if twin is not None:
            raise SpecError(f"configurations {twin!r} and {label!r} have identical settings, so "
                            "they would be the same trials; remove one, or make them differ")
        # restart r of a configuration is one trial whatever its number of restarts
        but_restarts = json.dumps({**full, "restarts": full["restarts"] > 1}, sort_keys=True,
                                  default=str)
        twin = next((other for other, text in restarted.items() if text == but_restarts), None)
        if twin is not None and full["restarts"] > 1:
            raise SpecError(f"configurations {twin!r} and {label!r} differ only in restarts, so "
                            "their first restarts would be the same trials; keep the one with "
                            "more restarts, or make them differ in another setting")
        seen[label] = same
        restarted[label] = but_restarts
        checked.append((label, full))
    restarts = sum(settings["restarts"] for _, settings in checked)
    total = len(spec.seed_list) * len(spec.data.fold_ids) * restarts
    if total > MAX_TRIALS:
        raise SpecError(f"the spec makes {total} trials ({len(checked)} configurations with "
                        f"{restarts} restarts in all × {len(spec.data.fold_ids)} folds × "
                        f"{len(spec.seed_list)} seeds); the lab allows at most {MAX_TRIALS}")
    if spec.baseline is not None and spec.baseline not in seen:
        raise SpecError(f"baseline={spec.baseline!r} is not a configuration; the labels are: "
                        f"{', '.join(label for label, _ in checked)}")
    return checked


