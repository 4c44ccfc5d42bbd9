"""SWA, EMA and SnapshotEnsemble against hand references: weights recorded by an independent
callback and averaged here, closed-form learning rates, batch-norm statistics computed directly,
per-snapshot probabilities averaged by hand, and exact resume from a checkpoint."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from optimlab.data import load
from optimlab.schedules import cosine
from optimlab.train import Trainer
from optimlab.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from optimlab.train.callbacks.averaging import EMA, SWA
from optimlab.train.callbacks.snapshot import SnapshotEnsemble


@pytest.fixture(scope="module")
def digits(digits_split):
    return digits_split.train.subset(range(320)), digits_split.val


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten().double() for t in tensors])


def weights(model: torch.nn.Module) -> torch.Tensor:
    return flat(model.parameters())


class Record(Callback):
    """Copies of the weights after every update and at every epoch end."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []
        self.epochs: dict[int, torch.Tensor] = {}

    def on_step_end(self, state) -> None:
        self.steps.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})

    def on_epoch_end(self, state) -> None:
        self.epochs[state.epoch] = weights(state.model).clone()


class Crash(Callback):
    def __init__(self, at_epoch: int | None) -> None:
        self.at_epoch = at_epoch

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


def strip_times(history) -> dict:
    out = history.to_dict()
    for record in out["epochs"]:
        record.pop("time")
    return out


# -- SWA -----------------------------------------------------------------------------------------


def test_swa_average_is_the_mean_of_the_epoch_weights_and_lr_is_swa_lr(mlp, digits) -> None:
    train, val = digits
    swa, rec = SWA(start_epoch=2, swa_lr=0.01), Record()
    trainer = Trainer(mlp(), optimizer="sgd", lr=0.1, schedule=cosine(0.1, 60),
                      metrics=["accuracy"], callbacks=[swa, rec])
    history = trainer.fit(train, val, epochs=6, batch_size=32)
    expected = torch.stack([rec.epochs[e] for e in range(2, 6)]).mean(0)
    assert swa.n_averaged == 4
    assert torch.allclose(weights(trainer.model), expected, atol=1e-6)
    assert torch.allclose(weights(swa.averaged_model), expected, atol=1e-6)
    lrs = dict(zip(history.steps["step"], history.steps["lr"], strict=True))
    epochs = dict(zip(history.steps["step"], history.steps["epoch"], strict=True))
    assert all(lr == 0.01 for s, lr in lrs.items() if epochs[s] >= 2)
    assert all(lr == pytest.approx(cosine(0.1, 60)(s - 1)) for s, lr in lrs.items()
               if epochs[s] < 2)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swa_anneals_to_swa_lr_in_closed_form(mlp, digits, strategy: str) -> None:
    train, _ = digits
    swa = SWA(start_epoch=1, swa_lr=0.02, anneal_epochs=2, anneal_strategy=strategy)
    history = Trainer(mlp(), optimizer="sgd", lr=0.1, callbacks=[swa]).fit(
        train, epochs=5, batch_size=64)
    per_epoch = 5  # 320 rows / 64
    window = 2 * per_epoch
    lrs = history.steps["lr"]
    assert lrs[:per_epoch] == [0.1] * per_epoch
    for s in range(window):
        p = (s + 1) / window
        want = (0.1 + (0.02 - 0.1) * p if strategy == "linear"
                else 0.02 + (0.1 - 0.02) * (1 + math.cos(math.pi * p)) / 2)
        assert lrs[per_epoch + s] == pytest.approx(want, rel=1e-12)
    assert lrs[per_epoch + window:] == [0.02] * (len(lrs) - per_epoch - window)


def test_swa_recomputes_batch_norm_statistics_of_the_averaged_network(mlp, digits) -> None:
    train, _ = digits
    swa = SWA(start_epoch=1, swa_lr=0.02)
    trainer = Trainer(mlp(bn=True), optimizer="sgd", lr=0.1, callbacks=[swa])
    trainer.fit(train, epochs=4, batch_size=32)
    model = trainer.model
    linear, bn = model[0], model[1]
    with torch.no_grad():
        h = linear(train.X)  # the BN layer's input under the final (averaged) weights
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(0, unbiased=True), rtol=1e-5, atol=1e-6)
    # the same as torch's own reference: one train-mode pass with a cumulative average
    ref = copy.deepcopy(model)
    ref[1].reset_running_stats()
    ref[1].momentum = None
    ref.train()
    with torch.no_grad():
        ref(train.X)
    assert torch.allclose(bn.running_var, ref[1].running_var, atol=1e-6)
    averaged_bn = swa.averaged_model[1]
    assert torch.equal(averaged_bn.running_mean, bn.running_mean)

    plain = Trainer(mlp(bn=True), optimizer="sgd", lr=0.1,
                    callbacks=[SWA(start_epoch=1, swa_lr=0.02, update_bn=False)])
    plain.fit(train, epochs=4, batch_size=32)
    assert torch.equal(weights(plain.model), weights(model))
    assert not torch.allclose(plain.model[1].running_var, bn.running_var, atol=1e-3)


def _swa_trainer(mlp, ckpt_dir, swa_first: bool, crash_at: int | None) -> Trainer:
    swa = SWA(start_epoch=2, swa_lr=0.03, anneal_epochs=1)
    ckpt = ModelCheckpoint(ckpt_dir, save_best=False)
    callbacks = [swa, ckpt] if swa_first else [ckpt, swa]
    return Trainer(mlp(bn=True, dropout=0.1), optimizer="sgd", lr=0.1,
                   optimizer_kwargs={"momentum": 0.9}, schedule=cosine(0.1, 80),
                   metrics=["accuracy"], callbacks=[*callbacks, Crash(crash_at)])


@pytest.mark.parametrize("swa_first", [True, False], ids=["swa_then_checkpoint",
                                                          "checkpoint_then_swa"])
def test_swa_resume_finishes_with_the_uninterrupted_weights(mlp, tmp_path, digits,
                                                             swa_first: bool) -> None:
    train, val = digits
    straight = _swa_trainer(mlp, tmp_path / "a", swa_first, None)
    full = straight.fit(train, val, epochs=7, batch_size=32)
    first = _swa_trainer(mlp, tmp_path / "b", swa_first, 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.fit(train, val, epochs=7, batch_size=32)
    resumed = _swa_trainer(mlp, tmp_path / "b", swa_first, None)
    history = resumed.fit(train, val, epochs=7, batch_size=32,
                          resume=tmp_path / "b" / "last.pt")
    assert strip_times(history) == strip_times(full)
    assert torch.equal(flat(resumed.model.state_dict().values()),
                       flat(straight.model.state_dict().values()))


def test_swa_rejects_a_start_after_the_last_epoch_and_torch_schedulers(mlp, digits) -> None:
    train, _ = digits
    with pytest.raises(ValueError, match="start_epoch=5"):
        Trainer(mlp(), callbacks=[SWA(start_epoch=5)]).fit(train, epochs=5)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)
    with pytest.raises(ValueError, match="lr_scheduler"):
        Trainer(model, optimizer=opt, schedule=sched,
                callbacks=[SWA(start_epoch=1, swa_lr=0.01)]).fit(train, epochs=2)


# -- EMA -----------------------------------------------------------------------------------------


def test_ema_matches_a_hand_computed_average_and_reports_ema_val_metrics(mlp, digits) -> None:
    train, val = digits
    beta = 0.9
    ema, rec = EMA(decay=beta), Record()
    stop = EarlyStopping("ema_val_loss", mode="min", patience=100, restore_best=False)
    trainer = Trainer(mlp(bn=True), optimizer="adam", lr=3e-3, metrics=["accuracy"],
                      callbacks=[ema, rec, stop])
    history = trainer.fit(train, val, epochs=3, batch_size=32)
    hand = {k: v.clone() for k, v in rec.steps[0].items()}
    for snap in rec.steps[1:]:
        for k, v in snap.items():
            if v.is_floating_point():
                hand[k] = beta * hand[k] + (1 - beta) * v
    final = trainer.model.state_dict()
    for k, v in hand.items():
        if v.is_floating_point():
            assert torch.allclose(final[k], v, atol=1e-6), k
        else:  # num_batches_tracked is not averaged: it keeps the live count
            assert torch.equal(final[k], rec.steps[-1][k])
    assert ema.updates == len(rec.steps) == history.n_steps
    assert all("ema_val_loss" in e and "ema_val_accuracy" in e for e in history.epochs)
    # the last epoch's EMA is the final average, now in the model
    assert history.epochs[-1]["ema_val_loss"] == pytest.approx(
        trainer.evaluate(val)["loss"], rel=1e-6)
    assert stop.best == min(history["ema_val_loss"])


def test_ema_leaves_training_untouched_unless_applied(mlp, digits) -> None:
    train, val = digits
    runs = {}
    for name, callbacks in (("none", []), ("ema", [EMA(0.95, apply_at_end=False)])):
        trainer = Trainer(mlp(dropout=0.2), optimizer="sgd", lr=0.1, metrics=["accuracy"],
                          callbacks=callbacks)
        history = trainer.fit(train, val, epochs=2, batch_size=32)
        runs[name] = (weights(trainer.model), history.steps["loss"], trainer, callbacks)
    assert torch.equal(runs["none"][0], runs["ema"][0])  # swap-back exact, no RNG drawn
    assert runs["none"][1] == runs["ema"][1]
    ema, trainer = runs["ema"][3][0], runs["ema"][2]
    with ema.averaged():
        inside = weights(trainer.model)
    assert torch.equal(weights(trainer.model), runs["ema"][0])
    sd = ema.averaged_state_dict()
    assert torch.equal(inside, flat(sd[k] for k, _ in trainer.model.named_parameters()))
    assert not torch.equal(inside, runs["ema"][0])


def _ema_trainer(mlp, ckpt_dir, crash_at: int | None) -> Trainer:
    return Trainer(mlp(bn=True), optimizer="adam", lr=3e-3, metrics=["accuracy"],
                   callbacks=[EMA(0.9), ModelCheckpoint(ckpt_dir, save_best=False),
                              Crash(crash_at)])


def test_ema_resume_finishes_with_the_uninterrupted_weights(mlp, tmp_path, digits) -> None:
    train, val = digits
    straight = _ema_trainer(mlp, tmp_path / "a", None)
    full = straight.fit(train, val, epochs=5, batch_size=32)
    with pytest.raises(RuntimeError):
        _ema_trainer(mlp, tmp_path / "b", 2).fit(train, val, epochs=5, batch_size=32)
    resumed = _ema_trainer(mlp, tmp_path / "b", None)
    history = resumed.fit(train, val, epochs=5, batch_size=32,
                          resume=tmp_path / "b" / "last.pt")
    assert strip_times(history) == strip_times(full)
    assert torch.equal(flat(resumed.model.state_dict().values()),
                       flat(straight.model.state_dict().values()))


# -- SnapshotEnsemble ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [None, 2])
def test_snapshot_ensemble_lr_snapshots_and_probabilities(mlp, digits, keep: int | None) -> None:
    train, val = digits
    snap, rec = SnapshotEnsemble(cycles=3, lr_max=0.2, lr_min=0.01, keep=keep), Record()
    trainer = Trainer(mlp(bn=True), optimizer="sgd", lr=0.05, metrics=["accuracy"],
                      callbacks=[snap, rec])
    history = trainer.fit(train, val, epochs=6, batch_size=64)  # 5 updates/epoch, T = 10
    T = 10
    assert snap.cycle_steps == T
    for i, lr in enumerate(history.steps["lr"]):
        want = 0.01 + (0.2 - 0.01) / 2 * (1 + math.cos(math.pi * (i % T) / T))
        assert lr == pytest.approx(want, rel=1e-12)
    kept = min(3, keep or 3)
    assert len(snap.snapshots) == kept
    assert snap.snapshot_steps == [10, 20, 30][-kept:]
    for s, taken in zip(snap.snapshots, snap.snapshot_steps, strict=True):
        ref = rec.steps[taken - 1]
        assert all(torch.equal(s[k], ref[k]) for k in ref)

    probs = []
    for s in snap.snapshots:
        model = copy.deepcopy(trainer.model)
        model.load_state_dict(s)
        model.eval()
        with torch.no_grad():
            probs.append(torch.softmax(model(val.X), dim=-1))
    mean = torch.stack(probs).mean(0)
    assert torch.allclose(snap.predict(val.X, proba=True), mean, atol=1e-6)
    scores = snap.predict(val)
    assert torch.allclose(torch.softmax(scores, dim=-1), mean, atol=1e-6)
    result = snap.evaluate(val)
    y = val.y
    assert result["accuracy"] == pytest.approx(float((mean.argmax(1) == y).double().mean()))
    assert result["loss"] == pytest.approx(float(-mean[torch.arange(len(y)), y].log().mean()),
                                           rel=1e-5)
    assert len(snap.models()) == kept


def test_snapshot_ensemble_binary_averages_sigmoid_probabilities(mlp) -> None:
    data = load("moons", n=200, seed=1)
    snap = SnapshotEnsemble(cycles=2)
    trainer = Trainer(mlp(inputs=2, outputs=1), optimizer="sgd", lr=0.3,
                      metrics=["accuracy"], callbacks=[snap])
    trainer.fit(data, epochs=4, batch_size=50)
    assert len(snap.snapshots) == 2
    probs = []
    for model in snap.models():
        with torch.no_grad():
            probs.append(torch.sigmoid(model(data.X)))
    mean = torch.stack(probs).mean(0)
    assert torch.allclose(snap.predict(data.X, proba=True), mean, atol=1e-6)
    assert torch.allclose(torch.sigmoid(snap.predict(data.X)), mean, atol=1e-6)
    assert snap.evaluate(data)["accuracy"] == pytest.approx(
        float(((mean.squeeze(1) >= 0.5).long() == data.y).double().mean()))


def _snap_trainer(mlp, ckpt_dir, crash_at: int | None) -> Trainer:
    return Trainer(mlp(bn=True), optimizer="sgd", lr=0.1, optimizer_kwargs={"momentum": 0.9},
                   metrics=["accuracy"],
                   callbacks=[ModelCheckpoint(ckpt_dir, save_best=False),
                              SnapshotEnsemble(cycles=3, epochs_per_cycle=2, keep=2),
                              Crash(crash_at)])


def test_snapshot_ensemble_resume_gives_the_same_snapshots(mlp, tmp_path, digits) -> None:
    train, val = digits
    straight = _snap_trainer(mlp, tmp_path / "a", None)
    full = straight.fit(train, val, epochs=6, batch_size=64)
    with pytest.raises(RuntimeError):
        _snap_trainer(mlp, tmp_path / "b", 2).fit(train, val, epochs=6, batch_size=64)
    resumed = _snap_trainer(mlp, tmp_path / "b", None)
    history = resumed.fit(train, val, epochs=6, batch_size=64,
                          resume=tmp_path / "b" / "last.pt")
    assert strip_times(history) == strip_times(full)
    a, b = straight.callbacks[1], resumed.callbacks[1]
    assert a.snapshot_steps == b.snapshot_steps == [20, 30]
    for sa, sb in zip(a.snapshots, b.snapshots, strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a.predict(val.X, proba=True), b.predict(val.X, proba=True))


def test_snapshot_ensemble_needs_enough_epochs_and_snapshots(mlp, digits) -> None:
    train, val = digits
    with pytest.raises(ValueError, match="cycles=4"):
        Trainer(mlp(), callbacks=[SnapshotEnsemble(cycles=4)]).fit(train, epochs=3)
    snap = SnapshotEnsemble(cycles=1, epochs_per_cycle=5)
    Trainer(mlp(), callbacks=[snap]).fit(train, epochs=1)
    with pytest.raises(ValueError, match="no snapshots"):
        snap.predict(val.X)


# -- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "name"), [
    (lambda: SWA(start_epoch=-1), "start_epoch"),
    (lambda: SWA(start_epoch=1.5), "start_epoch"),
    (lambda: SWA(start_epoch=1, swa_lr=-0.1), "swa_lr"),
    (lambda: SWA(start_epoch=1, swa_lr=0.1, anneal_epochs=-2), "anneal_epochs"),
    (lambda: SWA(start_epoch=1, anneal_epochs=2), "anneal_epochs"),
    (lambda: SWA(start_epoch=1, update_bn="yes"), "update_bn"),
    (lambda: SWA(start_epoch=1, swa_lr=0.1, anneal_strategy="exp"), "anneal_strategy"),
    (lambda: SWA(start_epoch=1, bn_batch_size=0), "bn_batch_size"),
    (lambda: EMA(decay=1.0), "decay"),
    (lambda: EMA(decay=-0.1), "decay"),
    (lambda: EMA(evaluate=1), "evaluate"),
    (lambda: EMA(apply_at_end=None), "apply_at_end"),
    (lambda: SnapshotEnsemble(cycles=0), "cycles"),
    (lambda: SnapshotEnsemble(cycles=2, epochs_per_cycle=0), "epochs_per_cycle"),
    (lambda: SnapshotEnsemble(cycles=2, lr_max=0.01, lr_min=0.1), "lr_max"),
    (lambda: SnapshotEnsemble(cycles=2, lr_min=-1.0), "lr_min"),
    (lambda: SnapshotEnsemble(cycles=2, keep=0), "keep"),
])
def test_invalid_arguments_name_the_argument(make, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()
