"""The course's forms, checked against the recurrences written out by hand in plain Python."""

from __future__ import annotations

import math

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import from_chain
from optimlab.optim import transforms as T

GRADS = [2.0, -1.0, 3.0, 0.5, -2.5, 1.5, 0.0, 4.0]


def _drive(opt: torch.optim.Optimizer, w: torch.Tensor, grads: list[float]) -> list[float]:
    """Feed a fixed gradient sequence to a one-weight optimizer; return the weight after each."""
    out = []
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(w.item())
    return out


def _weight(value: float = 1.0) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float64, requires_grad=True)


def test_ewa_momentum_from_zero() -> None:
    """v = βv + (1−β)g with v₀ = 0; w = w − αv (the notes' momentum)."""
    alpha, beta = 0.1, 0.9
    w = _weight()
    got = _drive(oo.momentum([w], lr=alpha, momentum=beta), w, GRADS)
    v, x, want = 0.0, 1.0, []
    for g in GRADS:
        v = beta * v + (1 - beta) * g
        x -= alpha * v
        want.append(x)
    assert got == pytest.approx(want, rel=1e-14)
    assert got[0] == pytest.approx(1.0 - alpha * 0.2)  # v₁ = 0.1 · 2 = 0.2: pulled towards 0


def test_bias_corrected_ewa_momentum() -> None:
    """v̂ = v/(1 − βᵗ): the first step uses the whole first gradient."""
    alpha, beta = 0.1, 0.9
    w = _weight()
    got = _drive(oo.momentum([w], lr=alpha, momentum=beta, bias_correction=True), w, GRADS)
    v, x, want = 0.0, 1.0, []
    for t, g in enumerate(GRADS, start=1):
        v = beta * v + (1 - beta) * g
        x -= alpha * v / (1 - beta**t)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-14)
    assert got[0] == pytest.approx(1.0 - alpha * 2.0)


def test_ewa_nesterov_by_hand() -> None:
    alpha, beta = 0.05, 0.8
    w = _weight()
    got = _drive(oo.nesterov([w], lr=alpha, momentum=beta, form="ewa"), w, GRADS)
    v, x, want = 0.0, 1.0, []
    for g in GRADS:
        v = beta * v + (1 - beta) * g
        x -= alpha * ((1 - beta) * g + beta * v)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-14)


def test_heavy_ball_is_ewa_with_scaled_lr_on_a_fixed_sequence() -> None:
    """v = βv + g equals (the EWA v)/(1 − β): the same path when α is scaled by (1 − β)."""
    w1, w2 = _weight(), _weight()
    ewa = _drive(oo.momentum([w1], lr=0.1, momentum=0.9, form="ewa"), w1, GRADS)
    hb = _drive(oo.momentum([w2], lr=0.01, momentum=0.9, form="heavy_ball"), w2, GRADS)
    assert hb == pytest.approx(ewa, rel=1e-12)


@pytest.mark.parametrize("eps_inside", [False, True])
def test_rmsprop_epsilon_inside_or_outside(eps_inside: bool) -> None:
    """outside: w −= α g/(√s + ε);  inside: w −= α g/√(s + ε). A large ε makes them differ."""
    alpha, beta, eps = 0.01, 0.9, 0.1
    w = _weight()
    got = _drive(oo.rmsprop([w], lr=alpha, alpha=beta, eps=eps, eps_inside=eps_inside), w, GRADS)
    s, x, want = 0.0, 1.0, []
    for g in GRADS:
        s = beta * s + (1 - beta) * g * g
        x -= alpha * g / (math.sqrt(s + eps) if eps_inside else math.sqrt(s) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-13)
    s1 = (1 - beta) * 4.0
    first = alpha * 2.0 / (math.sqrt(s1 + eps) if eps_inside else math.sqrt(s1) + eps)
    assert got[0] == pytest.approx(1.0 - first, rel=1e-14)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam_by_hand(bias_correction: bool) -> None:
    alpha, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w = _weight()
    got = _drive(oo.adam([w], lr=alpha, betas=(b1, b2), eps=eps,
                         bias_correction=bias_correction), w, GRADS)
    m = v = 0.0
    x, want = 1.0, []
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = (m / (1 - b1**t), v / (1 - b2**t)) if bias_correction else (m, v)
        x -= alpha * mh / (math.sqrt(vh) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-12)
    if bias_correction:  # the first corrected step is α·g/|g|: the full learning rate
        assert got[0] == pytest.approx(1.0 - alpha, rel=1e-6)


def test_amsgrad_corrected_maximum_by_hand() -> None:
    """optax's order: the maximum is taken of the bias-corrected v̂."""
    alpha, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    grads = [5.0, 0.1, 0.1, 3.0, 0.1]  # v̂ rises, falls, rises: the maximum matters
    w = _weight()
    got = _drive(oo.amsgrad([w], lr=alpha, betas=(b1, b2), eps=eps, amsgrad_max="corrected"),
                 w, grads)
    m = v = vmax = 0.0
    x, want = 1.0, []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = max(vmax, v / (1 - b2**t))
        x -= alpha * (m / (1 - b1**t)) / (math.sqrt(vmax) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-12)
    raw = _weight()
    other = _drive(oo.amsgrad([raw], lr=alpha, betas=(b1, b2), eps=eps), raw, grads)
    assert other != pytest.approx(want, rel=1e-6)  # the two orders really differ here


def test_nadam_without_schedule_is_the_optax_form() -> None:
    """μ = β₁: update = (1−β₁)g/(1−β₁ᵗ) + β₁m/(1−β₁ᵗ⁺¹), over √v̂ + ε."""
    alpha, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w = _weight()
    got = _drive(oo.nadam([w], lr=alpha, betas=(b1, b2), eps=eps, momentum_schedule=False),
                 w, GRADS)
    m = v = 0.0
    x, want = 1.0, []
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        num = (1 - b1) * g / (1 - b1**t) + b1 * m / (1 - b1 ** (t + 1))
        x -= alpha * num / (math.sqrt(v / (1 - b2**t)) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-12)


def test_lion_by_hand() -> None:
    alpha, b1, b2, wd = 0.01, 0.9, 0.99, 0.1
    w = _weight()
    got = _drive(oo.lion([w], lr=alpha, betas=(b1, b2), weight_decay=wd, decay_mask="all"),
                 w, GRADS)
    m, x, want = 0.0, 1.0, []
    for g in GRADS:
        c = b1 * m + (1 - b1) * g
        x -= alpha * ((c > 0) - (c < 0) + wd * x)
        m = b2 * m + (1 - b2) * g
        want.append(x)
    assert got == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("eps_inside", [False, True])
def test_adagrad_by_hand(eps_inside: bool) -> None:
    alpha, eps = 0.1, 0.01
    w = _weight()
    got = _drive(oo.adagrad([w], lr=alpha, eps=eps, eps_inside=eps_inside), w, GRADS)
    s, x, want = 0.0, 1.0, []
    for g in GRADS:
        s += g * g
        x -= alpha * g / (math.sqrt(s + eps) if eps_inside else math.sqrt(s) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-13)


def test_centered_rmsprop_with_bias_correction_by_hand() -> None:
    """Both averages corrected: ŝ − ḡ̂² with ŝ = s/(1−βᵗ), ḡ̂ = ḡ/(1−βᵗ)."""
    alpha, beta, eps = 0.01, 0.9, 1e-3
    w = _weight()
    got = _drive(oo.rmsprop([w], lr=alpha, alpha=beta, eps=eps, centered=True,
                            bias_correction=True), w, GRADS)
    s = gbar = 0.0
    x, want = 1.0, []
    for t, g in enumerate(GRADS, start=1):
        s = beta * s + (1 - beta) * g * g
        gbar = beta * gbar + (1 - beta) * g
        bc = 1 - beta**t
        x -= alpha * g / (math.sqrt(s / bc - (gbar / bc) ** 2) + eps)
        want.append(x)
    assert got == pytest.approx(want, rel=1e-10)


def test_a_hand_built_chain_equals_the_named_optimizer() -> None:
    """Adam written as pieces is Adam."""
    w1, w2 = _weight(), _weight()
    named = _drive(oo.adam([w1], lr=0.01), w1, GRADS)
    chain = T.chain(T.ewa(0.9), T.bias_correction(0.9),
                    T.scale_by_rms(0.999, 1e-8, bias_correction=True), T.scale_by_lr())
    built = _drive(from_chain([w2], chain, lr=0.01), w2, GRADS)
    assert built == pytest.approx(named, rel=1e-14)


def test_order_of_pieces_is_the_order_of_the_math() -> None:
    """rms then trace is torch's RMSprop momentum (a trace of g/√s); trace then rms is not."""
    w1, w2, w3 = _weight(), _weight(), _weight()
    torch_form = _drive(oo.rmsprop([w1], lr=0.01, alpha=0.9, momentum=0.5), w1, GRADS)
    rms_then_trace = T.chain(T.scale_by_rms(0.9, 1e-8), T.trace(0.5), T.scale_by_lr())
    same = _drive(from_chain([w2], rms_then_trace, lr=0.01), w2, GRADS)
    trace_then_rms = T.chain(T.trace(0.5), T.scale_by_rms(0.9, 1e-8), T.scale_by_lr())
    other = _drive(from_chain([w3], trace_then_rms, lr=0.01), w3, GRADS)
    assert same == pytest.approx(torch_form, rel=1e-14)
    assert other != pytest.approx(torch_form, rel=1e-3)
