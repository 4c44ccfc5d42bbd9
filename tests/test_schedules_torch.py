"""optimlab.schedules against torch.optim.lr_scheduler, stepping real optimizers, and the
``ScheduleLR`` adapter: parity, per-group modes, and exact resumption from a state_dict."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from torch.optim import lr_scheduler as L

import optimlab.optim as oo
from optimlab import schedules as S

STEPS = 240
LR = 0.1


def _torch_lrs(make: Callable[[torch.optim.Optimizer], L.LRScheduler], steps: int = STEPS,
               lr: float = LR) -> list[float]:
    """The lr a real SGD step uses at steps 0..steps-1 under a torch scheduler."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    return out


def _ours(schedule: S.Schedule, steps: int = STEPS) -> list[float]:
    return [schedule(t) for t in range(steps)]


def _close(ours: list[float], theirs: list[float], scale: float = LR) -> None:
    # torch's chainable schedulers multiply the previous lr each step, so they accumulate
    # rounding: relative 1e-12 plus a tiny absolute floor
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15 * scale)


@pytest.mark.parametrize(("step_size", "gamma"), [(30, 0.1), (7, 0.5), (1, 0.97)])
def test_step_lr(step_size: int, gamma: float) -> None:
    theirs = _torch_lrs(lambda o: L.StepLR(o, step_size=step_size, gamma=gamma))
    _close(_ours(S.step_decay(LR, every=step_size, factor=gamma)), theirs)


def test_multi_step_lr() -> None:
    theirs = _torch_lrs(lambda o: L.MultiStepLR(o, milestones=[30, 80, 80, 150], gamma=0.3))
    _close(_ours(S.multi_step(LR, [150, 30, 80, 80], gamma=0.3)), theirs)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 1.002])
def test_exponential_lr(gamma: float) -> None:
    theirs = _torch_lrs(lambda o: L.ExponentialLR(o, gamma=gamma))
    _close(_ours(S.exponential(LR, gamma)), theirs)


@pytest.mark.parametrize(("t_max", "eta_min"), [(STEPS - 1, 0.0), (200, 1e-4), (37, 0.01)])
def test_cosine_annealing_lr(t_max: int, eta_min: float) -> None:
    # torch's cosine is periodic past T_max; ours holds min_lr, so compare on [0, T_max]
    n = min(STEPS, t_max + 1)
    theirs = _torch_lrs(lambda o: L.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min), n)
    _close(_ours(S.cosine(LR, t_max, min_lr=eta_min), n), theirs)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_polynomial_lr(power: float) -> None:
    n = 150
    theirs = _torch_lrs(lambda o: L.PolynomialLR(o, total_iters=n - 20, power=power), n)
    _close(_ours(S.polynomial(LR, n - 20, power=power), n), theirs)


@pytest.mark.parametrize(("t_0", "t_mult", "eta_min"),
                         [(10, 1, 0.0), (7, 2, 1e-3), (3, 3, 0.0), (50, 1, 0.02), (1, 2, 0.0)])
def test_cosine_annealing_warm_restarts(t_0: int, t_mult: int, eta_min: float) -> None:
    theirs = _torch_lrs(lambda o: L.CosineAnnealingWarmRestarts(o, T_0=t_0, T_mult=t_mult,
                                                                 eta_min=eta_min))
    _close(_ours(S.cosine_restarts(LR, t_0, period_mult=t_mult, min_lr=eta_min)), theirs)


@pytest.mark.parametrize(("mode", "gamma"),
                         [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.995)])
@pytest.mark.parametrize(("up", "down"), [(20, None), (13, 30), (25, 0)])
def test_cyclic_lr(mode: str, gamma: float, up: int, down: int | None) -> None:
    theirs = _torch_lrs(lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.3, step_size_up=up,
                                             step_size_down=down, mode=mode, gamma=gamma,
                                             cycle_momentum=False))
    ours = _ours(S.cyclic(0.01, 0.3, up, step_size_down=down, mode=mode, gamma=gamma))
    _close(ours, theirs, scale=0.3)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize(("total", "pct"), [(STEPS, 0.3), (217, 0.25)])
def test_one_cycle_lr(anneal: str, three_phase: bool, total: int, pct: float) -> None:
    def make(o: torch.optim.Optimizer) -> L.LRScheduler:
        return L.OneCycleLR(o, max_lr=0.5, total_steps=total, pct_start=pct,
                            anneal_strategy=anneal, div_factor=20.0, final_div_factor=500.0,
                            three_phase=three_phase, cycle_momentum=False)

    theirs = _torch_lrs(make, total)
    ours = _ours(S.one_cycle(0.5, total, pct_start=pct, anneal=anneal, div_factor=20.0,
                             final_div_factor=500.0, three_phase=three_phase), total)
    _close(ours, theirs, scale=0.5)


@pytest.mark.parametrize("start_factor", [0.01, 0.25])
def test_warmup_equals_sequential_linear_then_cosine(start_factor: float) -> None:
    def make(o: torch.optim.Optimizer) -> L.LRScheduler:
        ramp = L.LinearLR(o, start_factor=start_factor, total_iters=30)
        cos = L.CosineAnnealingLR(o, T_max=STEPS - 31, eta_min=1e-4)
        return L.SequentialLR(o, [ramp, cos], milestones=[30])

    theirs = _torch_lrs(make)
    ours = _ours(S.warmup(S.cosine(LR, STEPS - 31, min_lr=1e-4), 30, start_factor=start_factor))
    _close(ours, theirs)


# -- the adapter ---------------------------------------------------------------------------------
def _sched_lrs(opt: torch.optim.Optimizer, sched: L.LRScheduler, steps: int) -> list[list[float]]:
    out = []
    for _ in range(steps):
        out.append([float(g["lr"]) for g in opt.param_groups])  # a tensor lr is updated in place
        for g in opt.param_groups:
            for p in g["params"]:
                p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    return out


def test_schedule_lr_matches_torch_scheduler() -> None:
    theirs = _torch_lrs(lambda o: L.CosineAnnealingWarmRestarts(o, T_0=9, T_mult=2))
    ours = _torch_lrs(lambda o: S.ScheduleLR(o, S.cosine_restarts(LR, 9, 2)))
    assert ours == _ours(S.cosine_restarts(LR, 9, 2))
    _close(ours, theirs)


def test_schedule_lr_modes_with_two_groups() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    sched_fn = S.warmup(S.cosine(1.0, 50), 10)
    opt = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}], lr=0.5)
    rel = _sched_lrs(opt, S.ScheduleLR(opt, sched_fn, mode="relative"), 70)
    assert rel == [[0.1 * sched_fn(t), 0.02 * sched_fn(t)] for t in range(70)]
    # relative mode equals torch's LambdaLR with the same multiplier
    opt2 = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}], lr=0.5)
    assert _sched_lrs(opt2, L.LambdaLR(opt2, sched_fn), 70) == rel
    opt3 = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}], lr=0.5)
    absolute = _sched_lrs(opt3, S.ScheduleLR(opt3, S.cosine(0.3, 50)), 60)
    assert absolute == [[S.cosine(0.3, 50)(t)] * 2 for t in range(60)]
    with pytest.raises(ValueError, match="mode"):
        S.ScheduleLR(opt3, sched_fn, mode="multiply")
    with pytest.raises(ValueError, match="schedule"):
        S.ScheduleLR(opt3, 0.1)


def test_schedule_lr_with_tensor_lr_and_optimlab_optimizer() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p], lr=torch.tensor(0.01))
    schedule = S.one_cycle(0.01, 40)
    got = _sched_lrs(opt, S.ScheduleLR(opt, schedule), 40)
    assert [float(v[0]) for v in got] == pytest.approx(_ours(schedule, 40), rel=1e-6)
    q = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = oo.sgd([q], lr=0.1)
    schedule = S.step_decay(0.1, 5).per_epoch(3)
    assert _sched_lrs(opt, S.ScheduleLR(opt, schedule), 40) == [[schedule(t)] for t in range(40)]


def _setup(make_opt: Callable, schedule: S.Schedule, mode: str):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1).double()
    opt = make_opt(model.parameters())
    return model, opt, S.ScheduleLR(opt, schedule, mode=mode)


def _train(model, opt, sched, steps: int, start: int) -> list[float]:
    gen = torch.Generator().manual_seed(123)
    data = [(torch.randn(8, 5, generator=gen, dtype=torch.float64),
             torch.randn(8, 1, generator=gen, dtype=torch.float64)) for _ in range(start + steps)]
    lrs = []
    for x, y in data[start:]:
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(("make_opt", "mode", "lr"), [
    (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), "absolute", 0.05),
    (lambda ps: torch.optim.AdamW(ps, lr=1.0), "relative", 1.0),
    (lambda ps: oo.momentum(ps, lr=0.05), "absolute", 0.05),
])
def test_resume_from_state_dict_is_exact(make_opt: Callable, mode: str, lr: float) -> None:
    total, n = 90, 37
    schedule = S.warmup(S.cosine(lr, total - 10, min_lr=lr / 100), 10)
    model, opt, sched = _setup(make_opt, schedule, mode)
    full = _train(model, opt, sched, total, 0)
    full_params = [p.detach().clone() for p in model.parameters()]

    model, opt, sched = _setup(make_opt, schedule, mode)
    first = _train(model, opt, sched, n, 0)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # the state is plain values

    model, opt, sched = _setup(make_opt, schedule, mode)  # fresh objects, as after a restart
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    assert sched.last_epoch == n
    assert opt.param_groups[0]["lr"] == full[n]
    rest = _train(model, opt, sched, total - n, n)
    assert first + rest == full  # exactly, not approximately
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), full_params, strict=True))
    scale = 1.0 if mode == "absolute" else lr
    assert schedule(n) * scale == full[n]


def test_load_state_dict_sets_the_rate_even_without_optimizer_state() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    schedule = S.exponential(0.1, 0.9)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = S.ScheduleLR(opt, schedule)
    _sched_lrs(opt, sched, 12)
    state = sched.state_dict()
    assert set(state) >= {"last_epoch", "base_lrs", "schedule"}
    assert state["schedule"] == repr(schedule)
    fresh_opt = torch.optim.SGD([p], lr=0.1)
    fresh = S.ScheduleLR(fresh_opt, schedule)
    fresh.load_state_dict(state)
    assert fresh_opt.param_groups[0]["lr"] == schedule(12) == fresh.get_last_lr()[0]
    fresh.step()
    assert fresh_opt.param_groups[0]["lr"] == schedule(13)
    with pytest.raises(ValueError, match="mode"):
        S.ScheduleLR(torch.optim.SGD([p], lr=0.1), schedule, mode="relative").load_state_dict(
            state)
