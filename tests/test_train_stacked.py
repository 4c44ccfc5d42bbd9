"""Seeds trained together: each seed's history equals the same seed trained alone."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from optimlab.data import Dataset
from optimlab.train import Trainer
from optimlab.train.callbacks import (
    EMA,
    SWA,
    EarlyStopping,
    GradientMonitor,
    ModelCheckpoint,
    ReduceLROnPlateau,
    SnapshotEnsemble,
    TimeToTarget,
)
from optimlab.train.stacked import NotStackable, fit_together, together_problem
from optimlab.train.stacked_model import StackedModel

SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread, as the lab gives small models: two threads stall on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(seed: int, model: Any = None, **kw: Any) -> Trainer:
    kw.setdefault("optimizer", "adam")
    kw.setdefault("lr", 1e-2)
    return Trainer(model or {"type": "mlp", "hidden": [16]}, seed=seed, progress=False, **kw)


def assert_same(alone: Any, together: Any) -> None:
    """Same status, stop and records; numbers to float rounding (times are not compared)."""
    assert (together.status, together.stop_step) == (alone.status, alone.stop_step)
    assert together.reason.split(" (")[0] == alone.reason.split(" (")[0]
    assert [e.keys() for e in together.epochs] == [e.keys() for e in alone.epochs]
    for a, b in zip(alone.epochs, together.epochs, strict=True):
        for key in a:
            if "time" not in key and "seconds" not in key:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6, nan_ok=True), key
    for key, values in alone.steps.items():
        assert together.steps[key] == pytest.approx(values, rel=1e-4, abs=1e-6, nan_ok=True)


def assert_same_weights(alone: list[Trainer], together: list[Trainer]) -> None:
    for a, b in zip(alone, together, strict=True):
        for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                        strict=True):
            assert torch.allclose(p.float(), q.float(), rtol=1e-4, atol=1e-5)


def both(split: Any, fit: dict[str, Any], dense: bool = True,
         **kw: Any) -> tuple[list[Trainer], list[Any], list[Trainer], list[Any]]:
    alone = [make(s, **kw) for s in SEEDS]
    alone_h = [t.fit(split.train, split.val, **fit) for t in alone]
    together = [make(s, **kw) for s in SEEDS]
    together_h = fit_together(together, split.train, split.val, dense=dense, **fit)
    return alone, alone_h, together, together_h


@pytest.mark.parametrize(("kw", "fit", "dense"), [
    ({}, {"epochs": 2, "batch_size": 64}, True),
    ({}, {"epochs": 2, "batch_size": 64}, False),
    ({"optimizer": "sgd", "lr": 0.2, "clip_grad_norm": 0.5, "schedule": lambda t: 0.2 / (1 + t),
      "metrics": ["accuracy"]}, {"max_steps": 30, "batch_size": 32}, True),
    ({"optimizer": "adamw", "optimizer_kwargs": {"weight_decay": 0.5}, "accumulate": 2,
      "penalty": {"l1": 1e-4, "l2": 0.1}, "clip_grad_value": 0.05},
     {"epochs": 2, "batch_size": 50}, True),
    ({"optimizer": "momentum", "lr": 0.1, "schedule_unit": "epoch",
      "schedule": lambda e: 0.1 * 0.5 ** e}, {"epochs": 3, "batch_size": None}, True),
])
def test_each_seed_equals_its_run_alone(digits_split, kw, fit, dense) -> None:
    alone, alone_h, together, together_h = both(digits_split, fit, dense, **kw)
    for a, b in zip(alone_h, together_h, strict=True):
        assert_same(a, b)
    assert_same_weights(alone, together)
    # each Trainer ends as after its own fit: its optimizer holds its state
    x = digits_split.val.X[:5]
    assert torch.allclose(alone[1].predict(x), together[1].predict(x), atol=1e-4)
    state = together[1].optimizer.state_dict()["state"]
    ref = alone[1].optimizer.state_dict()["state"]
    assert state.keys() == ref.keys()
    assert together[1].state_dict()["step"] == alone[1].state_dict()["step"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dense", [True, False])
def test_each_seed_equals_its_run_alone_on_cuda(digits_split, dense) -> None:
    """On a GPU (the stacked step then takes torch's CUDA kernels, the seeds' metrics come back
    from the device once): each seed's history and weights as on its own."""
    alone, alone_h, together, together_h = both(digits_split, {"epochs": 2, "batch_size": 64},
                                                dense, device="cuda")
    for a, b in zip(alone_h, together_h, strict=True):
        assert_same(a, b)
    assert_same_weights(alone, together)
    assert all(p.is_cuda for t in together for p in t.model.parameters())


def poisoned(split: Any, rows: list[int]) -> Dataset:
    """The training set with an infinite feature in ``rows``: the loss of a batch holding one
    of them is NaN, at a step that depends on the seed's batch order."""
    X = split.train.X.clone()
    data = Dataset(X, split.train.y, task="multiclass", n_classes=10)
    data.X[rows] = math.inf
    return data


def test_a_seed_that_diverges_stops_at_its_step_while_the_others_go_on(digits_split) -> None:
    train = poisoned(digits_split, [700])
    seeds = range(6)
    alone = [make(s).fit(train, digits_split.val, max_steps=10, batch_size=64) for s in seeds]
    together = fit_together([make(s) for s in seeds], train, digits_split.val, max_steps=10,
                            batch_size=64)
    statuses = {h.status for h in alone}
    assert statuses == {"diverged", "completed"}, "the test needs both kinds of seed"
    for a, b in zip(alone, together, strict=True):
        assert_same(a, b)
    stops = {h.stop_step for h in alone if h.status == "diverged"}
    assert len(stops) > 1  # each at its own step


def test_early_stopping_stops_each_seed_by_itself_and_restores_its_best(digits_split) -> None:
    kw = {"optimizer": "sgd", "lr": 0.5, "model": {"type": "mlp", "hidden": [32]}}
    alone = [make(s, callbacks=[EarlyStopping("val_loss", patience=1)], **kw) for s in SEEDS]
    alone_h = [t.fit(digits_split.train, digits_split.val, epochs=5, batch_size=64)
               for t in alone]
    together = [make(s, callbacks=[EarlyStopping("val_loss", patience=1)], **kw)
                for s in SEEDS]
    together_h = fit_together(together, digits_split.train, digits_split.val, epochs=5,
                              batch_size=64)
    assert {h.status for h in alone_h} == {"early_stopped", "completed"}
    for a, b in zip(alone_h, together_h, strict=True):
        assert_same(a, b)
    assert_same_weights(alone, together)  # each has its best epoch's weights back


@pytest.mark.parametrize("callbacks", [
    lambda: [SWA(1, 0.005), TimeToTarget("val_accuracy", 0.8)],
    lambda: [EMA(0.9), GradientMonitor(vanishing=None, exploding=None, record=False)],
    lambda: [SnapshotEnsemble(2)],
])
def test_averaging_snapshots_monitors_and_targets_see_each_seed_alone(digits_split,
                                                                       callbacks) -> None:
    alone = [make(s, optimizer="sgd", lr=0.3, callbacks=callbacks()) for s in SEEDS]
    alone_h = [t.fit(digits_split.train, digits_split.val, epochs=4, batch_size=64)
               for t in alone]
    together = [make(s, optimizer="sgd", lr=0.3, callbacks=callbacks()) for s in SEEDS]
    together_h = fit_together(together, digits_split.train, digits_split.val, epochs=4,
                              batch_size=64)
    for a, b in zip(alone_h, together_h, strict=True):
        assert_same(a, b)
    assert_same_weights(alone, together)
    for a, b in zip(alone, together, strict=True):
        for ca, cb in zip(a.callbacks, b.callbacks, strict=True):
            if isinstance(ca, GradientMonitor):
                for layer, value in ca.summary[-1]["mean"].items():
                    assert cb.summary[-1]["mean"][layer] == pytest.approx(value, rel=1e-4)
            if isinstance(ca, TimeToTarget):
                assert (cb.reached, cb.step) == (ca.reached, ca.step)
            if isinstance(ca, SnapshotEnsemble):
                x = digits_split.val
                assert cb.evaluate(x)["loss"] == pytest.approx(ca.evaluate(x)["loss"],
                                                               rel=1e-4)


def images(ds: Dataset) -> Dataset:
    return Dataset(ds.X.reshape(-1, 1, 8, 8), ds.y, task="multiclass", n_classes=10)


def test_batch_norm_and_convolutions_train_together_through_vmap(digits_split) -> None:
    # SGD: Adam would turn the float noise of the bias before a batch norm (whose gradient is
    # zero up to rounding) into steps of ±lr, different alone and together
    image_data = (images(digits_split.train), images(digits_split.val))
    for spec, data in (({"type": "mlp", "hidden": [16], "norm": "batch"},
                        (digits_split.train, digits_split.val)),
                       ({"type": "cnn", "channels": [4], "hidden": [8]}, image_data)):
        alone = [make(s, model=spec, optimizer="sgd", lr=0.1) for s in SEEDS[:2]]
        alone_h = [t.fit(*data, epochs=1, batch_size=128) for t in alone]
        together = [make(s, model=spec, optimizer="sgd", lr=0.1) for s in SEEDS[:2]]
        together_h = fit_together(together, *data, epochs=1, batch_size=128)
        for a, b in zip(alone_h, together_h, strict=True):
            assert_same(a, b)
        assert_same_weights(alone, together)  # batch-norm statistics included
        assert StackedModel([t.model for t in together]).path == "vmap"
    plain = [make(s) for s in SEEDS]
    for t in plain:
        t.prepare(digits_split.train)
    assert StackedModel([t.model for t in plain]).path == "dense"


def test_each_seed_on_its_own_training_and_validation_sets(digits_split) -> None:
    sets = [digits_split.train.subset(torch.randperm(len(digits_split.train),
                                                     generator=torch.Generator().manual_seed(s))
                                      [:1000]) for s in SEEDS]
    vals = [digits_split.val.subset(torch.arange(s, s + 150)) for s in SEEDS]
    alone = [make(s).fit(d, v, epochs=2, batch_size=64)
             for s, d, v in zip(SEEDS, sets, vals, strict=True)]
    together = fit_together([make(s) for s in SEEDS], sets, vals, epochs=2, batch_size=64)
    for a, b in zip(alone, together, strict=True):
        assert_same(a, b)


def test_a_checkpoint_taken_together_resumes_together_or_alone(digits_split, tmp_path) -> None:
    data = (digits_split.train, digits_split.val)

    def ckpt(s: int) -> list[Any]:
        return [ModelCheckpoint(tmp_path / str(s), save_best=False)]

    fit_together([make(s, callbacks=ckpt(s)) for s in SEEDS], *data, epochs=2, batch_size=64)
    reference = [make(s, callbacks=ckpt(s + 10)) for s in SEEDS]
    ref_h = [t.fit(*data, epochs=4, batch_size=64) for t in reference]
    resumed = fit_together([make(s, callbacks=ckpt(s)) for s in SEEDS], *data, epochs=4,
                           batch_size=64, resume=[tmp_path / str(s) / "last.pt" for s in SEEDS])
    for a, b in zip(ref_h, resumed, strict=True):
        assert_same(a, b)
    # a seed trained together goes on alone from its checkpoint, and the other way round
    alone = make(1, callbacks=ckpt(1)).fit(*data, epochs=5, batch_size=64,
                                           resume=tmp_path / "1" / "last.pt")
    assert_same(make(1).fit(*data, epochs=5, batch_size=64), alone)
    with pytest.raises(NotStackable, match="different epochs"):
        fit_together([make(s, callbacks=ckpt(s)) for s in SEEDS], *data, epochs=6,
                     batch_size=64, resume=[tmp_path / str(s) / "last.pt" for s in SEEDS])


def test_what_cannot_train_together_is_said(digits_split) -> None:
    data = (digits_split.train, digits_split.val)
    cases = {
        "random numbers": [make(s, model={"type": "mlp", "hidden": [8], "dropout": 0.2})
                           for s in SEEDS],
        "its own learning rate": [make(s, callbacks=[ReduceLROnPlateau("val_loss")])
                                  for s in SEEDS],
        "differ in their layers": [make(0), make(1, model={"type": "mlp", "hidden": [9]})],
        "settings differ": [make(0), make(1, clip_grad_norm=1.0)],
        "SGD": [make(s, optimizer=torch.optim.SGD) for s in SEEDS],
        "skip": [make(s, on_nonfinite="skip") for s in SEEDS],
    }
    for words, trainers in cases.items():
        why = together_problem(trainers, *data)
        assert why is not None and words in why, (words, why)
        with pytest.raises(NotStackable, match="cannot train together"):
            fit_together(trainers, *data, epochs=1)
    assert together_problem([make(s) for s in SEEDS], *data) is None


@pytest.mark.parametrize("dense", [True, False])
def test_a_seeds_result_depends_on_its_stack_only_through_rounding(digits_split,
                                                                   dense) -> None:
    def weights(seeds: list[int]) -> list[torch.Tensor]:
        ts = [make(s, model={"type": "mlp", "hidden": [128]}) for s in seeds]
        fit_together(ts, digits_split.train, digits_split.val, epochs=1, batch_size=64,
                     dense=dense)
        return [torch.cat([p.detach().flatten() for p in t.model.parameters()]) for t in ts]

    one, eight = weights([3]), weights([0, 1, 2, 3, 4, 5, 6, 7])
    # only through float rounding: torch's fused Adam rounds a slice's entries in vector
    # lanes or in the scalar tail by their place (measured: 6e-8 against weights up to 0.65)
    assert float((one[0] - eight[3]).abs().max()) <= 1e-6 * float(eight[3].abs().max())
