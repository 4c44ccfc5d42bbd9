"""Running a search: check it, record it, run its trials in one or more workers, then confirm
the winners over fresh seeds.

>>> from optimlab.tune import search
>>> def build(trial):
...     return {"lr": trial.suggest_float("lr", 1e-4, 0.3, log=True),
...             "model": {"type": "mlp", "hidden": [trial.suggest_int("units", 16, 256)]}}
>>> outcome = search(build, spec="base.toml", trials=30, sampler="tpe", pruner="hyperband")
>>> outcome.best.params, outcome.confirmation.ranking[0].label

:func:`run_search` is the whole of ``optimlab tune``: the spec is checked against its data
first (every parameter's extremes built as a configuration, as ``optimlab validate`` does for
a study), the search is recorded in the store (refused if the same name holds another search,
an ordinary study, or other data), the workers run the trials (``workers`` processes; each
trial once, whatever the number of workers or interruptions), and the confirmation study runs
(:mod:`optimlab.tune.confirm`). Running the same spec again continues the search: finished
trials are kept, a trial interrupted by a crash continues from its last epoch, and a larger
``trials`` adds trials the sampler draws knowing every finished one.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab.checks import StudyFacts, check_study, updates_per_epoch
from optimlab.lab.executors import Executor
from optimlab.lab.runner import Outcome, choose_threads, executor_for, run_study
from optimlab.lab.spec import SpecError, StudySpec, parse_spec
from optimlab.lab.store import Store, StoreError
from optimlab.lab.trial import monitor_for
from optimlab.train.callbacks.monitoring import metric_mode
from optimlab.tune import store as tstore
from optimlab.tune.confirm import confirmation_spec, top_trials
from optimlab.tune.spec import SearchSpec, load_search_spec, parse_search_spec
from optimlab.tune.worker import Setup, work, work_process

__all__ = ["SearchOutcome", "SearchPlan", "plan_search", "run_search", "search"]


def _print(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class SearchOutcome:
    """How a search stands after a run: its trials by state, the best trial, and the
    confirmation (its analysis, ``None`` without one)."""

    name: str
    counts: dict[str, int]
    ran: int
    trials: list[tstore.SearchTrial]
    monitor: str
    direction: str
    facts: StudyFacts | None = None
    confirmation: Any = None
    confirmation_outcome: Outcome | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> tstore.SearchTrial | None:
        """The complete trial with the best value (None when none completed)."""
        ranked = top_trials(self.trials, self.direction)
        return ranked[0] if ranked else None

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def unfinished(self) -> int:
        return self.counts.get("running", 0)


def _max_epochs(spec: SearchSpec, facts: StudyFacts, probes: list[dict[str, Any]]) -> int:
    """The most epochs a trial can train (the pruners' budget)."""
    out = 1
    for settings in probes or [spec.study.train.model_dump()]:
        epochs = settings.get("epochs")
        if epochs is None and settings.get("max_steps"):
            epochs = math.ceil(settings["max_steps"] / updates_per_epoch(facts.train, settings))
        out = max(out, int(epochs or 1))
    return out


def _check_probes(spec: SearchSpec, device: str | None) -> list[dict[str, Any]]:
    """Build every probe configuration (each parameter at its extremes) on the data, as
    ``optimlab validate`` builds a study's configurations; return their settings."""
    if spec.space is None:
        return []
    probes = spec.space.check(spec.study.train.model_dump())
    settings = []
    seen = set()
    for full, _ in probes:
        text = json.dumps(full, sort_keys=True, default=str)
        if text not in seen:
            seen.add(text)
            settings.append(full)
    configs = [{"label": f"probe {i}", **s} for i, s in enumerate(settings)]
    study = spec.study.model_copy(update={"configs": configs, "axes": {}, "baseline": None})
    try:
        check_study(study, device)
    except SpecError as err:
        text = str(err)
        for i, s in enumerate(settings):
            if f"'probe {i}'" in text:
                shown = _differences(spec.study.train.model_dump(), s)
                text = text.replace(f"configuration 'probe {i}'",
                                    f"search: the settings with {shown}")
        raise SpecError(text) from None
    return settings


def _differences(base: dict[str, Any], settings: dict[str, Any]) -> str:
    out = [f"{k} = {json.dumps(v, default=str)}" for k, v in settings.items()
           if base.get(k) != v]
    return ", ".join(out) or "the [train] settings"


def _identity(spec: SearchSpec, build: Callable[..., Any] | None, monitor: str,
              direction: str) -> dict[str, Any]:
    """What makes a search the same search on a rerun (the trials it already has were drawn
    from it): data, [train], target, the space or the function, sampler, pruner, seed."""
    fn = None
    if build is not None:
        fn = f"{getattr(build, '__module__', '?')}.{getattr(build, '__qualname__', build)}"
    return {"data": spec.study.data.identity(), "fingerprint": spec.study.data.fingerprint,
            "train": spec.study.train.model_dump(mode="json"),
            "target": spec.study.target.model_dump() if spec.study.target else None,
            "seed_list": spec.study.seed_list[:1], "space": spec.space.to_json()
            if spec.space is not None else None, "build": fn,
            "sampler": spec.options.sampler, "pruner": spec.options.pruner,
            "seed": spec.options.seed, "startup": spec.options.startup, "monitor": monitor,
            "direction": direction}


def _register(store: Store, spec: StudySpec, identity: dict[str, Any]) -> tuple[int, int]:
    """(lab study id, search id) of the search, created if new; refused when the name holds an
    ordinary study, or a search with other settings or data."""
    names = {s["name"]: s for s in store.studies()}
    if spec.name in names:
        study_id = store.study(spec.name)[0]
        if not tstore.is_search(store, study_id) and names[spec.name]["trials"]:
            raise StoreError(f"study {spec.name!r} in {store.path} is an ordinary study "
                             "(optimlab run), not a search; give the search another name, or "
                             "use another --db")

    def check_data(stored: dict[str, Any], busy: list[str]) -> None:
        try:
            old = parse_spec(stored)
        except ValueError:
            return
        if old.data.identity() != spec.data.identity():
            raise StoreError(f"search {spec.name!r} in {store.path} was run on "
                             f"{old.data.describe()}, but this spec uses "
                             f"{spec.data.describe()}; give the search another name, or use "
                             "another --db")

    study_id = store.ensure_study(spec.name, spec.model_dump(mode="json"), check_data)

    def check(stored: dict[str, Any]) -> None:
        differ = sorted(k for k in set(stored) | set(identity)
                        if json.dumps(stored.get(k), sort_keys=True, default=str)
                        != json.dumps(identity.get(k), sort_keys=True, default=str))
        if differ == ["fingerprint"]:
            raise StoreError(f"the data of search {spec.name!r} changed since it started "
                             f"(content {identity['fingerprint']}, its trials were trained on "
                             f"{stored.get('fingerprint')}); give the search another name to "
                             "search on the new data, or use another --db")
        if differ:
            shown = "; ".join(f"{k}: was {json.dumps(stored.get(k), default=str)[:120]}, now "
                              f"{json.dumps(identity.get(k), default=str)[:120]}"
                              for k in differ)
            raise StoreError(f"search {spec.name!r} in {store.path} was started with other "
                             f"settings ({shown}); its trials were drawn from those. Give this "
                             "search another name (name = … in the spec), or use another --db; "
                             "the number of trials, the timeout, the workers and the "
                             "confirmation may change between runs")

    return study_id, tstore.ensure_search(store, study_id, identity, check)


@dataclass
class SearchPlan:
    """A search checked against its data: the spec (the data's fingerprint filled in), what
    the check learned, the probe configurations built, the metric, the trials and the budget
    of a trial in epochs, and warnings."""

    spec: SearchSpec
    facts: StudyFacts
    probes: list[dict[str, Any]]
    monitor: str
    direction: str
    trials: int
    max_epochs: int
    warnings: list[str]


def plan_search(spec: SearchSpec, device: str | None = None, *,
                remote: bool = False) -> SearchPlan:
    """Load the data, build the [train] configuration and every parameter's extremes on it
    (what ``optimlab validate`` does for a search); ``SpecError``/``DataError`` name what
    would fail. ``remote``: the trials train on a cluster (Ray), whose GPUs are on its nodes:
    this process checks the search on its CPU."""
    if remote and (device or spec.study.device) != "cpu":
        device = "cpu"
    study, facts = check_study(spec.study, device)
    spec = SearchSpec(study, spec.space, spec.options)
    warnings = list(facts.warnings)
    probes = _check_probes(spec, device)
    monitor = spec.study.train.monitor or monitor_for(spec.study, facts.task)
    direction = "maximize" if metric_mode(monitor) == "max" else "minimize"
    n_trials = spec.trials()
    if spec.options.sampler == "grid" and spec.space is not None:
        size = math.prod(len(v) for v in spec.space.grid_space().values())
        if n_trials > size:
            warnings.append(f"the grid has {size} points; {n_trials} trials asked, {size} run")
        n_trials = min(n_trials, size)
    if spec.options.confirm > 0:
        note = confirmation_seeds_note(spec.options.confirm, spec.options.confirm_seeds)
        if note:
            warnings.append(note)
    return SearchPlan(spec, facts, probes, monitor, direction, n_trials,
                      _max_epochs(spec, facts, probes), warnings)


def run_search(spec: SearchSpec, db: str | os.PathLike[str], *,
               build: Callable[[Any], Any] | None = None, workers: int = 1,
               threads: int | None = None, device: str | None = None,
               executor: str | Executor = "local", address: str | None = None,
               storage: str | os.PathLike[str] | None = None, num_cpus: float | None = None,
               num_gpus: float | None = None,
               on_trial: Callable[[tstore.SearchTrial], None] | None = None,
               on_poll: Callable[[list[tstore.SearchTrial]], None] | None = None,
               on_confirm_trial: Callable[[Any, str], None] | None = None,
               on_failure: Callable[[str], None] | None = _print,
               on_warning: Callable[[str], None] | None = _print,
               plan: SearchPlan | None = None) -> SearchOutcome:
    """Check ``spec`` against its data, run the search's unfinished trials, then its
    confirmation (see the module docstring). ``build``: a function ``(trial) -> settings or
    nn.Module`` that defines the space instead of ``[search]``. ``plan``: the check already
    done (:func:`plan_search` of this spec).

    ``executor``: ``"local"`` (``workers`` processes of this machine, each asking, training and
    telling its trials) or ``"ray"`` (this process asks and tells, each trial trains as a Ray
    task on the cluster at ``address``, with ``num_cpus``/``num_gpus`` a trial, else the
    spec's ``[resources]``; epoch checkpoints in ``storage``: :mod:`optimlab.tune.driver`),
    or an :class:`~optimlab.lab.executors.Executor`. The confirmation runs there too.
    ``storage``: the folder of the trials' epoch checkpoints (default ``<db>.ckpt``)."""
    from optimlab._checks import check_number

    check_number("workers", workers, low=1, integer=True)
    if threads is not None:
        check_number("threads", threads, low=1, integer=True)
    if (build is None) == (spec.space is None):
        raise UserError("give the search a space: a [search] table in the spec, or a build "
                        "function (trial) -> settings — one of the two, not both"
                        if build is not None else
                        "the search has no space: add a [search] table, or pass build=")
    if build is not None and spec.options.sampler == "grid":
        raise UserError("sampler 'grid' enumerates a [search] table; a build function's space "
                        "cannot be enumerated: use tpe, gp or random")
    if build is not None and workers > 1:
        try:
            pickle.dumps(build)
        except Exception:
            raise UserError(f"workers={workers} sends build to worker processes, but "
                            f"{getattr(build, '__qualname__', build)!r} cannot be sent (a "
                            "lambda or a function defined inside another): define it at the "
                            "top level of a module, or use workers=1") from None
    remote = executor != "local"
    ex = None
    if remote:  # without Ray: the install command, before anything is checked or trained
        ex = executor_for(spec.study, executor, address=address, num_cpus=num_cpus,
                          num_gpus=num_gpus)
        _check_remote(spec)
    db = str(db)
    plan = plan if plan is not None else plan_search(spec, device, remote=remote)
    spec, facts, monitor, direction = plan.spec, plan.facts, plan.monitor, plan.direction
    n_trials = plan.trials
    if on_warning is not None:
        for text in plan.warnings:
            on_warning(f"warning: {text}")
    with Store(db) as store:
        tstore.check_store(store)
        study_id, search_id = _register(store, spec.study,
                                        _identity(spec, build, monitor, direction))
    run = uuid.uuid4().hex[:12]
    timeout = spec.options.timeout
    setup = Setup(db=db, spec_json=spec.study.model_dump(mode="json"),
                  space=spec.space.to_json() if spec.space is not None else None,
                  sampler=spec.options.sampler, pruner=spec.options.pruner,
                  seed=spec.options.seed, startup=spec.options.startup, n_trials=n_trials,
                  monitor=monitor, direction=direction,
                  max_epochs=plan.max_epochs, device=facts.device, run=run,
                  deadline=time.time() + timeout if timeout is not None else None, build=build,
                  remote=remote, storage=str(storage) if storage is not None else None)
    if ex is not None:
        from optimlab.tune.driver import drive_search

        asked = device or spec.study.device
        ran = drive_search(setup, ex, spec.study.model_copy(update={"device": asked}),
                           threads=threads, device=asked, on_trial=on_trial,
                           on_failure=on_failure, on_warning=on_warning)
    else:
        threads = threads or choose_threads(workers, facts.work_per_step)
        ran = _run_workers(setup, workers, threads, on_trial, on_poll, on_failure, on_warning,
                           search_id)
    with Store(db) as store:
        trials = tstore.read_trials(store, search_id)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    outcome = SearchOutcome(spec.name, counts, ran, trials, monitor, direction, facts)
    if spec.options.confirm > 0:
        where = {"executor": executor, "address": address, "storage": storage,
                 "num_cpus": num_cpus, "num_gpus": num_gpus} if remote else {}
        _confirm(spec, db, outcome, study_id, search_id, workers, threads, device,
                 on_confirm_trial, on_failure, on_warning, where)
    return outcome


def _check_remote(spec: SearchSpec) -> None:
    """Refuse what trials on a cluster cannot do: each trains from its stored settings on
    the study's data, so a space over the data itself stays local."""
    from optimlab.tune.space import DATA_PARAMS

    varied = [n for n in (spec.space.names if spec.space is not None else [])
              if n in DATA_PARAMS]
    if varied:
        raise UserError(f"the search varies {', '.join(varied)}, which changes the data each "
                        "trial trains on; on Ray every trial trains on the study's data: fix "
                        "it in [data] (or search it with --executor local)")


def confirmation_seeds_note(k: int, seeds: int) -> str:
    """A warning when the confirmation's seeds are too few for any corrected verdict among
    its k + 1 configurations (every pair is compared: the lab's rule,
    :func:`optimlab.lab.stats.seeds_needed`); "" otherwise."""
    from optimlab.lab.stats import seeds_needed

    pairs = (k + 1) * k // 2
    needed = seeds_needed(pairs)
    if seeds >= needed:
        return ""
    return (f"the confirmation compares {k + 1} configurations ({pairs} paired comparisons, "
            f"Holm-corrected); with {seeds} seeds no difference can be significant after the "
            f"correction, so it can only rank provisionally: {needed} seeds are needed "
            f"(--seeds {needed}, or confirm_seeds = {needed} in [tune])")


def _run_workers(setup: Setup, workers: int, threads: int,
                 on_trial: Callable[[tstore.SearchTrial], None] | None,
                 on_poll: Callable[[list[tstore.SearchTrial]], None] | None,
                 on_failure: Callable[[str], None] | None,
                 on_warning: Callable[[str], None] | None, search_id: int) -> int:
    """Run the workers (in this process, or ``workers`` spawned processes); return how many
    trials they finished."""
    if workers <= 1:
        return work(setup, threads, on_trial, on_failure, on_warning)
    with Store(setup.db) as store:
        before = {t.number for t in tstore.read_trials(store, search_id) if t.finished_state}
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(workers)
    procs = [ctx.Process(target=work_process, args=(setup, threads, ready))
             for _ in range(workers)]
    for p in procs:
        p.start()
    seen = set(before)
    with Store(setup.db) as store:
        while True:
            alive = any(p.is_alive() for p in procs)
            if any(p.exitcode not in (None, 0) for p in procs):
                ready.abort()  # a worker died before it could start: the rest go on
            rows = tstore.read_trials(store, search_id)
            for t in rows:
                if t.finished_state and t.number not in seen:
                    seen.add(t.number)
                    if on_trial is not None:
                        on_trial(t)
            if on_poll is not None:
                on_poll(rows)
            if not alive:
                break
            time.sleep(0.5)
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad and on_failure is not None:
        on_failure(f"  {len(bad)} of {workers} worker processes ended with an error (exit "
                   f"codes {bad}); their trials are left running and continue on the next run")
    return len(seen - before)


def _confirm(spec: SearchSpec, db: str, outcome: SearchOutcome, study_id: int, search_id: int,
             workers: int, threads: int, device: str | None,
             on_trial: Callable[[Any, str], None] | None,
             on_failure: Callable[[str], None] | None,
             on_warning: Callable[[str], None] | None, where: dict[str, Any]) -> None:
    from optimlab.lab.analysis import analyze

    with Store(db) as store:
        plan = confirmation_spec(spec.study, outcome.trials, outcome.direction, store, study_id,
                                 spec.options.confirm, spec.options.confirm_seeds)
    outcome.notes.extend(plan.notes)
    if plan.spec is None:
        if on_warning is not None:
            for note in plan.notes:
                on_warning(f"confirmation: {note}")
        return
    result = run_study(plan.spec, db, workers=workers, threads=threads, device=device,
                       on_trial=on_trial, on_failure=on_failure, on_warning=on_warning,
                       **where)
    with Store(db) as store:
        tstore.link_confirmation(store, search_id, result.study_id)
        outcome.confirmation = analyze(store, plan.spec.name)
    outcome.confirmation_outcome = result


def search(build: Callable[[Any], Any] | None = None, *,
           spec: str | os.PathLike[str] | dict[str, Any] | SearchSpec,
           db: str | os.PathLike[str] = "optimlab.db", trials: int | None = None,
           timeout: float | None = None, sampler: str | None = None, pruner: str | None = None,
           seed: int | None = None, startup: int | None = None, confirm: int | None = None,
           seeds: int | None = None, workers: int = 1, threads: int | None = None,
           device: str | None = None, executor: str | Executor = "local",
           address: str | None = None, storage: str | os.PathLike[str] | None = None,
           num_cpus: float | None = None, num_gpus: float | None = None,
           on_trial: Callable[[tstore.SearchTrial], None] | None = None,
           on_failure: Callable[[str], None] | None = _print,
           on_warning: Callable[[str], None] | None = _print) -> SearchOutcome:
    """Search hyperparameters and confirm the winners (see the module docstring).

    ``spec``: a search spec — a TOML file, a dict, or a :class:`SearchSpec` — giving the data,
    the ``[train]`` settings every trial starts from (and the baseline), and the space
    (``[search]``), unless ``build`` defines it: a function ``(trial) -> settings or
    nn.Module`` in KerasTuner's ``build_model(hp)`` habit, calling ``trial.suggest_float``,
    ``suggest_int`` and ``suggest_categorical`` (an :class:`optuna.trial.Trial`) and returning
    a dict of ``[train]`` settings (``model`` may be a module) or a ``torch.nn.Module``.
    The other arguments override the spec's ``[tune]``: ``trials``, ``timeout`` (seconds, no
    trial starts after), ``sampler`` (tpe, gp, random, grid), ``pruner`` (hyperband, halving,
    median, none), ``seed``, ``startup`` (random trials before TPE/GP), ``confirm`` (the top K
    re-run; 0 for none), ``seeds`` (the confirmation's seeds), ``workers`` (processes).
    ``executor="ray"`` trains each trial as a Ray task (``address``, ``storage``,
    ``num_cpus``, ``num_gpus``: as for ``optimlab run``; see :func:`run_search`); ``build``
    must then return settings, not a module.
    """
    if isinstance(spec, SearchSpec):
        parsed = spec
    elif isinstance(spec, dict):
        parsed = parse_search_spec(spec, space_required=build is None)
    else:
        path = Path(spec)
        if build is None:
            parsed = load_search_spec(path)
        else:
            from optimlab.lab.spec import read_toml, resolve_data_paths

            text, data = read_toml(path)
            parsed = parse_search_spec(data, source=str(path), text=text, space_required=False)
            resolve_data_paths(parsed.study, path.parent)
    parsed = parsed.with_options(trials=trials, timeout=timeout, sampler=sampler,
                                 pruner=pruner, seed=seed, startup=startup, confirm=confirm,
                                 confirm_seeds=seeds)
    return run_search(parsed, db, build=build, workers=workers, threads=threads, device=device,
                      executor=executor, address=address, storage=storage, num_cpus=num_cpus,
                      num_gpus=num_gpus, on_trial=on_trial, on_failure=on_failure,
                      on_warning=on_warning)
