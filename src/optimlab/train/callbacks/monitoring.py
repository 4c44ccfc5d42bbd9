"""What callbacks that watch a logged value share: which way is better, and what counts as better.
"""

from __future__ import annotations

import math
import re

#: name tokens of error-type metrics: smaller is better, whatever else the name says
ERROR_TOKENS = frozenset({"loss", "error", "err", "nll", "perplexity", "ppl", "mse", "mae",
                          "rmse", "msle", "mape", "wer", "cer"})


def metric_mode(name: str) -> str:
    """"min" or "max": which way is better for a logged key such as ``val_loss``,
    ``val_accuracy``, ``test_error`` or ``ema_val_f1_macro`` — the one rule for the direction
    of a metric (callbacks, the lab's runner and analysis, and the CLI all ask here).

    After the prefixes ``ema_``, ``val_``, ``train_`` and ``test_``: a name with an error-type
    token (``loss``, ``error``, ``nll``, ``perplexity``, ``mse``, ``mae``, ``rmse``, …; tokens are
    split at ``_``, ``-`` and spaces) is lower-is-better; otherwise the registered metric's
    own mode (``accuracy``, ``f1_macro``, ``r2``: "max"). Anything else raises ValueError.
    """
    original = name
    name = name.removeprefix("ema_")
    for prefix in ("val_", "train_", "test_"):
        name = name.removeprefix(prefix)
    tokens = {t for t in re.split(r"[_\-\s]+", name.lower()) if t}
    if tokens & ERROR_TOKENS:
        return "min"
    from optimlab.train.metrics import get_metric

    try:
        return get_metric(name).mode
    except ValueError:
        raise ValueError(f"cannot tell whether {original!r} should go up or down; pass "
                         "mode='min' or mode='max'") from None


#: the name the callbacks import; the same rule
monitor_mode = metric_mode


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
