"""What callbacks that watch a logged value share: which way is better, and what counts as better.
"""

from __future__ import annotations

import math


def monitor_mode(monitor: str) -> str:
    """"min" or "max" for a logged key such as ``val_loss``, ``val_accuracy`` or
    ``ema_val_f1_macro`` (losses go down, scores go up)."""
    name = monitor.removeprefix("ema_").removeprefix("val_").removeprefix("train_")
    if name == "loss":
        return "min"
    from optimlab.train.metrics import get_metric

    try:
        return get_metric(name).mode
    except ValueError:
        raise ValueError(f"cannot tell whether {monitor!r} should go up or down; pass "
                         "mode='min' or mode='max'") from None


def improves(value: float, best: float | None, mode: str, min_delta: float = 0.0,
             delta_mode: str = "abs", *, allow_inf: bool = False) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (mode "min"):

        value < b − δ            delta_mode="abs"
        value < b − |b|·δ        delta_mode="rel"   (mirror images for mode "max")

    NaN never improves, nor does ±inf unless ``allow_inf`` (torch's ReduceLROnPlateau compares
    infinities like any number); anything that may improve does so on no best (None).
    """
    if math.isnan(value) or (not allow_inf and math.isinf(value)):
        return False
    if best is None:
        return True
    d = min_delta if delta_mode == "abs" else abs(best) * min_delta
    return value < best - d if mode == "min" else value > best + d
