"""The learning-rate range test: it changes nothing, it finds 1/L on a quadratic, it stops when
the loss blows up, and its suggestions follow their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optimlab import Trainer, data
from optimlab.smoothing import ewa
from optimlab.train.lr_find import (
    LRFindResult,
    lr_schedule,
    minimum,
    range_test,
    steepest,
    valley,
)


def _state(trainer: Trainer) -> tuple[dict, dict]:
    import copy

    return (copy.deepcopy(trainer.model.state_dict()),
            copy.deepcopy(trainer.optimizer.state_dict()))


def _same(a, b) -> bool:
    """Bit-for-bit equality of nested state dicts."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("optimizer, kwargs", [("adam", {}), ("momentum", {"momentum": 0.9}),
                                               ("sgd", {})])
def test_lr_find_restores_weights_and_optimizer_state_bit_for_bit(digits_split, mlp, optimizer,
                                                                  kwargs) -> None:
    """After a first fit (so the optimizer has moments to lose) and with batch norm (buffers),
    the range test leaves weights, buffers, moments and learning rates exactly as they were,
    and a fit after it is the fit without it."""
    def make() -> Trainer:
        return Trainer(mlp(bn=True, dropout=0.1), optimizer=optimizer, lr=0.01,
                       optimizer_kwargs=kwargs, metrics=[], seed=3, progress=False)

    train = digits_split.train
    a, b = make(), make()
    a.fit(train, epochs=1, batch_size=64)
    b.fit(train, epochs=1, batch_size=64)
    before = _state(a)
    result = a.lr_find(train, batch_size=32, num_steps=40)
    assert len(result.lrs) >= 10 and result.suggestions
    after = _state(a)
    assert _same(before[0], after[0]) and _same(before[1], after[1])
    assert [g["lr"] for g in a.optimizer.param_groups] == [0.01]
    assert a.model.training  # as fit left it
    ha = a.fit(train, epochs=2, batch_size=64)
    hb = b.fit(train, epochs=2, batch_size=64)
    assert ha.steps["loss"] == hb.steps["loss"]


def test_lr_find_before_any_fit_then_fit_equals_a_plain_fit(digits_split) -> None:
    train = digits_split.train
    spec = {"type": "mlp", "hidden": [16]}
    a = Trainer(spec, optimizer="adam", lr=1e-3, seed=1, metrics=[], progress=False)
    a.lr_find(train, num_steps=30)
    assert not a.optimizer.state  # a fresh optimizer stays fresh
    b = Trainer(spec, optimizer="adam", lr=1e-3, seed=1, metrics=[], progress=False)
    assert a.fit(train, epochs=1).steps["loss"] == b.fit(train, epochs=1).steps["loss"]


def _curvature(ds) -> float:
    """L, the largest eigenvalue of the Hessian 2/n·[X 1]ᵀ[X 1] of the mean squared error of
    a linear model."""
    X = ds.X.double().numpy()
    A = np.hstack([X, np.ones((len(X), 1))])
    return float(np.linalg.eigvalsh(2.0 / len(X) * A.T @ A).max())


@pytest.mark.parametrize("name, options", [
    ("linear", {"n": 1000, "n_features": 10}),
    ("linear", {"n": 500, "n_features": 3, "seed": 4}),
    ("ill_conditioned", {"n": 1000, "n_features": 10, "condition": 3.0}),
    ("ill_conditioned", {"n": 1000, "n_features": 10, "condition": 10.0}),
])
def test_on_a_quadratic_the_suggested_lr_is_within_3x_of_one_over_L(name, options) -> None:
    """Least squares with a linear model: the loss is a quadratic whose largest curvature L is
    known; gradient descent is stable below 2/L and fastest near 1/L. The default suggestion
    (full batch, default settings) lands within a factor 3 of 1/L."""
    ds = data.load(name, **options)
    L = _curvature(ds)
    trainer = Trainer({"type": "mlp", "hidden": []}, optimizer="sgd", lr=0.01, seed=0,
                      progress=False)
    result = trainer.lr_find(ds, batch_size=None)
    assert result.rule == "minimum"
    assert 1 / 3 <= result.lr * L <= 3, (result.lr, 1 / L)
    # and it stopped because the loss blew up past 2/L, where gradient descent diverges
    assert result.diverged and result.lrs[-1] > 2 / L


def test_the_test_stops_when_the_smoothed_loss_passes_the_threshold() -> None:
    ds = data.load("linear", n=400, n_features=5)
    trainer = Trainer({"type": "mlp", "hidden": []}, optimizer="sgd", lr=0.01, seed=0,
                      progress=False)
    r = trainer.lr_find(ds, batch_size=None, start=1e-4, end=1e4, num_steps=200, diverge=4.0)
    assert r.diverged and len(r.lrs) < 200
    v = np.asarray(r.smoothed)
    skip = 200 // 10  # the first tenth sets no minimum
    assert v[-1] > 4.0 * v[skip:].min()  # the last point passed 4 × the minimum so far
    assert all(v[i] <= 4.0 * v[skip:i + 1].min() for i in range(skip, len(v) - 1))  # none before
    assert "passed 4 × its minimum" in r.stop_reason
    # a lower threshold stops earlier; a huge one runs into inf/NaN and stops there
    early = trainer.lr_find(ds, batch_size=None, start=1e-4, end=1e4, num_steps=200,
                            diverge=1.5)
    assert len(early.lrs) <= len(r.lrs)
    late = trainer.lr_find(ds, batch_size=None, start=1e-4, end=1e30, num_steps=200,
                           diverge=1e300)
    assert late.diverged and "the loss became" in late.stop_reason
    assert all(math.isfinite(x) for x in late.losses)


def test_the_curve_is_the_schedule_and_the_bias_corrected_ewa_of_the_losses() -> None:
    seen: list[float] = []

    def step(lr: float) -> float:  # a loss falling with log lr, then exploding
        seen.append(lr)
        return 1.0 + 0.01 * math.sin(len(seen)) if lr < 1e-3 else (0.5 if lr < 1 else 50.0)

    r = range_test(step, start=1e-6, end=100, num_steps=50, beta=0.8)
    assert seen[:len(r.lrs)] == pytest.approx(lr_schedule(1e-6, 100, 50)[:len(r.lrs)])
    assert r.lrs[0] == pytest.approx(1e-6) and r.lrs[1] / r.lrs[0] == pytest.approx(1e8 ** (1 / 49))
    assert r.smoothed == pytest.approx(list(ewa(r.losses, 0.8, bias_correction=True)))
    assert r.smoothed[0] == r.losses[0]  # bias-corrected: the first point is the first loss
    assert r.diverged and r.lrs[-1] >= 1


def test_the_suggestions_follow_their_definitions() -> None:
    lr = np.geomspace(1e-5, 1.0, 60)
    x = np.log10(lr)
    v = 2.0 - 1.0 / (1.0 + np.exp(-3 * (x + 2.5))) + 0.05 * np.maximum(x + 0.8, 0) ** 3
    m = minimum(lr, v)
    assert m.lr == pytest.approx(lr[np.argmin(v)] / 10)
    s = steepest(lr, v, beta=0.0)  # k = 1: the central difference
    slopes = (v[2:] - v[:-2]) / (np.log(lr[2:]) - np.log(lr[:-2]))
    assert s.index == 1 + int(np.argmin(slopes))
    assert abs(np.log10(s.lr) + 2.5) < 0.2  # the sigmoid's centre
    va = valley(lr, v)
    assert lr[0] < va.lr < lr[np.argmin(v)]  # inside the descent


def test_a_test_that_diverges_at_once_says_why_and_has_no_lr() -> None:
    r = range_test(lambda lr: 1.0 if lr < 1.5e-7 else math.inf, start=1e-7, end=1.0,
                   num_steps=100)
    assert r.diverged and not r.suggestions
    with pytest.raises(ValueError, match="too few to read a curve"):
        _ = r.lr
    again = LRFindResult.from_dict(r.to_dict())
    assert again.problem == r.problem and again.lrs == r.lrs


@pytest.mark.parametrize("kwargs, words", [
    ({"start": 1.0, "end": 0.1}, "start=1 must be below end=0.1"),
    ({"start": 0.1, "end": 0.1}, "start=0.1 must be below end=0.1"),
    ({"start": -1.0}, "start=-1.0"),
    ({"num_steps": 3}, "num_steps=3"),
    ({"beta": 1.0}, "beta=1.0"),
    ({"diverge": 1.0}, "diverge=1.0"),
    ({"rule": "fastest"}, "rule='fastest'"),
])
def test_bad_settings_name_the_setting(kwargs, words) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        range_test(lambda lr: 1.0, **kwargs)
