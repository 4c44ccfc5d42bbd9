"""Fused steps (optimlab.optim.fused) against the eager chain they compile.

Parity: over 100 steps, with two parameter groups of different hyperparameters, a schedule
driving ``lr`` and the state handed between a fused and an eager optimizer half way, the fused
parameters equal the eager ones to 1e-6 of their largest magnitude in float32 and 1e-12 in
float64. Gradients depend on the weights (g = h⊙w + noise, h > 0), so that weight decay and the
update's effect feed back, without the chaos of a network that would amplify rounding.

Compiling costs seconds per kernel on a small CPU: the default run compiles two kernels
(RMSprop in float32; a hand-built chain with clipping and Nadam's host-side state in float64)
and runs torch's fused Adam; the matrix of every optimizer and every switch is marked slow (it
compiles with fewer tensors per call to go faster; the slot count does not change the
arithmetic).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import fused as F
from optimlab.optim import transforms as T
from optimlab.schedules import ScheduleLR, cosine, warmup

STEPS = 100
SHAPES = [(16, 24), (24,), (3, 4, 5), (10, 16), (10,), (7,), (2, 3), (5, 5), (9,), (6, 2)]
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
Make = Callable[[list[dict[str, Any]], bool | None], torch.optim.Optimizer]


def _groups(params: list[torch.Tensor], second: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"params": params[:4]}, {"params": params[4:], **second}]


def _train(make: Make, dtype: torch.dtype, fused: bool | None, *, second: dict[str, Any],
           hand_over_at: int | None = None, device: str = "cpu") -> torch.Tensor:
    """100 steps; at ``hand_over_at`` the state moves (state_dict) into an optimizer of the
    other kind, fused ↔ eager, and training goes on there."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_()
              for s in SHAPES]
    curvature = [(torch.rand(s, generator=gen, dtype=dtype) + 0.1).to(device) for s in SHAPES]
    opt = make(_groups(params, second), fused)
    lr_schedule = warmup(cosine(1.0, STEPS - 10), 10, start_factor=0.1)
    sched = ScheduleLR(opt, lr_schedule, mode="relative")
    for t in range(STEPS):
        if t == hand_over_at:
            saved, saved_sched = opt.state_dict(), sched.state_dict()
            opt = make(_groups(params, second), not fused)
            opt.load_state_dict(saved)
            sched = ScheduleLR(opt, lr_schedule, mode="relative")
            sched.load_state_dict(saved_sched)
        for p, h in zip(params, curvature, strict=True):
            p.grad = h * p.detach() + torch.randn(p.shape, generator=gen, dtype=dtype).to(device)
        opt.step()
        sched.step()
    return torch.cat([p.detach().flatten() for p in params]).cpu()


def _assert_parity(make: Make, dtype: torch.dtype, second: dict[str, Any],
                   device: str = "cpu") -> None:
    eager = _train(make, dtype, False, second=second, device=device)
    fused = _train(make, dtype, True, second=second, device=device)
    fused_then_eager = _train(make, dtype, True, second=second, hand_over_at=STEPS // 2,
                              device=device)
    eager_then_fused = _train(make, dtype, False, second=second, hand_over_at=STEPS // 2,
                              device=device)
    tol = TOL[dtype]
    for got in (fused, fused_then_eager, eager_then_fused):
        torch.testing.assert_close(got, eager, rtol=tol, atol=tol * float(eager.abs().max()))
    assert not torch.equal(eager, _train(make, dtype, False, second={})), \
        "the second group's hyperparameters changed nothing: the test would prove less"


def _named(name: str, **kwargs: Any) -> Make:
    return lambda groups, fused: oo.create(name, groups, fused=fused, **kwargs)


@pytest.fixture
def compiled_kernels() -> Callable[[], int]:
    """How many kernels this process has compiled so far."""
    return lambda: sum(k is not None for k in F._KERNELS.values())


# -- the default run: two compiled kernels and one of torch's ------------------------------------
def test_fused_rmsprop_equals_eager_in_float32_and_compiles_once(compiled_kernels) -> None:
    from torch._dynamo.utils import counters

    make = _named("rmsprop", lr=0.005, centered=True, momentum=0.9, weight_decay=1e-3,
                  decay_mask="all")
    _train(make, torch.float32, True, second={})  # compiles (or finds) the kernel
    before, graphs = compiled_kernels(), counters["stats"]["unique_graphs"]
    _assert_parity(make, torch.float32, {"lr": 0.002, "alpha": 0.9})
    # lr driven by a schedule, another alpha in the second group, 10 tensors in two calls per
    # group: no new kernel and no recompiled graph
    assert compiled_kernels() == before
    assert counters["stats"]["unique_graphs"] == graphs


def test_fused_hand_built_chain_with_clipping_and_host_state_equals_eager_in_float64() -> None:
    """clip_by_global_norm reduces over the group first (eagerly) and the rest is compiled;
    Nadam's μ product lives on the host and advances once per step on either path."""
    def make(groups: list[dict[str, Any]], fused: bool | None) -> torch.optim.Optimizer:
        return oo.from_chain(groups, lambda g: T.chain(
            T.skip_nonfinite(), T.clip_by_global_norm(g["max_norm"]), T.nadam_momentum(0.9),
            T.scale_by_rms(0.99, 1e-6, bias_correction=True),
            T.decay_weights(g["weight_decay"], "all"), T.scale_by_lr()),
            lr=0.05, max_norm=2.0, weight_decay=0.01, fused=fused)

    _assert_parity(make, torch.float64, {"max_norm": 0.5, "weight_decay": 0.1})
    # the kernel that ran starts from the clipped gradient (the reduction ran before it)
    assert any(key[0][0] and key[3] == torch.float64 and kernel is not None
               for key, kernel in F._KERNELS.items())


def test_torch_algorithms_use_torch_fused_kernels(compiled_kernels) -> None:
    """Adam with coupled decay on some tensors only (decay_mask="auto"): torch's kernel, called
    per decay rate, equals the eager chain; nothing is compiled for it."""
    before = compiled_kernels()
    make = _named("adam", lr=0.01, weight_decay=1e-2)
    assert F.kernel_name(make([{"params": [torch.ones(2, requires_grad=True)]}], True)
                         .chain()) == "torch adam"
    _assert_parity(make, torch.float32, {"lr": 0.003, "betas": (0.8, 0.99)})
    assert compiled_kernels() == before


# -- no temporaries, one pass ---------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", [
    ("adam", {}),  # torch's kernel
    ("rmsprop", {"centered": True, "momentum": 0.9, "weight_decay": 1e-3, "decay_mask": "all"}),
], ids=["torch_kernel", "compiled"])
def test_fused_step_allocates_no_temporaries(name: str, kwargs: dict[str, Any]) -> None:
    from torch.profiler import ProfilerActivity, profile

    params = [torch.randn(1 << 18).requires_grad_() for _ in range(4)]
    for p in params:
        p.grad = torch.randn_like(p)

    def allocated(opt: torch.optim.Optimizer) -> int:
        opt.step()  # state exists, kernel compiled
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            opt.step()
        return sum(max(e.cpu_memory_usage, 0) for e in prof.events())

    eager = allocated(oo.create(name, params, fused=False, **kwargs))
    fused = allocated(oo.create(name, params, fused=True, **kwargs))
    moved = 4 * (1 << 18) * 4  # bytes of one float32 copy of the parameters
    assert eager > moved  # the eager chain writes temporaries as large as the parameters
    assert fused < 4096  # the fused step: a row of scalars, nothing the size of a tensor


# -- when the fused path is taken ---------------------------------------------------------------
def test_auto_rule_compiles_only_large_tensors_and_takes_torch_kernels_at_any_size(
        monkeypatch) -> None:
    """fused=None compiles for tensors of ≥ MIN_NUMEL elements when they hold ≥ MIN_TOTAL
    together; the rest of the group runs eagerly in the same step, with the same result."""
    calls: list[int] = []

    def counting(kernel: Callable[..., None]) -> Callable[..., None]:
        def wrapped(s: torch.Tensor, *tensors: torch.Tensor) -> None:
            calls.append(sum(t.numel() for t in tensors[::5] if t.numel() > 2))
            kernel(s, *tensors)
        return wrapped

    real = F._compile

    def compile_counting(*args: Any, **kwargs: Any) -> Any:
        kernel = real(*args, **kwargs)
        F._KERNELS[args[0]] = counting(kernel)
        return F._KERNELS[args[0]]

    monkeypatch.setattr(F, "_KERNELS", {k: v and counting(v) for k, v in F._KERNELS.items()})
    monkeypatch.setattr(F, "_compile", compile_counting)
    monkeypatch.setattr(F, "MIN_NUMEL", 100)
    monkeypatch.setattr(F, "MIN_TOTAL", 500)
    make = _named("rmsprop", lr=0.005, centered=True, momentum=0.9, weight_decay=1e-3,
                  decay_mask="all")  # the kernel of the first test: p, g and 3 states
    eager = _train(make, torch.float32, False, second={})
    auto = _train(make, torch.float32, None, second={})
    torch.testing.assert_close(auto, eager, rtol=1e-6, atol=1e-6 * float(eager.abs().max()))
    big = sum(n for s in SHAPES[:4] if (n := torch.Size(s).numel()) >= 100)
    assert calls and set(calls) == {big}  # group 1: its big tensors; group 2: none big enough
    # torch's kernels cost no compile and make one call where the eager chain makes several:
    # every tensor takes them, whatever its size — except plain SGD's (one _foreach_add_
    # eagerly), where a big tensor takes them whatever the group's total
    taken: list[int] = []
    real_torch_step = F.torch_step
    monkeypatch.setattr(F, "torch_step", lambda kernel, g, ctx, grads, idx: (
        taken.append(len(idx)), real_torch_step(kernel, g, ctx, grads, idx)))
    monkeypatch.setattr(F, "MIN_TOTAL", 10**9)
    for name, kwargs, expected in (("adam", {}, {4, 6}), ("momentum", {"form": "heavy_ball"},
                                                        {4, 6}), ("sgd", {}, {2})):
        taken.clear()
        make = _named(name, lr=0.01, **kwargs)
        eager = _train(make, torch.float32, False, second={})
        auto = _train(make, torch.float32, None, second={})
        torch.testing.assert_close(auto, eager, rtol=1e-6, atol=1e-6 * float(eager.abs().max()))
        # adam, momentum: both groups whole, every step; sgd: group 1's two tensors of ≥ 100
        assert set(taken) == expected, name


def test_small_models_never_compile_nor_import_dynamo() -> None:
    """Building an optimizer and stepping a small model stays on the eager path, so importing
    optimlab or training the lab's models never loads torch._dynamo."""
    code = ("import sys, torch, optimlab.optim as oo\n"
            "m = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),"
            " torch.nn.Linear(128, 10))\n"
            "opt = oo.adam(m.parameters())\n"
            "assert 'torch._dynamo' not in sys.modules, 'building'\n"
            "m(torch.randn(8, 64)).sum().backward(); opt.step()\n"
            "assert 'torch._dynamo' not in sys.modules, 'stepping'\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_environment_variable_and_fused_false_give_the_eager_chain(monkeypatch) -> None:
    monkeypatch.setattr(F, "_KERNELS", {})
    make = _named("lion", lr=0.01)
    eager = _train(make, torch.float64, False, second={})
    monkeypatch.setenv("OPTIMLAB_FUSED", "0")
    assert torch.equal(_train(make, torch.float64, True, second={}), eager)  # bit for bit
    assert F._KERNELS == {}  # nothing compiled


def test_no_compiler_falls_back_with_one_warning(monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

    monkeypatch.setattr(F, "_KERNELS", {})
    monkeypatch.setattr(F, "_WARNED", set())
    monkeypatch.setattr(torch, "compile", broken)
    make = _named("rmsprop", lr=0.01, centered=True)
    eager = _train(make, torch.float64, False, second={})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused = _train(make, torch.float64, True, second={})
    assert torch.equal(fused, eager)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "could not compile" in messages[0] and "InvalidCxxCompiler" in messages[0]
    assert "fused=False" in messages[0]


def test_unsupported_dtype_and_unfusable_chain_fall_back_with_one_warning(monkeypatch) -> None:
    monkeypatch.setattr(F, "_WARNED", set())
    p = torch.randn(8, dtype=torch.bfloat16, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    noisy = [torch.randn(8, requires_grad=True) for _ in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for w, fused in ((p, True), (q, False)):
            opt = oo.adam([w], lr=0.1, fused=fused)
            for _ in range(3):
                w.grad = torch.ones_like(w)
                opt.step()
        opt = oo.from_chain(noisy, T.chain(T.add_noise(0.1), T.scale_by_lr()), lr=0.1,
                            fused=True)
        for _ in range(3):
            for w in noisy:
                w.grad = torch.ones_like(w)
            opt.step()
    assert torch.equal(p, q)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 2, messages
    assert "torch.bfloat16" in messages[0] and "AddNoise" in messages[1]


def test_fused_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="fused='yes'"):
        oo.adam([torch.ones(2, requires_grad=True)], fused="yes")


# -- the matrix: every optimizer, both forms of every switch, float32 and float64 (slow) ---------
MATRIX: dict[str, tuple[Make, dict[str, Any]]] = {
    "sgd": (_named("sgd", lr=0.05), {"lr": 0.02}),
    "sgd_momentum_coupled": (_named("sgd", lr=0.02, momentum=0.9, weight_decay=0.01,
                                    decay_mask="all"), {"momentum": 0.5}),
    "sgd_nesterov_decoupled": (_named("sgd", lr=0.02, momentum=0.9, nesterov=True,
                                      weight_decay=0.01, decoupled_weight_decay=True),
                               {"weight_decay": 0.1}),
    "sgd_dampening": (_named("sgd", lr=0.02, momentum=0.9, dampening=0.5), {"dampening": 0.1}),
    "momentum_ewa": (_named("momentum", lr=0.05), {"momentum": 0.5}),
    "momentum_ewa_bias_nesterov_decoupled": (
        _named("momentum", lr=0.05, bias_correction=True, nesterov=True, weight_decay=0.01,
               decoupled_weight_decay=True), {"lr": 0.01}),
    "momentum_heavy_ball": (_named("momentum", lr=0.01, form="heavy_ball"), {"momentum": 0.5}),
    "momentum_lr_inside": (_named("momentum", lr=0.01, form="lr_inside", weight_decay=0.01),
                           {"momentum": 0.5}),
    "momentum_lr_inside_nesterov_decoupled": (
        _named("momentum", lr=0.01, form="lr_inside", nesterov=True, weight_decay=0.01,
               decoupled_weight_decay=True), {"lr": 0.003}),
    "nesterov_ewa": (_named("nesterov", lr=0.05), {"momentum": 0.5}),
    "nesterov_heavy_ball": (_named("nesterov", lr=0.01, form="heavy_ball"), {"lr": 0.003}),
    "adagrad": (_named("adagrad", lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
                {"eps": 1e-6}),
    "adagrad_eps_inside_decoupled": (_named("adagrad", lr=0.05, eps_inside=True,
                                            weight_decay=0.01, decoupled_weight_decay=True),
                                     {"lr_decay": 0.1}),
    "rmsprop": (_named("rmsprop", lr=0.01, weight_decay=0.01), {"alpha": 0.9}),
    "rmsprop_centered_momentum": (_named("rmsprop", lr=0.005, centered=True, momentum=0.9),
                                  {"momentum": 0.5}),
    # (centered together with bias_correction is left out: at t = 1 the corrected variance is
    # exactly 0 in exact arithmetic, so its root is the root of rounding noise, ~1e-9 in float64
    # and ~1e-4 in float32, and any two correct orders of operations disagree by that much)
    "rmsprop_eps_inside_bias_decoupled": (
        _named("rmsprop", lr=0.005, eps_inside=True, bias_correction=True, weight_decay=0.01,
               decoupled_weight_decay=True), {"lr": 0.001}),
    "adam_no_bias_correction_eps_inside": (
        _named("adam", lr=0.01, bias_correction=False, eps_inside=True), {"lr": 0.003}),
    "adam_hat_decoupled": (_named("adam", lr=0.01, eps_form="hat", weight_decay=0.01,
                                  decoupled_weight_decay=True), {"betas": (0.8, 0.95)}),
    "amsgrad_raw": (_named("amsgrad", lr=0.01), {"betas": (0.5, 0.9)}),
    "amsgrad_corrected": (_named("amsgrad", lr=0.01, amsgrad_max="corrected"), {"lr": 0.02}),
    "amsgrad_hat": (_named("amsgrad", lr=0.01, eps_form="hat"), {"eps": 1e-3}),
    "adamw": (_named("adamw", lr=0.01, weight_decay=0.1), {"weight_decay": 0.5}),
    "nadam": (_named("nadam", lr=0.01), {"momentum_decay": 0.01}),
    "nadam_no_schedule_decoupled": (
        _named("nadam", lr=0.01, momentum_schedule=False, weight_decay=0.01,
               decoupled_weight_decay=True, eps_inside=True), {"betas": (0.85, 0.99)}),
    "adamax": (_named("adamax", lr=0.01, weight_decay=0.01), {"betas": (0.8, 0.9)}),
    "adamax_outside_decoupled": (_named("adamax", lr=0.01, eps_form="outside", weight_decay=0.01,
                                        decoupled_weight_decay=True), {"eps": 1e-3}),
    "lion": (_named("lion", lr=0.003, weight_decay=0.1), {"betas": (0.95, 0.98)}),
    "chain_clip_value_l1_lr_decay": (
        lambda groups, fused: oo.from_chain(groups, lambda g: T.chain(
            T.clip_by_value(g["clip"]), T.trace(0.9), T.scale(0.5), T.lr_decay(0.01),
            T.scale_by_lr(), T.l1_proximal(0.01)), lr=0.05, clip=0.5, fused=fused),
        {"clip": 2.0}),
    "chain_two_reductions_and_scales": (
        lambda groups, fused: oo.from_chain(groups, lambda g: T.chain(
            T.scale(2.0), T.clip_by_global_norm(g["max_norm"]), T.clip_by_global_norm(3.0),
            T.trace(0.9), T.scale_by_lr()), lr=0.01, max_norm=1.0, fused=fused),
        {"max_norm": 0.2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(MATRIX))
def test_fused_equals_eager_for_every_form(case: str, dtype: torch.dtype, monkeypatch) -> None:
    monkeypatch.setattr(F, "SLOTS", 3)  # faster compiles; still several calls per group
    make, second = MATRIX[case]
    _assert_parity(make, dtype, second)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", list(MATRIX))
def test_fused_equals_eager_on_cuda(case: str, monkeypatch) -> None:
    """The same matrix on a GPU in float32: torch's CUDA kernels where the chain is torch's
    algorithm (Adam, AdamW, SGD), else the compiled pass (Triton)."""
    monkeypatch.setattr(F, "SLOTS", 3)
    make, second = MATRIX[case]
    _assert_parity(make, torch.float32, second, device="cuda")


def test_every_optimizer_and_switch_is_in_the_matrix() -> None:
    """Each named optimizer appears, and each switch in both of its forms (default elsewhere)."""
    named = {case.split("_")[0] for case in MATRIX}
    assert set(oo.available()) <= named | {"nesterov"}
    switches = ["amsgrad", "bias", "eps_inside", "hat", "decoupled", "centered", "nesterov",
                "lr_inside", "heavy_ball", "outside", "corrected", "schedule", "dampening"]
    for switch in switches:
        assert any(switch in case for case in MATRIX), switch
