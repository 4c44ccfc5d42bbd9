"""The lab's words and numbers: one home for how a metric, a number, an interval, a p-value, a
duration or a setting is written, — used by
the statistics (:mod:`optimlab.lab.stats`), the CLI and the HTML report alike.

Numbers
-------
A metric is written in percent (or percentage points, for a difference) when its name is
accuracy-like (accuracy/acc, f1, precision, recall, auc, r2, iou, dice, …) and every value
involved lies in [0, 1]; otherwise in its own units. An estimate with an interval is rounded to
the first significant digit of the interval's half-width, with up to two more digits so that no
non-zero number prints as 0; without an interval (or a zero-width one) to three significant
digits, trailing zeros dropped ("2 points", not "2.000000000000 points"). Negative numbers use
the minus sign "−" (U+2212); signed differences show "+" when positive.

Sentences built from these words: the statements of a statistic live with it
(:mod:`optimlab.lab.stats`), a study's answer in :mod:`optimlab.lab.answer`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

MINUS = "\u2212"
DASH = "—"

_PROPORTION_TOKENS = frozenset({
    "accuracy", "acc", "f1", "precision", "recall", "auc", "auroc", "r2", "iou", "miou",
    "dice", "jaccard", "specificity", "sensitivity", "tpr", "tnr",
})
_ACRONYMS = {"roc": "ROC", "auc": "AUC", "r2": "R²", "mse": "MSE", "mae": "MAE",
             "rmse": "RMSE", "f1": "F1", "iou": "IoU", "lr": "LR", "nll": "NLL"}
_SPLIT = re.compile(r"[_\s]+")
_COUNTED_UNITS = ("step", "epoch", "iteration", "batch", "update")


# --------------------------------------------------------------------------------------------
# Metric names
# --------------------------------------------------------------------------------------------


def metric_words(name: str) -> str:
    """A metric name in words: underscores become spaces and known acronyms are capitalized
    (``"val_accuracy"`` → ``"val accuracy"``, ``"val_roc_auc"`` → ``"val ROC AUC"``)."""
    parts = [p for p in _SPLIT.split(name.strip()) if p]
    return " ".join(_ACRONYMS.get(p.lower(), p) for p in parts)


def is_proportion_metric(name: str, values: Sequence[float | None] | np.ndarray = ()) -> bool:
    """True when ``name`` is accuracy-like (a token such as accuracy/acc, f1, precision,
    recall, auc, r2, iou, dice) and every finite value in ``values`` lies in [0, 1]: such a
    metric is reported in percent and its differences in percentage points."""
    tokens = set(re.split(r"[^0-9a-z]+", name.lower()))
    if not tokens & _PROPORTION_TOKENS:
        return False
    x = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    return bool(np.all((x >= 0.0) & (x <= 1.0)))


def target_words(metric: str, value: float) -> str:
    """``"95% val accuracy"`` or ``"val loss 0.1"``: a target in words."""
    words = metric_words(metric)
    if is_proportion_metric(metric, [value]):
        return f"{plain(value * 100)}% {words}"
    return f"{words} {plain(value)}"


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def digits(half_width: float | None, values: Sequence[float]) -> int:
    """Decimals to show. With an interval of positive half-width: down to the half-width's
    first significant digit, and further (at most two more) until every non-zero value shows a
    significant digit. Without one: three significant digits of the largest value."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    scale = max(finite, default=0.0)
    if (half_width is not None and math.isfinite(half_width)
            and half_width > 1e-9 * max(scale, 1e-300)):
        base = -math.floor(math.log10(half_width))
        out = base
        for v in finite:  # a bound of 0.33 must not print as "0" and seem to touch zero
            out = max(out, min(base + 2, -math.floor(math.log10(v))))
        return int(min(12, max(0, out)))
    if not finite:
        return 0
    return int(min(12, max(0, 2 - math.floor(math.log10(scale)))))


def fmt(value: float, places: int, *, plus: bool = False, strip: bool = False) -> str:
    """``value`` with ``places`` decimals, a true minus sign, no "−0.0"; ``strip`` drops
    trailing zeros (``2.00`` → ``2``); non-finite → "n/a"."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:.{places}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    negative = text.startswith("-")
    text = text.lstrip("-")
    if negative and any(c not in "0." for c in text):
        return MINUS + text
    if plus and any(c not in "0." for c in text):
        return "+" + text
    return text


def estimate(value: float, low: float | None = None, high: float | None = None, *,
             scale: float = 1.0, plus: bool = False) -> tuple[str, str, str]:
    """``value`` and its interval ``[low, high]`` (times ``scale``) written with the digits
    :func:`digits` picks; without an interval (or a zero-width one) three significant digits,
    trailing zeros dropped. Returns the three strings (bounds "n/a" when missing)."""
    v = value * scale
    lo = low * scale if low is not None else math.nan
    hi = high * scale if high is not None else math.nan
    has_interval = math.isfinite(lo) and math.isfinite(hi)
    half = (hi - lo) / 2 if has_interval else None
    places = digits(half, [v, lo, hi] if has_interval else [v])
    exact = half is None or half <= 1e-9 * max(abs(v), abs(lo), abs(hi), 1e-300)
    return (fmt(v, places, plus=plus, strip=exact), fmt(lo, places, strip=exact),
            fmt(hi, places, strip=exact))


def plain(value: float) -> str:
    """Up to six significant digits without trailing zeros (95.0 → "95", 0.1 → "0.1")."""
    return f"{value:g}".replace("-", MINUS)


def num(value: Any, percent: bool, *, signed: bool = False) -> str:
    """A table cell: a proportion as percent with one decimal, else four significant digits;
    "—" for a missing or non-finite value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    sign = "+" if signed else ""
    text = f"{value * 100:{sign}.1f}" if percent else f"{value:{sign}.4g}"
    if not any(c in "123456789" for c in text.split("e")[0]):  # rounds to zero: no sign
        text = text.lstrip("+-")
    return text.replace("-", MINUS)


def interval(low: float, high: float, percent: bool) -> str:
    """``[low, high]`` as table cells, or "—" without an interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return DASH
    return f"[{num(low, percent)}, {num(high, percent)}]"


def p_value(p: float, *, prefix: bool = True) -> str:
    """``p = 0.031``, ``p < 0.001``, or ``p = n/a``; ``prefix=False`` drops "p = "."""
    if not math.isfinite(p):
        text = "n/a"
    elif p < 0.001:
        return "p < 0.001" if prefix else "< 0.001"
    else:
        text = f"{p:.2g}"
    return f"p = {text}" if prefix else text


def seconds(s: float) -> str:
    """A duration: ``0.42 s``, ``12.3 s``, ``2 min 05 s``, ``1 h 02 min``; "—" when unknown."""
    if not isinstance(s, int | float) or not math.isfinite(s):
        return DASH
    if s < 60:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def amount(value: float, unit: str) -> str:
    """``412 steps`` (counted units are whole numbers) or ``12.7 seconds``."""
    if not math.isfinite(value):
        return "never" if value > 0 else "n/a"
    if unit.rstrip("s") in _COUNTED_UNITS:
        return f"{fmt(float(round(value)), 0)} {unit}"
    return f"{fmt(value, digits(None, [value]), strip=True)} {unit}"


def short(value: Any) -> str:
    """A setting or an environment value on one line (floats with ``g``, containers as compact
    JSON)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def clean(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively (for JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [clean(x) for x in value]
    return value


def plural(n: int, word: str) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def names(items: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


def failures(k: int, n: int, word: str = "diverged") -> str:
    """``0 of 5 diverged``: said in every sentence that rests on seeds."""
    return f"{k} of {n} {word}"
