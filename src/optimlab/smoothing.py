"""Exponentially weighted averages of a series (the course's temperature example).

    v_t = β · v_{t−1} + (1 − β) · θ_t,   v_0 = 0
    v̂_t = v_t / (1 − β^t)                 (bias correction)

The average covers about 1/(1 − β) recent values. Used to smooth curves in reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimlab._checks import check_number


def ewa(values: Sequence[float] | np.ndarray, beta: float = 0.9, *,
        bias_correction: bool = False) -> np.ndarray:
    """Smooth ``values`` with an exponentially weighted average.

    >>> ewa([18, 23, 19], beta=0.9)             # v = 1.8, 3.92, 5.428
    >>> ewa([18, 23, 19], 0.9, bias_correction=True)[0]   # v̂₁ = 18.0

    ``beta`` must lie in [0, 1). NaN in the input propagates to every later value, as it would
    through the recurrence.
    """
    check_number("beta", beta, low=0.0, high=1.0, high_open=True)
    theta = np.asarray(values, dtype=np.float64)
    if theta.ndim != 1:
        raise ValueError(f"values must be a 1-D series; got shape {theta.shape}")
    if theta.size == 0:
        return theta.copy()
    from scipy.signal import lfilter  # lazy: scipy.signal takes ~1.3 s to import

    v = lfilter([1.0 - beta], [1.0, -beta], theta)
    if bias_correction:
        t = np.arange(1, theta.size + 1, dtype=np.float64)
        v = v / (1.0 - beta**t)
    return v
