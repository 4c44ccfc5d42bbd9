"""Initializer statistics against the closed forms (large layers: 10⁶ draws, so the sample std
is within ~0.1 % of the true one)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from optimlab.models import available_inits, build_model, initialize

N_IN, N_OUT = 1000, 500  # different, so n_in, n_out and n_in + n_out give different scales


def _layer(init, **kw) -> torch.Tensor:
    layer = nn.Linear(N_IN, N_OUT)
    initialize(layer, init, seed=0, **kw)
    return layer.weight.detach()


def _close(x: float, ref: float, rel: float = 0.01) -> None:
    assert x == pytest.approx(ref, rel=rel), (x, ref)


def test_xavier_uniform_bound():
    b = math.sqrt(6 / (N_IN + N_OUT))
    for name in ("xavier_uniform", "glorot_uniform"):
        w = _layer(name)
        assert w.abs().max() <= b
        _close(w.abs().max().item(), b, rel=1e-3)
        _close(w.std().item(), b / math.sqrt(3))  # std of U(−b, b)
        assert abs(w.mean().item()) < 1e-3


def test_xavier_normal_std():
    for name in ("xavier_normal", "glorot_normal"):
        _close(_layer(name).std().item(), math.sqrt(2 / (N_IN + N_OUT)))


def test_xavier_gain():
    _close(_layer("xavier_normal:2.0").std().item(), 2 * math.sqrt(2 / (N_IN + N_OUT)))


def test_he_normal_std_is_sqrt_2_over_n_in():
    # The notes' "N(0, √(2/n_in))" is a standard deviation: variance 2/n_in.
    for name in ("he_normal", "kaiming_normal"):
        w = _layer(name)
        _close(w.std().item(), math.sqrt(2 / N_IN))
        _close(w.var().item(), 2 / N_IN, rel=0.02)


def test_he_uniform_bound():
    b = math.sqrt(6 / N_IN)
    w = _layer("he_uniform")
    assert w.abs().max() <= b
    _close(w.abs().max().item(), b, rel=1e-3)


def test_he_fan_out_and_explicit_slope():
    _close(_layer({"name": "he_normal", "mode": "fan_out"}).std().item(), math.sqrt(2 / N_OUT))
    _close(_layer("he_normal:1.0").std().item(), math.sqrt(1 / N_IN))  # a = 1: gain 1


def test_he_uses_leaky_slope_of_following_activation():
    net = build_model(
        {"hidden": [1000], "activation": "leaky_relu:0.5", "init": "he_normal"}, 1000, 1, seed=0
    )
    _close(net.linear0.weight.std().item(), math.sqrt(2 / ((1 + 0.25) * 1000)))


def test_he_conv_fan_in_is_channels_times_kernel_area():
    conv = nn.Conv2d(64, 128, 3)
    initialize(conv, "he_normal", seed=0)
    _close(conv.weight.std().item(), math.sqrt(2 / (64 * 9)), rel=0.02)


def test_normal_uniform_zeros_lecun():
    _close(_layer("normal:0.01").std().item(), 0.01)
    _close(_layer({"name": "normal", "std": 0.05}).std().item(), 0.05)
    w = _layer("uniform:0.2")
    assert w.abs().max() <= 0.2
    _close(w.std().item(), 0.2 / math.sqrt(3))
    assert torch.count_nonzero(_layer("zeros")) == 0
    _close(_layer("lecun_normal").std().item(), math.sqrt(1 / N_IN))
    _close(_layer("lecun_uniform").abs().max().item(), math.sqrt(3 / N_IN), rel=1e-3)


def test_orthogonal():
    layer = nn.Linear(50, 50)
    initialize(layer, "orthogonal", seed=0)
    w = layer.weight.detach().double()
    assert torch.allclose(w @ w.T, torch.eye(50, dtype=torch.float64), atol=1e-5)


def test_default_is_torchs_own():
    # torch's Linear default: U(−1/√n_in, 1/√n_in) for weights and biases.
    layer = nn.Linear(N_IN, N_OUT)
    initialize(layer, "default", bias_init=None, seed=0)
    b = 1 / math.sqrt(N_IN)
    assert layer.weight.abs().max() <= b
    _close(layer.weight.std().item(), b / math.sqrt(3))
    assert layer.bias.std() > 0


def test_auto_matches_init_to_activation():
    net = build_model({"hidden": [1000, 1000], "activation": ["relu", "tanh"]}, 1000, 1000, seed=0)
    _close(net.linear0.weight.std().item(), math.sqrt(2 / 1000))  # relu → he_normal
    b = math.sqrt(6 / 2000)  # tanh → xavier_uniform
    _close(net.linear1.weight.abs().max().item(), b, rel=1e-3)
    _close(net.output.weight.abs().max().item(), b, rel=1e-3)  # logits → xavier_uniform


def test_bias_init():
    layer = nn.Linear(10, 7)
    initialize(layer, "he_normal", bias_init=0.1)
    assert torch.equal(layer.bias, torch.full((7,), 0.1))
    net = build_model({"hidden": [5], "bias_init": -2.0}, 3, 2)
    assert torch.equal(net.linear0.bias, torch.full((5,), -2.0))
    assert torch.equal(net.output.bias, torch.full((2,), -2.0))
    initialize(layer, "he_normal", bias_init=None)  # left alone
    assert torch.equal(layer.bias, torch.full((7,), 0.1))


def test_seeded_init_is_reproducible_and_leaves_global_rng():
    a, b, c = nn.Linear(20, 30), nn.Linear(20, 30), nn.Linear(20, 30)
    state = torch.get_rng_state()
    initialize(a, "xavier_normal", seed=3)
    initialize(b, "xavier_normal", seed=3)
    initialize(c, "xavier_normal", seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)
    spec = {"type": "cnn", "channels": [4], "hidden": [8], "norm": "batch"}
    m1, m2 = (build_model(spec, (1, 8, 8), 3, seed=7) for _ in range(2))
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(v1, v2), k


def test_every_listed_init_runs_on_linear_and_conv():
    for name in available_inits():
        initialize(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 2)), name)
