"""One worker of a search: ask for a trial, train it, record how it ended — until the search
has its trials.

**Ask** (one ``BEGIN IMMEDIATE`` transaction, so two workers never draw the same number and
each sees the other's running trials): a running trial whose process died is taken over first
(it continues from its last epoch checkpoint, with the parameters it was drawn with); otherwise,
while the search has fewer trials than asked for and its time is not up, an in-memory Optuna
study is rebuilt from the stored trials (:func:`optimlab.tune.strategies.optuna_study`), the
trial's sampler draws it (define-by-run: :meth:`optimlab.tune.space.Space.suggest`, or the
user's ``build(trial)``), and the trial is stored with the lab trial that will train its
configuration. A configuration drawn before (same settings, seed and data: the same lab trial
key) is not trained again: the trial takes the earlier result.

**Train**: the lab's :func:`~optimlab.lab.trial.run_trial` (checkpoint every epoch, heartbeat,
the result in one transaction), with a report function that stores the monitored value after
each epoch and asks the pruner whether to stop (:class:`~optimlab.train.callbacks.Pruned`).

**Tell**: the trial's state, value and per-epoch values are read back from the lab trial's
record and written in one transaction. Every step can be interrupted: a rerun finds the trial
running under a dead process and continues it — a finished lab trial is not trained again, only
recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import UserError, one_line
from optimlab.lab.executors import Failure, record_failure
from optimlab.lab.runner import ckpt_root_for, trial_key
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.store import FINISHED, Store, TrialRow
from optimlab.lab.studydata import StudyData
from optimlab.lab.trial import run_trial, trial_settings
from optimlab.lab.words import metric_words
from optimlab.train.callbacks import Pruned
from optimlab.tune import store as tstore
from optimlab.tune.space import Space, parse_space, set_path
from optimlab.tune.strategies import PRUNER_WORDS, make_pruner, make_sampler, optuna_study

__all__ = ["Setup", "Worker", "work"]

#: seconds between looks at a configuration another worker is training
_WAIT = 0.25


@dataclass(frozen=True)
class Setup:
    """What a worker needs, as plain data (it is sent to worker processes). ``spec_json``: the
    base study (data with its fingerprint, [train], target); ``space`` the [search] table, or
    None with ``build``, a function ``(trial) -> settings or nn.Module``."""

    db: str
    spec_json: dict[str, Any]
    space: dict[str, Any] | None
    sampler: str
    pruner: str
    seed: int
    startup: int | None
    n_trials: int
    monitor: str
    direction: str
    max_epochs: int
    device: str
    run: str
    deadline: float | None = None
    build: Callable[[Any], Any] | None = None
    #: its trials train elsewhere (a Ray cluster, :mod:`optimlab.tune.driver`): from the
    #: stored settings alone, so a build function's module or data overrides cannot go there
    remote: bool = False
    #: the folder of the trials' epoch checkpoints (None: ``<db>.ckpt``)
    storage: str | None = None


@dataclass
class Job:
    """A trial this worker owns: its number, parameters and what trains them."""

    number: int
    params: dict[str, Any]
    key: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    module: torch.nn.Module | None = None
    error: BaseException | None = None


def _print(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


class Worker:
    """Runs trials of one search against one store connection."""

    def __init__(self, setup: Setup, store: Store,
                 on_trial: Callable[[tstore.SearchTrial], None] | None = None,
                 on_failure: Callable[[str], None] | None = _print,
                 on_warning: Callable[[str], None] | None = _print) -> None:
        self.setup, self.store = setup, store
        self.on_trial, self.on_failure, self.on_warning = on_trial, on_failure, on_warning
        self.spec: StudySpec = parse_spec(setup.spec_json)
        self.base = self.spec.train.model_dump()
        self.space: Space | None = (parse_space(setup.space, self.base)
                                    if setup.space is not None else None)
        self.seed = self.spec.seed_list[0]
        self.study_id = store.study(self.spec.name)[0]
        row = tstore.search_row(store, self.study_id)
        if row is None:
            raise tstore.StoreError(f"study {self.spec.name!r} in {store.path} is not a search")
        self.search_id = row["id"]
        self.ckpt_root = (Path(setup.storage) if setup.storage is not None
                          else ckpt_root_for(setup.db))
        self._data: dict[str, tuple[StudySpec, StudyData]] = {}

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        """Ask, train and record trials until the search has its trials (or its time is up);
        return how many this worker finished."""
        done = 0
        while (job := self.ask()) is not None:
            if job.error is not None:  # the user's function raised: stop the search, loudly
                raise job.error
            if job.key is None:  # its settings could not train: recorded as failed
                done += 1
                self._announce(job.number)
                continue
            self.execute(job)
            done += 1
            self._announce(job.number)
        return done

    def _announce(self, number: int) -> None:
        if self.on_trial is not None:
            rows = tstore.read_trials(self.store, self.search_id)
            self.on_trial(rows[number])

    # -- ask -------------------------------------------------------------------------------------
    def ask(self) -> Job | None:
        """The next trial for this worker (see the module docstring), or None."""
        s = self.setup
        with self.store.transaction() as c:
            rows = tstore.search_trials(c, self.search_id)
            out_of_time = s.deadline is not None and time.time() >= s.deadline
            for r in rows:
                if tstore.abandoned(r) and not out_of_time:
                    tstore.take_over(c, self.search_id, r.number, s.run)
                    return self._resume(r)
            if len(rows) >= s.n_trials or out_of_time:
                return None
            number = len(rows)
            study = optuna_study(self.spec.name, s.direction, rows,
                                 sampler=make_sampler(s.sampler, s.seed, number, self.space,
                                                      s.startup),
                                 pruner=make_pruner(s.pruner, s.max_epochs))
            trial = study.ask()
            assert trial.number == number
            try:
                job = self._configure(number, trial)
            except _TrialError as err:  # settings that cannot train: the trial fails
                tstore.add_search_trial(c, self.search_id, self.study_id, number,
                                        _frozen(study, number), run=s.run, error=str(err))
                return Job(number, dict(trial.params))
            except Exception as err:  # the user's function raised
                text = one_line(err)
                tstore.add_search_trial(c, self.search_id, self.study_id, number,
                                        _frozen(study, number), run=s.run,
                                        error=f"build(trial) raised {text}")
                return Job(number, dict(trial.params), error=err)
            if s.remote and (job.module is not None or job.data):
                what = ("a torch.nn.Module" if job.module is not None
                        else "data overrides (data.standardize)")
                raise UserError(f"trial {number}: build(trial) returned {what}, which cannot "
                                "be sent to Ray tasks (they train from the trial's stored "
                                "settings); describe the model in the returned settings ("
                                "{'model': {'type': 'mlp', 'hidden': [...]}, ...}), or run "
                                "the search with executor='local'")
            config = _jsonable_settings(job.settings)
            if job.data:  # kept with the trial: the confirmation runs it on the same data
                trial.set_user_attr("data", job.data)
            tstore.add_search_trial(c, self.search_id, self.study_id, number,
                                    _frozen(study, number), run=s.run, key=job.key,
                                    label=f"trial {number}", config=config, seed=self.seed)
            return job

    def _resume(self, row: tstore.SearchTrial) -> Job:
        """The job of a trial taken over from a dead process: its configuration again, from
        its parameters (the same settings, so the same lab trial)."""
        import optuna

        if row.key is None:
            return Job(row.number, row.params)
        changed = UserError(f"trial {row.number} of search {self.spec.name!r} was drawn with "
                            "settings that its parameters no longer give (the search space or "
                            "the build function changed since, or the function does not give "
                            "the same model for the same parameters); give the search another "
                            "name, or another --db")
        try:
            job = self._configure(row.number, optuna.trial.FixedTrial(row.params, row.number))
        except _TrialError:
            raise changed from None
        if job.key != row.key:
            raise changed
        return job

    def _configure(self, number: int, trial: Any) -> Job:
        """The settings (and module) of a trial's parameters; ``_TrialError`` when they cannot
        train."""
        module = None
        data: dict[str, Any] = {}
        if self.space is not None:
            drawn = self.space.suggest(trial)
            settings, data = self.space.apply(self.base, drawn)
        else:
            assert self.setup.build is not None
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)  # the module's initial weights come from the seed
                result = self.setup.build(trial)
            settings, data, module = _from_build(self.base, result)
        try:
            settings = trial_settings(settings, module)
        except ValueError as err:
            from optimlab.lab.spec import first_error

            text = first_error(err) if hasattr(err, "errors") else str(err)
            raise _TrialError(f"its settings cannot train: {text}") from None
        if module is not None:
            settings["model"] = _describe_module(module)
        spec, _ = self._variant(data)
        key = trial_key(settings, self.seed, spec.data.model_dump(),
                        spec.target.model_dump() if spec.target is not None else None)
        return Job(number, dict(trial.params), key, settings, data, module)

    def _variant(self, data: dict[str, Any]) -> tuple[StudySpec, StudyData]:
        """The study spec and data of a trial with data overrides (``standardize``)."""
        import json

        name = json.dumps(data, sort_keys=True)
        if name not in self._data:
            spec = self.spec.model_copy(update={"data": self.spec.data.model_copy(update=data)})
            self._data[name] = (spec, StudyData(spec.data))
        return self._data[name]

    # -- train and tell --------------------------------------------------------------------------
    def execute(self, job: Job) -> None:
        """Train the job's lab trial (or wait for the worker that trains the same
        configuration, or take its finished result), then record the search trial."""
        assert job.key is not None
        row = self.store.claim(self.study_id, [job.key], run=self.setup.run)
        while row is None:
            lab = self._lab_row(job.key)
            if lab.status in FINISHED or lab.status == "failed":
                break  # finished (by an earlier trial of this configuration) or failed here
            if lab.host == socket.gethostname() and lab.pid == os.getpid():
                raise UserError(f"trial {job.number}: its configuration ({lab.label}) is marked "
                                "running by this process, from a run that was interrupted "
                                "here; run the search again from a new process")
            tstore.heartbeat(self.store, self.search_id, job.number)
            time.sleep(_WAIT)
            row = self.store.claim(self.study_id, [job.key], run=self.setup.run)
        if row is not None:
            self._train(job, row)
        self.tell(job)

    def _lab_row(self, key: str) -> TrialRow:
        return self.store.trials(self.study_id, [key])[0]

    def _train(self, job: Job, row: TrialRow) -> None:
        spec, data = self._variant(job.data)
        try:
            run_trial(self.store, spec, row, self.ckpt_root, data, self.setup.device,
                      self.on_warning, report=self._reporter(job), model=job.module)
        except Exception as err:  # recorded with the trial; the search goes on
            _record_failure(self.store, row, err, job.number, self.on_failure)

    def _reporter(self, job: Job) -> Callable[[int, dict[str, float]], None]:
        s = self.setup
        words = metric_words(s.monitor)
        budget = int(job.settings.get("epochs") or s.max_epochs)

        def report(epoch: int, logs: dict[str, float]) -> None:
            raw = logs.get(s.monitor)
            value = float(raw) if isinstance(raw, int | float) else math.nan
            step = epoch + 1
            tstore.record_value(self.store, self.search_id, job.number, step, value)
            if s.pruner == "none":
                return
            rows = tstore.read_trials(self.store, self.search_id)
            study = optuna_study(self.spec.name, s.direction, rows,
                                 sampler=make_sampler("random", 0, 0),
                                 pruner=make_pruner(s.pruner, s.max_epochs))
            trial = study.get_trials(deepcopy=False)[job.number]
            before = dict(trial.system_attrs)
            prune = study.pruner.prune(study, trial)
            after = dict(study.get_trials(deepcopy=False)[job.number].system_attrs)
            if after != before:
                tstore.set_system_attrs(self.store, self.search_id, job.number, after)
            if prune and step >= budget:  # its last epoch: nothing left to save, it completes
                return
            if prune:
                raise Pruned(f"pruned by {PRUNER_WORDS[s.pruner]} after {step} of {budget} "
                             f"epochs ({words} {value:.4g})")

        return report

    def tell(self, job: Job) -> None:
        """Record how the job's trial ended, from its lab trial's record."""
        assert job.key is not None
        s = self.setup
        lab = self._lab_row(job.key)
        epochs = self.store.epochs(lab.id)
        values = [(int(e["epoch"]) + 1, e.get(s.monitor)) for e in epochs]
        finite = [v for _, v in values if isinstance(v, int | float) and math.isfinite(v)]
        error = None
        value: float | None = None
        if lab.status in ("completed", "early_stopped"):
            state = "complete"
            raw = (lab.final or {}).get(s.monitor)
            value = float(raw) if isinstance(raw, int | float) else None
            if value is None or not math.isfinite(value):
                state, error = "failed", f"no finite final {metric_words(s.monitor)}"
        elif lab.status == "pruned":
            state, value, error = "pruned", (finite[-1] if finite else None), lab.reason
        elif lab.status == "diverged":
            state, error = "diverged", lab.reason
        elif lab.status == "failed":
            state, error = "failed", lab.error
        else:
            raise AssertionError(f"trial {job.number}: its lab trial is {lab.status!r}")
        attrs = None
        if lab.position != job.number:  # an earlier trial drew this configuration first
            attrs = {**self._user_attrs(job.number), "same_as": lab.position}
        tstore.finish_search_trial(self.store, self.search_id, job.number, state=state,
                                   value=value, epochs=len(epochs), error=error, values=values,
                                   user_attrs=attrs)

    def _user_attrs(self, number: int) -> dict[str, Any]:
        return tstore.read_trials(self.store, self.search_id)[number].user_attrs


def _frozen(study: Any, number: int) -> Any:
    """Trial ``number`` of an Optuna study as it stands (parameters, distributions, the
    attributes its sampler set)."""
    return study.get_trials(deepcopy=False)[number]


class _TrialError(Exception):
    """A trial's settings cannot train (recorded as a failed trial)."""


def _from_build(base: dict[str, Any], result: Any
                ) -> tuple[dict[str, Any], dict[str, Any], torch.nn.Module | None]:
    """(settings, data overrides, module) from what ``build(trial)`` returned: a module, or a
    dict of [train] settings (dotted keys allowed; ``model`` may be a module;
    ``data.standardize`` overrides the data's)."""
    import copy

    if isinstance(result, torch.nn.Module):
        return copy.deepcopy(base), {}, result
    if not isinstance(result, dict):
        raise UserError(f"build(trial) returned {type(result).__name__}; return a dict of "
                        "[train] settings (e.g. {'lr': ..., 'model': {...}}) or a "
                        "torch.nn.Module")
    settings = copy.deepcopy(base)
    data: dict[str, Any] = {}
    module = None
    for k, v in result.items():
        if k == "model" and isinstance(v, torch.nn.Module):
            module = v
        elif k == "data.standardize":
            data["standardize"] = v
        else:
            set_path(settings, str(k), v)
    return settings, data, module


def _describe_module(module: torch.nn.Module) -> dict[str, Any]:
    """What the store keeps of a user's module: its class, size, and a digest of its
    structure and initial weights (part of the trial's key)."""
    h = hashlib.sha256(repr(module).encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"module": type(module).__name__, "parameters": sum(p.numel() for p in
                                                               module.parameters()),
            "digest": h.hexdigest()[:16]}


def _jsonable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(settings, default=str))


def _record_failure(store: Store, row: TrialRow, err: BaseException, number: int,
                    on_failure: Callable[[str], None] | None) -> None:
    """A trial that raised: the reason with the lab trial; a bug's traceback to a log file."""
    record_failure(store, row, Failure.of(err), on_failure, where=f"trial {number}",
                   context=f"search trial {number}, key {row.key}",
                   bug="a bug in optimlab, or in the model's code")


def work(setup: Setup, threads: int | None = None,
         on_trial: Callable[[tstore.SearchTrial], None] | None = None,
         on_failure: Callable[[str], None] | None = _print,
         on_warning: Callable[[str], None] | None = _print, ready: Any = None) -> int:
    """Run trials of the search ``setup`` describes until none is left; return how many this
    call finished. ``threads``: torch's threads in this process; ``ready``: a barrier the
    workers of one run wait at (their data loaded) before their first trial."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with Store(setup.db) as store:
            tstore.check_store(store)
            worker = Worker(setup, store, on_trial, on_failure, on_warning)
            worker._variant({})  # the data, loaded before the first trial
            if ready is not None:
                import threading

                with contextlib.suppress(threading.BrokenBarrierError):
                    ready.wait(timeout=300)
            return worker.run()
    finally:
        torch.set_num_threads(previous)


def work_process(setup: Setup, threads: int | None, ready: Any = None) -> None:
    """A worker process's entry point (spawned): failures and warnings go to stderr."""
    with contextlib.suppress(KeyboardInterrupt):
        work(setup, threads, ready=ready)

