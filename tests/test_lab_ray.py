"""The Ray executor on a local cluster started inside the test (2 CPUs, no dashboard): the same
final metrics as the local runner for the same seeds, per-epoch reports streamed to the driver
(which can stop a trial), a worker process killed mid-trial retried from its checkpoint, and a
driver killed with SIGKILL and started again losing nothing and repeating nothing.

Ray is optional for users (``pip install -e ".[ray]"``) and part of ``.[dev]``, so the set-up
of ``./run-tests`` and CI installs it and these tests run there; without it they are skipped,
and ``tests/test_lab_executors.py`` checks that ``--executor ray`` then exits 2 with the install
command. With Ray, the default run has one
test here (a cluster's start-up costs seconds); the fault tests are ``slow``.
"""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e \".[ray]\", "
                                        "or .[dev] as ./run-tests does)")

from optimlab.errors import UserError  # noqa: E402
from optimlab.lab.runner import run_study  # noqa: E402
from optimlab.lab.spec import parse_spec  # noqa: E402
from optimlab.lab.store import Store  # noqa: E402


@pytest.fixture
def cluster(ray_cluster):  # type: ignore[no-untyped-def]
    """The shared local cluster (``tests/conftest.py``)."""
    return ray_cluster


def small(epochs: int = 3, seeds: int = 2) -> dict[str, object]:
    return {"name": "ray", "seeds": seeds, "baseline": "sgd",
            "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
            "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": epochs,
                      "batch_size": 16, "lr": 0.05},
            "axes": {"optimizer": ["sgd", "adam"]}}


def finals(db: Path) -> dict[tuple[str, int], tuple[str, dict]]:
    with Store(db) as store:
        return {(r.label, r.seed): (r.status, r.final) for r in store.trials(store.study()[0])}


def test_a_study_on_ray_gives_the_local_results_and_streams_reports(cluster, tmp_path) -> None:
    spec = parse_spec(small())
    run_study(spec, tmp_path / "local.db")
    seen: list[tuple[str, int, int]] = []

    def on_report(row, epoch, logs) -> None:  # type: ignore[no-untyped-def]
        seen.append((row.label, row.seed, epoch))
        if row.label == "adam" and row.seed == 1 and epoch == 0:
            raise UserError("pruned at its first epoch")

    db = tmp_path / "ray.db"
    out = run_study(spec, db, executor="ray", on_report=on_report)
    assert out.counts == {"completed": 3, "failed": 1}
    expected = finals(tmp_path / "local.db")
    got = finals(db)
    assert got.pop(("adam", 1))[0] == "failed"
    expected.pop(("adam", 1))
    assert got == expected  # the same final metrics, bit for bit, for the same seeds
    for label, seed in (("sgd", 0), ("sgd", 1), ("adam", 0)):
        assert [e for (lab, s, e) in seen if (lab, s) == (label, seed)] == [0, 1, 2]
    assert [e for (lab, s, e) in seen if (lab, s) == ("adam", 1)] == [0]
    with Store(db) as store:
        rows = store.trials(store.study()[0])
    assert {r.pid for r in rows} == {os.getpid()}  # the driver claimed and recorded them
    assert os.getpid() not in {r.env["pid"] for r in rows if r.env}  # Ray workers trained
    assert next(r for r in rows if r.status == "failed").error.endswith(
        "pruned at its first epoch")
    # each configuration's 2 seeds were one unit, one Ray task, trained as one stacked model
    assert {r.env["seeds"] for r in rows if r.env} == {"2 trained together"}
    assert len({r.env["pid"] for r in rows if r.label == "sgd"}) == 1


def test_on_ray_seeds_train_one_at_a_time_when_asked_or_when_they_cannot(cluster,
                                                                         tmp_path) -> None:
    """The one-at-a-time path on Ray: asked for (each trial its own task), or a configuration
    that cannot be stacked (plateau: one task trains its seeds one after another) — the reason
    said once by the driver and kept in each trial's environment."""
    spec = parse_spec({**small(epochs=2), "axes": {"plateau": [None, {"patience": 1}]},
                       "baseline": None})
    notes: list[str] = []
    out = run_study(spec, tmp_path / "t.db", executor="ray", on_warning=notes.append)
    assert out.counts == {"completed": 4}
    with Store(tmp_path / "t.db") as store:
        envs = {(r.label, r.seed): r.env["seeds"] for r in store.trials(store.study()[0])}
    plain, plateau = sorted({label for label, _ in envs})
    assert envs[(plain, 0)] == envs[(plain, 1)] == "2 trained together"
    assert envs[(plateau, 0)].startswith("one at a time") and "ReduceLROnPlateau" in \
        envs[(plateau, 0)]
    assert [n for n in notes if "one at a time" in n] == [
        f"  {plateau}: its seeds train one at a time: "
        f"{envs[(plateau, 0)].removeprefix('one at a time: ')}"]
    out = run_study(parse_spec(small(epochs=1)), tmp_path / "a.db", executor="ray",
                    together=False)
    assert out.counts == {"completed": 4}
    with Store(tmp_path / "a.db") as store:
        rows = store.trials(store.study()[0])
    assert all(r.env["seeds"].startswith("one at a time: asked") for r in rows)


def _ray_trial_workers() -> list[int]:
    """The Ray worker processes running an optimlab trial now (their title names the task)."""
    pids = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                if fh.read().startswith(b"ray::optimlab-trial"):
                    pids.append(int(path.split("/")[2]))
        except OSError:
            continue
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's workers in /proc")
def test_a_ray_worker_killed_mid_trial_is_retried_from_its_checkpoint(cluster,
                                                                      tmp_path) -> None:
    spec = parse_spec(small(epochs=40, seeds=1))
    run_study(spec, tmp_path / "local.db")
    db, storage = tmp_path / "ray.db", tmp_path / "storage"
    reports: list[tuple[str, int]] = []
    killed: list[tuple[str, int]] = []  # (trial label, last epoch reported) when killed

    def on_report(row, epoch, logs) -> None:  # type: ignore[no-untyped-def]
        reports.append((row.label, epoch))
        if not killed and epoch == 10:  # the task waits for this answer: it is mid-trial
            pids = _ray_trial_workers()
            assert pids
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.append((row.label, epoch))

    out = run_study(spec, db, executor="ray", storage=storage, on_report=on_report)
    assert killed and out.counts == {"completed": 2}
    assert finals(db) == finals(tmp_path / "local.db")
    label = killed[0][0]
    epochs = [e for (lab, e) in reports if lab == label]
    assert epochs[:11] == list(range(11))
    # started again from its epoch-10 checkpoint, not from scratch: no epoch before 10 again
    assert epochs[11:] == list(range(11, 40)) or epochs[11:] == list(range(10, 40))
    with Store(db) as store:
        assert all(r.attempts == 1 for r in store.trials(store.study()[0]))


DRIVER = textwrap.dedent("""
    import json, sys
    from optimlab.lab.runner import run_study
    from optimlab.lab.spec import parse_spec
    run_study(parse_spec(json.loads(sys.argv[1])), sys.argv[2], executor="ray",
              address=sys.argv[4], storage=sys.argv[3])
""")


def _completed(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=5)
        n = conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'completed'").fetchone()[0]
        conn.close()
        return int(n)
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_driver_killed_and_started_again_loses_nothing_and_repeats_nothing(cluster,
                                                                           tmp_path) -> None:
    """The driver joins the test's cluster (``--address``), as on a cluster that outlives
    it; killed, it takes its tasks with it, and the next driver continues the study."""
    import json

    spec = small(epochs=60, seeds=3)
    run_study(parse_spec(spec), tmp_path / "local.db")
    db, storage = tmp_path / "ray.db", tmp_path / "storage"
    address = ray.get_runtime_context().gcs_address  # the cluster the test started
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec), str(db),
                               str(storage), address])
    deadline = time.time() + 300

    def mid_study() -> bool:  # two trials done, and a running one has checkpointed an epoch
        return db.exists() and _completed(db) >= 2 and any(storage.glob("*/last.pt"))

    while not mid_study() and time.time() < deadline and driver.poll() is None:
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done = _completed(db)
    assert 2 <= done < 6, "the kill should land mid-study"
    out = run_study(parse_spec(spec), db, executor="ray", storage=storage)
    assert out.counts == {"completed": 6}
    # a configuration's 3 seeds are one unit, trained together: a resume that regroups them
    # (a kill between two seeds' checkpoint writes) changes the kernels' rounding only
    got, expected = finals(db), finals(tmp_path / "local.db")
    assert got.keys() == expected.keys()
    for key, (status, final) in expected.items():
        assert got[key][0] == status and got[key][1].keys() == final.keys()
        for name, value in final.items():
            assert got[key][1][name] == pytest.approx(value, rel=1e-5, abs=1e-9), (key, name)
    with Store(db) as store:
        rows = store.trials(store.study()[0])
    assert all(r.attempts <= 2 for r in rows)
    assert sum(r.attempts for r in rows) <= 6 + 6  # at most the two units in flight ran twice
    assert out.ran == 6 - done  # every finished trial kept, none trained again


@pytest.mark.slow
def test_threads_for_ray_tasks_follow_their_cpus(cluster, tmp_path) -> None:
    """2 CPUs a trial on a 2-CPU cluster: one trial at a time, with 2 torch threads; asking
    for more than the cluster has is refused before anything trains."""
    spec = parse_spec({**small(epochs=1, seeds=1), "resources": {"num_cpus": 2}})
    out = run_study(spec, tmp_path / "r.db", executor="ray")
    assert out.counts == {"completed": 2}
    with Store(tmp_path / "r.db") as store:
        rows = store.trials(store.study()[0])
    assert {r.env["threads"] for r in rows} == {2}
    starts = sorted((r.started, r.finished) for r in rows)
    assert starts[1][0] >= starts[0][1] - 0.5  # claimed when the first had ended
    with pytest.raises(UserError, match="asks for 3 CPUs"):
        run_study(spec, tmp_path / "big.db", executor="ray", num_cpus=3)
