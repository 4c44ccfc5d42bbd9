"""The confirmation of a search: its top K configurations and the ``[train]`` baseline, run
again over S fresh seeds as an ordinary lab study, and analysed with the lab's statistics.

A search picks its best trials on one seed each, among many: the best value found is the
maximum of many noisy draws, so it overstates what that configuration gives on another seed
(the winner's curse). The confirmation re-runs the winners on seeds the search never used
(the search trains with the spec's first seed ``s``; the confirmation with ``s + 1 … s + S``),
so their ranking, intervals and paired comparisons with the baseline
(:mod:`optimlab.lab.analysis`) are honest about the seed-to-seed variation. They are still
measured on the validation split the search selected them on; the test column of the ranking
is the unbiased one.

The K are the best complete trials (not pruned: a pruned trial never trained its full budget),
one per distinct configuration. A configuration equal to the baseline is the baseline. Trials
whose data differ (a search over ``data.standardize``) cannot share one study's data: the
confirmation takes the data of the best trial, and the next best trials with the same data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.store import Store
from optimlab.tune.store import SearchTrial

__all__ = ["BASELINE", "Confirmation", "confirmation_name", "confirmation_spec", "top_trials"]


#: the label of the baseline ([train] itself) in a confirmation study
BASELINE = "[train]"


def confirmation_name(search: str) -> str:
    return f"{search} (confirmation)"


@dataclass
class Confirmation:
    """The confirmation study's spec (None when there is nothing to confirm) and what was
    left out, in words."""

    spec: StudySpec | None
    chosen: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def top_trials(trials: list[SearchTrial], direction: str) -> list[SearchTrial]:
    """Complete trials with a finite value, best first (ties: the earlier trial), one per
    configuration (lab trial key)."""
    done = [t for t in trials if t.state == "complete" and t.value is not None
            and math.isfinite(t.value)]
    sign = -1.0 if direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * float(t.value), t.number))  # type: ignore[arg-type]
    out, seen = [], set()
    for t in done:
        if t.key in seen:
            continue
        seen.add(t.key)
        out.append(t)
    return out


def confirmation_spec(base: StudySpec, trials: list[SearchTrial], direction: str, store: Store,
                      study_id: int, k: int, seeds: int) -> Confirmation:
    """The lab study that re-runs the best ``k`` configurations and the baseline over
    ``seeds`` fresh seeds (see the module docstring)."""
    notes: list[str] = []
    if k <= 0:
        return Confirmation(None)
    ranked = top_trials(trials, direction)
    if not ranked:
        return Confirmation(None, notes=["no trial completed, so there is nothing to confirm"])
    configs = {r.key: r.config for r in store.trials(study_id)}
    baseline = base.train.model_dump()
    base_json = json.dumps(baseline, sort_keys=True, default=str)
    data = ranked[0].user_attrs.get("data", {})
    chosen: list[tuple[SearchTrial, dict[str, Any]]] = []
    for t in ranked:
        if len(chosen) == k:
            break
        settings = configs.get(t.key)
        if settings is None:
            continue
        if isinstance(settings.get("model"), dict) and "module" in settings["model"]:
            notes.append(f"trial {t.number} trains a module built by Python code, which a lab "
                         "study cannot rebuild from its settings: it is not confirmed")
            continue
        if t.user_attrs.get("data", {}) != data:
            notes.append(f"trial {t.number} uses other data settings "
                         f"({_data_words(t.user_attrs.get('data', {}))}) than the best trial "
                         f"({_data_words(data)}); one study shares one dataset, so it is left "
                         "out")
            continue
        full = parse_spec({"name": "x", "data": base.data.model_dump(mode="json"),
                           "train": settings}).train.model_dump()
        if json.dumps(full, sort_keys=True, default=str) == base_json:
            notes.append(f"trial {t.number} has the baseline's settings: it is the baseline")
            continue
        chosen.append((t, full))
    if not chosen:
        return Confirmation(None, notes=notes)
    first = base.seed_list[0]
    spec_data = base.data.model_copy(update=data)
    config_list: list[dict[str, Any]] = [{"label": BASELINE}]
    for t, full in chosen:
        changed = {key: value for key, value in full.items() if value != baseline.get(key)}
        config_list.append({"label": f"trial {t.number}", **changed})
    spec = StudySpec.model_validate({
        "name": confirmation_name(base.name),
        "description": f"The {len(chosen)} best configurations of the search {base.name!r} "
                       f"and its [train] baseline, over {seeds} seeds the search did not use.",
        "seeds": list(range(first + 1, first + 1 + seeds)), "baseline": BASELINE,
        "device": base.device, "data": spec_data.model_dump(),
        "train": base.train.model_dump(), "configs": config_list,
        "target": base.target.model_dump() if base.target is not None else None})
    return Confirmation(spec, [t.number for t, _ in chosen], notes)


def _data_words(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in data.items()) or "the [data] settings"
