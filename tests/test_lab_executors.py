"""The driver and the local executors: the driver alone writes the store; per-epoch reports
reach it as they happen and can stop a trial; a worker process killed mid-trial is replaced and
its trial continues from its checkpoint; without Ray, ``--executor ray`` says how to get it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from optimlab.cli import main
from optimlab.errors import UserError
from optimlab.lab.executors_local import InProcess, Processes
from optimlab.lab.runner import run_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store


def small(name: str = "e", **changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": name, "seeds": 2, "baseline": "sgd",
        "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
        "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 3, "batch_size": 16,
                  "lr": 0.05},
        "axes": {"optimizer": ["sgd", "adam"]}}
    spec.update(changes)
    return spec


def finals(db: Path) -> dict[tuple[str, int], tuple[str, dict]]:
    with Store(db) as store:
        return {(r.label, r.seed): (r.status, r.final) for r in store.trials(store.study()[0])}


def test_reports_reach_the_driver_each_epoch_and_can_stop_a_trial(tmp_path) -> None:
    """In this process and in worker processes alike: ``on_report`` runs in the driver for
    every epoch of every trial, in order, after the epoch's checkpoint; raising in it ends that
    trial, recorded with the reason; the other trials' results do not depend on the executor."""
    main_pid = os.getpid()
    results = {}
    for name, executor in (("one", InProcess()), ("two", Processes(2))):
        seen: list[tuple[str, int, int, float]] = []
        lines: list[str] = []

        def on_report(row, epoch, logs, seen=seen, name=name) -> None:  # type: ignore[no-untyped-def]
            assert os.getpid() == main_pid  # the driver, whatever the executor
            assert (tmp_path / f"{name}.db.ckpt" / row.key / "last.pt").is_file()
            seen.append((row.label, row.seed, epoch, logs["val_loss"]))
            if row.label == "adam" and row.seed == 1 and epoch == 1:
                raise UserError("pruned: adam seed 1 is not promising")

        db = tmp_path / f"{name}.db"
        out = run_study(parse_spec(small()), db, executor=executor, on_report=on_report,
                        on_failure=lines.append)
        assert out.counts == {"completed": 3, "failed": 1}
        for label, seed in (("sgd", 0), ("sgd", 1), ("adam", 0)):
            assert [e for (lab, s, e, _) in seen if (lab, s) == (label, seed)] == [0, 1, 2]
        assert [e for (lab, s, e, _) in seen if (lab, s) == ("adam", 1)] == [0, 1]
        with Store(db) as store:
            rows = store.trials(store.study()[0])
            stopped = next(r for r in rows if r.label == "adam" and r.seed == 1)
            assert stopped.error == ("optimlab.errors.UserError: pruned: adam seed 1 is not "
                                     "promising")
            assert {r.pid for r in rows} == {main_pid}  # the driver claimed and recorded all
            done = next(r for r in rows if r.label == "sgd" and r.seed == 0)
            assert [e["val_loss"] for e in store.epochs(done.id)] == \
                [v for (lab, s, _, v) in seen if (lab, s) == ("sgd", 0)]
        assert lines == ["  adam (seed 1) FAILED: optimlab.errors.UserError: pruned: adam seed 1 "
                         "is not promising"]
        # each configuration's seeds were one unit, trained together in one worker; the stop
        # ended adam seed 1 alone, its stacked sibling went on
        assert {r.env["seeds"] for r in rows if r.env} == {"2 trained together"}
        assert len({r.env["pid"] for r in rows if r.label == "sgd"}) == 1
        results[name] = finals(db)
    assert results["one"] == results["two"]


def _kill_a_worker_mid_trial(storage: Path, killed: list[int]) -> None:
    """Once a trial has checkpointed an epoch, SIGKILL the worker process training it."""
    deadline = time.time() + 120
    while time.time() < deadline and not killed:
        if any(storage.glob("*/last.pt")):
            workers = [p for p in multiprocessing.active_children()
                       if p.name == "optimlab-worker"]
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
                killed.append(workers[0].pid)  # type: ignore[arg-type]
                return
        time.sleep(0.005)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_continues(tmp_path) -> None:
    spec = parse_spec(small(seeds=1, train={"model": {"type": "mlp", "hidden": [8]},
                                            "epochs": 40, "batch_size": 16, "lr": 0.05}))
    reference = tmp_path / "ref.db"
    run_study(spec, reference)
    db = tmp_path / "s.db"
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_worker_mid_trial,
                              args=(Path(f"{db}.ckpt"), killed))
    killer.start()
    out = run_study(spec, db, executor=Processes(1))  # one worker: the one training
    killer.join()
    assert killed, "no worker was killed: the trials ended before a checkpoint was seen"
    assert out.counts == {"completed": 2}
    assert finals(db) == finals(reference)  # continued exactly from the checkpoint
    with Store(db) as store:
        rows = store.trials(store.study()[0])
    notes = [w for r in rows for w in r.warnings]
    assert len(notes) == 1 and "worker process died (exit code -9)" in notes[0]
    assert "started again from its last epoch checkpoint" in notes[0]
    assert all(r.attempts == 1 for r in rows)  # retried inside the run, not claimed twice
    assert killed[0] not in {r.env["pid"] for r in rows}


def test_without_ray_the_ray_executor_exits_2_with_the_install_command(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as without it
    spec = tmp_path / "s.toml"
    spec.write_text('name = "r"\nseeds = 1\n[data]\ndataset = "iris"\n[train]\nepochs = 1\n')
    db = tmp_path / "s.db"
    assert main(["run", str(spec), "--db", str(db), "--report", "", "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and "Traceback" not in err
    assert not db.exists()  # refused before anything was checked or stored


def test_ray_flags_without_the_ray_executor_and_a_bad_storage_are_refused(tmp_path,
                                                                          capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('name = "r"\nseeds = 1\n[data]\ndataset = "iris"\n[train]\nepochs = 1\n')
    base = ["run", str(spec), "--db", str(tmp_path / "s.db"), "--report", ""]
    assert main([*base, "--address", "auto", "--num-gpus", "1"]) == 2
    assert "--address, --num-gpus only apply to --executor ray" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*base, "--storage", str(tmp_path / "file")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--executor", "ray", "--num-cpus", "0"])
    assert "not a positive number" in capsys.readouterr().err


def test_storage_holds_the_checkpoints_elsewhere(tmp_path) -> None:
    storage = tmp_path / "shared" / "ckpt"
    seen: list[bool] = []

    def on_report(row, epoch, logs) -> None:  # type: ignore[no-untyped-def]
        seen.append((storage / row.key / "last.pt").is_file())

    out = run_study(parse_spec(small(seeds=1)), tmp_path / "s.db", storage=storage,
                    on_report=on_report)
    assert out.counts == {"completed": 2} and seen and all(seen)
    assert not (tmp_path / "s.db.ckpt").exists() and not storage.exists()  # cleaned up


def test_a_search_adds_trials_as_results_come_in(tmp_path) -> None:
    """The interface a search (``optimlab tune``) drives: ``work`` with ``keys`` as a callable
    runs the trials registered from ``on_trial`` in the same call, on any executor."""
    from optimlab.lab.checks import check_study
    from optimlab.lab.runner import expand, register_study, work

    db = tmp_path / "s.db"
    spec = check_study(parse_spec(small(seeds=1)))[0]
    first, second = expand(spec)
    with Store(db) as store:
        study_id = register_study(store, spec)[0]
        store.conn.execute("DELETE FROM trials WHERE key = ?", (second.key,))  # not asked yet
    keys = [first.key]
    told: list[tuple[str, str]] = []

    def on_trial(row, status) -> None:  # type: ignore[no-untyped-def]
        told.append((row.label, status))
        if row.key == first.key:  # "ask" the next configuration
            with Store(db) as store:
                store.add_trials(study_id, [(second.key, second.label, second.settings,
                                             second.seed)])
            keys.append(second.key)

    assert work(str(db), spec, lambda: keys, on_trial=on_trial) == 2
    assert told == [("sgd", "completed"), ("adam", "completed")]


def test_a_report_answered_pruned_ends_the_trial_pruned_where_it_trains(tmp_path) -> None:
    """``on_report`` raising Pruned (a search's pruner in the driver): the trial ends after
    that epoch as ``pruned`` with the reason, its epochs stored up to there — trained alone in
    a worker process, or with its seeds as one stacked model in this process."""
    from optimlab.train.callbacks import Pruned

    def on_report(row, epoch, logs) -> None:  # type: ignore[no-untyped-def]
        if row.label == "adam" and row.seed == 1 and epoch == 1:
            raise Pruned("pruned by the test after 2 epochs")

    for name, executor, together in (("one", InProcess(), None),
                                     ("two", Processes(1), False)):
        db = tmp_path / f"{name}.db"
        out = run_study(parse_spec(small()), db, executor=executor, on_report=on_report,
                        together=together, on_failure=None)
        assert out.counts == {"completed": 3, "pruned": 1}, name
        with Store(db) as store:
            rows = store.trials(store.study()[0])
            pruned = next(r for r in rows if r.status == "pruned")
            assert (pruned.label, pruned.seed) == ("adam", 1)
            assert pruned.reason == "pruned by the test after 2 epochs"
            assert [e["epoch"] for e in store.epochs(pruned.id)] == [0, 1]
