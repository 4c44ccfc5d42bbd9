"""The search strategies — Optuna's samplers and pruners — and the Optuna study they work on,
rebuilt from the store.

Samplers: ``random`` (:class:`optuna.samplers.RandomSampler`), ``tpe`` (the Tree-structured
Parzen Estimator, :class:`~optuna.samplers.TPESampler`), ``gp`` (Gaussian-process Bayesian
optimization, :class:`~optuna.samplers.GPSampler`) and ``grid``
(:class:`~optuna.samplers.GridSampler` over every value of the space). Pruners, with epochs as
the budget: ``hyperband`` (:class:`~optuna.pruners.HyperbandPruner`: brackets of successive
halving with minimum budgets 1, 3, 9, … epochs), ``halving`` (asynchronous successive halving,
:class:`~optuna.pruners.SuccessiveHalvingPruner`: after 1, 3, 9, … epochs a trial goes on only
if it is in the top third of the trials that reached that epoch), ``median``
(:class:`~optuna.pruners.MedianPruner`: stop a trial whose value is worse than the median of
the earlier trials at the same epoch, after 5 trials) and ``none``.

No sampler or pruner here keeps state of its own between calls: the store holds every trial —
parameters, distributions, values after each epoch, and the attributes Optuna's samplers and
pruners write on trials (the grid point, the rungs of successive halving) — and
:func:`optuna_study` rebuilds an in-memory Optuna study from those rows whenever a decision is
due. So a search continues from the store alone after a crash, and every worker sees every
finished trial. Each trial's sampler is seeded from the search's seed and the trial's number
(:func:`trial_seed`), so one seed gives one sequence of trials, also across a resumed run.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from optimlab.tune.space import Space

__all__ = ["PRUNER_WORDS", "SAMPLER_WORDS", "make_pruner", "make_sampler", "optuna_study",
           "trial_seed"]

SAMPLER_WORDS = {"tpe": "TPE (Bayesian, tree-structured Parzen estimator)",
                 "gp": "Gaussian-process Bayesian optimization",
                 "random": "random search", "grid": "grid search"}
PRUNER_WORDS = {"hyperband": "Hyperband", "halving": "successive halving",
                "median": "the median rule", "none": "no pruning"}
#: Optuna's states for the search's
_STATES = {"running": "RUNNING", "complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL",
           "diverged": "FAIL"}


def _optuna() -> Any:
    # lazy: optuna (and SQLAlchemy under it) loads only when a search runs or is reported
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a search seeded ``seed``: SHA-256 of both."""
    return int(hashlib.sha256(f"{seed}:{number}".encode()).hexdigest()[:8], 16)


def make_sampler(name: str, seed: int, number: int, space: Space | None = None,
                 startup: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler that draws trial ``number``."""
    optuna = _optuna()
    s = trial_seed(seed, number)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=s)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=s, n_startup_trials=10 if startup is None
                                          else startup)
    if name == "gp":
        import warnings

        with warnings.catch_warnings():  # experimental in some Optuna versions
            warnings.simplefilter("ignore")
            return optuna.samplers.GPSampler(seed=s, n_startup_trials=10 if startup is None
                                             else startup)
    if name == "grid":
        if space is None:
            raise ValueError("sampler 'grid' needs a search space (a [search] table); a "
                             "Python function's space cannot be enumerated")
        return optuna.samplers.GridSampler(space.grid_space(), seed=seed)
    raise ValueError(f"sampler={name!r} is unknown; choose one of {', '.join(SAMPLER_WORDS)}")


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner, with epochs as the budget (1 … ``max_epochs``)."""
    optuna = _optuna()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs),
                                              reduction_factor=3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner={name!r} is unknown; choose one of {', '.join(PRUNER_WORDS)}")


def frozen_trial(row: Any) -> optuna.trial.FrozenTrial:
    """A stored search trial (:class:`optimlab.tune.store.SearchTrial`) as Optuna's
    FrozenTrial; a complete trial without a finite value is a failed one."""
    optuna = _optuna()
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState

    state = getattr(TrialState, _STATES[row.state])
    value = row.value
    if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        state, value = TrialState.FAIL, None
    if state in (TrialState.FAIL, TrialState.RUNNING):
        value = None
    if state == TrialState.PRUNED and value is not None and not math.isfinite(value):
        value = None
    return optuna.trial.create_trial(
        state=state, value=value, params=dict(row.params),
        distributions={k: json_to_distribution(v) for k, v in row.distributions.items()},
        user_attrs=dict(row.user_attrs), system_attrs=dict(row.system_attrs),
        intermediate_values={int(k): (math.nan if v is None else float(v))
                             for k, v in row.values.items()})


def optuna_study(name: str, direction: str, rows: list[Any], *,
                 sampler: optuna.samplers.BaseSampler | None = None,
                 pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """An in-memory Optuna study holding the stored trials ``rows`` in number order, so that
    trial ``k`` of the store is trial ``k`` of the study (the study's name is the search's:
    Hyperband assigns brackets from it)."""
    optuna = _optuna()
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name=name,
                                direction=direction, sampler=sampler, pruner=pruner)
    for i, row in enumerate(sorted(rows, key=lambda r: r.number)):
        if row.number != i:
            raise ValueError(f"search {name!r}: trial numbers are not contiguous ({row.number} "
                             f"where {i} was expected); the store is inconsistent")
        study.add_trial(frozen_trial(row))
    return study
