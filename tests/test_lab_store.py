"""The store and the runner: resumable studies, kill -9, two runners on one file, bad files."""

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

from optimlab.lab.runner import expand, run_study
from optimlab.lab.spec import SpecError, load_spec, parse_spec
from optimlab.lab.store import Store, StoreError, downsample

SPEC = """
name = "small"
seeds = 2
baseline = "sgd"

[data]
dataset = "iris"
val = 0.2
test = 0.2

[train]
model = {{ type = "mlp", hidden = [16] }}
epochs = {epochs}
batch_size = 16
lr = 0.05

[axes]
optimizer = ["sgd", "adam", "momentum"]
"""


def write_spec(tmp_path: Path, epochs: int = 3, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(SPEC.format(epochs=epochs))
    return path


def finals(db: Path) -> dict[tuple[str, int], dict]:
    with Store(db) as store:
        study_id, _, _ = store.study()
        return {(r.label, r.seed): (r.status, r.final) for r in store.trials(study_id)}


def test_a_study_runs_every_trial_once_and_a_rerun_skips_them(tmp_path) -> None:
    spec = load_spec(write_spec(tmp_path))
    db = tmp_path / "s.db"
    out = run_study(spec, db)
    assert out.ran == 6 and out.counts == {"completed": 6}
    again = run_study(spec, db)
    assert again.ran == 0 and again.counts == {"completed": 6}
    with Store(db) as store:
        study_id, _, _ = store.study("small")
        rows = store.trials(study_id)
        assert [(r.label, r.seed) for r in rows] == [
            (label, seed) for label in ("sgd", "adam", "momentum") for seed in (0, 1)]
        first = rows[0]
        assert len(store.epochs(first.id)) == 3
        assert store.steps(first.id)["step"][-1] == first.steps
        assert first.env["torch"] and "val_accuracy" in first.final
        assert "test_accuracy" in first.final
    assert not any((tmp_path / "s.db.ckpt").glob("*/last.pt"))  # finished: checkpoints removed


def test_a_larger_spec_adds_only_the_new_trials(tmp_path) -> None:
    spec = load_spec(write_spec(tmp_path))
    db = tmp_path / "s.db"
    run_study(spec, db)
    more = spec.model_copy(update={"seeds": 3})
    out = run_study(more, db)
    assert out.ran == 3 and out.counts == {"completed": 9}


KILLER = textwrap.dedent("""
    import sys
    from optimlab.lab.spec import load_spec
    from optimlab.lab.runner import run_study
    run_study(load_spec(sys.argv[1]), sys.argv[2])
""")


def _completed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        n = conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'completed'").fetchone()[0]
        conn.close()
        return n
    except sqlite3.Error:
        return 0


def _close(a: dict, b: dict) -> bool:
    """The same trials, statuses and metric names, every value equal to float rounding."""
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and a[k][1].keys() == b[k][1].keys()
        and all(a[k][1][m] == pytest.approx(b[k][1][m], rel=1e-5, abs=1e-9) for m in a[k][1])
        for k in a)


@pytest.mark.parametrize("together", [False, True], ids=["one-at-a-time", "together"])
def test_kill_9_mid_study_then_rerun_finishes_each_trial_once_with_same_results(tmp_path,
                                                                                together):
    """One seed at a time: the same results bit for bit. Seeds trained together: a kill
    between two seeds' checkpoint writes resumes them in two groups, which changes a seed's
    place in the stack and so the kernels' rounding: the same results to float rounding."""
    spec_path = write_spec(tmp_path, epochs=60)
    reference = tmp_path / "ref.db"
    run_study(load_spec(spec_path), reference, together=together)

    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(spec_path), str(db)],
                            env={**os.environ, "OPTIMLAB_TOGETHER": "1" if together else "0"})
    deadline = time.time() + 120
    checkpoints = Path(f"{db}.ckpt")

    def mid_trial() -> bool:  # two trials done and the next one has checkpointed an epoch
        return _completed(db) >= 2 and any(checkpoints.glob("*/last.pt"))

    while not mid_trial() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= _completed(db) < 6, "the kill should land mid-study"
    with Store(db) as store:  # the file is consistent and the interrupted trial is 'running'
        statuses = [r.status for r in store.trials(store.study()[0])]
    assert "running" in statuses or "pending" in statuses

    out = run_study(load_spec(spec_path), db, together=together)
    assert out.counts == {"completed": 6}
    with Store(db) as store:
        rows = store.trials(store.study()[0])
        assert all(r.attempts <= 2 for r in rows)
        # at most the interrupted unit ran twice: one trial, or the 2 seeds trained together
        assert sum(r.attempts for r in rows) <= 8
    if together:
        assert _close(finals(db), finals(reference))
    else:
        assert finals(db) == finals(reference)


def test_a_trial_left_running_by_a_dead_process_is_reclaimed(tmp_path) -> None:
    spec = load_spec(write_spec(tmp_path, epochs=1))
    db = tmp_path / "s.db"
    with Store(db) as store:
        from optimlab.lab.runner import register_study

        register_study(store, spec)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        store.conn.execute("UPDATE trials SET status = 'running', host = ?, pid = ?, "
                           "heartbeat = ? WHERE position = 0",
                           (os.uname().nodename, int(dead.stdout), time.time()))
    out = run_study(spec, db)
    assert out.counts == {"completed": 6}


def test_two_runners_on_one_file_lose_nothing_and_repeat_nothing(tmp_path) -> None:
    spec_path = write_spec(tmp_path, epochs=2)
    db = tmp_path / "shared.db"
    procs = [subprocess.Popen([sys.executable, "-c", KILLER, str(spec_path), str(db)])
             for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    with Store(db) as store:
        rows = store.trials(store.study()[0])
        assert len(rows) == 6 and all(r.status == "completed" for r in rows)
        assert all(r.attempts == 1 for r in rows)  # no trial ran twice
        assert all(len(store.epochs(r.id)) == 2 for r in rows)


def test_corrupt_and_foreign_files_get_a_clear_error(tmp_path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite file"):
        Store(garbage)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an optimlab store"):
        Store(foreign)
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "missing.db", create=False)


def test_a_diverging_configuration_is_recorded_and_the_study_goes_on(tmp_path) -> None:
    text = SPEC.format(epochs=2).replace('optimizer = ["sgd", "adam", "momentum"]',
                                         'lr = [0.05, 1e6]')
    path = tmp_path / "div.toml"
    path.write_text(text.replace('baseline = "sgd"', 'baseline = "0.05"'))
    out = run_study(load_spec(path), tmp_path / "d.db")
    assert out.counts == {"completed": 2, "diverged": 2}
    with Store(tmp_path / "d.db") as store:
        diverged = [r for r in store.trials(store.study()[0]) if r.status == "diverged"]
        assert all(r.stop_step is not None and "loss became" in r.reason for r in diverged)


def test_expand_gives_stable_keys() -> None:
    spec = parse_spec({"name": "k", "data": {"dataset": "iris"},
                       "axes": {"optimizer": ["sgd", "adam"]}})
    keys = [t.key for t in expand(spec)]
    assert keys == [t.key for t in expand(spec)] and len(set(keys)) == 6


@pytest.mark.parametrize("text, words", [
    ('name = "x"\n[data]\ndataset = "digitz"\n', ["spec.toml:3", "dataset='digitz'"]),
    ('name = "x"\n[data]\ndataset = "iris"\n[train]\nbatch_size = -4\n',
     ["spec.toml:5", "batch_size=-4", ">= 1"]),
    ('name = "x"\n[data]\ndataset = "iris"\n[train]\nbatchsize = 4\n',
     ["spec.toml:5", "train.batchsize", "batch_size"]),
    ('name = "x"\n[data]\ndataset = "iris"\n[axes]\noptimizer = ["sgd", "adamm"]\n',
     ["spec.toml:5", "'adamm'", "'adam'"]),
    ('name = "x"\nbaseline = "nope"\n[data]\ndataset = "iris"\n', ["baseline='nope'"]),
    ('name = "x"\n[data]\ndataset = "iris"\n[train]\nlr = -1.0\n', ["lr=-1.0"]),
    ('name = "x"\n[data\n', ["not valid TOML"]),
])
def test_spec_errors_name_the_field_the_value_and_the_line(tmp_path, text, words) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    for word in words:
        assert word in str(err.value)


def test_downsample_keeps_first_and_last() -> None:
    idx = downsample(10_000, 100)
    assert idx[0] == 0 and idx[-1] == 9_999 and len(idx) == 100
    assert downsample(50, 100) == list(range(50))


def test_with_early_stopping_final_metrics_are_those_of_the_restored_epoch(tmp_path) -> None:
    spec = parse_spec({"name": "es", "seeds": 1, "data": {"dataset": "iris", "val": 0.3},
                       "train": {"model": {"type": "mlp", "hidden": [64]}, "epochs": 60,
                                 "batch_size": 8, "lr": 0.05, "optimizer": "adam",
                                 "early_stopping": 3, "monitor": "val_loss"}})
    run_study(spec, tmp_path / "es.db")
    with Store(tmp_path / "es.db") as store:
        row = store.trials(store.study()[0])[0]
        epochs = store.epochs(row.id)
    assert row.status == "early_stopped" and len(epochs) < 60
    best = row.best["val_loss"]
    assert row.final["val_loss"] == best["value"]
    assert best["epoch"] == len(epochs) - 1 - 3  # patience 3 after the best epoch


def test_axes_keep_their_order_through_the_store(tmp_path) -> None:
    """Labels come from the axes in the order written; the stored spec must keep that order."""
    text = SPEC.format(epochs=1).replace(
        'optimizer = ["sgd", "adam", "momentum"]',
        'optimizer = ["sgd", "adam"]\n"model.activation" = ["relu", "tanh"]').replace(
        'baseline = "sgd"', 'baseline = "optimizer=sgd, model.activation=relu"').replace(
        "seeds = 2", "seeds = 1")
    path = tmp_path / "grid.toml"
    path.write_text(text)
    out = run_study(load_spec(path), tmp_path / "g.db")
    assert out.counts == {"completed": 4}
    with Store(tmp_path / "g.db") as store:
        labels = [r.label for r in store.trials(store.study()[0])]
    assert labels[0] == "optimizer=sgd, model.activation=relu"


def test_full_batch_can_be_written_in_toml(tmp_path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(SPEC.format(epochs=2).replace("batch_size = 16", 'batch_size = "full"'))
    spec = load_spec(path)
    assert spec.train.batch_size is None
    out = run_study(spec.model_copy(update={"seeds": 1}), tmp_path / "f.db")
    with Store(tmp_path / "f.db") as store:
        assert all(r.steps == 2 for r in store.trials(store.study()[0]))  # one update per epoch
    assert out.counts == {"completed": 3}


# -- schema 2: named rows, None for "not measured", migration from schema 1 -----------------
V1 = Path(__file__).parent / "data" / "store-v1.db"  # made by tests/data/make_store_v1.py
# with optimlab at commit 2767263 (schema 1): iris, lr 0.05 (2 seeds completed, seed 0 reached
# the target) and lr 1e6 (seed 0 diverged, seed 1 marked failed)


def test_a_schema_1_store_opens_upgraded_and_reads_as_it_was_written(tmp_path) -> None:
    import shutil

    from optimlab.lab.analysis import analyze
    from optimlab.lab.store import SCHEMA_VERSION
    from optimlab.viz.report import write_report

    db = tmp_path / "old.db"
    shutil.copy(V1, db)
    with Store(db) as store:
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION == 4
        study_id, name, _ = store.study()
        rows = store.trials(study_id)
        assert name == "v1-study" and len(rows) == 4
        by = {(r.label, r.seed): r for r in rows}
        reached, missed = by[("0.05", 0)], by[("0.05", 1)]
        assert reached.target["reached"] is True and reached.target["step"] == 12
        assert missed.target["reached"] is False
        assert missed.target["step"] is None and missed.target["seconds"] is None  # not NaN
        assert reached.final["val_accuracy"] == 0.7 and reached.device == "cpu"
        assert by[("1e+06", 0)].status == "diverged" and by[("1e+06", 0)].best == {}
        assert by[("1e+06", 1)].error == "ValueError: made to fail for the fixture"
        assert by[("1e+06", 1)].traceback is None and reached.warnings == []
        assert store.epochs(reached.id)[-1]["epoch"] == 1.0
        assert store.layer_grads(reached.id) == []
        a = analyze(store)  # the old trial keys still match the stored spec
        assert {c.label: c.n for c in a.configs} == {"0.05": 2, "1e+06": 2}
    with Store(db) as store:  # opening again: nothing left to migrate
        assert len(store.trials(store.study()[0])) == 4
    assert "v1-study" in write_report(db, out=tmp_path / "r.html").read_text()


V2 = Path(__file__).parent / "data" / "store-v2.db"  # made by tests/data/make_store_v2.py
# with optimlab at commit e480fe8 (schema 2): iris, lr 0.05 (2 seeds completed) and lr 1e6
# (seed 0 diverged, seed 1 marked failed), a target


def test_a_schema_2_store_is_upgraded_to_3_and_its_trials_keep_their_keys(tmp_path) -> None:
    """Migration 2 → 3 adds the fold and restart of a trial (NULL: none had either) and the
    range tests' table; an ordinary study's trial keys are unchanged, so running its spec
    again with today's code finds every trial done."""
    import shutil

    from optimlab.lab.analysis import analyze
    from optimlab.lab.runner import expand, run_study
    from optimlab.lab.spec import parse_spec
    from optimlab.lab.store import MIGRATIONS, SCHEMA_VERSION

    assert SCHEMA_VERSION == 4 and MIGRATIONS[1].__name__ == "_migrate_2_to_3"
    db = tmp_path / "v2.db"
    shutil.copy(V2, db)
    with Store(db) as store:
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION  # 2 → 3 → 4
        columns = {r[1] for r in store.conn.execute("PRAGMA table_info(trials)")}
        assert {"fold", "restart"} <= columns
        study_id, name, spec_data = store.study()
        rows = store.trials(study_id)
        assert name == "v2-study" and len(rows) == 4
        assert all(r.fold is None and r.restart is None for r in rows)
        assert all(store.lr_find(r.id) is None for r in rows)
        assert sorted(r.key for r in rows) == sorted(t.key for t in expand(parse_spec(spec_data)))
        a = analyze(store)
        assert {c.label: (c.n, c.n_done) for c in a.configs} == {"0.05": (2, 2), "1e+06": (2, 2)}
        assert a.config("0.05").final == {r.seed: r.final["val_accuracy"] for r in rows
                                          if r.label == "0.05"}
    out = run_study(parse_spec(spec_data), db)
    assert out.ran == 1  # only the trial the fixture marked failed runs again
    assert out.counts == {"completed": 2, "diverged": 2}


def test_rows_are_read_by_name_and_a_result_is_one_object(tmp_path) -> None:
    from optimlab.lab.store import TrialResult

    with Store(tmp_path / "s.db") as store:
        sid = store.ensure_study("x", {"name": "x"})
        store.add_trials(sid, [("k", "a", {"lr": 0.1}, 0)])
        row = store.claim(sid, run="r1")
        store.finish(row.id, TrialResult(
            status="completed", wall_time=1.5, train_time=1.0, steps=3, stop_step=None,
            reason="", env={"device": "cpu"}, final={"val_loss": float("nan"),
                                                      "val_accuracy": 0.5},
            best={}, target={"reached": False, "step": None}, device="cpu",
            epochs=[{"epoch": 0, "val_loss": float("inf")}],
            step_rows={"step": [1, 2, 3], "loss": [1.0, float("nan"), 0.5],
                       "lr": [0.1] * 3, "grad_norm": [1.0, 2.0, 3.0]},
            layer_grads=[{"epoch": 0, "mean": {"l": 1.0}, "min": {"l": 1.0},
                          "max": {"l": 1.0}}]))
        got = store.trial(row.id)
        assert got.status == "completed" and got.wall_time == 1.5 and got.run == "r1"
        assert got.final["val_accuracy"] == 0.5 and got.final["val_loss"] != got.final[
            "val_loss"]  # NaN measured stays NaN
        assert got.target == {"reached": False, "step": None}  # not measured stays None
        assert store.epochs(row.id)[0]["val_loss"] == float("inf")
        assert store.layer_grads(row.id)[0]["mean"] == {"l": 1.0}
        steps = store.steps(row.id)
        assert steps["loss"][0] == 1.0 and steps["loss"][1] != steps["loss"][1]


def test_garbage_in_the_middle_of_a_store_is_a_clear_error(tmp_path) -> None:
    import shutil

    db = tmp_path / "g.db"
    shutil.copy(V1, db)
    Store(db).close()  # upgraded, then damaged
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        for page in range(2, size // 4096):
            fh.seek(page * 4096 + 40)
            fh.write(b"garbage" * 300)
    damaged = r"is damaged .*malformed.*move it aside.*\.recover"
    with pytest.raises(StoreError, match=damaged), Store(db) as store:
        for s in store.studies():
            for r in store.trials(s["id"]):
                store.epochs(r.id)


@pytest.fixture
def read_only(tmp_path):
    """A store file this process cannot write: chmod for a user, the immutable flag for root."""
    db = tmp_path / "ro.db"
    spec = load_spec(write_spec(tmp_path, epochs=1)).model_copy(update={"seeds": 1})
    run_study(spec, db)
    for extra in tmp_path.glob("ro.db-*"):
        extra.unlink()
    if os.geteuid() != 0:
        db.chmod(0o444)
        yield db
        db.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no read-only file")
    try:
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


def test_a_read_only_store_is_read_and_refuses_writes_clearly(read_only, tmp_path) -> None:
    with Store(read_only) as store:
        assert store.trials(store.study()[0])[0].status == "completed"
        with pytest.raises(StoreError, match=r"cannot be written|read-only"):
            store.ensure_study("another", {"name": "another"})
    more = load_spec(write_spec(tmp_path, epochs=2)).model_copy(update={"seeds": 1})
    with pytest.raises(StoreError, match=r"cannot be written|read-only"):
        run_study(more, read_only)
    from optimlab.cli import main

    assert main(["list", str(read_only)]) == 0
    assert main(["run", str(write_spec(tmp_path, epochs=2)), "--db", str(read_only),
                 "--report", ""]) == 2


def test_many_threads_creating_one_store_at_once_all_open_it(tmp_path) -> None:
    import threading

    from optimlab.lab.store import SCHEMA_VERSION

    for round_ in range(10):  # the race is narrow: several fresh files
        db = tmp_path / f"race{round_}.db"
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def open_it(db: Path = db, start: threading.Barrier = start,
                    errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                with Store(db) as store:
                    store.ensure_study("x", {})
            except BaseException as err:  # shown by the assertion below
                errors.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with Store(db) as store:
            version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert int(version.fetchone()[0]) == SCHEMA_VERSION
            assert store.conn.execute("SELECT count(*) FROM studies").fetchone()[0] == 1
