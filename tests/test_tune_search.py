"""Running searches: grid = the lab's axes, seeded sequences, pruning recorded at its epoch,
kill -9 and two workers (each trial once, the sampler sees every finished trial), Python
functions, duplicates, reruns and the store's schema."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from optimlab.lab.checks import check_study
from optimlab.lab.runner import expand
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import SCHEMA_VERSION, Store, StoreError
from optimlab.train import Trainer
from optimlab.train.callbacks import EpochReport, ModelCheckpoint, Pruned
from optimlab.tune import search
from optimlab.tune.results import load_search

BASE = {"name": "s", "data": {"dataset": "iris", "val": 0.3},
        "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 2, "batch_size": 16,
                  "optimizer": "sgd", "lr": 0.05}}
QUIET = {"on_failure": None, "on_warning": None}


def _spec(search_space: dict, **tune: object) -> dict:
    return {**BASE, "search": search_space, "tune": {"confirm": 0, **tune}}


def _trials(db: Path, name: str = "s") -> list:
    with Store(db) as store:
        return load_search(store, name).trials


def _lab_rows(db: Path, name: str = "s") -> list:
    with Store(db) as store:
        return store.trials(store.study(name)[0])


# -- what a search runs --------------------------------------------------------------------
def test_grid_over_a_space_equals_the_lab_axes_grid(tmp_path) -> None:
    space = {"optimizer": ["sgd", "adam"], "lr": {"low": 0.01, "high": 0.03, "step": 0.01}}
    out = search(spec=_spec(space, sampler="grid"), db=tmp_path / "g.db", **QUIET)
    assert out.counts == {"complete": 6}
    axes = parse_spec({**BASE, "name": "axes", "seeds": [0],
                       "axes": {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.02, 0.03]}})
    expected = {t.key: t.settings for t in expand(check_study(axes)[0])}
    rows = _lab_rows(tmp_path / "g.db")
    assert {r.key: r.config for r in rows} == expected  # same trials, same keys
    assert sorted(t.key for t in out.trials) == sorted(expected)  # each grid point once


def test_random_and_tpe_with_a_seed_give_the_same_sequence_on_a_rerun(tmp_path) -> None:
    space = {"lr": {"low": 1e-3, "high": 0.5, "log": True}, "optimizer": ["sgd", "adam"],
             "batch_size": [16, 32]}
    for sampler in ("random", "tpe"):
        runs = [search(spec=_spec(space, sampler=sampler, seed=seed, startup=2, trials=6),
                       db=tmp_path / f"{sampler}{i}.db", **QUIET)
                for i, seed in enumerate((7, 7, 8))]
        first, again, other = ([t.params for t in r.trials] for r in runs)
        assert len(first) == 6 and first == again
        assert other != first  # the seed decides the sequence


def test_a_pruned_trial_stores_the_epoch_it_stopped_at_and_hyperband_trains_less(tmp_path):
    space = {"lr": {"low": 1e-4, "high": 0.3, "log": True}, "optimizer": ["sgd", "adam"]}
    spec = {**_spec(space, sampler="tpe", pruner="hyperband", startup=4, trials=10),
            "train": {**BASE["train"], "epochs": 9}}
    out = search(spec=spec, db=tmp_path / "h.db", **QUIET)
    pruned = [t for t in out.trials if t.state == "pruned"]
    assert pruned and out.counts.get("complete")
    labs = {r.key: r for r in _lab_rows(tmp_path / "h.db")}
    with Store(tmp_path / "h.db") as store:
        for t in pruned:
            lab = labs[t.key]
            epochs = store.epochs(lab.id)
            assert lab.status == "pruned" and "pruned by Hyperband" in lab.reason
            assert t.epochs == len(epochs) < 9  # stored where it stopped
            assert max(t.values) == t.epochs  # a value for every epoch it trained
            assert t.value == pytest.approx(epochs[-1]["val_accuracy"])
    total = sum(t.epochs for t in out.trials)
    assert total < 10 * 9  # fewer epochs than the same number of unpruned trials
    with Store(tmp_path / "h.db") as store:
        r = load_search(store)
        assert r.epochs_trained == total and r.epochs_full == 10 * 9
        assert "Pruning stopped" in " ".join(r.answer())


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_median_and_halving_stop_trials_that_trail(pruner, tmp_path) -> None:
    space = {"lr": {"low": 1e-5, "high": 0.3, "log": True}}
    spec = {**_spec(space, sampler="random", pruner=pruner, trials=10),
            "train": {**BASE["train"], "epochs": 9}}
    out = search(spec=spec, db=tmp_path / "m.db", **QUIET)
    assert all(t.state in ("complete", "pruned") for t in out.trials)
    assert 0 < out.counts.get("pruned", 0) < 10
    if pruner == "median":
        assert all(t.number >= 5 for t in out.trials if t.state == "pruned")  # 5 to start
    else:  # rungs after 1 and 3 epochs (reduction factor 3)
        assert {t.epochs for t in out.trials if t.state == "pruned"} <= {1, 3}


def test_the_gaussian_process_sampler_is_seeded_too(tmp_path) -> None:
    space = {"lr": {"low": 1e-3, "high": 0.5, "log": True}, "batch_size": [16, 32]}
    runs = [search(spec=_spec(space, sampler="gp", startup=2, trials=4, seed=3),
                   db=tmp_path / f"gp{i}.db", **QUIET) for i in range(2)]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert runs[0].counts == {"complete": 4}


def test_a_python_function_returning_settings_or_a_module(tmp_path) -> None:
    def settings(trial):
        return {"lr": trial.suggest_float("lr", 1e-3, 0.3, log=True),
                "model.hidden": [trial.suggest_int("units", 4, 16)]}

    out = search(settings, spec=BASE, db=tmp_path / "f.db", trials=3, confirm=0, **QUIET)
    assert out.counts == {"complete": 3}
    rows = _lab_rows(tmp_path / "f.db")
    assert [r.config["model"]["hidden"] for r in rows] == \
        [[t.params["units"]] for t in out.trials]

    def module(trial):
        width = trial.suggest_int("width", 4, 12)
        return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.Tanh(),
                                   torch.nn.Linear(width, 3))

    spec = {**BASE, "name": "m"}
    out = search(module, spec=spec, db=tmp_path / "f.db", trials=3, confirm=2, **QUIET)
    assert out.counts == {"complete": 3}
    rows = _lab_rows(tmp_path / "f.db", "m")
    assert all(r.config["model"]["module"] == "Sequential" for r in rows)
    by_key = {r.key: r.config["model"] for r in rows}
    for t in out.trials:  # 4·w + w weights and biases, then w·3 + 3
        assert by_key[t.key]["parameters"] == 8 * t.params["width"] + 3
    assert out.confirmation is None  # a module cannot be rebuilt by a lab study: said so
    assert any("module built by Python code" in n for n in out.notes)


def test_a_function_that_raises_stops_the_search_and_is_recorded(tmp_path) -> None:
    def broken(trial):
        trial.suggest_float("lr", 1e-3, 0.1)
        raise RuntimeError("my model is broken")

    with pytest.raises(RuntimeError, match="my model is broken"):
        search(broken, spec=BASE, db=tmp_path / "b.db", trials=3, confirm=0, **QUIET)
    (t,) = _trials(tmp_path / "b.db")
    assert t.state == "failed" and "my model is broken" in t.error


def test_settings_that_cannot_train_fail_the_trial_not_the_search(tmp_path) -> None:
    def sometimes(trial):
        return {"batch_size": trial.suggest_categorical("batch_size", [16, -1])}

    out = search(sometimes, spec=BASE, db=tmp_path / "c.db", trials=6, sampler="random",
                 confirm=0, **QUIET)
    bad = [t for t in out.trials if t.params["batch_size"] == -1]
    assert bad and all(t.state == "failed" and "batch_size" in t.error for t in bad)
    assert all(t.state == "complete" for t in out.trials if t.params["batch_size"] == 16)


def test_a_configuration_drawn_twice_trains_once(tmp_path) -> None:
    out = search(spec=_spec({"optimizer": ["sgd", "adam"]}, sampler="random", trials=6),
                 db=tmp_path / "d.db", **QUIET)
    keys = [t.key for t in out.trials]
    assert len(set(keys)) == 2 and len(_lab_rows(tmp_path / "d.db")) == 2
    for t in out.trials:
        first = keys.index(t.key)
        assert (t.user_attrs.get("same_as") == first) == (t.number != first)
        assert t.value == out.trials[first].value
    with Store(tmp_path / "d.db") as store:
        r = load_search(store)
        assert r.epochs_trained == 2 * 2 and len(r.repeats) == 4


def test_a_rerun_continues_and_a_changed_search_is_refused(tmp_path) -> None:
    db = tmp_path / "r.db"
    space = {"lr": {"low": 1e-3, "high": 0.3, "log": True}}
    first = search(spec=_spec(space, trials=3, startup=2), db=db, **QUIET)
    more = search(spec=_spec(space, trials=5, startup=2), db=db, **QUIET)
    assert first.ran == 3 and more.ran == 2 and len(more.trials) == 5
    assert [t.params for t in more.trials[:3]] == [t.params for t in first.trials]
    once = search(spec=_spec(space, trials=5, startup=2), db=db, **QUIET)
    assert once.ran == 0
    with pytest.raises(StoreError, match=r"started with other settings \(space"):
        search(spec=_spec({"lr": [0.1, 0.2]}, trials=5), db=db, **QUIET)
    with pytest.raises(StoreError, match=r"sampler: was \"tpe\", now \"random\""):
        search(spec=_spec(space, trials=5, startup=2, sampler="random"), db=db, **QUIET)
    from optimlab.lab.runner import run_study

    run_study(parse_spec({**BASE, "name": "plain", "seeds": 1}), db)
    with pytest.raises(StoreError, match="is an ordinary study"):
        search(spec={**_spec(space), "name": "plain"}, db=db, **QUIET)


def test_a_timeout_stops_new_trials(tmp_path) -> None:
    out = search(spec=_spec({"lr": [0.01, 0.1]}, trials=20, timeout=1e-6), db=tmp_path / "t.db",
                 **QUIET)
    assert len(out.trials) < 20


# -- crash safety and workers --------------------------------------------------------------
KILLER = textwrap.dedent("""
    import sys
    from optimlab.tune import search
    search(spec=sys.argv[1], db=sys.argv[2])
""")


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        n = conn.execute(sql).fetchone()[0]
        conn.close()
        return int(n)
    except sqlite3.Error:
        return 0


def test_kill_9_mid_search_then_rerun_finishes_each_trial_once(tmp_path, small_search) -> None:
    spec = tmp_path / "k.toml"
    spec.write_text(small_search(25, 5))
    reference = search(spec=spec, db=tmp_path / "ref.db", **QUIET)
    db = tmp_path / "k.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(spec), str(db)],
                            stderr=subprocess.DEVNULL)
    checkpoints = Path(f"{db}.ckpt")
    deadline = time.time() + 120

    def mid_trial() -> bool:  # two trials done and the third has checkpointed an epoch
        done = _count(db, "SELECT COUNT(*) FROM search_trials WHERE state != 'running'")
        return done >= 2 and any(checkpoints.glob("*/last.pt"))

    while not mid_trial() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _count(db, "SELECT COUNT(*) FROM search_trials WHERE state != 'running'")
    assert 2 <= finished < 5, "the kill should land mid-search"
    assert _count(db, "SELECT COUNT(*) FROM search_trials WHERE state = 'running'") == 1

    out = search(spec=spec, db=db, **QUIET)
    assert [t.number for t in out.trials] == list(range(5))  # each trial once, none lost
    assert all(t.finished_state for t in out.trials)
    # the sampler saw every finished trial: the same sequence as an uninterrupted search
    assert [t.params for t in out.trials] == [t.params for t in reference.trials]
    assert [t.value for t in out.trials] == [t.value for t in reference.trials]
    rows = _lab_rows(db, "k")
    assert sum(r.attempts for r in rows) <= 6  # only the interrupted trial ran twice


def test_two_runs_at_once_on_one_store_lose_nothing_and_run_nothing_twice(
        tmp_path, small_search) -> None:
    import threading

    spec = tmp_path / "t.toml"
    spec.write_text(small_search(10, 10, "t"))
    db = tmp_path / "t.db"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            search(spec=spec, db=db, **QUIET)
        except BaseException as err:  # shown by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    trials = _trials(db, "t")
    assert [t.number for t in trials] == list(range(10))
    assert all(t.state == "complete" for t in trials)
    rows = _lab_rows(db, "t")
    assert all(r.attempts == 1 for r in rows) and len(rows) == len({t.key for t in trials})
    assert len({t.run for t in trials}) == 2  # both runs drew trials


@pytest.mark.slow
def test_two_workers_lose_nothing_and_run_nothing_twice(tmp_path, small_search) -> None:
    spec = tmp_path / "w.toml"
    spec.write_text(small_search(3, 8, "w"))
    out = search(spec=spec, db=tmp_path / "w.db", workers=2, **QUIET)
    assert [t.number for t in out.trials] == list(range(8))
    assert all(t.state == "complete" for t in out.trials)
    rows = _lab_rows(tmp_path / "w.db", "w")
    assert all(r.attempts == 1 and r.status == "completed" for r in rows)  # none ran twice
    assert len(rows) == len({t.key for t in out.trials})
    assert len({t.pid for t in out.trials}) == 2  # both workers took trials


# -- the pieces underneath ------------------------------------------------------------------
def test_epoch_report_prunes_and_a_resumed_run_stays_pruned(tmp_path) -> None:
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    seen = []

    def report(epoch: int, logs: dict) -> None:
        seen.append((epoch, "val_loss" in logs))
        if epoch == 2:
            raise Pruned("pruned after epoch 3 (test)")

    trainer = Trainer({"type": "mlp", "hidden": [8]}, optimizer="sgd",
                      callbacks=[EpochReport(report), ModelCheckpoint(tmp_path)], progress=False)
    history = trainer.fit((X, y), (X, y), epochs=10, batch_size=16)
    assert history.status == "pruned" and history.reason == "pruned after epoch 3 (test)"
    assert len(history.epochs) == 3 and seen == [(0, True), (1, True), (2, True)]
    again = Trainer({"type": "mlp", "hidden": [8]}, optimizer="sgd",
                    callbacks=[EpochReport(report), ModelCheckpoint(tmp_path)], progress=False)
    resumed = again.fit((X, y), (X, y), epochs=10, batch_size=16,
                        resume=tmp_path / "last.pt")
    assert resumed.status == "pruned" and len(resumed.epochs) == 3  # stays ended


def test_a_schema_2_store_gains_the_search_tables(tmp_path) -> None:
    db = tmp_path / "old.db"
    with Store(db) as store:  # make it a schema-3 file: no search tables
        for table in ("search_values", "search_trials", "searches"):
            store.conn.execute(f"DROP TABLE {table}")
        store.conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Store(db) as store:
        tables = {r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION == 4
    assert {"searches", "search_trials", "search_values"} <= tables
    out = search(spec=_spec({"lr": [0.01, 0.1]}, trials=2), db=db, **QUIET)
    assert out.counts == {"complete": 2}


def test_no_optuna_for_the_command_line() -> None:
    probe = ("import io, contextlib, sys\nfrom optimlab.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main([])\n"
             "print('optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "False"
