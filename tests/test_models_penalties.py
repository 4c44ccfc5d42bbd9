"""Penalties against closed forms on a tiny model with known weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.models import (
    build_model,
    elastic_net,
    l1_penalty,
    l2_penalty,
    penalized_parameters,
)
from optimlab.optim.regularize import masked


def _tiny() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.5, -0.5]))
        net[1].weight.copy_(torch.tensor([2.0, 2.0]))
        net[1].bias.copy_(torch.tensor([1.0, 1.0]))
        net[2].weight.copy_(torch.tensor([[-1.0, 4.0]]))
        net[2].bias.copy_(torch.tensor([7.0]))
    return net


# weights: |.| sums to 1+2+3+0+1+4 = 11, squares to 1+4+9+0+1+16 = 31
# biases:  |.| 0.5+0.5+7 = 8, squares 0.25+0.25+49 = 49.5;  norm γ, β: |.| 6, squares 10


def test_l1():
    net = _tiny()
    assert l1_penalty(net, 0.1).item() == pytest.approx(0.1 * 11)
    assert l1_penalty(net, 0.1, include_bias=True).item() == pytest.approx(0.1 * 19)
    assert l1_penalty(net, 0.1, include_bias=True, include_norm=True).item() == pytest.approx(
        0.1 * 25)


def test_l2_coupled_form():
    net = _tiny()
    assert l2_penalty(net, 0.1).item() == pytest.approx(0.1 / 2 * 31)
    assert l2_penalty(net, 0.1, m=4).item() == pytest.approx(0.1 / (2 * 4) * 31)
    assert l2_penalty(net, 0.1, m=4, include_bias=True).item() == pytest.approx(
        0.1 / 8 * (31 + 49.5))
    assert l2_penalty(net, 0.1, include_norm=True).item() == pytest.approx(0.05 * 41)


def test_l2_gradient_is_lambda_over_m_times_w():
    net = _tiny()
    l2_penalty(net, 0.6, m=3).backward()
    assert torch.allclose(net[0].weight.grad, 0.2 * net[0].weight)
    assert net[0].bias.grad is None and net[1].weight.grad is None


def test_l1_gradient_is_lambda_sign_w():
    net = _tiny()
    l1_penalty(net, 0.3).backward()
    assert torch.allclose(net[2].weight.grad, 0.3 * torch.sign(net[2].weight))


def test_elastic_net():
    net = _tiny()
    lam, rho, m = 0.2, 0.25, 2
    ref = lam * (rho * 11 + (1 - rho) / (2 * m) * 31)
    assert elastic_net(net, lam, rho, m).item() == pytest.approx(ref)
    assert elastic_net(net, lam, 1.0).item() == pytest.approx(l1_penalty(net, lam).item())
    assert elastic_net(net, lam, 0.0).item() == pytest.approx(l2_penalty(net, lam).item())


def test_explicit_tensors_and_empty():
    w = torch.tensor([3.0, -4.0])
    assert l2_penalty([w], 1.0).item() == pytest.approx(12.5)
    assert l1_penalty([], 1.0).item() == 0.0


def test_penalized_parameters_exclude_bias_and_norm_by_default():
    net = _tiny()
    ids = {id(p) for p in penalized_parameters(net)}
    assert ids == {id(net[0].weight), id(net[2].weight)}
    with_bias = {id(p) for p in penalized_parameters(net, include_bias=True)}
    assert with_bias == ids | {id(net[0].bias), id(net[2].bias)}
    with_norm = {id(p) for p in penalized_parameters(net, include_norm=True)}
    assert with_norm == ids | {id(net[1].weight), id(net[1].bias)}


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        ({"hidden": [8, 8], "norm": "batch"}, 5),
        ({"hidden": [8, 8], "norm": "layer"}, 5),
        ({"type": "cnn", "channels": [8, 8], "hidden": [8], "norm": "group", "groups": 4},
         (1, 8, 8)),
    ],
)
def test_same_tensors_as_optim_decay_mask_auto(spec, shape):
    net = build_model(spec, shape, 3)
    ours = {id(p) for p in penalized_parameters(net)}
    theirs = {id(p) for p in net.parameters() if masked("auto", p)}
    assert ours == theirs


def test_shared_weights_counted_once():
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    assert l1_penalty(nn.Sequential(lin, lin), 1.0).item() == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda n: l1_penalty(n, -1.0), "lam=-1.0"),
        (lambda n: l2_penalty(n, 0.1, m=0), "m=0"),
        (lambda n: elastic_net(n, 0.1, 1.5), "l1_ratio=1.5"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(_tiny())
