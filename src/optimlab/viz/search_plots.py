"""The plots of a hyperparameter search: the value of every trial with the best so far, each
parameter's importance, the value against the most important parameters (slice plots), and
the monitored value after each epoch of every trial (where the pruners stopped them).

Each function takes a :class:`optimlab.tune.results.SearchResults` (or plain numbers) and
returns a matplotlib :class:`~matplotlib.figure.Figure`; :func:`optimlab.viz.curves.to_png`
encodes it. Accuracy-like metrics are drawn in percent, as everywhere in the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimlab.lab.words import metric_words
from optimlab.viz import style
from optimlab.viz.curves import legend_outside

__all__ = ["importance_bars", "slice_plots", "trial_curves", "value_history"]

#: colours of the trials' states
STATE_COLORS = {"complete": "#0b5cad", "pruned": "#9aa1ad", "failed": "#b3261e",
                "diverged": "#b3261e", "running": "#e0b100"}


def _figure(ncols: int = 1, *, width: float = 9.0, height: float = 4.2) -> tuple[Figure, list]:
    style.apply()
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _text(s: str) -> str:
    return s.replace("$", r"\$")


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def value_history(results: Any) -> Figure:
    """Every trial's value by trial number — complete trials as dots, pruned ones as grey
    diamonds at the value they were stopped with, failed or diverged ones as red × on the
    axis — and the best complete value so far as a step line."""
    fig, (ax,) = _figure(height=4.0)
    scale = 100.0 if results.percent else 1.0
    history = results.history()
    finite = [v * scale for _, v, _, _ in history if v is not None and math.isfinite(v)]
    if not finite:
        _empty(ax, "no trial has a value yet")
        return fig
    low = min(finite)
    marks = {"complete": ("o", 28), "pruned": ("D", 18)}
    for state, (marker, size) in marks.items():
        xs = [n for n, v, s, _ in history if s == state and v is not None and math.isfinite(v)]
        ys = [v * scale for n, v, s, _ in history if s == state and v is not None
              and math.isfinite(v)]
        if xs:
            ax.scatter(xs, ys, marker=marker, s=size, color=STATE_COLORS[state], zorder=3,
                       label=f"{state} ({len(xs)})", alpha=0.9)
    bad = [n for n, v, s, _ in history if s in ("failed", "diverged")
           or (s == "complete" and (v is None or not math.isfinite(v)))]
    if bad:
        ax.scatter(bad, [low] * len(bad), marker="x", s=30, color=STATE_COLORS["failed"],
                   zorder=3, label=f"failed / diverged ({len(bad)})")
    steps = [(n, b * scale) for n, _, _, b in history if b is not None]
    if steps:
        xs, ys = zip(*steps, strict=True)
        ax.step([*xs, history[-1][0]], [*ys, ys[-1]], where="post", color="#1a7f37",
                linewidth=2, zorder=2, label="best complete so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric_words(results.monitor) + (" (%)" if results.percent else ""))
    ax.set_title(_text(f"{metric_words(results.monitor)} of each trial, and the best so far"))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax)
    return fig


def importance_bars(importances: Mapping[str, float], *, monitor: str) -> Figure:
    """Each parameter's importance as a horizontal bar, the most important on top."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig, (ax,) = _figure(height=max(2.2, 0.38 * len(items) + 1.2))
    if not items:
        _empty(ax, "no importances: see the note below")
        return fig
    names = [_text(k) for k, _ in items]
    values = [v for _, v in items]
    ax.barh(range(len(items)), values, color="#0b5cad", alpha=0.85)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(items)), names)
    ax.set_xlim(0, max(values) * 1.18 if max(values) > 0 else 1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"share of the variance of final {metric_words(monitor)} (fANOVA)")
    ax.set_title("Parameter importance")
    return fig


def slice_plots(results: Any, params: Sequence[str], *, columns: int = 2) -> Figure:
    """The value of each complete (dots) and pruned (grey diamonds) trial against each of
    ``params``: log axes for log-scaled ranges, the choices side by side for categorical ones;
    the dots' colour goes from early (light) to late (dark) trials."""
    import matplotlib as mpl

    params = list(params)
    rows = max(1, math.ceil(len(params) / columns))
    style.apply()
    fig = Figure(figsize=(9.0, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    scale = 100.0 if results.percent else 1.0
    dists = results.distributions()
    n = max(1, len(results.trials))
    cmap = mpl.colormaps["Blues"]
    for ax, name in zip(axes, params, strict=False):
        dist = dists.get(name)
        pts = [(t.params[name], t.value * scale, t.state, t.number) for t in results.trials
               if name in t.params and t.value is not None and math.isfinite(t.value)
               and t.state in ("complete", "pruned")]
        if not pts or dist is None:
            _empty(ax, f"no values of {name}")
            ax.set_title(_text(name), fontsize=10)
            continue
        categorical = hasattr(dist, "choices")
        if categorical:
            choices = list(dist.choices)
            positions = {repr(c): i for i, c in enumerate(choices)}
            rng = np.random.default_rng(0)
            xs = [positions[repr(p)] + rng.uniform(-0.12, 0.12) for p, *_ in pts]
            ax.set_xticks(range(len(choices)), [_text(str(c)) for c in choices],
                          rotation=20 if len(choices) > 3 else 0, fontsize=8)
            ax.set_xlim(-0.5, len(choices) - 0.5)
        else:
            from matplotlib.ticker import FuncFormatter, MaxNLocator

            xs = [float(p) for p, *_ in pts]
            if getattr(dist, "log", False):
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            elif isinstance(getattr(dist, "step", None), int):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for x, (_, v, state, number) in zip(xs, pts, strict=True):
            if state == "complete":
                ax.scatter([x], [v], s=22, color=cmap(0.35 + 0.65 * number / n), zorder=3,
                           edgecolors="#333333", linewidths=0.3)
            else:
                ax.scatter([x], [v], s=14, marker="D", color=STATE_COLORS["pruned"], zorder=2)
        ax.set_title(_text(name), fontsize=10)
        ax.set_ylabel(metric_words(results.monitor) + (" (%)" if results.percent else ""),
                      fontsize=8)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap(0.7), label="complete"),
               Line2D([], [], marker="D", linestyle="", color=STATE_COLORS["pruned"],
                      label="pruned (its last value)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    return fig


def trial_curves(results: Any) -> Figure:
    """The monitored value after each epoch of every trial: complete trials in blue, pruned
    ones in grey ending where they were stopped (a diamond), the best trial in green."""
    fig, (ax,) = _figure(height=4.0)
    scale = 100.0 if results.percent else 1.0
    best = results.best
    drawn = 0
    for t in results.trials:
        if "same_as" in t.user_attrs:
            continue  # the same curve as the trial it repeats
        pts = sorted((int(k), v) for k, v in t.values.items() if v is not None
                     and math.isfinite(v))
        if not pts:
            continue
        xs = [k for k, _ in pts]
        ys = [v * scale for _, v in pts]
        if best is not None and t.number == best.number:
            continue
        color = STATE_COLORS.get(t.state, "#666666")
        ax.plot(xs, ys, color=color, linewidth=0.9, alpha=0.55 if t.state == "complete"
                else 0.45, zorder=2)
        if t.state == "pruned":
            ax.plot(xs[-1], ys[-1], "D", color=color, markersize=3.5, zorder=3)
        drawn += 1
    if best is not None:
        pts = sorted((int(k), v) for k, v in best.values.items() if v is not None
                     and math.isfinite(v))
        if pts:
            ax.plot([k for k, _ in pts], [v * scale for _, v in pts], color="#1a7f37",
                    linewidth=2.2, zorder=4)
            drawn += 1
    if not drawn:
        _empty(ax, "no epoch has a value yet")
        return fig
    ax.set_xlabel("epochs trained")
    ax.set_ylabel(metric_words(results.monitor) + (" (%)" if results.percent else ""))
    ax.set_title(_text(f"{metric_words(results.monitor)} after each epoch, every trial"))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Line2D([], [], color=STATE_COLORS["complete"], label="complete"),
               Line2D([], [], color=STATE_COLORS["pruned"], marker="D", markersize=3.5,
                      label="pruned (stopped at ◆)"),
               Line2D([], [], color="#1a7f37", linewidth=2.2, label="best trial")]
    legend_outside(ax, handles, [str(h.get_label()) for h in handles])
    return fig
