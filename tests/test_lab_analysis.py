"""The analysis of a study from its store: each number equals the statistics of the stored
values recomputed here, failures count against their configuration, one Holm family, and the
CLI analyses a study once."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimlab.lab import stats
from optimlab.lab.analysis import analyze
from optimlab.lab.runner import register_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store, TrialResult

LABELS = ["sgd", "adam", "boom", "flaky"]


def _spec(name: str, seeds: int, *, target: bool = True, baseline: str = "sgd",
          monitor: str | None = None, labels: list[str] = LABELS) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name, "seeds": seeds, "baseline": baseline,
        "data": {"dataset": "iris", "val": 0.2},
        "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 2, "lr": 0.1},
        "configs": [{"label": label, "optimizer": "sgd" if label != "adam" else "adam",
                     "lr": 0.1 + 0.01 * i} for i, label in enumerate(labels)]}
    if target:
        spec["target"] = {"metric": "val_accuracy", "value": 0.9}
    if monitor:
        spec["train"]["monitor"] = monitor
    return spec


def _record(store: Store, spec: dict[str, Any], outcome: Any) -> None:
    """Store trials without training: ``outcome(label, seed)`` gives (status, final value,
    steps to target or None); status "failed" stores a failure, "pending" leaves it."""
    study = parse_spec(spec)
    study_id, _ = register_study(store, study)
    while (row := store.claim(study_id, run="record")) is not None:
        status, value, steps = outcome(row.label, row.seed)
        if status == "failed":
            store.fail(row.id, f"Traceback …\nRuntimeError: broke on seed {row.seed}")
            continue
        if status == "pending":
            continue
        final = {} if status == "diverged" else {"val_accuracy": value, "val_loss": 1 - value,
                                                 "test_accuracy": value - 0.01}
        target = {"metric": "val_accuracy", "value": 0.9, "reached": steps is not None,
                  "step": steps, "seconds": None if steps is None else steps / 100,
                  "epoch": None}
        store.finish(row.id, TrialResult(
            status=status, wall_time=1.0 + row.seed, train_time=0.5, steps=100,
            stop_step=None, reason="", env={"python": "3"}, final=final,
            best={"val_accuracy": {"epoch": 1, "value": value}} if status != "diverged" else {},
            target=target, epochs=[], step_rows={}))


def _outcome(label: str, seed: int) -> tuple[str, float, int | None]:
    rng = np.random.default_rng(seed)
    common = float(rng.normal(0, 0.01))
    if label == "sgd":
        return "completed", 0.90 + common, 200 + 10 * seed
    if label == "adam":
        return "completed", 0.95 + common + 0.001 * seed, 100 + 5 * seed
    if label == "boom":
        return "diverged", math.nan, None
    if seed == 1:
        return "failed", math.nan, None
    return "completed", 0.90 + common - 0.0005, None  # flaky: never reaches the target


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analysis") / "a.db"
    with Store(path) as store:
        _record(store, _spec("big", 12), _outcome)
        _record(store, _spec("small", 3, target=False), _outcome)
        _record(store, _spec("partial", 2, target=False, labels=["sgd", "adam"]),
                lambda label, seed: ("pending", 0, None) if seed == 1 else
                ("completed", 0.9 if label == "sgd" else 0.8, None))
    return path


def test_numbers_are_the_statistics_of_the_stored_values(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "big")
        rows = store.trials(store.study("big")[0])
    assert (a.monitor, a.mode, a.baseline, a.n_seeds) == ("val_accuracy", "max", "sgd", 12)
    for c in a.configs:
        mine = [r for r in rows if r.label == c.label]
        values = {r.seed: (r.final or {}).get("val_accuracy", math.nan)
                  if r.status != "failed" else math.nan for r in mine}
        assert c.final == pytest.approx(values, nan_ok=True)
        assert c.summary_final == stats.summarize(values)
        assert c.time_per_seed == pytest.approx(
            np.mean([r.wall_time for r in mine if r.status != "failed"]))
    sgd = a.config("sgd")
    adam = a.config("adam")
    # the comparison with the baseline is the pairwise one, seen from the candidate
    ref = stats.paired(adam.final, sgd.final, mode="max", metric="val_accuracy",
                       candidate_label="adam", baseline_label="sgd")
    comp = a.comparisons["adam"]
    assert (comp.candidate_label, comp.baseline_label) == ("adam", "sgd")
    assert comp.p_value == pytest.approx(ref.p_value)
    assert (comp.wins, comp.losses, comp.ties) == (ref.wins, ref.losses, ref.ties)
    assert comp.mean_diff == pytest.approx(ref.mean_diff)
    assert comp.prob == pytest.approx(ref.prob) and comp.prob_low == pytest.approx(ref.prob_low)


def test_one_holm_family_over_pairs_and_target_comparisons(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "big")
    k = len(LABELS)
    assert a.family == len(list(combinations(range(k), 2))) + (k - 1)  # 6 + 3
    assert a.seeds_needed == stats.seeds_needed(a.family) == 9  # 2/2^9 ≤ 0.05/9 < 2/2^8
    assert set(a.target_comparisons) == {"steps"}  # seconds depend on the load: not tested
    every = [*a.pairwise, *a.target_comparisons["steps"].values()]
    expected = stats.holm([c.p_value for c in every])
    assert [c.p_adjusted for c in every] == pytest.approx(expected)
    assert all(c.family == a.family for c in every)


def test_failures_count_against_their_configuration(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "big")
    boom, flaky = a.config("boom"), a.config("flaky")
    assert (boom.diverged, boom.n_done, boom.summary_final.n_finite) == (12, 12, 0)
    assert a.rank_of("boom") is None  # no finite value: no rank
    assert a.comparisons["boom"].verdict == "worse"  # every seed the worst value
    assert (flaky.failed, flaky.n_done) == (1, 12)
    assert flaky.failures == [(1, "RuntimeError: broke on seed 1")]
    assert a.comparisons["flaky"].candidate_failed == 1
    # flaky never reaches the target: censored, so clearly slower, not dropped
    assert flaky.steps_to_target.reached == 0  # type: ignore[union-attr]
    assert a.target_comparisons["steps"]["flaky"].verdict == "worse"
    assert a.target_comparisons["steps"]["adam"].verdict == "better"


def test_ranking_follows_the_corrected_pairwise_verdicts(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "big")
    ranks = {e.label: e.rank for e in a.ranking}
    assert ranks == {"adam": 1, "sgd": 2, "flaky": 3, "boom": None}
    assert a.beaten_by("adam") == ["boom", "flaky", "sgd"]
    assert [e.label for e in a.ranking][-1] == "boom"


def test_too_few_seeds_and_a_loss_monitor(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "small")
        loss = analyze(store, "small", monitor="val_loss")
    assert a.family == 6 and a.seeds_needed == 8  # 2/2^8 ≤ 0.05/6 < 2/2^7
    assert {c.verdict for c in a.comparisons.values()} <= {"too few seeds"}
    assert loss.mode == "min"
    assert loss.comparisons["adam"].mean_diff < 0  # lower loss for adam
    assert loss.comparisons["adam"].wins == 3


def test_unfinished_trials_are_left_out_and_the_study_is_incomplete(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "partial")
    assert not a.complete
    assert all(c.n == 2 and c.n_done == 1 and c.unfinished == 1 for c in a.configs)
    assert all(e.rank is None for e in a.ranking)
    assert a.comparisons["adam"].n_pairs == 1


def test_resplit_is_read_from_the_spec(db: Path) -> None:
    with Store(db, create=False) as store:
        a = analyze(store, "small")
    assert a.resplit is False


def test_run_and_report_analyses_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import optimlab.lab.analysis as analysis_module
    from optimlab.cli import main

    calls = []
    real = analysis_module.analyze

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        return real(*args, **kw)

    import optimlab.viz.report as report_module

    monkeypatch.setattr(analysis_module, "analyze", counting)
    monkeypatch.setattr(report_module, "analyze", counting)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--optimizers", "sgd", "adam", "--seeds", "2", "--epochs", "1",
                 "--dataset", "iris", "--db", "c.db", "--report", "c.html"]) == 0
    assert len(calls) == 1 and Path("c.html").is_file()
    out = capsys.readouterr().out
    assert "time / seed" in out and "too few seeds to tell" in out
