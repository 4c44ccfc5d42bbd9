"""optimlab.ewa on the course's temperature example, against the recurrence by hand."""

from __future__ import annotations

import numpy as np
import pytest

import optimlab

THETA = [18, 23, 19, 20, 17, 21, 19, 18, 22, 20]


def _by_hand(theta, beta, corrected):
    v, out = 0.0, []
    for t, x in enumerate(theta, start=1):
        v = beta * v + (1 - beta) * x
        out.append(v / (1 - beta**t) if corrected else v)
    return out


def test_temperature_example_beta_0_9() -> None:
    v = optimlab.ewa(THETA, beta=0.9)
    assert v[:5] == pytest.approx([1.8, 3.92, 5.428, 6.8852, 7.89668], rel=1e-12)
    assert v == pytest.approx(_by_hand(THETA, 0.9, False), rel=1e-12)


def test_bias_corrected_first_value_is_the_first_temperature_exactly() -> None:
    v_hat = optimlab.ewa(THETA, beta=0.9, bias_correction=True)
    assert v_hat[0] == 18.0
    assert v_hat == pytest.approx(_by_hand(THETA, 0.9, True), rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.98])
def test_other_betas_follow_the_recurrence(beta: float) -> None:
    for corrected in (False, True):
        got = optimlab.ewa(THETA, beta=beta, bias_correction=corrected)
        assert got == pytest.approx(_by_hand(THETA, beta, corrected), rel=1e-12)


def test_averages_about_one_over_one_minus_beta_values() -> None:
    """The rule of thumb: the last 1/(1−β) inputs carry ≈ 1 − 1/e of the weight."""
    beta = 0.9
    impulse = np.zeros(200)
    impulse[0] = 1.0
    weights = optimlab.ewa(impulse, beta)  # weight of an input k steps back: (1−β)βᵏ
    assert weights[:10].sum() == pytest.approx(1 - beta**10)
    assert 1 - beta**10 == pytest.approx(1 - np.exp(-1), abs=0.03)


@pytest.mark.parametrize("beta", [1.0, -0.1, float("nan")])
def test_beta_outside_zero_one_is_refused(beta: float) -> None:
    with pytest.raises(ValueError, match="beta="):
        optimlab.ewa(THETA, beta=beta)


def test_empty_and_two_dimensional_inputs() -> None:
    assert optimlab.ewa([], 0.9).size == 0
    with pytest.raises(ValueError, match="1-D"):
        optimlab.ewa(np.ones((2, 2)), 0.9)
