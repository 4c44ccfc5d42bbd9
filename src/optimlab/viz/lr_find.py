"""Plots of the learning-rate range test: loss against lr on a log axis with every rule's
suggestion marked, and — across batch sizes — the suggested lr against the batch size on
log–log axes with the fitted power law and the notes' printed table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimlab.lab.lr_range import NOTES_CLAIM, BatchSweep
from optimlab.train.lr_find import RULES, LRFindResult
from optimlab.viz import style
from optimlab.viz.curves import colors, legend_outside

__all__ = ["MARKERS", "range_test_figure"]

#: how each rule's suggestion is drawn
MARKERS = {"valley": "v", "steepest": "D", "minimum": "s"}


def _order(labels: Sequence[str]) -> dict[str, str]:
    """Colours for labels such as "B=16", "B=32" (or configuration labels)."""
    return colors(list(labels))


def range_test_figure(curves: Mapping[str, Sequence[LRFindResult]], *, rule: str,
                      sweep: BatchSweep | None = None, title: str | None = None,
                      raw: bool | None = None) -> Figure:
    """Loss against lr (log axis): each range test's smoothed loss as a line (one colour per
    label; the raw losses as faint dots with ``raw``, default when there is one curve), the
    suggestion of every rule as a marker (filled for ``rule``, the one used), the stop marked
    ×. With ``sweep`` a second panel draws the suggested lr against the batch size (log–log),
    the fitted power law with its interval, and the notes' printed values."""
    style.apply()
    ncols = 2 if sweep is not None else 1
    fig = Figure(figsize=(7.5 * ncols, 4.6), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    ax = axes[0]
    palette = _order(list(curves))
    total = sum(len(v) for v in curves.values())
    raw = total == 1 if raw is None else raw
    tops: list[float] = []
    bottoms: list[float] = []
    for label, results in curves.items():
        c = palette[label]
        for i, r in enumerate(results):
            if not r.lrs:
                continue
            lr, v = np.asarray(r.lrs), np.asarray(r.smoothed)
            if raw:
                ax.plot(lr, r.losses, ".", color=c, alpha=0.3, markersize=3)
            ax.plot(lr, v, "-", color=c, linewidth=1.6 if i == 0 else 0.9,
                    alpha=1.0 if i == 0 else 0.55, label=label if i == 0 else None)
            if r.diverged:
                ax.plot(lr[-1], v[-1], "x", color=c, markersize=7)
            for name, s in r.suggestions.items():
                filled = name == rule
                ax.plot(s.lr, np.interp(math.log(s.lr), np.log(lr), v), MARKERS[name],
                        color=c, markersize=8 if filled else 6,
                        markerfacecolor=c if filled else "white", markeredgewidth=1.3,
                        zorder=4)
            finite = v[np.isfinite(v)]
            if finite.size:
                bottoms.append(float(finite.min()))
                tops.append(float(finite[: max(1, len(finite) // 10) + 1].max()))
    ax.set_xscale("log")
    if tops:  # the explosion at the end would flatten everything else
        low, high = min(bottoms), max(tops)
        pad = 0.15 * (high - low or abs(high) or 1.0)
        ax.set_ylim(low - pad, high + 2.5 * pad)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(title or "Learning-rate range test")
    handles = [Line2D([], [], color=palette[k], label=k) for k in curves]
    for name in RULES:
        used = " (used)" if name == rule else ""
        handles.append(Line2D([], [], marker=MARKERS[name], linestyle="", color="#333333",
                              markerfacecolor="#333333" if name == rule else "white",
                              label=f"{_rule_words(name)}{used}"))
    handles.append(Line2D([], [], marker="x", linestyle="", color="#333333",
                          label="stopped: diverged"))
    legend_outside(ax, handles, [str(h.get_label()) for h in handles])
    if sweep is not None:
        _scaling_panel(axes[1], sweep, palette)
    return fig


def _rule_words(name: str) -> str:
    return {"valley": "valley", "steepest": "steepest descent",
            "minimum": "minimum ÷ 10"}[name]


def _scaling_panel(ax: Any, sweep: BatchSweep, palette: Mapping[str, str]) -> None:
    sizes = sweep.batch_sizes
    for b in sizes:
        ys = sweep.suggested(b)
        ax.plot([b] * len(ys), ys, "o", color=palette.get(f"B={b}", "#333333"),
                markerfacecolor="none", markersize=6)
        if ys:
            ax.plot(b, sweep.median(b), "_", color=palette.get(f"B={b}", "#333333"),
                    markersize=16, markeredgewidth=2)
    s = sweep.slope
    xs = np.geomspace(min(sizes), max(sizes), 50)
    if s is not None and math.isfinite(s.slope):
        label = f"fit: lr ∝ B^{s.slope:.2f}"
        if math.isfinite(s.ci_low):
            label += f", 95% CI [{s.ci_low:.2f}, {s.ci_high:.2f}]"
            center = math.exp(np.mean(np.log(xs)))
            for slope in (s.ci_low, s.ci_high):
                ax.plot(xs, s.predict(center) * (xs / center) ** slope, ":", color="#555555",
                        linewidth=1)
        ax.plot(xs, [s.predict(x) for x in xs], "-", color="#222222", linewidth=1.5,
                label=label)
    claim = [b for b in sizes if b in NOTES_CLAIM]
    if claim:
        ax.plot(claim, [NOTES_CLAIM[b] for b in claim], "x--", color="#b3261e",
                linewidth=1, label="the notes' table (≈ 0.01 … 0.08)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.set_xlabel("batch size B (log scale)")
    ax.set_ylabel(f"suggested lr ({_rule_words(sweep.rule)})")
    ax.set_title("Suggested lr against batch size")
    ax.legend(fontsize=8, loc="best")
