"""The lab trains the seeds of a configuration together, records each as its own trial, says
when it cannot, and resumes from checkpoints taken at different epochs."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optimlab.lab.analysis import analyze
from optimlab.lab.runner import ckpt_root_for, expand, register_study, run_study
from optimlab.lab.spec import TrainSpec, parse_spec
from optimlab.lab.store import Store
from optimlab.lab.studydata import StudyData
from optimlab.lab.trial import bookkeeping, build_trainer, monitor_for
from optimlab.train import fit_together


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def spec(seeds: int = 3, **train: Any) -> Any:
    return parse_spec({
        "name": "s", "seeds": seeds, "baseline": "sgd",
        "data": {"dataset": "digits", "val": 0.1, "test": 0.1},
        "train": {"model": {"type": "mlp", "hidden": [16]}, "epochs": 3, "batch_size": 64,
                  **train},
        "configs": [{"label": "sgd", "optimizer": "sgd", "lr": 0.3, "early_stopping": 1},
                    {"label": "adam", "optimizer": "adam", "lr": 0.01},
                    {"label": "plateau", "optimizer": "sgd", "lr": 0.3,
                     "plateau": {"patience": 1}}],
        "target": {"metric": "val_accuracy", "value": 0.9}})


def trials(db: Any) -> dict[tuple[str, int], Any]:
    with Store(db) as store:
        return {(r.label, r.seed): r for r in store.trials(store.study("s")[0])}


def assert_same_results(a: Any, b: Any) -> None:
    assert a.keys() == b.keys()
    for key, r in a.items():
        o = b[key]
        assert (o.key, o.status, o.steps, o.stop_step) == (r.key, r.status, r.steps,
                                                          r.stop_step), key
        assert o.final.keys() == r.final.keys()
        for name, value in r.final.items():
            assert o.final[name] == pytest.approx(value, rel=1e-4, abs=1e-6), (key, name)
        assert o.target["step"] == r.target["step"]
        assert {k: v["epoch"] for k, v in o.best.items()} == \
            {k: v["epoch"] for k, v in r.best.items()}


def test_seeds_train_together_and_are_stored_as_the_trials_of_one_at_a_time(tmp_path) -> None:
    notes: list[str] = []
    together = run_study(spec(), tmp_path / "t.db", on_warning=notes.append)
    alone = run_study(spec(), tmp_path / "a.db", together=False)
    assert together.counts == alone.counts and sum(together.counts.values()) == 9
    t, a = trials(tmp_path / "t.db"), trials(tmp_path / "a.db")
    assert_same_results(a, t)
    with Store(tmp_path / "a.db") as store:
        curves = {k: (store.epochs(r.id), store.steps(r.id)) for k, r in a.items()}
    with Store(tmp_path / "t.db") as store:  # the same rows: curves of every epoch and step
        for k, r in t.items():
            epochs, steps = store.epochs(r.id), store.steps(r.id)
            assert [e["epoch"] for e in epochs] == [e["epoch"] for e in curves[k][0]]
            assert [e["val_loss"] for e in epochs] == pytest.approx(
                [e["val_loss"] for e in curves[k][0]], rel=1e-4)
            assert steps["step"] == curves[k][1]["step"]
        study = analyze(store, "s")
    assert t[("adam", 0)].env["seeds"] == "3 trained together"
    assert "shared" in t[("adam", 0)].env["time"]
    reason = t[("plateau", 0)].env["seeds"]
    assert reason.startswith("one at a time") and "ReduceLROnPlateau" in reason
    assert [n for n in notes if "one at a time" in n] == [
        f"  plateau: its seeds train one at a time: {reason.removeprefix('one at a time: ')}"]
    assert "6 trials trained" in study.environment["seeds"]
    assert "ReduceLROnPlateau" in study.environment["seeds"]
    assert a[("adam", 0)].env.get("seeds", "").startswith("one at a time: asked")
    assert not any(ckpt_root_for(tmp_path / "t.db").glob("*/last.pt"))


def test_checkpoints_at_different_epochs_resume_in_groups(tmp_path) -> None:
    """A kill between two seeds' checkpoint writes (or a seed that diverged after its last
    one) leaves a configuration's seeds at different epochs: each group resumes together."""
    s = spec(seeds=4)
    s = s.model_copy(update={"configs": [s.configs[1]], "baseline": None})
    reference = run_study(s, tmp_path / "ref.db")
    db = tmp_path / "s.db"
    root = ckpt_root_for(db)
    data = StudyData(s.data)
    with Store(db) as store:
        register_study(store, s)
        rows = {r.seed: r for r in store.trials(store.study("s")[0])}

        def trainer(seed: int) -> tuple[Any, Any]:
            row = rows[seed]
            settings = TrainSpec.model_validate(row.config).model_dump()
            split = data.split(seed)
            monitor = monitor_for(s, split.train.task)
            kept = bookkeeping(store, s, row, settings, monitor, root / row.key)
            return build_trainer(s, settings, seed, split, kept.callbacks), split

        for seeds, epochs in (([0, 1], 1), ([2], 2)):  # seed 3 has no checkpoint
            made = [trainer(seed) for seed in seeds]
            fit_together([t for t, _ in made], made[0][1].train, made[0][1].val,
                         epochs=epochs, batch_size=64)
    out = run_study(s, db)
    assert out.counts == reference.counts == {"completed": 4}
    t, ref = trials(db), trials(tmp_path / "ref.db")
    # a seed's result depends on the seeds it is stacked with only through float rounding
    assert_same_results(ref, t)
    assert t[("adam", 0)].env["seeds"] == "2 trained together"
    assert t[("adam", 2)].env["seeds"] == "1 trained together"  # stacked alone
    assert {k for k in t} == {(t.label, t.seed) for t in expand(s)}
