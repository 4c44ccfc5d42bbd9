"""optimlab.schedules against closed forms written out here, values worked out by hand, and the
contract: purity, ``per_epoch``, ``repr``/pickle, the registry and argument validation."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from optimlab import schedules as S

T = range(0, 250)


def _values(schedule: S.Schedule, steps: range = T) -> list[float]:
    return [schedule(t) for t in steps]


# -- closed forms --------------------------------------------------------------------------------
def test_constant() -> None:
    assert _values(S.constant(0.3)) == [0.3] * len(T)


@pytest.mark.parametrize("k", [0.0, 0.01, 1.0])
def test_inverse_time_closed_form(k: float) -> None:
    assert _values(S.inverse_time(0.2, k)) == pytest.approx([0.2 / (1 + k * t) for t in T],
                                                            rel=1e-15)


def test_inverse_time_by_hand() -> None:
    # the notes' 1/t decay with α₀ = 0.2 and decay_rate = 1, epochs 0..3
    s = S.inverse_time(0.2, decay_rate=1.0)
    assert [s(e) for e in range(4)] == pytest.approx([0.2, 0.1, 0.0667, 0.05], abs=5e-5)
    assert s(2) == pytest.approx(0.2 / 3, rel=1e-15)


@pytest.mark.parametrize("rate", [0.95, 0.5, 1.0, 1.01])
def test_exponential_closed_form(rate: float) -> None:
    expected = [0.1 * rate**t for t in T]
    assert _values(S.exponential(0.1, rate)) == pytest.approx(expected, rel=1e-14)


def test_exponential_by_hand_and_exp_form() -> None:
    s = S.exponential(0.2, 0.95)  # the notes: 0.95^epoch · α₀
    assert [s(e) for e in range(3)] == pytest.approx([0.2, 0.19, 0.1805], rel=1e-14)
    k = 0.3  # α₀·exp(−k·t) is rate = exp(−k)
    s = S.exponential(0.2, math.exp(-k))
    assert _values(s, range(50)) == pytest.approx([0.2 * math.exp(-k * t) for t in range(50)],
                                                  rel=1e-13)
    assert S.exponential(1.0, 2.0)(100_000) == math.inf  # overflow is inf, not an exception


def test_step_decay_closed_form_and_by_hand() -> None:
    s = S.step_decay(0.08, every=10)  # halve every 10
    assert _values(s) == pytest.approx([0.08 * 0.5 ** (t // 10) for t in T], rel=1e-15)
    assert [s(t) for t in (0, 9, 10, 19, 20, 30)] == [0.08, 0.08, 0.04, 0.04, 0.02, 0.01]
    # the notes' StepLR example: ×0.1 every 30 epochs from 0.001
    s = S.step_decay(0.001, every=30, factor=0.1)
    for epochs, lr in [((0, 29), 1e-3), ((30, 59), 1e-4), ((60, 89), 1e-5), ((90, 99), 1e-6)]:
        assert [s(e) for e in epochs] == pytest.approx([lr, lr], rel=1e-12)


def test_multi_step() -> None:
    s = S.multi_step(1.0, [60, 30, 80], gamma=0.1)  # order does not matter
    expected = [1.0 * 0.1 ** sum(t >= m for m in (30, 60, 80)) for t in T]
    assert _values(s) == pytest.approx(expected, rel=1e-15)
    assert s.milestones == (30, 60, 80)
    assert S.multi_step(1.0, [5, 5], gamma=0.5)(5) == 0.25  # a repeated milestone counts twice


def test_piecewise() -> None:
    s = S.piecewise([10, 25], [0.1, 0.05, 0.01])
    expected = [0.1 if t < 10 else 0.05 if t < 25 else 0.01 for t in T]
    assert _values(s) == expected
    assert s(9) == 0.1 and s(10) == 0.05  # the new value starts at the boundary


@pytest.mark.parametrize(("power", "end_lr"), [(1.0, 0.0), (2.0, 0.001), (0.5, 0.01)])
def test_polynomial_closed_form(power: float, end_lr: float) -> None:
    total = 120
    s = S.polynomial(0.1, total, power=power, end_lr=end_lr)
    expected = [(0.1 - end_lr) * (1 - min(t, total) / total) ** power + end_lr for t in T]
    assert _values(s) == pytest.approx(expected, rel=1e-15, abs=1e-18)
    assert s(0) == 0.1 and s(total) == end_lr and s(10 * total) == end_lr


def test_polynomial_linear_by_hand() -> None:
    s = S.polynomial(1.0, total=4)
    assert _values(s, range(6)) == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]


def test_cosine_closed_form_and_hold() -> None:
    total, lr, lo = 100, 0.1, 1e-4
    s = S.cosine(lr, total, min_lr=lo)
    expected = [lo + (lr - lo) * (1 + math.cos(math.pi * min(t, total) / total)) / 2 for t in T]
    assert _values(s) == pytest.approx(expected, rel=1e-15)
    assert s(0) == lr
    assert s(50) == pytest.approx((lr + lo) / 2, rel=1e-15)
    assert s(total) == lo and s(total + 1) == lo and s(10**9) == lo  # holds min_lr after total


# -- composition ---------------------------------------------------------------------------------
@pytest.mark.parametrize("start_factor", [0.0, 0.1, 1.0])
def test_warmup_closed_form(start_factor: float) -> None:
    inner = S.cosine(0.1, 150, min_lr=0.001)
    s = S.warmup(inner, 40, start_factor=start_factor)
    expected = [0.1 * (start_factor + (1 - start_factor) * t / 40) if t < 40 else inner(t - 40)
                for t in T]
    assert _values(s) == pytest.approx(expected, rel=1e-15)
    assert s(40) == inner(0) == 0.1  # the wrapped schedule starts at its own t = 0
    assert s(190) == 0.001


def test_warmup_by_hand_and_zero_steps() -> None:
    s = S.warmup(S.constant(1.0), 4)
    assert _values(s, range(6)) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    inner = S.exponential(0.1, 0.9)
    assert _values(S.warmup(inner, 0)) == _values(inner)


def test_notes_warmup_cosine_recipe() -> None:
    # the notes' get_lr(epoch): α₀·(e+1)/W for e < W, then cosine over the remaining epochs
    def get_lr(epoch: int, total_epochs: int = 100, warmup_epochs: int = 10) -> float:
        if epoch < warmup_epochs:
            return 0.001 * (epoch + 1) / warmup_epochs
        progress = (epoch - warmup_epochs) / (total_epochs - warmup_epochs)
        return 1e-6 + (0.001 - 1e-6) * 0.5 * (1 + math.cos(math.pi * progress))

    s = S.join([S.warmup(S.constant(0.001), 9, 1 / 10), S.cosine(0.001, 90, 1e-6)], [10])
    assert _values(s, range(101)) == pytest.approx([get_lr(e) for e in range(101)], rel=1e-14)


def test_join_closed_form() -> None:
    a, b, c = S.constant(0.01), S.cosine(0.1, 50), S.exponential(0.05, 0.97)
    s = S.join([a, b, c], [20, 70])
    expected = [a(t) if t < 20 else b(t - 20) if t < 70 else c(t - 70) for t in T]
    assert _values(s) == expected
    assert s(20) == 0.1 and s(70) == 0.05
    assert _values(S.join([b], [])) == _values(b)


def test_join_of_constants_is_piecewise() -> None:
    vals = [0.3, 0.2, 0.1]
    joined = S.join([S.constant(v) for v in vals], [7, 31])
    assert _values(joined) == _values(S.piecewise([7, 31], vals))


def test_composites_accept_plain_functions() -> None:
    s = S.warmup(lambda t: 1.0 / (t + 1), 2)
    assert [s(t) for t in range(5)] == [0.0, 0.5, 1.0, 0.5, 1 / 3]


# -- cyclic schedules by hand (torch parity is in test_schedules_torch.py) -----------------------
def test_cosine_restarts_by_hand() -> None:
    s = S.cosine_restarts(1.0, first_period=4, period_mult=2)
    # periods of 4, 8, 16 steps: restarts at t = 4 and t = 12
    assert s(0) == s(4) == s(12) == 1.0
    assert s(2) == pytest.approx(0.5, abs=1e-15)
    assert s(8) == pytest.approx(0.5, abs=1e-15)  # half way through the 8-step period
    assert s(20) == pytest.approx(0.5, abs=1e-15)  # half way through the 16-step period
    same = S.cosine_restarts(0.1, 10)
    assert _values(same, range(10)) == _values(same, range(10, 20))


# -- TensorFlow/Keras forms: polynomial(cycle=True); cosine_restarts with peak_mult, real t_mul ---
def _tf_poly_decay(lr: float, step: int, decay_steps: int, power: float, end: float,
                   cycle: bool) -> float:
    """keras.optimizers.schedules.PolynomialDecay.__call__, written out in plain floats."""
    if cycle:
        multiplier = 1.0 if step == 0 else math.ceil(step / decay_steps)
        decay_steps = decay_steps * multiplier
    else:
        step = min(step, decay_steps)
    return (lr - end) * (1 - step / decay_steps) ** power + end


@pytest.mark.parametrize("power, end_lr", [(1.0, 0.0), (2.0, 0.01), (0.5, 0.02)])
@pytest.mark.parametrize("cycle", [False, True])
def test_polynomial_is_tensorflow_polynomial_decay(power: float, end_lr: float,
                                                  cycle: bool) -> None:
    s = S.polynomial(0.1, 20, power, end_lr, cycle=cycle)
    want = [_tf_poly_decay(0.1, t, 20, power, end_lr, cycle) for t in T]
    assert _values(s) == pytest.approx(want, rel=1e-14, abs=1e-15)


def test_polynomial_cycle_by_hand() -> None:
    s = S.polynomial(1.0, 10, power=1.0, cycle=True)
    assert s(0) == 1.0 and s(5) == 0.5 and s(10) == 0.0  # the first horizon, as without cycle
    assert s(11) == pytest.approx(1 - 11 / 20)  # then the horizon stretches to 20, 30, ...
    assert s(20) == 0.0 and s(21) == pytest.approx(1 - 21 / 30)
    assert S.polynomial(1.0, 10)(11) == 0.0  # without cycle it holds end_lr


def _tf_cosine_restarts(lr: float, first: float, t_mul: float, m_mul: float, alpha: float,
                        step: int) -> tuple[float, float]:
    """keras.optimizers.schedules.CosineDecayRestarts.__call__ in plain floats; also returns the
    argument of its floor, to skip steps where rounding decides the period."""
    fraction = step / first
    if t_mul == 1.0:
        i = math.floor(fraction)
        raw = fraction
        fraction -= i
    else:
        raw = math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul)
        i = math.floor(raw)
        sum_r = (1.0 - t_mul**i) / (1.0 - t_mul)
        fraction = (fraction - sum_r) / t_mul**i
    decayed = (1 - alpha) * 0.5 * m_mul**i * (1.0 + math.cos(math.pi * fraction)) + alpha
    return lr * decayed, raw


@pytest.mark.parametrize("t_mul", [1.0, 1.5, 2.0, 2.7])
@pytest.mark.parametrize("m_mul", [1.0, 0.8])
def test_cosine_restarts_is_tensorflow_cosine_decay_restarts(t_mul: float, m_mul: float) -> None:
    lr, alpha = 0.2, 0.05
    s = S.cosine_restarts(lr, 10, period_mult=t_mul, min_lr=alpha * lr, peak_mult=m_mul)
    restarts = 0
    for t in range(400):
        want, raw = _tf_cosine_restarts(lr, 10, t_mul, m_mul, alpha, t)
        if abs(raw - round(raw)) < 1e-9:  # a restart: TF's floor may land either side of it
            want, restarts = lr * (alpha + (1 - alpha) * m_mul ** round(raw)), restarts + 1
        assert s(t) == pytest.approx(want, rel=1e-9), t
    assert restarts >= 3  # t = 0 and at least two integer restart steps


def test_cosine_restarts_fractional_periods_by_recurrence() -> None:
    """Periods 10, 15, 22.5, 33.75, …: restart i starts at the sum of the earlier ones and
    peaks at min_lr + (lr − min_lr)·m^i; half way through a period the rate is the middle."""
    s = S.cosine_restarts(1.0, 10, period_mult=1.5, min_lr=0.1, peak_mult=0.5)
    start, period = 0.0, 10.0
    for i in range(6):
        peak = 0.1 + 0.9 * 0.5**i
        if start == int(start):
            assert s(int(start)) == pytest.approx(peak, rel=1e-12), i
        middle = start + period / 2
        if middle == int(middle):
            assert s(int(middle)) == pytest.approx(0.1 + (peak - 0.1) / 2, rel=1e-12), i
        start, period = start + period, period * 1.5
    assert s(24) < s(25) == pytest.approx(0.1 + 0.9 * 0.25)  # the restart at 10 + 15 = 25
    assert S.cosine_restarts(1.0, 10, period_mult=2.0).period_mult == 2  # integral: exact path


def test_cyclic_by_hand() -> None:
    s = S.cyclic(0.1, 0.5, step_size_up=4)
    assert _values(s, range(9)) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.4, 0.3, 0.2, 0.1])
    s = S.cyclic(0.0, 1.0, step_size_up=2, mode="triangular2")
    assert [s(2), s(6), s(10)] == [1.0, 0.5, 0.25]


def test_one_cycle_by_hand() -> None:
    s = S.one_cycle(1.0, total_steps=100, pct_start=0.3, anneal="linear", div_factor=10,
                    final_div_factor=100)
    # up from 0.1 to 1.0 over steps 0..29, down to 0.001 over steps 29..99
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(10) == pytest.approx(0.1 + 0.9 * 10 / 29, rel=1e-15)
    assert s(29) == 1.0
    assert s(64) == pytest.approx(1.0 + (0.001 - 1.0) * 35 / 70, rel=1e-15)
    assert s(99) == pytest.approx(0.001, rel=1e-12) and s(500) == s(99)  # then holds


def test_linear_scaling() -> None:
    assert S.linear_scaling(0.1, batch_size=1024, base_batch_size=256) == pytest.approx(0.4)
    assert S.linear_scaling(0.1, 32, 32) == 0.1
    with pytest.raises(ValueError, match="base_batch_size"):
        S.linear_scaling(0.1, 32, 0)


# -- the contract --------------------------------------------------------------------------------
ALL = [
    S.constant(0.1), S.inverse_time(0.1, 0.5), S.exponential(0.1, 0.9), S.step_decay(0.1, 3),
    S.multi_step(0.1, [3, 8]), S.piecewise([4], [0.1, 0.01]), S.polynomial(0.1, 20, 2.0),
    S.cosine(0.1, 20, 0.001), S.cosine_restarts(0.1, 5, 2),
    S.cosine_restarts(0.1, 5, 1.5, peak_mult=0.7), S.polynomial(0.1, 7, cycle=True),
    S.cyclic(0.01, 0.1, 4, mode="exp_range", gamma=0.99), S.one_cycle(0.1, 30, three_phase=True),
    S.warmup(S.cosine(0.1, 20), 5), S.join([S.constant(0.1), S.cosine(0.1, 9)], [3]),
]


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: type(s).__name__)
def test_pure_picklable_and_readable(schedule: S.Schedule) -> None:
    first = _values(schedule, range(40))
    assert _values(schedule, range(39, -1, -1)) == first[::-1]  # no state: order does not matter
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and _values(copy, range(40)) == first
    assert isinstance(schedule(np.int64(7)), float) and schedule(np.int64(7)) == first[7]
    text = repr(schedule)
    assert "object at" not in text
    assert eval(text, vars(S)) == schedule  # the repr is the call that builds it
    with pytest.raises(ValueError, match="step"):
        schedule(-1)
    with pytest.raises(ValueError, match="step"):
        schedule(1.5)


def test_per_epoch() -> None:
    inner = S.step_decay(1.0, every=2)
    s = inner.per_epoch(5)
    values = _values(s, range(40))
    for epoch in range(8):
        chunk = values[5 * epoch:5 * epoch + 5]
        assert chunk == [inner(epoch)] * 5  # constant within an epoch
    assert values[9] == 1.0 and values[10] == 0.5  # and steps at an epoch boundary
    assert repr(s) == "step_decay(lr=1.0, every=2, factor=0.5).per_epoch(5)"
    assert eval(repr(s), vars(S)) == s
    smooth = S.inverse_time(0.2, 1.0).per_epoch(3)
    assert [smooth(t) for t in range(7)] == [0.2] * 3 + [0.1] * 3 + [0.2 / 3]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        inner.per_epoch(0)


def test_registry() -> None:
    names = S.available()
    assert set(names) >= {"constant", "inverse_time", "exponential", "step_decay", "multi_step",
                          "piecewise", "polynomial", "cosine", "cosine_restarts", "cyclic",
                          "one_cycle", "warmup", "join"}
    assert all(isinstance(d, str) and d and "\n" not in d for d in names.values())
    assert S.create("cosine", lr=0.1, total=10) == S.cosine(0.1, 10)
    assert S.create("COSINE", lr=0.1, total=10) == S.cosine(0.1, 10)
    nested = S.create("warmup", schedule={"name": "cosine", "lr": 0.1, "total": 900}, steps=100)
    assert nested == S.warmup(S.cosine(0.1, 900), 100)
    joined = S.create("join", schedules=[{"name": "constant", "lr": 0.1},
                                         {"name": "constant", "lr": 0.01}], boundaries=[5])
    assert joined(5) == 0.01
    with pytest.raises(ValueError, match="cosine_restarts"):  # the message lists the names
        S.create("nope")
    with pytest.raises(ValueError, match="tot"):
        S.create("cosine", lr=0.1, tot=10)
    with pytest.raises(ValueError, match="total"):
        S.create("cosine", lr=0.1)


@pytest.mark.parametrize(("build", "argument"), [
    (lambda: S.constant(-0.1), "lr"),
    (lambda: S.inverse_time(-1.0, 1.0), "lr"),
    (lambda: S.inverse_time(0.1, -1.0), "decay_rate"),
    (lambda: S.exponential(0.1, 0.0), "rate"),
    (lambda: S.exponential(0.1, -0.5), "rate"),
    (lambda: S.step_decay(0.1, 0), "every"),
    (lambda: S.step_decay(0.1, 2.5), "every"),
    (lambda: S.step_decay(0.1, 2, factor=0.0), "factor"),
    (lambda: S.multi_step(0.1, [3, 5], gamma=0.0), "gamma"),
    (lambda: S.multi_step(0.1, [0]), "milestones"),
    (lambda: S.piecewise([5, 3], [1.0, 0.5, 0.1]), "boundaries"),
    (lambda: S.piecewise([5], [1.0]), "values"),
    (lambda: S.piecewise([5], [1.0, -0.5]), "values"),
    (lambda: S.polynomial(0.1, 0), "total"),
    (lambda: S.polynomial(0.1, -5), "total"),
    (lambda: S.polynomial(0.1, 10, power=0.0), "power"),
    (lambda: S.polynomial(0.1, 10, end_lr=-1.0), "end_lr"),
    (lambda: S.cosine(-0.1, 10), "lr"),
    (lambda: S.cosine(0.1, 0), "total"),
    (lambda: S.cosine(0.1, 10, min_lr=-1e-3), "min_lr"),
    (lambda: S.cosine(float("nan"), 10), "lr"),
    (lambda: S.warmup(S.constant(0.1), -1), "steps"),
    (lambda: S.warmup(S.constant(0.1), 5, start_factor=1.5), "start_factor"),
    (lambda: S.warmup(0.1, 5), "schedule"),
    (lambda: S.join([S.constant(0.1), S.constant(0.2)], []), "boundaries"),
    (lambda: S.join([S.constant(0.1), S.constant(0.2)], [0]), "boundaries"),
    (lambda: S.join([], []), "schedules"),
    (lambda: S.cosine_restarts(0.1, 0), "first_period"),
    (lambda: S.cosine_restarts(0.1, 10, period_mult=0), "period_mult"),
    (lambda: S.cosine_restarts(0.1, 10, period_mult=0.5), "period_mult"),
    (lambda: S.cosine_restarts(0.1, 10, peak_mult=0.0), "peak_mult"),
    (lambda: S.polynomial(0.1, 10, cycle="yes"), "cycle"),
    (lambda: S.cyclic(0.1, 0.05, 10), "max_lr"),
    (lambda: S.cyclic(0.01, 0.1, 0), "step_size_up"),
    (lambda: S.cyclic(0.01, 0.1, 10, mode="sawtooth"), "mode"),
    (lambda: S.cyclic(0.01, 0.1, 10, mode="exp_range", gamma=0.0), "gamma"),
    (lambda: S.one_cycle(0.1, 0), "total_steps"),
    (lambda: S.one_cycle(0.1, 100, pct_start=1.5), "pct_start"),
    (lambda: S.one_cycle(0.1, 100, pct_start=0.6, three_phase=True), "pct_start"),
    (lambda: S.one_cycle(0.1, 100, anneal="exp"), "anneal"),
    (lambda: S.one_cycle(0.1, 100, div_factor=0.0), "div_factor"),
])
def test_invalid_arguments_name_the_argument(build, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        build()
    message = str(info.value)
    assert "expected" in message or "choose one of" in message  # says what is allowed
