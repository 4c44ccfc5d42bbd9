"""Behaviour of the optimizers as PyTorch code uses them: convergence, accumulation, resume,
schedulers, closures, validation, the safety pieces and the wrappers."""

from __future__ import annotations

import io
import math

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import from_chain
from optimlab.optim import transforms as T

# -- convergence -------------------------------------------------------------------------------


def _quadratic_grad(x: torch.Tensor) -> torch.Tensor:
    """f = ½(x₀² + 100·x₁²): a ravine with condition number 100, minimum at 0."""
    return torch.stack([x[0], 100.0 * x[1]])


def _rosenbrock_grad(x: torch.Tensor) -> torch.Tensor:
    """f = (1 − x₀)² + 100(x₁ − x₀²)², minimum at (1, 1)."""
    a, b = x[0], x[1]
    return torch.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def _steps_to(opt_factory, grad_fn, start, target, budget, tol) -> int | None:
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([x])
    goal = torch.tensor(target, dtype=torch.float64)
    for i in range(budget):
        x.grad = grad_fn(x.detach())
        opt.step()
        if float((x.detach() - goal).norm()) < tol:
            return i + 1
    return None


# (factory on the quadratic, budget) and (factory on Rosenbrock, budget): budgets ≈ 1.3× measured
CONVERGENCE = {
    "sgd": ((lambda p: oo.sgd(p, lr=0.019), 500), (lambda p: oo.sgd(p, lr=1.5e-3), 10_000)),
    "momentum": ((lambda p: oo.momentum(p, lr=0.019), 400),
                 (lambda p: oo.momentum(p, lr=2e-3), 8_000)),
    "nesterov": ((lambda p: oo.nesterov(p, lr=0.019), 400),
                 (lambda p: oo.nesterov(p, lr=2e-3), 8_000)),
    "adagrad": ((lambda p: oo.adagrad(p, lr=0.5), 30), (lambda p: oo.adagrad(p, lr=0.5), 12_500)),
    "rmsprop": ((lambda p: oo.rmsprop(p, lr=0.01), 200),
                (lambda p: oo.rmsprop(p, lr=1e-3), 8_500)),
    "adam": ((lambda p: oo.adam(p, lr=0.05), 110), (lambda p: oo.adam(p, lr=0.02), 2_700)),
    "amsgrad": ((lambda p: oo.amsgrad(p, lr=0.05), 110),
                (lambda p: oo.amsgrad(p, lr=0.02), 4_200)),
    "adamw": ((lambda p: oo.adamw(p, lr=0.05, weight_decay=0.0), 110),
              (lambda p: oo.adamw(p, lr=0.02, weight_decay=0.0), 2_700)),
    "nadam": ((lambda p: oo.nadam(p, lr=0.05), 100), (lambda p: oo.nadam(p, lr=0.02), 5_100)),
    "adamax": ((lambda p: oo.adamax(p, lr=0.05), 125), (lambda p: oo.adamax(p, lr=0.02), 5_000)),
    "lion": ((lambda p: oo.lion(p, lr=0.01), 130), (lambda p: oo.lion(p, lr=3e-3), 1_600)),
}


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_reaches_the_minimum_of_an_ill_conditioned_quadratic(name: str) -> None:
    (factory, budget), _ = CONVERGENCE[name]
    assert _steps_to(factory, _quadratic_grad, [1.0, 1.0], [0.0, 0.0], budget, 1e-3) is not None


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_reaches_the_minimum_of_rosenbrock(name: str) -> None:
    _, (factory, budget) = CONVERGENCE[name]
    assert _steps_to(factory, _rosenbrock_grad, [-1.5, 2.0], [1.0, 1.0], budget, 1e-2) is not None


def test_momentum_beats_plain_gd_in_the_ravine() -> None:
    """The notes' claim at equal learning rate: momentum needs fewer steps."""
    gd = _steps_to(lambda p: oo.sgd(p, lr=0.005), _quadratic_grad, [1.0, 1.0], [0, 0], 5000, 1e-3)
    mom = _steps_to(lambda p: oo.momentum(p, lr=0.005, momentum=0.9, form="heavy_ball"),
                    _quadratic_grad, [1.0, 1.0], [0, 0], 5000, 1e-3)
    assert gd is not None and mom is not None and mom < gd / 3


def test_l1_proximal_gives_exact_zeros() -> None:
    """Lasso regression on features of which only two matter: the rest become exactly 0."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 10, generator=gen, dtype=torch.float64)
    w_true = torch.zeros(10, dtype=torch.float64)
    w_true[[1, 4]] = torch.tensor([2.0, -3.0], dtype=torch.float64)
    y = X @ w_true + 0.01 * torch.randn(200, generator=gen, dtype=torch.float64)
    w = torch.zeros(10, 1, dtype=torch.float64, requires_grad=True)  # 2-D: selected by "auto"
    opt = from_chain([w], T.chain(T.scale_by_lr(), T.l1_proximal(0.1)), lr=0.05)
    for _ in range(500):
        opt.zero_grad()
        (0.5 * ((X @ w).squeeze(1) - y).pow(2).mean()).backward()
        opt.step()
    w = w.detach().squeeze(1)
    assert (w[[0, 2, 3, 5, 6, 7, 8, 9]] == 0).all()
    assert (w[[1, 4]].abs() > 1.5).all()


# -- exact gradient accumulation -------------------------------------------------------------


def _regression_data(dtype=torch.float64):
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(128, 8, generator=gen, dtype=dtype)
    y = torch.randn(128, 1, generator=gen, dtype=dtype)
    return X, y


def _small_model(dtype=torch.float64) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 1)).to(dtype)


@pytest.mark.parametrize("make", [
    lambda p: oo.sgd(p, lr=0.1),
    lambda p: oo.momentum(p, lr=0.1, momentum=0.9),
    lambda p: oo.adamw(p, lr=0.01, weight_decay=0.1, decay_mask="all"),
], ids=["sgd", "momentum", "adamw_weight_decay"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_accumulating_k_micro_batches_equals_one_big_step(make, dtype) -> None:
    X, y = _regression_data(dtype)
    big, small = _small_model(dtype), _small_model(dtype)
    opt_big = make(big.parameters())
    opt_small = oo.accumulate(make(small.parameters()), k=4)
    for _ in range(5):  # five big steps = twenty micro-steps
        opt_big.zero_grad()
        torch.nn.functional.mse_loss(big(X), y).backward()
        opt_big.step()
        for i in range(4):
            rows = slice(32 * i, 32 * (i + 1))
            torch.nn.functional.mse_loss(small(X[rows]), y[rows]).backward()
            opt_small.step()
            opt_small.zero_grad()
            assert opt_small.updated == (i == 3)
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
    # the inner optimizer counted 5 steps, not 20 (Adam's bias correction depends on it)
    inner_steps = {st["step"] for st in opt_small.inner.state.values()}
    assert inner_steps == {5}


# -- resume, schedulers, closures --------------------------------------------------------------

RESUMABLE = {
    "sgd": lambda p: oo.sgd(p, lr=0.05, momentum=0.9, nesterov=True),
    "momentum": lambda p: oo.momentum(p, lr=0.05, bias_correction=True),
    "adagrad": lambda p: oo.adagrad(p, lr=0.05, lr_decay=0.01),
    "rmsprop": lambda p: oo.rmsprop(p, lr=0.01, centered=True, momentum=0.5),
    "adam": lambda p: oo.adam(p, lr=0.01, amsgrad=True),
    "adamw": lambda p: oo.adamw(p, lr=0.01),
    "nadam": lambda p: oo.nadam(p, lr=0.01),
    "adamax": lambda p: oo.adamax(p, lr=0.01),
    "lion": lambda p: oo.lion(p, lr=1e-3, weight_decay=0.1),
    "noisy_clipped": lambda p: from_chain(p, T.chain(T.add_noise(0.01, seed=3),
                                                     T.clip_by_global_norm(1.0), T.ewa(0.9),
                                                     T.scale_by_lr()), lr=0.05),
    "lookahead": lambda p: oo.lookahead(oo.adam(p, lr=0.01), k=3),
    "accumulate": lambda p: oo.accumulate(oo.adam(p, lr=0.01), k=3),
    "ema": lambda p: oo.ema(oo.sgd(p, lr=0.05), decay=0.9),
}


def _train_steps(model, opt, X, y, start, stop):
    for i in range(start, stop):
        rows = slice((16 * i) % 128, (16 * i) % 128 + 16)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[rows]), y[rows]).backward()
        opt.step()


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_resume_from_state_dict_is_bit_identical(name: str) -> None:
    X, y = _regression_data(torch.float32)
    straight = _small_model(torch.float32)
    opt = RESUMABLE[name](straight.parameters())
    _train_steps(straight, opt, X, y, 0, 40)

    first = _small_model(torch.float32)
    opt1 = RESUMABLE[name](first.parameters())
    _train_steps(first, opt1, X, y, 0, 17)
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed = _small_model(torch.float32)
    resumed.load_state_dict(saved["model"])
    opt2 = RESUMABLE[name](resumed.parameters())
    opt2.load_state_dict(saved["opt"])
    _train_steps(resumed, opt2, X, y, 17, 40)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_works_under_torch_schedulers() -> None:
    model = _small_model()
    opt = oo.sgd(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])
    # OneCycleLR cycles momentum (or Adam's β₁): the groups carry the torch names it needs
    adam = oo.adam(model.parameters(), lr=1e-3)
    cycle = torch.optim.lr_scheduler.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    for _ in range(3):
        adam.step()
        cycle.step()
    assert adam.param_groups[0]["betas"][0] < 0.95


def test_lr_is_read_every_step_so_a_changed_lr_takes_effect() -> None:
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = oo.sgd([w], lr=0.1)
    w.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    opt.param_groups[0]["lr"] = 0.01
    opt.step()
    assert w.item() == pytest.approx(1 - 0.1 - 0.01)


def test_step_with_closure_returns_the_loss() -> None:
    model = _small_model()
    X, y = _regression_data()
    opt = oo.adam(model.parameters(), lr=0.01)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(50):
        last = opt.step(closure).item()
    assert last < first


def test_parameters_without_gradient_are_left_alone() -> None:
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = oo.adam([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b, torch.ones(3)) and b not in opt.state
    assert not torch.equal(a, torch.ones(3))


def test_default_decay_mask_skips_biases_and_norm_weights() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    before = [p.detach().clone() for p in model.parameters()]
    opt = oo.adamw(model.parameters(), lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay moves anything
    opt.step()
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert moved == [True, False, False, False]  # Linear.weight only
    torch.testing.assert_close(model[0].weight, before[0] * (1 - 0.1 * 0.5))


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("call, words", [
    (lambda p: oo.adam(p, lr=-1e-3), ["lr=-0.001", ">= 0"]),
    (lambda p: oo.adam(p, betas=(0.9, 1.0)), ["betas[1]=1.0", "[0, 1)"]),
    (lambda p: oo.adam(p, eps=0.0), ["eps=0.0", "> 0"]),
    (lambda p: oo.momentum(p, momentum=-0.1), ["momentum=-0.1"]),
    (lambda p: oo.momentum(p, form="classic"), ["form='classic'", "'ewa'", "'heavy_ball'"]),
    (lambda p: oo.sgd(p, nesterov=True), ["nesterov=True", "momentum > 0"]),
    (lambda p: oo.adamw(p, decay_mask="biases"), ["decay_mask='biases'", "'auto'"]),
    (lambda p: oo.create("adamm", p), ["unknown optimizer 'adamm'", "adam"]),
    (lambda p: oo.create("adam", p, momentum=0.9), ["no hyperparameter 'momentum'", "betas"]),
    (lambda p: oo.sgd([{"params": p, "lr": -1.0}]), ["lr=-1.0"]),
])
def test_invalid_hyperparameters_raise_value_error_naming_them(call, words) -> None:
    p = [torch.ones(2, requires_grad=True)]
    with pytest.raises(ValueError) as err:
        call(p)
    for word in words:
        assert word in str(err.value)


def test_available_lists_every_name_with_defaults() -> None:
    names = oo.available()
    assert set(names) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "amsgrad",
                          "adamw", "nadam", "adamax", "lion"}
    assert names["adam"]["defaults"]["betas"] == (0.9, 0.999)
    for name, info in names.items():
        opt = oo.create(name, [torch.ones(2, requires_grad=True)])
        assert opt.defaults == {**info["defaults"]} and info["summary"]


# -- safety pieces ---------------------------------------------------------------------------


def test_skip_nonfinite_changes_nothing_on_a_nan_gradient() -> None:
    w = torch.ones(3, requires_grad=True)
    opt = from_chain([w], T.chain(T.skip_nonfinite(), T.ewa(0.9), T.scale_by_lr()), lr=0.1)
    w.grad = torch.ones(3)
    opt.step()
    after_one = (w.detach().clone(), opt.state[w]["ewa"].clone(), opt.state[w]["step"])
    w.grad = torch.tensor([1.0, float("nan"), 1.0])
    opt.step()
    assert torch.equal(w, after_one[0]) and torch.equal(opt.state[w]["ewa"], after_one[1])
    assert opt.state[w]["step"] == 1 and opt.skipped_steps == 1


def test_clip_by_global_norm_matches_torch_clip_grad_norm() -> None:
    ref, ours = _small_model(), _small_model()
    X, y = _regression_data()
    torch_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    opt = from_chain(ours.parameters(), T.chain(T.clip_by_global_norm(0.05), T.scale_by_lr()),
                     lr=0.5)
    for _ in range(10):
        for model, o in ((ref, torch_opt), (ours, opt)):
            o.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            if o is torch_opt:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            o.step()
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_clip_by_value_matches_torch_clip_grad_value() -> None:
    w1 = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    w2 = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    opt = from_chain([w1], T.chain(T.clip_by_value(0.5), T.scale_by_lr()), lr=1.0)
    w1.grad = torch.tensor([2.0, -0.1, -3.0])
    w2.grad = w1.grad.clone()
    torch.nn.utils.clip_grad_value_([w2], 0.5)
    opt.step()
    assert torch.equal(w1.detach(), -w2.grad)


def test_gradient_noise_is_seeded_and_has_the_annealed_variance() -> None:
    def noise_after(seed: int, steps: int) -> torch.Tensor:
        w = torch.zeros(200_000, dtype=torch.float64, requires_grad=True)
        opt = from_chain([w], T.chain(T.add_noise(eta=0.5, gamma=0.55, seed=seed),
                                      T.scale_by_lr()), lr=1.0)
        for _ in range(steps):
            w.grad = torch.zeros_like(w)
            before = w.detach().clone()
            opt.step()
        return -(w.detach() - before)  # the last step's noise

    assert torch.equal(noise_after(7, 3), noise_after(7, 3))
    assert not torch.equal(noise_after(7, 3), noise_after(8, 3))
    for steps in (1, 10):
        var = float(noise_after(1, steps).var())
        assert var == pytest.approx(0.5 / (1 + (steps - 1)) ** 0.55, rel=0.02)


# -- wrappers ----------------------------------------------------------------------------------


def test_lookahead_by_hand() -> None:
    """k = 2, α = 0.5 on f = ½w², SGD lr 0.1 inside: slow weights follow every 2 steps."""
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = oo.lookahead(oo.sgd([w], lr=0.1), k=2, alpha=0.5)
    fast, slow, want = 1.0, 1.0, []
    for t in range(1, 7):
        w.grad = w.detach().clone()
        opt.step()
        fast -= 0.1 * fast
        if t % 2 == 0:
            slow += 0.5 * (fast - slow)
            fast = slow
        want.append(fast)
        assert w.item() == pytest.approx(want[-1], rel=1e-14)


def test_ema_averages_weights_and_swaps_them_for_evaluation() -> None:
    w = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    opt = oo.ema(oo.sgd([w], lr=1.0), decay=0.5)
    avg = None
    for _ in range(4):
        w.grad = torch.tensor([-1.0], dtype=torch.float64)  # w goes 1, 2, 3, 4
        opt.step()
        avg = w.item() if avg is None else 0.5 * avg + 0.5 * w.item()
    with opt.averaged():
        assert w.item() == pytest.approx(avg)  # 1 → 1.5 → 2.25 → 3.125
    assert w.item() == 4.0 and avg == pytest.approx(3.125)


def test_wrappers_share_param_groups_with_the_inner_optimizer() -> None:
    w = torch.ones(1, requires_grad=True)
    inner = oo.sgd([w], lr=0.1)
    outer = oo.lookahead(inner)
    sched = torch.optim.lr_scheduler.ExponentialLR(outer, gamma=0.5)
    w.grad = torch.ones(1)
    outer.step()
    sched.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(0.05)


def test_lr_decay_piece_is_adagrad_inverse_time() -> None:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = from_chain([w], T.chain(T.lr_decay(0.5), T.scale_by_lr()), lr=1.0)
    total = 0.0
    for t in range(1, 5):
        w.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        total += 1.0 / (1 + (t - 1) * 0.5)
    assert w.item() == pytest.approx(-total)
    assert math.isclose(total, 1 + 1 / 1.5 + 1 / 2 + 1 / 2.5)
