"""Replaying a stored trial gives the study's own result: the seed's split, the settings'
callbacks (early stopping restores its best epoch) and the trial's scoring."""

from __future__ import annotations

from pathlib import Path

from optimlab.lab.replay import replay_trial
from optimlab.lab.runner import run_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store


def _study(**train: object) -> dict[str, object]:
    return {"name": "replayed", "seeds": [3], "baseline": "adam",
            "data": {"dataset": "wine", "val": 0.3, "test": 0.2, "resplit": True},
            "train": {"model": {"type": "mlp", "hidden": [16]}, "epochs": 25,
                      "batch_size": 16, "lr": 0.05, **train},
            "axes": {"optimizer": ["adam", "sgd"]}}


def test_an_early_stopped_trial_on_its_own_split_replays_exactly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_study(parse_spec(_study(early_stopping=2, lr=0.3)), db)
    with Store(db) as store:
        rows = store.trials(store.study()[0])
        stopped = [r for r in rows if r.status == "early_stopped"]
        assert stopped, [r.status for r in rows]  # the case this test is about
        for row in rows:
            replay = replay_trial(store, None, row.label, row.seed)
            assert replay.replayed == replay.stored, row.label
            assert replay.reproduces
