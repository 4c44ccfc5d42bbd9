"""k-fold cross-validation, random restarts and lr = "find" in studies: folds partition the data
and never leak into their own standardization, a killed k-fold study resumes to the same
result, one restart is the plain trial, the restart kept is the best on validation and its test
value is the one reported, and bad input is refused before training naming the field."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from optimlab.cli import main
from optimlab.data import Dataset, load
from optimlab.lab.analysis import analyze
from optimlab.lab.runner import expand, run_study
from optimlab.lab.spec import DataSpec, load_spec, parse_spec
from optimlab.lab.store import Store, TrialRow
from optimlab.lab.studydata import kfold_parts, kfold_split
from optimlab.lab.units import group, unit_id

# -- folds -------------------------------------------------------------------------------------


def _with_ids(ds: Dataset) -> Dataset:
    """``ds`` with a first feature that is the row's index (to follow rows through splits)."""
    ids = torch.arange(len(ds), dtype=ds.X.dtype)[:, None]
    return Dataset.from_arrays(torch.cat([ids, ds.X], 1).numpy(), ds.y.numpy(), task=ds.task)


def _ids(part: Dataset) -> list[int]:
    return [int(v) for v in part.X[:, 0].round().tolist()]


@pytest.mark.parametrize("test, repeats", [(0.2, 2), (0.0, 1)])
def test_every_row_outside_test_validates_in_exactly_one_fold_per_repeat(test, repeats) -> None:
    ds = _with_ids(load("breast_cancer"))
    data = DataSpec(dataset="breast_cancer", split="kfold", folds=5, repeats=repeats,
                    test=test, standardize=False)
    test_ids: set[int] | None = None
    orders = []
    for repeat in range(repeats):
        folds, test_part = kfold_parts(data, ds, repeat)
        held = set(_ids(test_part)) if test_part is not None else set()
        assert test_ids is None or held == test_ids  # the same test rows for every repeat
        test_ids = held
        vals = [_ids(v) for _, v in folds]
        seen = [i for v in vals for i in v]
        assert len(seen) == len(set(seen))  # each row in one validation fold at most…
        assert set(seen) | held == set(range(len(ds))) and not set(seen) & held  # …and once
        for (train, val) in folds:
            assert not set(_ids(train)) & set(_ids(val)) and not set(_ids(train)) & held
            assert len(train) + len(val) + len(held) == len(ds)
            # stratified: each class's share in a fold within one row of its share overall
            y_all = ds.y.numpy()[sorted(set(seen))]
            for c in (0, 1):
                expected = (y_all == c).mean() * len(val)
                assert abs(int((val.y.numpy() == c).sum()) - expected) <= 1
        orders.append(vals)
    if repeats > 1:
        assert orders[0] != orders[1]  # a repeat cuts the folds again


def test_no_fold_standardization_sees_its_validation_rows() -> None:
    """The standardized parts equal scikit-learn's StandardScaler fitted on the fold's raw
    training rows alone; and blowing up the validation rows' features changes nothing in the
    training part."""
    ds = _with_ids(load("breast_cancer"))
    raw = DataSpec(dataset="breast_cancer", split="kfold", folds=4, test=0.1, standardize=False)
    scaled = raw.model_copy(update={"standardize": True})
    for fold in range(4):
        r = kfold_split(raw, ds, fold)
        s = kfold_split(scaled, ds, fold)
        scaler = StandardScaler().fit(r.train.X.numpy())
        for part_raw, part_scaled in ((r.train, s.train), (r.val, s.val), (r.test, s.test)):
            np.testing.assert_allclose(part_scaled.X.numpy(),
                                       scaler.transform(part_raw.X.numpy()), atol=1e-5)
        val_rows = _ids(r.val)
        blown = ds.X.clone()
        blown[val_rows, 1:] *= 1000.0
        other = Dataset.from_arrays(blown.numpy(), ds.y.numpy(), task=ds.task)
        s2 = kfold_split(scaled, other, fold)
        assert torch.equal(s2.train.X, s.train.X) and torch.equal(s2.test.X, s.test.X)
        assert not torch.equal(s2.val.X, s.val.X)


SPEC = """
name = "kfold"
seeds = 2
baseline = "sgd"

[data]
dataset = "iris"
split = "kfold"
folds = 3
test = 0.2

[train]
model = {{ type = "mlp", hidden = [8] }}
epochs = {epochs}
batch_size = 16
lr = 0.05

[[configs]]
label = "sgd"
"""


def _finals(db: Path) -> dict:
    with Store(db) as store:
        return {(r.label, r.fold, r.seed): (r.status, r.final)
                for r in store.trials(store.study()[0])}


def test_a_kfold_study_runs_one_trial_per_fold_and_seed_with_stats_per_pair(tmp_path) -> None:
    spec_text = SPEC.format(epochs=3) + '\n[[configs]]\nlabel = "adam"\noptimizer = "adam"\n' \
        'lr = 0.01\n'
    spec = parse_spec(__import__("tomllib").loads(spec_text))
    trials = expand(spec)
    assert [(t.label, t.fold, t.seed) for t in trials][:6] == [
        ("sgd", f, s) for f in range(3) for s in range(2)]
    db = tmp_path / "k.db"
    assert run_study(spec, db).counts == {"completed": 12}
    with Store(db) as store:
        a = analyze(store)
        rows = store.trials(store.study()[0])
    assert a.kfold and a.pair == "(fold, seed) pair" and a.n_seeds == 6
    sgd = a.config("sgd")
    assert sorted(sgd.final) == sorted(unit_id(f, s) for f in range(3) for s in range(2))
    assert sgd.final == {unit_id(r.fold, r.seed): r.final["val_accuracy"] for r in rows
                         if r.label == "sgd"}
    c = a.comparisons["adam"]
    assert c.n_pairs == 6 and "(fold, seed) pairs" in c.statement
    text = " ".join(a for a in __import__("optimlab.lab.answer", fromlist=["x"]).answer(a))
    assert "3 folds × 2 seeds" in text
    from optimlab.lab.answer import variance

    assert "not independent" in variance(a) and "too narrow" in variance(a)
    from optimlab.lab.replay import replay_trial

    with Store(db) as store:  # a stored trial trains again on its own fold's split
        assert replay_trial(store, None, "adam", 1).reproduces
        from optimlab.viz.report import render_report

        html = render_report(store, analysis=a).html
    assert "× 3 folds × 2 seeds" in html and "<th>folds × seeds</th>" in html
    assert "(fold, seed) pairs" in html and "not independent samples" in html


KILLER = textwrap.dedent("""
    import sys
    from optimlab.lab.spec import load_spec
    from optimlab.lab.runner import run_study
    run_study(load_spec(sys.argv[1]), sys.argv[2])
""")


def test_kill_9_mid_kfold_study_then_rerun_gives_the_uninterrupted_result(tmp_path) -> None:
    spec_path = tmp_path / "kfold.toml"
    spec_path.write_text(SPEC.format(epochs=30))
    reference = tmp_path / "ref.db"
    # one seed at a time, so the results are bit for bit those of the uninterrupted run (seeds
    # trained together and regrouped by a kill agree to float rounding: test_lab_store.py)
    run_study(load_spec(spec_path), reference, together=False)
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(spec_path), str(db)],
                            env={**os.environ, "OPTIMLAB_TOGETHER": "0"})
    checkpoints = Path(f"{db}.ckpt")
    deadline = time.time() + 120

    def done() -> int:
        import sqlite3

        if not db.exists():
            return 0
        try:
            conn = sqlite3.connect(db, timeout=5)
            n = conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'completed'").fetchone()
            conn.close()
            return int(n[0])
        except sqlite3.Error:
            return 0

    while not (done() >= 2 and any(checkpoints.glob("*/last.pt"))) and \
            time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done() < 6, "the kill should land mid-study"
    out = run_study(load_spec(spec_path), db, together=False)
    assert out.counts == {"completed": 6}
    assert _finals(db) == _finals(reference)


# -- restarts ----------------------------------------------------------------------------------

RESTARTS = {"name": "r", "seeds": 2, "baseline": "sgd",
            "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
            "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 3, "batch_size": 16,
                      "lr": 0.05},
            "configs": [{"label": "sgd"}]}


def test_one_restart_is_the_plain_trial_and_restart_0_trains_as_it(tmp_path) -> None:
    """restarts = 1 is the plain study (same keys, so the same trials); with restarts = 3 each
    seed trains three trials of its own, and restart 0 trains exactly as the plain trial."""
    plain = parse_spec(RESTARTS)
    one = parse_spec({**RESTARTS, "train": {**RESTARTS["train"], "restarts": 1}})
    assert [t.key for t in expand(plain)] == [t.key for t in expand(one)]
    db = tmp_path / "r.db"
    run_study(plain, db)
    assert run_study(one, db).ran == 0
    before = _finals(db)
    both = parse_spec({**RESTARTS, "configs": [{"label": "sgd"},
                                               {"label": "sgd, best of 3", "restarts": 3}]})
    out = run_study(both, db)
    assert out.ran == 6 and out.counts == {"completed": 8}
    with Store(db) as store:
        rows = [r for r in store.trials(store.study()[0]) if r.label == "sgd, best of 3"]
        a = analyze(store)
    assert sorted((r.seed, r.restart) for r in rows) == [(s, k) for s in (0, 1)
                                                         for k in range(3)]
    for (_, _, seed), (_, final) in before.items():
        first = next(r for r in rows if r.seed == seed and r.restart == 0)
        assert first.final == final  # restart 0 is the plain trial, bit for bit
    c = a.config("sgd, best of 3")
    assert c.restarts is not None and c.restarts.restarts == 3 and c.n == 2
    assert a.config("sgd").restarts is None


def _row(seed: int, restart: int, val: float, test: float, status: str = "completed"
         ) -> TrialRow:
    return TrialRow(id=seed * 10 + restart, study_id=1, key=f"{seed}-{restart}", label="x",
                    config={}, seed=seed, position=0, status=status, attempts=1, host=None,
                    pid=None, started=None, finished=None, wall_time=1.0, train_time=1.0,
                    steps=1, stop_step=None, reason="", error=None, env=None,
                    final={"val_accuracy": val, "test_accuracy": test}, best={}, target=None,
                    restart=restart)


def test_the_restart_kept_is_the_best_on_validation_and_its_test_value_is_reported() -> None:
    from optimlab.lab.units import restart_summary

    rows = [_row(0, 0, 0.80, 0.95), _row(0, 1, 0.90, 0.70), _row(0, 2, 0.85, 0.99),
            _row(1, 0, 0.70, 0.60), _row(1, 1, float("nan"), float("nan"), "diverged"),
            _row(1, 2, 0.75, 0.65)]
    units = group(rows, lambda r: r.final["val_accuracy"], lambda r: r.final["test_accuracy"],
                  "max")
    assert units[0].chosen.restart == 1 and units[1].chosen.restart == 2
    summary = restart_summary(units, "max")
    assert summary.chosen == {0: 1, 1: 2} and summary.diverged == 1
    # the gain on test is the chosen restart's test value minus the mean restart's: negative
    # here, because the best on validation was the worst on test in seed 0
    assert summary.gain_test.mean == pytest.approx(
        ((0.70 - (0.95 + 0.70 + 0.99) / 3) + (0.65 - (0.60 + 0.65) / 2)) / 2)
    assert summary.gain_val.mean > 0


def test_a_restarted_study_reports_the_test_value_of_the_restart_chosen_on_val(tmp_path) -> None:
    spec = parse_spec({**RESTARTS, "configs": [{"label": "sgd", "restarts": 3},
                                               {"label": "adam", "optimizer": "adam",
                                                "lr": 0.01}]})
    db = tmp_path / "r.db"
    run_study(spec, db)
    with Store(db) as store:
        a = analyze(store)
        rows = [r for r in store.trials(store.study()[0]) if r.label == "sgd"]
    c = a.config("sgd")
    for seed in (0, 1):
        mine = [r for r in rows if r.seed == seed]
        vals = [r.final["val_accuracy"] for r in mine]
        chosen = mine[int(np.argmax(vals))]  # the first of equal ones
        assert c.final[seed] == chosen.final["val_accuracy"]
        assert c.test[seed] == chosen.final["test_accuracy"]
    from optimlab.lab.answer import answer

    text = " ".join(answer(a))
    assert "best of 3 restarts by val accuracy" in text and "over the average restart" in text
    from optimlab.viz.report import render_report

    with Store(db) as store:
        report = render_report(store, analysis=a)
    assert 'id="restarts"' in report.html and "restarts" in {p.key for p in report.plots}
    assert "keeping the best gained" in report.html


def test_restarts_from_python_keep_the_best_on_validation(digits_split) -> None:
    from optimlab import Trainer
    from optimlab.train import restarts
    from optimlab.train.restarts import restart_seed

    def make(seed: int) -> Trainer:
        return Trainer({"type": "mlp", "hidden": [16]}, optimizer="sgd", lr=0.05, seed=seed,
                       progress=False)

    split = digits_split
    out = restarts(make, 3, split.train, split.val, monitor="val_accuracy", epochs=2)
    assert out.seeds[0] == 0 and len(set(out.seeds)) == 3 and out.seeds[1] == restart_seed(0, 1)
    assert out.best_index == int(np.argmax(out.values))
    assert out.best.evaluate(split.val)["accuracy"] == out.values[out.best_index]
    one = restarts(make, 1, split.train, split.val, monitor="val_accuracy", epochs=2)
    plain = make(0).fit(split.train, split.val, epochs=2)
    assert one.best_index == 0 and one.histories[0].steps["loss"] == plain.steps["loss"]


# -- lr = "find" in a study --------------------------------------------------------------------

def test_lr_find_in_a_study_trains_with_the_suggestion_and_stores_the_curve(tmp_path) -> None:
    spec = parse_spec({**RESTARTS, "seeds": 1, "baseline": "find", "configs": [
        {"label": "find", "lr": "find", "lr_find": {"num_steps": 40, "end": 100.0}}]})
    db = tmp_path / "f.db"
    assert run_study(spec, db).counts == {"completed": 1}
    with Store(db) as store:
        (row,) = store.trials(store.study()[0])
        found = store.lr_find(row.id)
        epochs = store.epochs(row.id)
        a = analyze(store)
    assert found["num_steps"] == 40 and found["rule"] == "minimum" and len(found["lrs"]) <= 40
    assert epochs[0]["lr"] == pytest.approx(found["lr"])  # it trained at the suggestion
    assert a.config("find").lrs_found == [found["lr"]]
    from optimlab.viz.report import render_report

    with Store(db) as store:
        report = render_report(store)
        from optimlab.lab.replay import replay_trial

        assert replay_trial(store, None, "find", 0).reproduces  # at the lr it found
    assert 'id="lr-find"' in report.html and "range test chose lr" in report.html


def test_a_resumed_trial_reuses_its_range_test(tmp_path) -> None:
    """The range test's result is kept in the trial's checkpoint folder: a trial that starts
    again trains with it instead of testing again."""
    from optimlab.lab.runner import ckpt_root_for

    spec = parse_spec({**RESTARTS, "seeds": 1, "baseline": "find",
                       "configs": [{"label": "find", "lr": "find"}]})
    db = tmp_path / "f.db"
    (trial,) = expand(__import__("optimlab.lab.checks", fromlist=["x"]).check_study(spec)[0])
    saved = ckpt_root_for(db) / trial.key / "lr_find.json"
    saved.parent.mkdir(parents=True)
    lrs = [1e-3 * 1.1**i for i in range(20)]
    saved.write_text(json.dumps({
        "lrs": lrs, "losses": [1.0] * 20, "smoothed": [1.0] * 20, "start": 1e-3, "end": 1.0,
        "num_steps": 20, "beta": 0.9, "diverge": 4.0, "rule": "minimum", "stop_reason": "x",
        "diverged": False, "suggestions": {"minimum": {
            "rule": "minimum", "lr": 0.0123, "index": 3, "at_lr": 0.123, "loss": 1.0,
            "how": "planted"}}}))
    run_study(spec, db)
    with Store(db) as store:
        (row,) = store.trials(store.study()[0])
        assert store.lr_find(row.id)["lr"] == 0.0123
        assert store.epochs(row.id)[0]["lr"] == pytest.approx(0.0123)


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, train, words", [
    ('split = "kfold"\nfolds = 1\n', "", ["folds=1", "[2, 1000]"]),
    ('split = "kfold"\nfolds = 60\n', "", ["folds=60", "class", "use folds <= "]),
    ('folds = 5\n', "", ["folds=5", 'split = "kfold"']),
    ('split = "kfold"\nval = 0.3\n', "", ["val=0.3", "kfold"]),
    ('split = "kfold"\nresplit = true\n', "", ["resplit", "kfold"]),
    ("", "restarts = 0\n", ["restarts=0", "[1, 1000]"]),
    ("", 'lr = "find"\nlr_find = { start = 1.0, end = 0.1 }\n', ["start=1", "end=0.1"]),
    ("", 'lr = "find"\nlinear_scaling = true\n', ["linear_scaling"]),
    ("", '[[configs]]\nlabel = "a"\nrestarts = 3\n[[configs]]\nlabel = "b"\nrestarts = 5\n',
     ["'a' and 'b' differ only in restarts"]),
])
def test_bad_input_exits_2_naming_the_field(tmp_path, capsys, data, train, words) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(f'name = "bad"\n[data]\ndataset = "iris"\n{data}[train]\nepochs = 1\n{train}')
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_lr_find_command_refuses_bad_settings_and_runs(tmp_path, capsys) -> None:
    assert main(["lr-find", "--dataset", "iris", "--start", "1", "--end", "0.1",
                 "--out", ""]) == 2
    assert "start=1" in capsys.readouterr().err
    assert main(["lr-find", "--dataset", "iris", "--steps", "30", "--batch-sizes", "8", "32",
                 "--seeds", "2", "--json", "--out", str(tmp_path / "f.png")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch_sizes"] == [8, 32] and len(data["curves"]["8"]) == 2
    assert data["slope"]["n"] == 4 and (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
