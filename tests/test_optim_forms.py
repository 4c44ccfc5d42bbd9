"""Every library's form as a switch, each checked against its recurrence written out by hand.

The references follow the published code they name (Keras 3 ``keras/src/optimizers``: ``adam.py``,
``adamw.py``, ``adamax.py``, ``sgd.py``; torch.optim where torch has the form). The gradient
depends on the weight (g = h·w + n_t) and the learning rate changes every step, so that weight
decay and the place of the learning rate show in the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

import optimlab.optim as oo

H = 0.5
NOISE = [2.0, -1.0, 3.0, 0.5, -2.5, 1.5, 0.0, 4.0, -3.0, 1.0, 0.25, -0.75]
LRS = [0.05, 0.04, 0.08, 0.02, 0.05, 0.1, 0.03, 0.06, 0.01, 0.05, 0.07, 0.02]
CONST = [0.05] * len(NOISE)


def _drive(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
           lrs: list[float] = LRS) -> list[float]:
    """One weight, w₀ = 1, gradient h·w + n_t, the group's lr set to lrs[t] before each step."""
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = make([w])
    out = []
    for n, lr in zip(NOISE, lrs, strict=True):
        opt.param_groups[0]["lr"] = lr
        w.grad = torch.tensor([H * w.item() + n], dtype=torch.float64)
        opt.step()
        out.append(w.item())
    return out


def _reference(step: Callable[[float, float, float, int, dict], float],
               lrs: list[float] = LRS) -> list[float]:
    """The same loop in plain floats: ``step(x, g, lr, t, state) -> new x``."""
    x, state, out = 1.0, {}, []
    for t, (n, lr) in enumerate(zip(NOISE, lrs, strict=True), start=1):
        x = step(x, H * x + n, lr, t, state)
        out.append(x)
    return out


def _apart(a: list[float], b: list[float]) -> bool:
    """The two paths differ by far more than the tolerance the equalities use."""
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) > 1e-6


# -- Adam's ε̂ (Keras and TensorFlow) -----------------------------------------------------------
def _keras_adam(b1: float, b2: float, eps: float, amsgrad: bool = False,
                wd: float = 0.0) -> Callable[[float, float, float, int, dict], float]:
    """keras.optimizers.Adam/AdamW.update_step (AdamW's decay w ← w − w·λ·lr applied first)."""

    def step(x: float, g: float, lr: float, t: int, s: dict) -> float:
        m, v, vhat = s.get("m", 0.0), s.get("v", 0.0), s.get("vhat", 0.0)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        s.update(m=m, v=v)
        if amsgrad:
            vhat = max(vhat, v)
            s["vhat"] = vhat
            v = vhat
        x -= x * wd * lr
        return x - m * alpha / (math.sqrt(v) + eps)

    return step


@pytest.mark.parametrize("name, amsgrad, wd", [("adam", False, 0.0), ("amsgrad", True, 0.0),
                                               ("adamw", False, 0.1)])
def test_adam_epsilon_hat_is_keras_adam(name: str, amsgrad: bool, wd: float) -> None:
    b1, b2, eps = 0.9, 0.99, 0.05  # a large ε, so that where it goes shows
    kw = {"weight_decay": wd, "decay_mask": "all"} if wd else {}
    got = _drive(lambda p: oo.create(name, p, betas=(b1, b2), eps=eps, eps_form="hat", **kw))
    want = _reference(_keras_adam(b1, b2, eps, amsgrad, wd))
    assert got == pytest.approx(want, rel=1e-12)
    corrected = _drive(lambda p: oo.create(name, p, betas=(b1, b2), eps=eps, **kw))
    assert _apart(corrected, want)  # the switch changes the result


def test_adam_corrected_epsilon_is_the_paper_and_torch() -> None:
    b1, b2, eps = 0.9, 0.99, 0.05

    def step(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        return x - lr * (s["m"] / (1 - b1**t)) / (math.sqrt(s["v"] / (1 - b2**t)) + eps)

    got = _drive(lambda p: oo.adam(p, betas=(b1, b2), eps=eps))
    assert got == pytest.approx(_reference(step), rel=1e-12)


@pytest.mark.parametrize("kwargs, words", [
    ({"eps_form": "tf"}, ["eps_form='tf'", "'corrected'", "'hat'"]),
    ({"eps_form": "hat", "eps_inside": True}, ["eps_form='hat'", "eps_inside=True"]),
    ({"eps_form": "hat", "bias_correction": False}, ["eps_form='hat'", "bias_correction=True"]),
    ({"eps_form": "hat", "amsgrad": True, "amsgrad_max": "corrected"},
     ["eps_form='hat'", "amsgrad_max='raw'"]),
])
def test_adam_epsilon_form_errors_name_the_fix(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        oo.adam([torch.ones(2, requires_grad=True)], **kwargs)
    for word in words:
        assert word in str(err.value)


# -- Adamax: ε inside (torch) or outside (Keras) the maximum -------------------------------------
def test_adamax_epsilon_outside_the_maximum_is_keras() -> None:
    b1, b2, eps = 0.9, 0.99, 0.3

    def keras(x: float, g: float, lr: float, t: int, s: dict) -> float:
        m, u = s.get("m", 0.0), s.get("u", 0.0)
        m += (g - m) * (1 - b1)
        u = max(b2 * u, abs(g))
        s.update(m=m, u=u)
        return x - (lr * m) / ((1 - b1**t) * (u + eps))

    def torch_form(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["u"] = max(b2 * s.get("u", 0.0), abs(g) + eps)
        return x - lr / (1 - b1**t) * s["m"] / s["u"]

    outside = _drive(lambda p: oo.adamax(p, betas=(b1, b2), eps=eps, eps_form="outside"))
    inside = _drive(lambda p: oo.adamax(p, betas=(b1, b2), eps=eps))
    assert outside == pytest.approx(_reference(keras), rel=1e-12)
    assert inside == pytest.approx(_reference(torch_form), rel=1e-12)
    assert _apart(outside, inside)


# -- momentum with the learning rate inside the velocity (Keras and TensorFlow SGD) --------------
def _keras_sgd(mu: float, nesterov: bool, wd: float = 0.0
               ) -> Callable[[float, float, float, int, dict], float]:
    """keras.optimizers.SGD.update_step, its weight decay w ← w − w·λ·lr applied first."""

    def step(x: float, g: float, lr: float, t: int, s: dict) -> float:
        x -= x * wd * lr
        m = -g * lr + s.get("m", 0.0) * mu
        s["m"] = m
        return x - g * lr + m * mu if nesterov else x + m

    return step


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.2])
def test_momentum_with_lr_inside_is_keras_sgd(nesterov: bool, wd: float) -> None:
    mu = 0.9
    kw = {"weight_decay": wd, "decoupled_weight_decay": True, "decay_mask": "all"}
    got = _drive(lambda p: oo.momentum(p, momentum=mu, form="lr_inside", nesterov=nesterov, **kw))
    assert got == pytest.approx(_reference(_keras_sgd(mu, nesterov, wd)), rel=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_lr_inside_equals_heavy_ball_at_a_constant_rate_and_differs_when_it_changes(
        nesterov: bool) -> None:
    def run(form: str, lrs: list[float]) -> list[float]:
        return _drive(lambda p: oo.momentum(p, momentum=0.9, form=form, nesterov=nesterov), lrs)

    assert run("lr_inside", CONST) == pytest.approx(run("heavy_ball", CONST), rel=1e-12)
    assert _apart(run("lr_inside", LRS), run("heavy_ball", LRS))
    nest = _drive(lambda p: oo.nesterov(p, momentum=0.9, form="lr_inside"))
    assert nest == pytest.approx(_reference(_keras_sgd(0.9, True)), rel=1e-12)


def test_lr_inside_rejects_what_it_does_not_have() -> None:
    p = [torch.ones(2, requires_grad=True)]
    with pytest.raises(ValueError, match="dampening applies to form='heavy_ball'"):
        oo.momentum(p, form="lr_inside", dampening=0.5)
    with pytest.raises(ValueError, match="bias_correction=True applies to form='ewa'"):
        oo.momentum(p, form="lr_inside", bias_correction=True)


# -- decoupled weight decay on every optimizer ----------------------------------------------------
def _plain_steps() -> dict[str, tuple[dict, Callable[[float, float, float, int, dict], float]]]:
    """name → (hyperparameters, the step without decay as a function giving the increment)."""
    mu, beta, b1, b2, eps = 0.9, 0.9, 0.9, 0.99, 1e-3

    def sgd(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["v"] = g if t == 1 else mu * s["v"] + g
        return -lr * s["v"]

    def ewa(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["v"] = beta * s.get("v", 0.0) + (1 - beta) * g
        return -lr * s["v"]

    def nesterov(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["v"] = g if t == 1 else mu * s["v"] + g
        return -lr * (g + mu * s["v"])

    def adagrad(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["s"] = s.get("s", 0.0) + g * g
        return -lr / (1 + (t - 1) * 0.1) * g / (math.sqrt(s["s"]) + eps)

    def rmsprop(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["s"] = beta * s.get("s", 0.0) + (1 - beta) * g * g
        s["b"] = mu * s.get("b", 0.0) + g / (math.sqrt(s["s"]) + eps)
        return -lr * s["b"]

    def adam(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        s["vmax"] = max(s.get("vmax", 0.0), s["v"]) if s.get("ams") else s["v"]
        return -lr * (s["m"] / (1 - b1**t)) / (math.sqrt(s["vmax"] / (1 - b2**t)) + eps)

    def amsgrad(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["ams"] = True
        return adam(x, g, lr, t, s)

    def adamax(x: float, g: float, lr: float, t: int, s: dict) -> float:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["u"] = max(b2 * s.get("u", 0.0), abs(g) + eps)
        return -lr / (1 - b1**t) * s["m"] / s["u"]

    return {
        "sgd": ({"momentum": mu}, sgd),
        "momentum": ({"momentum": beta}, ewa),
        "nesterov": ({"momentum": mu, "form": "heavy_ball"}, nesterov),
        "adagrad": ({"eps": eps, "lr_decay": 0.1}, adagrad),
        "rmsprop": ({"alpha": beta, "eps": eps, "momentum": mu}, rmsprop),
        "adam": ({"betas": (b1, b2), "eps": eps}, adam),
        "amsgrad": ({"betas": (b1, b2), "eps": eps}, amsgrad),
        "adamax": ({"betas": (b1, b2), "eps": eps}, adamax),
    }


@pytest.mark.parametrize("name", list(_plain_steps()))
def test_decoupled_weight_decay_is_outside_the_statistics(name: str) -> None:
    """w ← w − α_t·λ·w + (the step the algorithm takes without decay), α_t the effective rate
    (Adagrad's lr_decay included); the coupled form differs."""
    wd = 0.3
    hyper, plain = _plain_steps()[name]

    def decoupled(x: float, g: float, lr: float, t: int, s: dict) -> float:
        rate = lr / (1 + (t - 1) * hyper["lr_decay"]) if "lr_decay" in hyper else lr
        return x - rate * wd * x + plain(x, g, lr, t, s)

    def make(decoupled_flag: bool) -> Callable[[list[torch.Tensor]], torch.optim.Optimizer]:
        return lambda p: oo.create(name, p, weight_decay=wd, decay_mask="all",
                                   decoupled_weight_decay=decoupled_flag, **hyper)

    assert _drive(make(True)) == pytest.approx(_reference(decoupled), rel=1e-12)
    assert _apart(_drive(make(False)), _reference(decoupled))


def test_decoupled_adam_is_torch_adamw() -> None:
    w1 = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_()
    ours = oo.adam([w1], lr=0.01, weight_decay=0.1, decoupled_weight_decay=True,
                   decay_mask="all")
    ref = torch.optim.AdamW([w2], lr=0.01, weight_decay=0.1)
    for n in NOISE:
        for w, opt in ((w1, ours), (w2, ref)):
            w.grad = H * w.detach() + n
            opt.step()
    torch.testing.assert_close(w1, w2, rtol=1e-12, atol=1e-14)


def test_every_optimizer_offers_decoupled_decay() -> None:
    """Every optimizer decouples its decay on request, or always does (adamw, lion)."""
    for name, info in oo.available().items():
        assert name in ("adamw", "lion") or "decoupled_weight_decay" in info["defaults"], name
