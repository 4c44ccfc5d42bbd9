"""Trainer.fit: the course's batch-size experiment, exact accumulation, exact resume, early
stopping, metrics, divergence, bad input, determinism and schedules."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from optimlab.data import Dataset, load
from optimlab.schedules import cosine, linear_scaling, step_decay
from optimlab.train import History, Trainer
from optimlab.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, read_checkpoint


def weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# -- the course's batch-size experiment ---------------------------------------------------------


@pytest.mark.parametrize("scaled", [False, True], ids=["same_lr", "linear_scaling"])
def test_cat_vs_dog_batch_sizes_give_1024_32_and_1_updates_per_epoch(mlp, scaled: bool) -> None:
    data = load("cat_vs_dog", n=1024, seed=0)
    data = Dataset(data.X, data.y, task="multiclass", n_classes=2)  # the notes' 2-unit softmax
    counts, lrs = {}, {}
    for batch in (1, 32, 1024):
        lr = linear_scaling(0.01, batch, 32) if scaled else 0.01
        trainer = Trainer(mlp(1000, 100, 2), optimizer="sgd", lr=lr, metrics=["accuracy"])
        history = trainer.fit(data, epochs=1, batch_size=batch)
        counts[batch] = history.n_steps
        lrs[batch] = set(history.steps["lr"])
        assert history.status == "completed"
    assert counts == {1: 1024, 32: 32, 1024: 1}
    if scaled:
        assert lrs == {1: {0.01 / 32}, 32: {0.01}, 1024: {0.32}}


def test_full_batch_is_batch_gradient_descent(mlp) -> None:
    data = load("moons", n=200, seed=1)
    trainer = Trainer(mlp(2, 8, 1), optimizer="sgd", lr=0.1)
    history = trainer.fit(data, epochs=3, batch_size=None)
    assert history.n_steps == 3


# -- exact gradient accumulation ---------------------------------------------------------------


@pytest.mark.parametrize("optimizer, kwargs", [
    ("sgd", {}), ("adamw", {"weight_decay": 0.1, "decay_mask": "all"})])
def test_four_micro_batches_of_32_equal_one_batch_of_128(mlp, optimizer, kwargs,
                                                         digits_split) -> None:
    train = digits_split.train.subset(range(1024))
    big = Trainer(mlp(), optimizer=optimizer, lr=0.01, optimizer_kwargs=kwargs, metrics=[])
    big.fit(train, epochs=2, batch_size=128)
    small = Trainer(mlp(), optimizer=optimizer, lr=0.01, optimizer_kwargs=kwargs, metrics=[],
                    accumulate=4)
    history = small.fit(train, epochs=2, batch_size=32)
    assert history.n_steps == big.history.n_steps == 16
    torch.testing.assert_close(weights(small.model), weights(big.model), rtol=1e-6, atol=1e-6)
    # what clipping and callbacks see is the mean gradient of the four, i.e. the big batch's
    assert history.steps["grad_norm"] == pytest.approx(big.history.steps["grad_norm"], rel=1e-5)
    assert history.steps["loss"] == pytest.approx(big.history.steps["loss"], rel=1e-5)


# -- resume ------------------------------------------------------------------------------------


def _resumable_trainer(mlp, ckpt_dir):
    return Trainer(mlp(dropout=0.2), optimizer="adam", lr=3e-3, schedule=cosine(3e-3, 200),
                   metrics=["accuracy"],
                   callbacks=[EarlyStopping("val_loss", patience=50),
                              ModelCheckpoint(ckpt_dir, monitor="val_accuracy")])


def _strip_times(history):
    out = history.to_dict()
    for record in out["epochs"]:
        record.pop("time")
    return out


def test_resume_after_epoch_3_gives_the_uninterrupted_history(mlp, tmp_path, digits_split) -> None:
    train, val = digits_split.train.subset(range(512)), digits_split.val
    straight = _resumable_trainer(mlp, tmp_path / "a")
    full = straight.fit(train, val, epochs=7, batch_size=32)

    first = _resumable_trainer(mlp, tmp_path / "b")
    first.fit(train, val, epochs=4, batch_size=32)  # epochs 0..3, then "crash"
    resumed = _resumable_trainer(mlp, tmp_path / "b")
    history = resumed.fit(train, val, epochs=7, batch_size=32,
                          resume=tmp_path / "b" / "last.pt")
    assert _strip_times(history) == _strip_times(full)
    assert torch.equal(weights(resumed.model), weights(straight.model))


def test_last_checkpoint_writes_each_epochs_history_once(mlp, tmp_path, digits_split) -> None:
    train, val = digits_split.train.subset(range(256)), digits_split.val
    trainer = _resumable_trainer(mlp, tmp_path)
    full = trainer.fit(train, val, epochs=3, batch_size=32)
    raw = torch.load(tmp_path / "last.pt", weights_only=True)
    assert "epochs" not in raw["history"] and "steps" not in raw["history"]
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert lines[0]["journal"] == "optimlab-history"
    assert [[r["epoch"] for r in line["epochs"]] for line in lines[1:]] == [[0.0], [1.0], [2.0]]
    assert [x for line in lines[1:] for x in line["steps"]["loss"]] == full.steps["loss"]
    read = read_checkpoint(tmp_path / "last.pt")
    assert read["history"] == full.to_dict() | {"status": "running"}  # saved before fit ended
    (tmp_path / "history.jsonl").unlink()
    with pytest.raises(ValueError, match=r"history\.jsonl, which is missing"):
        read_checkpoint(tmp_path / "last.pt")
    assert read_checkpoint(tmp_path / "last.pt", history=False)["epoch"] == 2  # weights alone


def test_resume_after_a_crash_between_journal_and_checkpoint(mlp, tmp_path,
                                                             digits_split) -> None:
    train, val = digits_split.train.subset(range(256)), digits_split.val
    full = _resumable_trainer(mlp, tmp_path / "a").fit(train, val, epochs=5, batch_size=32)
    ckpt = tmp_path / "b"
    _resumable_trainer(mlp, ckpt).fit(train, val, epochs=3, batch_size=32)
    journal = ckpt / "history.jsonl"
    committed = journal.read_bytes()
    with journal.open("ab") as fh:  # epoch 3's rows appended, then killed before the rename
        fh.write(b'{"epochs":[{"epoch":3.0,"train_loss":9.0}],"steps":{"loss":[9.0]}}\n{"ep')
    resumed = _resumable_trainer(mlp, ckpt)
    history = resumed.fit(train, val, epochs=5, batch_size=32, resume=ckpt / "last.pt")
    assert _strip_times(history) == _strip_times(full)
    assert journal.read_bytes().startswith(committed)
    assert _strip_times(History.from_dict(read_checkpoint(ckpt / "last.pt")["history"])) == \
        _strip_times(full) | {"status": "running"}


def test_a_journal_of_another_run_is_refused_and_old_checkpoints_still_resume(
        mlp, tmp_path, digits_split) -> None:
    train, val = digits_split.train.subset(range(256)), digits_split.val
    full = _resumable_trainer(mlp, tmp_path / "a").fit(train, val, epochs=4, batch_size=32)
    _resumable_trainer(mlp, tmp_path / "b").fit(train, val, epochs=2, batch_size=32)
    old = read_checkpoint(tmp_path / "b" / "last.pt") | {"version": 1}  # history inline
    torch.save(old, tmp_path / "v1.pt")
    resumed = _resumable_trainer(mlp, tmp_path / "c")
    history = resumed.fit(train, val, epochs=4, batch_size=32, resume=tmp_path / "v1.pt")
    assert _strip_times(history) == _strip_times(full)
    # a fresh fit in b's folder starts a new journal: b's old last.pt no longer fits it
    (tmp_path / "b" / "last.pt").rename(tmp_path / "b-last.pt")
    (tmp_path / "b" / "best.pt").unlink()
    _resumable_trainer(mlp, tmp_path / "b").fit(train, val, epochs=1, batch_size=32)
    (tmp_path / "b-last.pt").rename(tmp_path / "b" / "old.pt")
    with pytest.raises(ValueError, match="another run"):
        read_checkpoint(tmp_path / "b" / "old.pt")


def test_synced_checkpoints_resume_the_same(mlp, tmp_path, digits_split) -> None:
    train = digits_split.train.subset(range(128))
    Trainer(mlp(), optimizer="sgd", callbacks=[ModelCheckpoint(tmp_path, sync=True,
                                                               monitor="train_loss")]).fit(
        train, epochs=2)
    assert read_checkpoint(tmp_path / "last.pt")["history"] == \
        read_checkpoint(tmp_path / "best.pt")["history"]
    with pytest.raises(ValueError, match="sync"):
        ModelCheckpoint(tmp_path, sync="yes")  # type: ignore[arg-type]


def test_checkpoint_errors_are_clear(mlp, tmp_path, digits_split) -> None:
    trainer = Trainer(mlp(), optimizer="sgd", lr=0.1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trainer.fit(digits_split.train, epochs=1, resume=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable optimlab checkpoint"):
        Trainer(mlp(), optimizer="sgd", lr=0.1).fit(digits_split.train, epochs=1, resume=bad)


def test_a_checkpoint_resumes_only_with_the_same_callbacks_in_the_same_order(
        mlp, tmp_path, digits_split) -> None:
    train = digits_split.train
    Trainer(mlp(), optimizer="sgd", lr=0.1, progress=False,
            callbacks=[EarlyStopping(monitor="train_loss", patience=5),
                       ModelCheckpoint(tmp_path, monitor="train_loss")]).fit(train, epochs=1)
    assert read_checkpoint(tmp_path / "last.pt")["callback_types"] == [
        "EarlyStopping", "ModelCheckpoint"]
    swapped = Trainer(mlp(), optimizer="sgd", lr=0.1, progress=False,
                      callbacks=[ModelCheckpoint(tmp_path / "b", monitor="train_loss"),
                                 EarlyStopping(monitor="train_loss", patience=5)])
    with pytest.raises(ValueError, match=r"callbacks \['EarlyStopping', 'ModelCheckpoint'\]"):
        swapped.fit(train, epochs=2, resume=tmp_path / "last.pt")


def test_checkpoint_is_written_atomically_and_loads_weights_only(mlp, tmp_path,
                                                                 digits_split) -> None:
    cb = ModelCheckpoint(tmp_path, monitor="val_loss")
    Trainer(mlp(), optimizer="sgd", lr=0.1, callbacks=[cb]).fit(
        digits_split.train, digits_split.val, epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "history.jsonl", "last.pt"]
    data = torch.load(tmp_path / "last.pt", weights_only=True)
    assert data["epoch"] == 1 and data["format"] == "optimlab-checkpoint"


# -- early stopping ------------------------------------------------------------------------------


class _Recorder(Callback):
    """Keeps the weights at the end of every epoch (an independent record)."""

    def __init__(self) -> None:
        self.per_epoch: list[torch.Tensor] = []

    def on_epoch_end(self, state) -> None:
        self.per_epoch.append(weights(state.model).clone())


@pytest.mark.parametrize("epochs, patience", [(60, 3), (6, 100)],
                         ids=["stopped_by_patience", "stopped_by_epoch_limit"])
def test_early_stopping_restores_the_best_epochs_weights(mlp, epochs, patience,
                                                         digits_split) -> None:
    train = digits_split.train.subset(range(256))  # small: overfits, val loss turns up
    recorder = _Recorder()
    stopper = EarlyStopping("val_loss", patience=patience, restore_best=True)
    trainer = Trainer(mlp(hidden=128), optimizer="adam", lr=1e-2, metrics=["accuracy"],
                      callbacks=[recorder, stopper])
    history = trainer.fit(train, digits_split.val, epochs=epochs, batch_size=16)
    best_epoch, _ = history.best("val_loss", "min")
    assert stopper.best_epoch == best_epoch
    assert torch.equal(weights(trainer.model), recorder.per_epoch[int(best_epoch)])
    if patience == 3:
        assert history.status == "early_stopped"
        assert len(history.epochs) == best_epoch + 1 + 3
    else:
        assert history.status == "completed"


def test_early_stopping_with_ewa_smoothing_and_relative_delta() -> None:
    stopper = EarlyStopping("val_loss", patience=2, smoothing=0.5, min_delta=0.1,
                            min_delta_mode="rel")
    stopper.mode = "min"
    values = [1.0, 0.8, 0.79, 0.78, 0.77]
    v, seen = 0.0, []
    for t, x in enumerate(values, start=1):  # by hand: bias-corrected EWA with β = 0.5
        v = 0.5 * v + 0.5 * x
        seen.append(v / (1 - 0.5**t))
    assert [stopper._value(x) for x in values] == pytest.approx(seen)


# -- metrics, accuracy target, predictions -------------------------------------------------------


def test_digits_mlp_with_adam_reaches_95_percent_in_under_30_s(mlp, digits_split) -> None:
    start = time.perf_counter()
    trainer = Trainer(mlp(hidden=128), optimizer="adam", lr=1e-3, metrics=["accuracy"])
    trainer.fit(digits_split.train, digits_split.val, epochs=30, batch_size=32)
    result = trainer.evaluate(digits_split.test)
    elapsed = time.perf_counter() - start
    assert result["accuracy"] >= 0.95, result
    assert elapsed < 30


def test_metrics_agree_with_scikit_learn_on_the_same_predictions(mlp, digits_split) -> None:
    trainer = Trainer(mlp(), optimizer="adam", lr=1e-3, metrics=["accuracy", "f1_macro"])
    trainer.fit(digits_split.train, epochs=2)
    result = trainer.evaluate(digits_split.test)
    predicted = trainer.predict(digits_split.test).argmax(1).numpy()
    truth = digits_split.test.y.numpy()
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert result["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    proba = trainer.predict(digits_split.test, proba=True)
    torch.testing.assert_close(proba.sum(1), torch.ones(len(proba)))


# -- divergence and bad input -------------------------------------------------------------------


def test_a_diverging_run_is_recorded_not_raised(mlp) -> None:
    data = load("linear", n=256, seed=0)
    trainer = Trainer(mlp(data.n_features, 16, 1), optimizer="sgd", lr=50.0, metrics=["mse"])
    history = trainer.fit(data, epochs=20, batch_size=32)
    assert history.status == "diverged"
    assert history.stop_step is not None and history.stop_step <= history.n_steps + 1
    assert "loss became" in history.reason


def test_skip_mode_skips_nonfinite_steps_and_goes_on(mlp, digits_split) -> None:
    calls = {"n": 0}

    def flaky_loss(out, y):
        calls["n"] += 1
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == 3 else loss

    trainer = Trainer(mlp(), loss=flaky_loss, optimizer="sgd", lr=0.1, on_nonfinite="skip")
    history = trainer.fit(digits_split.train.subset(range(320)), epochs=1, batch_size=32)
    assert history.status == "completed" and history.skipped_steps == 1
    assert history.n_steps == 9 and all(math.isfinite(x) for x in history.steps["loss"])


@pytest.mark.parametrize("make, fit_kw, words", [
    (lambda mlp: Trainer(mlp(inputs=10), optimizer="sgd"), {}, ["(64,)", "expects 10 features"]),
    (lambda mlp: Trainer(mlp(outputs=3), optimizer="sgd"), {}, ["3 outputs", "10 classes"]),
    (lambda mlp: Trainer(mlp(), loss="mse", optimizer="sgd"), {}, ["mse", "multiclass"]),
    (lambda mlp: Trainer(mlp(), optimizer="sgd"), {"batch_size": 5000, "drop_last": True},
     ["batch_size=5000"]),
    (lambda mlp: Trainer(mlp(), optimizer="nope"), {}, ["unknown optimizer 'nope'"]),
    (lambda mlp: Trainer(mlp(), optimizer="adam", lr=-1.0), {}, ["lr=-1.0"]),
    (lambda mlp: Trainer(mlp(), precision="fp16"), {}, ["fp16", "CUDA"]),
])
def test_bad_input_is_caught_before_the_first_step(mlp, make, fit_kw, words,
                                                   digits_split) -> None:
    with pytest.raises(ValueError) as err:
        make(mlp).fit(digits_split.train, **{"epochs": 1, **fit_kw})
    for word in words:
        assert word in str(err.value)


def test_nan_and_bad_labels_in_the_data_are_refused(mlp) -> None:
    X = torch.randn(20, 3)
    X[7, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        Trainer(mlp(3, 4, 2), optimizer="sgd").fit((X, torch.randint(0, 2, (20,))), epochs=1)
    with pytest.raises(ValueError, match="label"):
        Dataset(torch.randn(4, 3), torch.tensor([0, 1, 5, 1]), task="multiclass", n_classes=3)


def test_epochs_or_max_steps_is_required_and_max_steps_is_exact(mlp, digits_split) -> None:
    trainer = Trainer(mlp(), optimizer="sgd", lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(digits_split.train)
    history = trainer.fit(digits_split.train, max_steps=50, batch_size=32)
    assert history.n_steps == 50 and history.steps["step"][-1] == 50


# -- determinism, schedules, progress -------------------------------------------------------------


def test_one_seed_gives_one_history_bit_for_bit(mlp, digits_split) -> None:
    runs = []
    for _ in range(2):
        trainer = Trainer(mlp(dropout=0.3), optimizer="adam", lr=1e-3, seed=5)
        runs.append(trainer.fit(digits_split.train, digits_split.val, epochs=2).steps)
    assert runs[0] == runs[1]
    other = Trainer(mlp(dropout=0.3), optimizer="adam", lr=1e-3, seed=6)
    assert other.fit(digits_split.train, epochs=2).steps["loss"] != runs[0]["loss"]


def test_fit_leaves_the_callers_random_state_alone(mlp, digits_split) -> None:
    trainer = Trainer(mlp(dropout=0.5), optimizer="sgd")  # mlp() seeds: build it first
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trainer.fit(digits_split.train, epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_schedule_by_step_and_by_epoch(mlp, digits_split) -> None:
    train = digits_split.train.subset(range(320))  # 10 updates per epoch
    by_step = cosine(0.1, 30)
    history = Trainer(mlp(), optimizer="sgd", schedule=by_step).fit(train, epochs=3)
    assert history.steps["lr"] == pytest.approx([by_step(t) for t in range(30)])
    by_epoch = step_decay(0.1, every=1, factor=0.5)
    history = Trainer(mlp(), optimizer="sgd", schedule=by_epoch, schedule_unit="epoch").fit(
        train, epochs=3)
    assert history.steps["lr"] == pytest.approx([0.1] * 10 + [0.05] * 10 + [0.025] * 10)


def test_torch_lr_scheduler_is_stepped_at_its_unit(mlp, digits_split) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = Trainer(model, optimizer=opt, schedule=sched, schedule_unit="epoch").fit(
        digits_split.train.subset(range(64)), epochs=3, batch_size=32)
    assert history.steps["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_progress_is_quiet_when_output_is_not_a_terminal(mlp, capsys, digits_split) -> None:
    Trainer(mlp(), optimizer="sgd").fit(digits_split.train.subset(range(64)), epochs=1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_the_epochs_and_the_last_record(mlp, capsys, digits_split) -> None:
    trainer = Trainer(mlp(), optimizer="sgd", progress=True)
    trainer.fit(digits_split.train.subset(range(64)), digits_split.val, epochs=2)
    out = capsys.readouterr().out
    assert "train_loss" in out  # the last record (rich squeezes the columns to 80 characters)
    assert trainer.callbacks == []  # the bar is the Trainer's own, not a user callback


def test_progress_bar_stops_when_fit_raises(mlp, digits_split) -> None:
    class Boom(Callback):
        def on_epoch_end(self, state) -> None:
            raise RuntimeError("boom")

    import optimlab.train.callbacks.progress as progress

    bars: list = []
    original = progress.ProgressBar.on_fit_start

    def track(self, state) -> None:
        bars.append(self)
        original(self, state)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(progress.ProgressBar, "on_fit_start", track)
        with pytest.raises(RuntimeError, match="boom"):
            Trainer(mlp(), optimizer="sgd", progress=True, callbacks=[Boom()]).fit(
                digits_split.train.subset(range(64)), epochs=2)
    assert len(bars) == 1 and bars[0]._progress is None  # stopped, no live display left


def test_state_dict_resumes_a_fit_exactly(mlp, digits_split) -> None:
    train, val = digits_split.train.subset(range(256)), digits_split.val

    def trainer() -> Trainer:
        return Trainer(mlp(dropout=0.2), optimizer="adam", lr=3e-3, schedule=cosine(3e-3, 60),
                       metrics=["accuracy"], callbacks=[EarlyStopping("val_loss", patience=50)])

    straight = trainer()
    full = straight.fit(train, val, epochs=5, batch_size=32)
    first = trainer()
    first.fit(train, val, epochs=3, batch_size=32)
    saved = first.state_dict()
    assert saved["epoch"] == 2 and len(saved["history"]["epochs"]) == 3
    resumed = trainer()
    history = resumed.fit(train, val, epochs=5, batch_size=32, resume=saved)
    assert _strip_times(history) == _strip_times(full)
    assert torch.equal(weights(resumed.model), weights(straight.model))
    with pytest.raises(ValueError, match="call fit"):
        trainer().state_dict()
    with pytest.raises(ValueError, match="same callbacks"):
        Trainer(mlp(), optimizer="adam").fit(train, epochs=4, resume=saved)


def test_optimizer_step_hooks_run_and_the_update_is_the_same(mlp, digits_split) -> None:
    train = digits_split.train.subset(range(128))
    plain = Trainer(mlp(), optimizer="momentum", lr=0.05)
    plain.fit(train, epochs=2, batch_size=32)
    hooked = Trainer(mlp(), optimizer="momentum", lr=0.05)
    calls: list[int] = []
    hooked._setup(train)
    assert hooked.optimizer is not None
    hooked.optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append(1))
    hooked.fit(train, epochs=2, batch_size=32)
    assert len(calls) == 8
    assert torch.equal(weights(hooked.model), weights(plain.model))


def test_l2_penalty_is_added_to_the_loss_in_the_notes_form(mlp) -> None:
    X, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    model = mlp(3, 4, 2)
    w0 = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, optimizer="sgd", lr=0.0, penalty={"l2": 0.5}, metrics=[])
    history = trainer.fit(Dataset(X, y, task="multiclass", n_classes=2), epochs=1, batch_size=None)
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(model(X), y).item()
    penalty = 0.5 / (2 * 8) * sum(float(w.pow(2).sum()) for w in w0 if w.dim() >= 2)
    assert history.steps["loss"][0] == pytest.approx(plain + penalty, rel=1e-6)


def test_an_iterable_of_batches_is_accepted(mlp, digits_split) -> None:
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(digits_split.train.X[:128], digits_split.train.y[:128]),
        batch_size=32)
    history = Trainer(mlp(), optimizer="sgd").fit(loader, epochs=1, batch_size=32)
    assert history.n_steps == 4


def test_bf16_autocast_trains_on_the_cpu(mlp, digits_split) -> None:
    trainer = Trainer(mlp(), optimizer="adam", lr=1e-3, precision="bf16", metrics=["accuracy"])
    history = trainer.fit(digits_split.train, digits_split.val, epochs=3, batch_size=64)
    assert history.status == "completed"
    assert history["val_accuracy"][-1] > 0.85
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # weights stay fp32


def test_a_schedule_that_ends_before_training_is_warned_about(digits_split) -> None:
    """The README's old snippet: cosine over 900 steps, 30 epochs of 45 steps = 1350 steps."""
    import warnings

    from optimlab.schedules import constant, cosine, warmup
    from optimlab.schedules.base import ScheduleEndsEarly

    train = digits_split.train.subset(slice(0, 320))
    short = Trainer("mlp", optimizer="sgd", lr=0.1, schedule=cosine(0.1, 30))
    with pytest.warns(ScheduleEndsEarly, match=r"end at step 30 but training runs 40 steps, so "
                                               r"the last 10 train at lr = 0"):
        short.fit(train, epochs=4, batch_size=32)
    assert warmup(cosine(0.1, 30), 5).end == 35 and cosine(0.1, 30).per_epoch(10).end == 300
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScheduleEndsEarly)
        Trainer("mlp", optimizer="sgd", schedule=cosine(0.1, 40)).fit(train, epochs=4,
                                                                      batch_size=32)
        Trainer("mlp", optimizer="sgd", schedule=constant(0.1)).fit(train, epochs=4,
                                                                    batch_size=32)
        Trainer("mlp", optimizer="sgd", schedule=cosine(0.1, 4), schedule_unit="epoch").fit(
            train, epochs=4, batch_size=32)
