"""A search on Ray (``executor="ray"``, ``optimlab tune --executor ray``) on a local cluster
started inside the test (``ray_cluster`` in conftest.py): the same trials, states, values and
pruning as the same search run locally with the same seed (room for one trial at a time, so
the trials are asked in the same order); the driver alone writes the store; what cannot go to
Ray is refused before it trains; without Ray the command exits 2 with the install command; a
driver killed with SIGKILL and run again finishes each trial once (slow)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from optimlab.cli import main
from optimlab.errors import UserError
from optimlab.lab.store import Store
from optimlab.tune import search
from optimlab.tune.results import load_search

BASE = {"name": "s", "data": {"dataset": "iris", "val": 0.3},
        "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 6, "batch_size": 16,
                  "optimizer": "sgd", "lr": 0.05}}
SPACE = {"lr": {"low": 1e-4, "high": 0.3, "log": True}, "optimizer": ["sgd", "adam"]}
QUIET = {"on_failure": None, "on_warning": None}
#: one trial at a time on the 2-CPU cluster (asked in the local order), one torch thread (the
#: local search's, so the same floating-point sums)
ONE_AT_A_TIME = {"executor": "ray", "num_cpus": 2, "threads": 1}


def _spec(**tune: object) -> dict:
    return {**BASE, "search": SPACE, "tune": {"confirm": 0, "sampler": "tpe",
                                              "pruner": "hyperband", "startup": 2, **tune}}


def _seen(trials: list) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value, t.epochs, t.error, t.values) for t in trials]


def test_a_search_on_ray_gives_the_local_search_with_its_pruning(ray_cluster,
                                                                 tmp_path) -> None:
    spec = _spec(trials=6)
    local = search(spec=spec, db=tmp_path / "local.db", **QUIET)
    db = tmp_path / "ray.db"
    shown: list[int] = []
    out = search(spec=spec, db=db, on_trial=lambda t: shown.append(t.number), **ONE_AT_A_TIME,
                 **QUIET)
    assert _seen(out.trials) == _seen(local.trials)  # same parameters, states, values
    assert shown == list(range(6)) and out.ran == 6
    pruned = [t for t in out.trials if t.state == "pruned"]
    assert pruned and out.counts.get("complete")
    with Store(db) as store:
        labs = {r.key: r for r in store.trials(store.study("s")[0])}
        for t in pruned:  # recorded pruned with its epoch, as the local worker records it
            lab = labs[t.key]
            assert lab.status == "pruned" and lab.reason == t.error
            assert "pruned by Hyperband" in lab.reason
            assert len(store.epochs(lab.id)) == t.epochs < 6  # stored where it stopped
            assert max(t.values) == t.epochs
        assert load_search(store, "s").epochs_trained == sum(t.epochs for t in out.trials)
    assert {r.pid for r in labs.values()} == {os.getpid()}  # the driver claimed and recorded
    assert os.getpid() not in {r.env["pid"] for r in labs.values()}  # Ray workers trained
    assert not Path(f"{db}.ckpt").exists()  # no trial left mid-way


def test_what_cannot_go_to_ray_is_refused_before_it_trains(ray_cluster, tmp_path) -> None:
    def module(trial):  # type: ignore[no-untyped-def]
        trial.suggest_float("lr", 1e-3, 0.1, log=True)
        return torch.nn.Linear(4, 3)

    db = tmp_path / "m.db"
    with pytest.raises(UserError, match=r"torch\.nn\.Module.*executor='local'"):
        search(module, spec={**BASE, "tune": {"confirm": 0, "trials": 2}}, db=db,
               executor="ray", **QUIET)
    with Store(db) as store:
        assert store.trials(store.study("s")[0]) == []  # nothing drawn was kept
    spec = {**_spec(trials=2), "search": {**SPACE, "data.standardize": [True, False]}}
    with pytest.raises(UserError, match=r"varies data\.standardize"):
        search(spec=spec, db=tmp_path / "d.db", executor="ray", **QUIET)


def test_without_ray_tune_on_ray_exits_2_with_the_install_command(tmp_path, monkeypatch,
                                                                  capsys, small_search) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as without it
    spec = tmp_path / "s.toml"
    spec.write_text(small_search(2, 2))
    assert main(["tune", str(spec), "--db", str(tmp_path / "s.db"), "--report", "",
                 "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "s.db").exists()  # refused before the store was touched


def test_tune_on_ray_from_the_command_line(ray_cluster, tmp_path, capsys,
                                          small_search) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(small_search(2, 3))
    db = tmp_path / "s.db"
    assert main(["tune", str(spec), "--db", str(db), "--report", "", "--json", "--executor",
                 "ray", "--num-cpus", "2", "--storage", str(tmp_path / "ckpt")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"] == {"complete": 3}
    with Store(db) as store:
        rows = store.trials(store.study("k")[0])
    assert len(rows) == 3 and os.getpid() not in {r.env["pid"] for r in rows}
    assert {r.env["threads"] for r in rows} == {2}  # --num-cpus 2: two torch threads


@pytest.mark.slow
def test_two_trials_at_once_on_ray_each_once(ray_cluster, tmp_path) -> None:
    """Room for two trials (1 CPU each on 2): a trial is asked while another trains, as with
    two local workers; each trial is trained and told once."""
    spec = _spec(trials=8, pruner="median")
    out = search(spec=spec, db=tmp_path / "two.db", executor="ray", num_cpus=1, **QUIET)
    assert [t.number for t in out.trials] == list(range(8)) and out.ran == 8
    assert all(t.state in ("complete", "pruned") for t in out.trials)
    with Store(tmp_path / "two.db") as store:
        rows = store.trials(store.study("s")[0])
    assert all(r.attempts == 1 for r in rows)
    spans = sorted((r.started, r.finished) for r in rows)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))  # two trained at once


DRIVER = textwrap.dedent("""
    import sys
    from optimlab.tune import search
    search(spec=sys.argv[1], db=sys.argv[2], executor="ray", address=sys.argv[3],
           num_cpus=2, threads=1)
""")


def _finished(db: Path) -> int:
    import sqlite3

    try:
        conn = sqlite3.connect(db, timeout=5)
        n = conn.execute("SELECT COUNT(*) FROM search_trials WHERE state != 'running'")
        count = int(n.fetchone()[0])
        conn.close()
        return count
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_driver_killed_mid_search_and_run_again_finishes_each_trial_once(
        ray_cluster, tmp_path, small_search) -> None:
    """The driver joins the test's cluster (as on a cluster that outlives it); killed, it
    takes its task with it, and the next driver takes its trial over, from its checkpoint."""
    spec = tmp_path / "k.toml"
    spec.write_text(small_search(40, 5))
    reference = search(spec=spec, db=tmp_path / "ref.db", **QUIET)
    db = tmp_path / "k.db"
    address = ray_cluster.get_runtime_context().gcs_address
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(spec), str(db), address],
                              stderr=subprocess.DEVNULL)
    checkpoints = Path(f"{db}.ckpt")
    deadline = time.time() + 300

    def mid_trial() -> bool:  # two trials done and the third has checkpointed an epoch
        return _finished(db) >= 2 and any(checkpoints.glob("*/last.pt"))

    while not mid_trial() and time.time() < deadline and driver.poll() is None:
        time.sleep(0.005)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished = _finished(db)
    assert 2 <= finished < 5, "the kill should land mid-search"

    out = search(spec=spec, db=db, **ONE_AT_A_TIME, **QUIET)
    assert [t.number for t in out.trials] == list(range(5))  # each trial once, none lost
    assert all(t.finished_state for t in out.trials)
    assert out.ran == 5 - finished  # the finished ones kept, not trained again
    # the sampler saw every finished trial: the same sequence as an uninterrupted search
    assert [t.params for t in out.trials] == [t.params for t in reference.trials]
    assert [t.value for t in out.trials] == pytest.approx([t.value for t in reference.trials])
    with Store(db) as store:
        rows = store.trials(store.study("k")[0])
    assert sum(r.attempts for r in rows) <= len(rows) + 1  # only the interrupted one twice
