"""The lazy ``Update`` algebra (optim/update.py) against the formula it stands for,

    u = coef·p + scale·num/den + extra_scale·extra,

written out eagerly here in float64, tensor by tensor. Also: what it may and may not write in
place (gradients and optimizer state are never changed; its own scratch memory may be), the
grouping of per-tensor scalars into foreach runs, and the accumulation into optimizer state.
"""

from __future__ import annotations

import pytest
import torch

from optimlab.optim.update import Update, pick, runs

SHAPES = [(3,), (2, 4), (5,)]


def tensors(seed: int, positive: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    return [t.abs() + 0.5 for t in out] if positive else out


def copies(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.clone() for t in ts]


def assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def assert_equal(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


# -- runs and pick -------------------------------------------------------------------------------
def test_runs_group_equal_scalars_and_none_means_all() -> None:
    assert runs([0.5, 0.5, 0.5]) == [(0.5, None)]
    assert runs([1.0, 2.0, 1.0, 3.0]) == [(1.0, [0, 2]), (2.0, [1]), (3.0, [3])]
    ts = tensors(0)
    assert pick(ts, None) is ts
    assert pick(ts, [2, 0]) == [ts[2], ts[0]]


# -- value(): the formula, written out once --------------------------------------------------------
def test_a_fresh_update_is_its_numerator_untouched() -> None:
    grads = tensors(1)
    before = copies(grads)
    u = Update(grads)
    assert u.is_plain and not u.has_param_term and len(u) == 3
    out = u.value(tensors(2))
    assert all(a is b for a, b in zip(out, grads, strict=True))  # no pass over memory at all
    assert_equal(grads, before)


def test_scalars_fold_and_are_written_in_one_value_without_touching_gradients() -> None:
    grads, params = tensors(1), tensors(2)
    before = copies(grads)
    u = Update(grads).mul(0.5).mul([2.0, 3.0, -1.0])
    assert u.scale == [1.0, 1.5, -0.5] and u.is_plain
    out = u.value(params)
    assert_close(out, [g * s for g, s in zip(before, (1.0, 1.5, -0.5), strict=True)])
    assert_equal(grads, before)              # not owned: a new tensor was written instead
    assert u.owned == [True] * 3 and u.scale == [1.0] * 3


def test_param_term_division_and_extra_term_give_the_formula() -> None:
    num, den, extra, params = tensors(1), tensors(3, positive=True), tensors(4), tensors(2)
    saved = [copies(t) for t in (num, den, extra, params)]
    u = Update(num).mul([2.0, 2.0, 0.5])
    u.divide(den, params)
    u.add_param_term([0.1, 0.0, -0.2]).add_param_term([0.1, 0.0, 0.0])
    u.add_term(extra, [3.0, -1.0, 0.25], params)
    assert not u.is_plain and u.has_param_term
    u.mul(-0.5)
    n0, d0, e0, p0 = saved
    want = [-0.5 * (c * p + s * n / d + es * e) for p, n, d, e, s, c, es in zip(
        p0, n0, d0, e0, (2.0, 2.0, 0.5), (0.2, 0.0, -0.2), (3.0, -1.0, 0.25), strict=True)]
    assert_close(u.value(params), want)
    for t, before in zip((num, den, extra, params), saved, strict=True):
        assert_equal(t, before)              # nothing the update does not own was written
    assert u.is_plain and u.extra is None and u.coef is None


def test_a_second_division_writes_out_the_first() -> None:
    num, d1, d2, params = tensors(1), tensors(3, True), tensors(5, True), tensors(2)
    u = Update(num).divide(d1, params).divide(d2, params)
    assert u.den is d2
    assert_close(u.value(params), [n / a / b for n, a, b in zip(num, d1, d2, strict=True)])


def test_a_second_extra_term_writes_out_the_first() -> None:
    num, e1, e2, params = tensors(1), tensors(3), tensors(4), tensors(2)
    u = Update(num).add_term(e1, [1.0] * 3, params).add_term(e2, [2.0] * 3, params)
    assert_close(u.value(params), [n + a + 2 * b for n, a, b in zip(num, e1, e2, strict=True)])


def test_owned_scratch_memory_is_written_in_place() -> None:
    scratch, params = tensors(1), tensors(2)
    before = copies(scratch)
    u = Update(scratch, owned=True).mul(3.0)
    out = u.value(params)
    assert all(a is b for a, b in zip(out, scratch, strict=True))
    assert_close(scratch, [3.0 * t for t in before])


def test_owned_value_copies_only_what_is_not_owned() -> None:
    grads, params = tensors(1), tensors(2)
    u = Update(grads)
    out = u.owned_value(params)
    assert all(a is not b for a, b in zip(out, grads, strict=True)) and u.owned == [True] * 3
    assert_equal(out, grads)
    out[0].zero_()
    assert not torch.equal(grads[0], out[0])


def test_gradient_is_fixed_by_the_first_to_ask_and_then_shared() -> None:
    grads, params = tensors(1), tensors(2)
    u = Update(grads, owned=True).mul(2.0)
    g = u.gradient(params)
    assert_close(g, [2.0 * t for t in tensors(1)])
    assert u.owned == [False] * 3             # shared with ``grad``: no more in-place writes
    u.mul(10.0).value(params)
    assert_close(u.gradient(params), [2.0 * t for t in tensors(1)])


def test_replace_starts_over_but_keeps_the_gradient() -> None:
    grads, buf, params = tensors(1), tensors(3), tensors(2)
    u = Update(grads).mul(5.0)
    g = u.gradient(params)
    u.add_param_term([1.0] * 3).replace(buf)
    assert u.is_plain and all(a is b for a, b in zip(u.num, buf, strict=True))
    assert u.owned == [False] * 3
    assert u.gradient(params) is g


# -- accumulate_into: buf ← decay·buf + weight·u --------------------------------------------------
@pytest.mark.parametrize("case", ["ewa_lerp", "per_tensor_weights", "with_division",
                                  "with_param_term", "trace"])
def test_accumulate_into_is_decay_times_buffer_plus_weight_times_update(case: str) -> None:
    num, den, params, buf = tensors(1), tensors(3, True), tensors(2), tensors(4)
    buf0, num0 = copies(buf), copies(num)
    decay, weight = 0.9, [0.1, 0.1, 0.1]
    u = Update(num).mul(2.0)
    value = [2.0 * n for n in num0]
    if case == "per_tensor_weights":
        weight = [0.1, 0.3, 0.3]
    elif case == "with_division":
        u.divide(den, params)
        value = [v / d for v, d in zip(value, den, strict=True)]
    elif case == "with_param_term":
        u.add_param_term([0.5, 0.0, 0.5])
        value = [v + c * p for v, c, p in zip(value, (0.5, 0.0, 0.5), params, strict=True)]
    elif case == "trace":
        decay, weight = 1.0, [1.0, 1.0, 1.0]
    u.accumulate_into(buf, decay, weight, params)
    assert_close(buf, [decay * b + w * v for b, w, v in zip(buf0, weight, value, strict=True)])
    if case != "with_param_term":
        assert_equal(num, num0)               # the gradient is read, never written


# -- apply: p ← p + u ------------------------------------------------------------------------------
@pytest.mark.parametrize("with_den", [False, True])
def test_apply_adds_the_update_to_the_parameters(with_den: bool) -> None:
    num, den, extra, params = tensors(1), tensors(3, True), tensors(4), tensors(2)
    p0 = copies(params)
    scale, coef, extra_scale = (-0.1, -0.2, -0.1), (-0.01, 0.0, -0.01), (0.5, 0.5, 0.0)
    u = Update(num).mul(list(scale)).add_param_term(list(coef))
    if with_den:  # u ← u / den divides the whole pending update, parameter term included
        u.divide(den, params)
    u.add_term(extra, list(extra_scale), params)
    want = []
    for p, n, d, e, s, c, es in zip(p0, num, den, extra, scale, coef, extra_scale, strict=True):
        pending = c * p + s * n
        want.append(p + (pending / d if with_den else pending) + es * e)
    u.apply(params)
    assert_close(params, want)


def test_apply_of_a_zero_scale_leaves_the_parameters_alone() -> None:
    params = tensors(2)
    p0 = copies(params)
    Update(tensors(1)).mul(0.0).apply(params)
    assert_equal(params, p0)
