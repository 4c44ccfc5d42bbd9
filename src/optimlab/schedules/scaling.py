"""The linear scaling rule: when the batch grows k-fold, grow the learning rate k-fold."""

from __future__ import annotations

from optimlab._checks import check_number


def linear_scaling(lr: float, batch_size: int, base_batch_size: int) -> float:
    """``α_new = α·B_new/B_old``: the learning rate for ``batch_size`` given that ``lr`` suits
    ``base_batch_size`` (Goyal et al., 2017). Pair it with a warmup for large batches.

    >>> linear_scaling(0.1, batch_size=1024, base_batch_size=256)
    0.4
    """
    check_number("lr", lr, low=0.0)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("base_batch_size", base_batch_size, low=1, integer=True)
    return float(lr) * batch_size / base_batch_size
