"""Hyperparameter search on the lab's store: grid, random, TPE and Gaussian-process sampling,
Hyperband, successive halving and median pruning (Optuna's), then a multi-seed confirmation of
the winners with the lab's statistics.

``search(build or spec, …)`` runs one from Python (:mod:`optimlab.tune.search`);
``optimlab tune SPEC`` from the command line. The space is a spec's ``[search]`` table
(:mod:`optimlab.tune.space`) or a function ``(trial) -> settings or nn.Module``. Every trial
lives in the study store (``optimlab.db``) with its parameters, its value after each epoch and
its state; the sampler and the pruner rebuild what they need from there
(:mod:`optimlab.tune.strategies`), so a search survives a crash and runs in several workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimlab._lazy import lazy_names

if TYPE_CHECKING:
    from optimlab.tune.search import SearchOutcome, run_search, search
    from optimlab.tune.space import Space, parse_space
    from optimlab.tune.spec import SearchSpec, load_search_spec, parse_search_spec

__all__ = ["SearchOutcome", "SearchSpec", "Space", "load_search_spec", "parse_search_spec",
           "parse_space", "run_search", "search"]

_LAZY = {"SearchOutcome": "optimlab.tune.search", "run_search": "optimlab.tune.search",
         "search": "optimlab.tune.search", "Space": "optimlab.tune.space",
         "parse_space": "optimlab.tune.space", "SearchSpec": "optimlab.tune.spec",
         "load_search_spec": "optimlab.tune.spec", "parse_search_spec": "optimlab.tune.spec"}


# lazy: the command line imports optimlab.tune's modules only when a search runs
__getattr__ = lazy_names(__name__, _LAZY)
