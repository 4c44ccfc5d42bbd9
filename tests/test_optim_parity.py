"""Parity with torch.optim: float64, 120 steps, two parameter groups with different
hyperparameters, an MLP on (a slice of) the digits dataset. Agreement to 1e-10 relative."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from sklearn.datasets import load_digits

import optimlab.optim as oo

STEPS = 120


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:256] / 16.0, dtype=torch.float64)
    return X, torch.tensor(y[:256])


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 10)).double()


def _train(make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
           group_kw: tuple[dict[str, Any], dict[str, Any]],
           data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    X, y = data
    model = _model()
    groups = [{"params": list(model[0].parameters()), **group_kw[0]},
              {"params": list(model[2].parameters()), **group_kw[1]}]
    opt = make(groups)
    for step in range(STEPS):
        rows = slice((step * 32) % 256, (step * 32) % 256 + 32)  # mini-batches: varied gradients
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


CASES: dict[str, tuple[Callable, Callable, tuple[dict, dict]]] = {
    "sgd": (lambda g: torch.optim.SGD(g, lr=0.1, weight_decay=1e-3),
            lambda g: oo.sgd(g, lr=0.1, weight_decay=1e-3, decay_mask="all"),
            ({"lr": 0.2}, {"weight_decay": 0.01})),
    "heavy_ball": (lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9),
                   lambda g: oo.momentum(g, lr=0.05, momentum=0.9, form="heavy_ball"),
                   ({"momentum": 0.5}, {"lr": 0.02})),
    "heavy_ball_dampening": (
        lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9, dampening=0.5),
        lambda g: oo.sgd(g, lr=0.05, momentum=0.9, dampening=0.5),
        ({"dampening": 0.1}, {"momentum": 0.8})),
    "nesterov": (lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=True,
                                           weight_decay=1e-3),
                 lambda g: oo.nesterov(g, lr=0.05, momentum=0.9, form="heavy_ball",
                                       weight_decay=1e-3, decay_mask="all"),
                 ({"momentum": 0.7}, {"lr": 0.1})),
    # torch's Adagrad reads initial_accumulator_value from its constructor only, never per group
    "adagrad": (lambda g: torch.optim.Adagrad(g, lr=0.1, lr_decay=0.01,
                                              initial_accumulator_value=0.1),
                lambda g: oo.adagrad(g, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
                ({"lr_decay": 0.0}, {"eps": 1e-6})),
    "rmsprop": (lambda g: torch.optim.RMSprop(g, lr=0.01),
                lambda g: oo.rmsprop(g, lr=0.01),
                ({"alpha": 0.9}, {"lr": 0.003})),
    "rmsprop_centered": (lambda g: torch.optim.RMSprop(g, lr=0.01, centered=True),
                         lambda g: oo.rmsprop(g, lr=0.01, centered=True),
                         ({"alpha": 0.95}, {"eps": 1e-6})),
    "rmsprop_momentum": (lambda g: torch.optim.RMSprop(g, lr=0.005, momentum=0.9,
                                                       weight_decay=1e-3),
                         lambda g: oo.rmsprop(g, lr=0.005, momentum=0.9, weight_decay=1e-3,
                                              decay_mask="all"),
                         ({"momentum": 0.5, "centered": True}, {"lr": 0.002})),
    "adam": (lambda g: torch.optim.Adam(g, lr=0.01, weight_decay=1e-3),
             lambda g: oo.adam(g, lr=0.01, weight_decay=1e-3, decay_mask="all"),
             ({"betas": (0.8, 0.99)}, {"eps": 1e-6, "lr": 0.003})),
    "amsgrad": (lambda g: torch.optim.Adam(g, lr=0.01, amsgrad=True),
                lambda g: oo.amsgrad(g, lr=0.01),
                ({"betas": (0.5, 0.9)}, {"lr": 0.02})),
    "adamw": (lambda g: torch.optim.AdamW(g, lr=0.01, weight_decay=0.1),
              lambda g: oo.adamw(g, lr=0.01, weight_decay=0.1, decay_mask="all"),
              ({"weight_decay": 0.5}, {"betas": (0.9, 0.95)})),
    "adamw_amsgrad": (lambda g: torch.optim.AdamW(g, lr=0.01, amsgrad=True),
                      lambda g: oo.adamw(g, lr=0.01, amsgrad=True, decay_mask="all"),
                      ({"lr": 0.005}, {"weight_decay": 0.05})),
    "nadam": (lambda g: torch.optim.NAdam(g, lr=0.01),
              lambda g: oo.nadam(g, lr=0.01),
              ({"momentum_decay": 0.01}, {"betas": (0.85, 0.99)})),
    "nadam_decoupled": (lambda g: torch.optim.NAdam(g, lr=0.01, weight_decay=0.1,
                                                    decoupled_weight_decay=True),
                        lambda g: oo.nadam(g, lr=0.01, weight_decay=0.1,
                                           decoupled_weight_decay=True, decay_mask="all"),
                        ({"lr": 0.004}, {"weight_decay": 0.01})),
    "adamax": (lambda g: torch.optim.Adamax(g, lr=0.01),
               lambda g: oo.adamax(g, lr=0.01),
               ({"betas": (0.8, 0.9)}, {"lr": 0.02, "eps": 1e-6})),
}


@pytest.fixture(autouse=True)
def _float64_scalars():
    # torch keeps NAdam's μ-product and step counts in the default dtype: float64 makes them exact
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("foreach", [True, False], ids=["torch_foreach", "torch_single"])
def test_matches_torch(name: str, foreach: bool, digits) -> None:
    torch_make, ours_make, group_kw = CASES[name]

    def torch_with_mode(groups):
        opt = torch_make(groups)
        for g in opt.param_groups:
            g["foreach"] = foreach
        return opt

    ref = _train(torch_with_mode, group_kw, digits)
    ours = _train(ours_make, group_kw, digits)
    start = torch.cat([p.detach().flatten() for p in _model().parameters()])
    assert not torch.equal(ref, start), "the reference did not move: the test would prove nothing"
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_groups_really_differ(digits) -> None:
    """The per-group hyperparameters take effect: overriding them changes the result."""
    _, ours_make, group_kw = CASES["adam"]
    with_groups = _train(ours_make, group_kw, digits)
    without = _train(ours_make, ({}, {}), digits)
    assert not torch.allclose(with_groups, without)
