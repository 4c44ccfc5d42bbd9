"""The runner in daily use: a study's identity includes its content (the same name with other
data is refused, workers run the spec they were given, a new target or edited data makes new
trials), failures are reported as they happen and retried by the next run, a corrupt checkpoint
is set aside, threads are chosen for the model, and the Trainer's extras work in specs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from optimlab.errors import UserError
from optimlab.lab import runner, trial
from optimlab.lab.checks import check_study
from optimlab.lab.runner import choose_threads, expand, register_study, run_study, work
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store, StoreError
from optimlab.lab.studydata import StudyData


def small(name: str = "r", **changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": name, "seeds": 1, "baseline": "sgd",
        "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
        "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 2, "batch_size": 16,
                  "lr": 0.05},
        "axes": {"optimizer": ["sgd", "adam"]}}
    spec.update(changes)
    return spec


def rows(db: Path, name: str | None = None) -> list:
    with Store(db) as store:
        return store.trials(store.study(name)[0])


# -- a study's identity -------------------------------------------------------------------------
def test_the_same_name_with_other_data_is_refused_naming_both(tmp_path, capsys) -> None:
    db = tmp_path / "s.db"
    wine = small(data={"dataset": "wine", "val": 0.2, "test": 0.2})
    run_study(parse_spec(wine), db)
    before = [(r.key, r.status, r.final) for r in rows(db)]
    with pytest.raises(StoreError) as err:
        run_study(parse_spec(small()), db)
    assert "'wine'" in str(err.value) and "'iris'" in str(err.value)
    assert "another name" in str(err.value)
    assert [(r.key, r.status, r.final) for r in rows(db)] == before  # nothing was touched
    from optimlab.cli import main

    spec = tmp_path / "iris.toml"
    spec.write_text('name = "r"\nseeds = 1\n[data]\ndataset = "iris"\n[train]\nepochs = 1\n')
    assert main(["run", str(spec), "--db", str(db), "--report", ""]) == 2
    assert "was run on dataset 'wine'" in capsys.readouterr().err


def test_workers_run_the_spec_they_were_given_not_one_read_by_name(tmp_path) -> None:
    """The race: a second run overwrote the stored spec (same name, other data) while the
    first run's workers were starting. They train on the data of the spec they were given:
    wine (106 training rows: 7 updates per epoch), not iris (90 rows: 6)."""
    db = tmp_path / "s.db"
    wine = check_study(parse_spec(small(data={"dataset": "wine", "val": 0.2, "test": 0.2})))[0]
    with Store(db) as store:
        trials = register_study(store, wine)[1]
        iris = check_study(parse_spec(small()))[0]
        store.ensure_study("r", iris.model_dump(mode="json"))  # overwritten behind its back
    assert work(str(db), wine.model_dump(mode="json"), [t.key for t in trials]) == 2
    done = rows(db)
    assert [r.status for r in done] == ["completed", "completed"]
    assert [r.steps for r in done] == [14, 14]


def test_a_different_spec_while_another_process_runs_the_study_is_refused(tmp_path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as store:
        register_study(store, parse_spec(small()))
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            store.conn.execute("UPDATE trials SET status = 'running', host = ?, pid = ?, "
                               "heartbeat = ? WHERE position = 0",
                               (os.uname().nodename, other.pid, time.time()))
            register_study(store, parse_spec(small()))  # the same spec: a second runner, fine
            with pytest.raises(StoreError, match=rf"being run now by another process .*:"
                                                 rf"{other.pid}\) with a different spec"):
                register_study(store, parse_spec(small(seeds=2)))
        finally:
            other.kill()
            other.wait()
        register_study(store, parse_spec(small(seeds=2)))  # it is gone: the spec may change


def test_a_new_target_makes_new_trials(tmp_path) -> None:
    db = tmp_path / "s.db"
    first = run_study(parse_spec(small(target={"metric": "val_accuracy", "value": 0.5})), db)
    again = run_study(parse_spec(small(target={"metric": "val_accuracy", "value": 0.999})), db)
    assert first.ran == 2 and again.ran == 2
    current = {t.key for t in expand(check_study(parse_spec(
        small(target={"metric": "val_accuracy", "value": 0.999})))[0])}
    assert {r.target["value"] for r in rows(db) if r.key in current} == {0.999}
    assert run_study(parse_spec(small(target={"metric": "val_accuracy", "value": 0.999})),
                     db).ran == 0


def test_an_edited_data_file_makes_new_trials(tmp_path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40)))
    spec = small(data={"csv": str(csv), "target": "label"})
    db = tmp_path / "s.db"
    assert run_study(parse_spec(spec), db).ran == 2
    assert run_study(parse_spec(spec), db).ran == 0  # unchanged: reused
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40)))
    assert run_study(parse_spec(spec), db).ran == 2  # same path, new content: trained again


def test_data_changed_under_a_running_study_fails_its_trials_clearly(tmp_path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40)))
    spec = check_study(parse_spec(small(data={"csv": str(csv), "target": "label"})))[0]
    db = tmp_path / "s.db"
    with Store(db) as store:
        _, trials = register_study(store, spec)
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    lines: list[str] = []
    work(str(db), spec, [t.key for t in trials], on_failure=lines.append)
    assert all(r.status == "failed" and "changed since the study started" in r.error
               for r in rows(db))
    assert len(lines) == 2 and "FAILED" in lines[0]


# -- failures -----------------------------------------------------------------------------------
def _failing(monkeypatch: pytest.MonkeyPatch, label: str, error: Exception) -> None:
    real = trial.train_trial

    def train_trial(spec, unit, *args, **kwargs):  # type: ignore[no-untyped-def]
        if unit.label == label:
            raise error
        return real(spec, unit, *args, **kwargs)

    monkeypatch.setattr(trial, "train_trial", train_trial)


def test_a_failed_trial_is_reported_not_retried_in_its_run_and_retried_after_a_fix(
        tmp_path, monkeypatch) -> None:
    db = tmp_path / "s.db"
    lines: list[str] = []
    with monkeypatch.context() as m:
        _failing(m, "adam", UserError("bad input for adam"))
        out = run_study(parse_spec(small()), db, on_failure=lines.append)
    assert out.counts == {"completed": 1, "failed": 1}
    failed = next(r for r in rows(db) if r.label == "adam")
    assert failed.attempts == 1  # a deterministic error is not tried again in the same run
    assert failed.error == "optimlab.errors.UserError: bad input for adam"
    assert failed.traceback is None  # the user's mistake: no traceback
    assert lines == ["  adam (seed 0) FAILED: optimlab.errors.UserError: bad input for adam"]
    fixed = run_study(parse_spec(small()), db)  # the cause is gone: the next run retries it
    assert fixed.ran == 1 and fixed.counts == {"completed": 2}


def test_an_unexpected_error_is_a_bug_with_its_traceback_stored_and_logged(
        tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPTIMLAB_LOG_DIR", str(tmp_path / "logs"))
    _failing(monkeypatch, "sgd", RuntimeError("boom"))
    lines: list[str] = []
    run_study(parse_spec(small()), tmp_path / "s.db", on_failure=lines.append)
    failed = next(r for r in rows(tmp_path / "s.db") if r.label == "sgd")
    assert failed.status == "failed" and "RuntimeError: boom" in failed.error
    assert "a bug in optimlab" in failed.error
    assert failed.traceback.startswith("Traceback") and "RuntimeError: boom" in failed.traceback
    logs = list((tmp_path / "logs").glob("optimlab-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    assert "RuntimeError: boom" in logs[0].read_text()


def test_an_unreadable_checkpoint_is_set_aside_and_the_trial_restarts(tmp_path) -> None:
    db = tmp_path / "s.db"
    spec = check_study(parse_spec(small()))[0]
    with Store(db) as store:
        _, trials = register_study(store, spec)
    ckpt = tmp_path / "s.db.ckpt" / trials[0].key
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"not a checkpoint at all")
    warnings: list[str] = []
    out = run_study(spec, db, on_warning=warnings.append)
    assert out.counts == {"completed": 2}
    assert len(warnings) == 1 and "set aside" in warnings[0] and "from scratch" in warnings[0]
    assert "weights_only" not in warnings[0]
    assert rows(db)[0].warnings == [warnings[0].split(": ", 1)[1]]
    aside = list((tmp_path / "s.db.ckpt" / "set-aside").glob(f"{trials[0].key}-last.pt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"not a checkpoint at all"


# -- threads, device, times ----------------------------------------------------------------------
def test_threads_default_to_one_for_small_models_and_to_idle_cores_for_large_ones() -> None:
    assert choose_threads(1, 1e4, cores=8, load=0.0) == 1
    assert choose_threads(2, 1e4, cores=8, load=0.0) == 1
    assert choose_threads(1, 1e9, cores=8, load=0.0) == 8
    assert choose_threads(3, 1e9, cores=8, load=0.0) == 2
    assert choose_threads(16, 1e9, cores=8, load=0.0) == 1
    assert choose_threads(1, 1e9, cores=8, load=6.2) == 2  # a busy machine: the idle cores
    assert choose_threads(1, 1e9, cores=2, load=3.7) == 1


def test_a_study_of_small_models_runs_with_one_thread_and_records_the_device(tmp_path) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: torch's own default is one thread too")
    before = torch.get_num_threads()
    run_study(parse_spec(small()), tmp_path / "s.db")
    assert torch.get_num_threads() == before  # the caller's setting is restored
    done = rows(tmp_path / "s.db")
    assert {r.env["threads"] for r in done} == {1}
    assert {r.device for r in done} == {"cpu"} and {r.env["device"] for r in done} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA GPU on this machine: the CUDA path needs one")
def test_a_study_runs_on_cuda_and_the_store_says_so(tmp_path) -> None:
    out = run_study(parse_spec(small(device="cuda")), tmp_path / "s.db")
    assert out.counts == {"completed": 2}
    done = rows(tmp_path / "s.db")
    assert all(r.device.startswith("cuda") and r.env["gpu"] for r in done)
    assert all(0.0 <= r.final["val_accuracy"] <= 1.0 for r in done)


def test_the_first_trial_of_a_worker_does_not_pay_its_start_up(tmp_path) -> None:
    """Each worker process loads the data and warms up before it claims a trial: its first
    trial takes about as long as its others (on main it also paid lazy imports and the first
    optimizer's set-up, seconds against hundredths)."""
    spec = parse_spec(small(seeds=3))
    run_study(spec, tmp_path / "w.db", workers=2)
    done = rows(tmp_path / "w.db")
    workers = {r.env["pid"] for r in done}  # where each trained; the driver claimed them all
    assert len(workers) == 2 and os.getpid() not in workers
    assert {r.pid for r in done} == {os.getpid()}
    for pid in workers:
        mine = sorted((r for r in done if r.env["pid"] == pid), key=lambda r: r.started)
        rest = sorted(r.wall_time for r in mine[1:])
        if rest:
            assert mine[0].wall_time < max(0.5, 4 * rest[len(rest) // 2]), \
                [r.wall_time for r in mine]


# -- the Trainer's extras in specs ------------------------------------------------------------
def extras(**train: object) -> dict[str, object]:
    base = {"model": {"type": "mlp", "hidden": [16]}, "epochs": 6, "batch_size": 16,
            "lr": 0.05, "optimizer": "sgd"}
    return small(name="x", axes={}, baseline=None, train={**base, **train})


def test_swa_ema_and_snapshot_score_the_weights_the_trial_ends_with(tmp_path) -> None:
    for name, setting in (("swa", {"swa": {"start_epoch": 3, "lr": 0.02}}),
                          ("ema", {"ema": {"decay": 0.9}}),
                          ("snapshot", {"snapshot": {"cycles": 2}})):
        db = tmp_path / f"{name}.db"
        assert run_study(parse_spec(extras(**setting)), db).counts == {"completed": 1}
        row = rows(db)[0]
        with Store(db) as store:
            last = store.epochs(row.id)[-1]
        assert row.final["val_loss"] != last["val_loss"], name  # measured again at the end
        assert "test_accuracy" in row.final
        if name == "ema":
            assert "ema_val_loss" in last


def test_plateau_clip_by_value_and_layer_gradients(tmp_path) -> None:
    db = tmp_path / "p.db"
    spec = parse_spec(extras(plateau={"patience": 0, "factor": 0.5, "min_delta": 0.5},
                             clip_grad_value=0.5, layer_grads=True))
    run_study(spec, db)
    row = rows(db)[0]
    with Store(db) as store:
        lrs = store.steps(row.id)["lr"]
        grads = store.layer_grads(row.id)
    assert lrs[0] == 0.05 and lrs[-1] < 0.05  # reduced on the plateau
    assert [g["epoch"] for g in grads] == list(range(6))
    assert list(grads[0]["mean"]) == ["linear0", "output"]  # the model's layers, in order
    settings = runner.configurations(spec)[0][1]
    trainer = runner.build_trainer(spec, settings, 0, StudyData(spec.data).split(0), [])
    assert trainer.clip_grad_value == 0.5
    from optimlab.viz.report import write_report

    html = write_report(db, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="layer-gradients"' in html and "Gradients per layer" in html


def test_resplit_draws_a_split_per_seed() -> None:
    fixed = StudyData(parse_spec(small()).data)
    again = StudyData(parse_spec(small(data={"dataset": "iris", "val": 0.2, "test": 0.2,
                                             "resplit": True})).data)
    assert torch.equal(fixed.split(0).val.X, fixed.split(1).val.X)
    assert not torch.equal(again.split(0).val.X, again.split(1).val.X)
    assert torch.equal(again.split(1).val.X, again.split(1).val.X)
    keys = {t.key for t in expand(parse_spec(small()))}
    assert not keys & {t.key for t in expand(parse_spec(small(data={
        "dataset": "iris", "val": 0.2, "test": 0.2, "resplit": True})))}
