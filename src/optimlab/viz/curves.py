"""The plots of a study: learning curves, learning rate, final metric, time to target, gradient
norms — one figure each, one colour per configuration (:func:`colors`), legends outside the
axes so that 16 or more configurations stay readable, losses and gradient norms on log axes.

Every function takes plain data (what :func:`optimlab.lab.analysis.curves` returns, per
configuration label, or the statistics of :mod:`optimlab.lab.stats`) and returns a matplotlib
:class:`~matplotlib.figure.Figure`; :func:`to_png` and :func:`to_base64` encode one.

Across seeds, a line is the **mean** of the seeds at each epoch (or step) and the shaded band
is the **min–max** range of the seeds (``band="minmax"``) or **mean ± one sample std**
(``band="std"``); :func:`band_words` says which, for captions. With ``smooth=β`` each seed's
series is first smoothed by an exponentially weighted average with bias correction
(:func:`optimlab.ewa`).

>>> per_config = {c.label: curves(store, c) for c in analysis.configs}
>>> fig = learning_curves(per_config, metric="val_accuracy", smooth=0.6)
>>> png = to_png(fig)
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from optimlab.lab.stats import RankedEntry, TargetSummary
from optimlab.lab.words import is_proportion_metric, metric_words
from optimlab.smoothing import ewa
from optimlab.viz import style

__all__ = [
    "band_words",
    "colors",
    "final_metric",
    "grad_norms",
    "learning_curves",
    "learning_rate",
    "time_to_target",
    "to_base64",
    "to_png",
]

Band = Literal["minmax", "std"]
#: label → seed → {"epochs": [epoch records], "steps": {"step", "loss", "lr", "grad_norm"}}
Curves = Mapping[str, Mapping[int, Mapping[str, Any]]]

_DPI = 100


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def to_png(fig: Figure, *, dpi: int = _DPI, close: bool = True) -> bytes:
    """``fig`` as PNG bytes (``dpi`` ~100 keeps a report small); closes it unless told not."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


def to_base64(fig: Figure | bytes, *, dpi: int = _DPI) -> str:
    """``fig`` (a Figure, or PNG bytes) as base64 text, for ``data:image/png;base64,…``."""
    png = fig if isinstance(fig, bytes) else to_png(fig, dpi=dpi)
    return base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


#: 22 colours of maximum contrast (Kelly, 1965; white dropped, black last) for studies with
#: more configurations than the fixed optimizer colours can keep apart
DISTINCT_COLORS = ["#0067a5", "#f38400", "#008856", "#be0032", "#875692", "#a1caf1",
                   "#e68fac", "#c2b280", "#848482", "#f3c300", "#604e97", "#f99379",
                   "#882d17", "#8db600", "#654522", "#e25822", "#2b3d26", "#b3446c",
                   "#dcd300", "#f6a600", "#56b4e9", "#222222"]


def colors(labels: Sequence[str]) -> dict[str, str]:
    """A distinct colour for each label, the same in every plot whatever order a plot lists
    the labels in.

    ``style.color(label)`` (an optimizer's fixed colour) for each label while those are all
    different and there are at most 12 labels; otherwise the labels, in sorted order, take the
    22 colours of :data:`DISTINCT_COLORS` in turn (beyond 22, colours repeat: use
    ``report --only``)."""
    ordered = sorted(set(labels))
    fixed = {label: style.color(label) for label in ordered}
    if len(ordered) <= 12 and len(set(fixed.values())) == len(ordered):
        return fixed
    return {label: DISTINCT_COLORS[i % len(DISTINCT_COLORS)]
            for i, label in enumerate(ordered)}


def legend_outside(ax: Axes, handles: list[Any] | None = None,
                   labels: list[str] | None = None, **kw: Any) -> None:
    """A legend to the right of ``ax``, outside the data (two columns beyond 16 entries)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              ncol=1 if len(handles) <= 16 else 2, fontsize=8, **kw)


def band_words(band: Band) -> str:
    """What the shaded band around a mean line is, in words (for captions)."""
    return ("the shaded band spans the lowest to the highest seed (min–max)" if band == "minmax"
            else "the shaded band is the mean ± one sample standard deviation across seeds")


def _text(s: str) -> str:
    """A string shown literally by matplotlib (no mathtext from ``$``)."""
    return s.replace("$", r"\$")


def _figure(ncols: int = 1, *, width: float = 9.0, height: float = 4.2) -> tuple[Figure,
                                                                                  list[Axes]]:
    style.apply()
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center", transform=ax.transAxes,
            color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _smooth(y: np.ndarray, beta: float | None) -> np.ndarray:
    """EWA with bias correction over the finite values; non-finite entries stay NaN."""
    y = np.asarray(y, dtype=np.float64)
    if beta is None or y.size == 0:
        return y
    out = np.full_like(y, np.nan)
    finite = np.isfinite(y)
    if finite.any():
        out[finite] = ewa(y[finite], beta, bias_correction=True)
    return out


def _aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]], band: Band, *,
               log: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and band of several (x, y) series on the union of their x (each seed interpolated
    within its own range, NaN outside). With ``log`` the mean and std are of log10 y (a
    geometric mean, for positive series shown on a log axis, and the std band is ×/÷ the
    geometric std)."""
    xs = np.unique(np.concatenate([x for x, _ in series])) if series else np.array([])
    if xs.size == 0:
        empty = np.array([])
        return empty, empty, empty, empty
    grid = np.full((len(series), xs.size), np.nan)
    for i, (x, y) in enumerate(series):
        keep = np.isfinite(y)
        if log:
            keep &= y > 0
        if not keep.any():
            continue
        xk, yk = x[keep], (np.log10(y[keep]) if log else y[keep])
        inside = (xs >= xk.min()) & (xs <= xk.max())
        grid[i, inside] = np.interp(xs[inside], xk, yk)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean of empty slice
        mean = np.nanmean(grid, axis=0)
        if band == "std":
            n = np.sum(np.isfinite(grid), axis=0)
            std = np.where(n > 1, np.nanstd(grid, axis=0, ddof=1), 0.0)
            low, high = mean - std, mean + std
        else:
            low, high = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
    if log:
        mean, low, high = 10.0**mean, 10.0**low, 10.0**high
    return xs, mean, low, high


def _draw(ax: Axes, xs: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, *,
          color: str, label: str | None, linestyle: str = "-", seeds: int = 1) -> bool:
    ok = np.isfinite(mean)
    if not ok.any():
        return False
    ax.plot(xs[ok], mean[ok], color=color, linestyle=linestyle, linewidth=1.8, label=label,
            marker="o" if ok.sum() <= 12 else None, markersize=3)
    if seeds > 1:
        both = ok & np.isfinite(low) & np.isfinite(high)
        ax.fill_between(xs[both], low[both], high[both], color=color, alpha=0.15, linewidth=0)
    return True


def _epoch_series(runs: Mapping[int, Mapping[str, Any]], key: str,
                  smooth: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for run in runs.values():
        records = [e for e in run.get("epochs", []) if key in e]
        if records:
            x = np.array([float(e["epoch"]) + 1.0 for e in records])
            y = np.array([_float(e[key]) for e in records])
            out.append((x, _smooth(y, smooth)))
    return out


def _step_series(runs: Mapping[int, Mapping[str, Any]], key: str,
                 smooth: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for run in runs.values():
        steps = run.get("steps") or {}
        if steps.get("step") and steps.get(key):
            x = np.asarray(steps["step"], dtype=np.float64)
            y = np.array([_float(v) for v in steps[key]])
            out.append((x, _smooth(y, smooth)))
    return out


def _float(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else math.nan


def _smooth_note(smooth: float | None) -> str:
    return f" (EWA-smoothed, β = {smooth:g})" if smooth is not None else ""


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def _integer_x(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _plain_log_y(ax: Axes) -> None:
    """Log y axis with plain tick labels (0.4, 1, 2) when it spans under three decades."""
    low, high = ax.get_ylim()
    if low > 0 and high / low < 1e3:
        fmt = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if f"{v:.1g}"[0] in "1235" else ""))


def _all_positive(ax: Axes) -> bool:
    """Whether every line drawn on ``ax`` has only positive finite values (a log axis fits)."""
    ys = [np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.get_lines()]
    ys = [y[np.isfinite(y)] for y in ys]
    return bool(ys) and all(y.size == 0 or bool(np.all(y > 0)) for y in ys)


def _check_beta(smooth: float | None) -> None:
    if smooth is not None and not (0.0 <= smooth < 1.0):
        raise ValueError(f"smooth must be an EWA β in [0, 1); got {smooth!r}")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def learning_curves(curves: Curves, *, metric: str, band: Band = "minmax",
                    smooth: float | None = None, title: str | None = None) -> Figure:
    """Train (dashed) and validation (solid) loss, and the same for ``metric`` (e.g.
    ``"val_accuracy"``; its train/val pair is plotted), against the epoch — one line per
    configuration, the mean across seeds, with a band (``band``) across seeds.

    A loss ``metric`` gives a single loss panel. Accuracy-like metrics are shown in percent.
    """
    _check_beta(smooth)
    base = metric.removeprefix("val_").removeprefix("train_").removeprefix("test_")
    panels = ["loss"] if base == "loss" else ["loss", base]
    fig, axes = _figure(len(panels), width=11.0 if len(panels) == 2 else 9.0, height=4.3)
    palette = colors(list(curves))
    for ax, name in zip(axes, panels, strict=True):
        values = [_float(e.get(f"{split}_{name}")) for runs in curves.values()
                  for run in runs.values() for e in run.get("epochs", [])
                  for split in ("train", "val")]
        percent = name != "loss" and is_proportion_metric(name, values)
        scale = 100.0 if percent else 1.0
        drawn = False
        for label, runs in curves.items():
            for split, ls in (("val", "-"), ("train", "--")):
                series = _epoch_series(runs, f"{split}_{name}", smooth)
                series = [(x, y * scale) for x, y in series]
                xs, mean, low, high = _aggregate(series, band)
                drawn |= _draw(ax, xs, mean, low, high, color=palette[label],
                               label=_text(label) if split == "val" else None, linestyle=ls,
                               seeds=len(series))
        if not drawn:
            _no_data(ax, metric_words(name))
            continue
        unit = " (%)" if percent else (" (mean per example)" if name == "loss" else "")
        if name == "loss" and _all_positive(ax):
            ax.set_yscale("log")
            _plain_log_y(ax)
            unit += ", log scale"
        ax.set_xlabel("epoch (passes over the training data)")
        ax.set_ylabel(metric_words(name) + unit)
        ax.set_title(f"{_capital(metric_words(name))} by epoch{_smooth_note(smooth)}")
        _integer_x(ax)
    # one legend: configurations by colour, splits by line style
    handles, labels = next((h for h in (ax.get_legend_handles_labels() for ax in axes) if h[0]),
                           ([], []))
    handles += [Line2D([], [], color="#333333", linestyle="-", label="validation"),
                Line2D([], [], color="#333333", linestyle="--", label="train")]
    labels += ["validation", "train"]
    legend_outside(axes[-1], handles, labels)
    if title:
        fig.suptitle(_text(title))
    return fig


def learning_rate(curves: Curves, *, title: str | None = None) -> Figure:
    """The learning rate at each optimizer step, one line per configuration (mean across
    seeds; schedules are the same for every seed). Log scale when it spans over a decade."""
    fig, (ax,) = _figure()
    palette = colors(list(curves))
    drawn, peaks = False, []
    n = len(curves)
    for i, (label, runs) in enumerate(curves.items()):
        series = _step_series(runs, "lr", None)
        xs, mean, _, _ = _aggregate(series, "minmax")
        ok = np.isfinite(mean)
        if not ok.any():
            continue
        drawn = True
        # earlier lines wider, so configurations sharing a schedule stay visible
        ax.plot(xs[ok], mean[ok], color=palette[label], label=_text(label),
                linewidth=1.5 + 2.0 * (n - 1 - i) / max(1, n - 1), alpha=0.9)
        if np.nanmax(mean) > 0:
            peaks.append(float(np.nanmax(mean)))
    if not drawn:
        _no_data(ax, "learning rate")
    else:
        if peaks and max(peaks) / min(peaks) > 10.0:
            # configurations on different scales: log axis, down to 1/100 of the lowest peak
            # (a warmup from 0 or a decay to 0 would otherwise stretch it over many decades)
            ax.set_yscale("log")
            ax.set_ylim(min(peaks) / 100.0, max(peaks) * 2.0)
            _plain_log_y(ax)
        else:
            ax.set_ylim(0, max(peaks or [1.0]) * 1.1)
        ax.set_xlabel("optimizer step (updates)")
        ax.set_ylabel("learning rate (step size)")
        _integer_x(ax)
        legend_outside(ax)
    ax.set_title(_text(title or "Learning rate over steps"))
    return fig


def final_metric(ranking: Sequence[RankedEntry], *, metric: str, baseline: str | None = None,
                 per_seed: Mapping[str, Mapping[int, float]] | None = None,
                 title: str | None = None) -> Figure:
    """The final ``metric`` of each configuration: a dot at the mean with its confidence
    interval as a bar, the seeds as small open circles (equal values stacked) and each
    non-finite seed (diverged or failed) as a red × at the left edge; listed in ranking order
    with the rank in the tick label ("#—" without a rank), the baseline marked "(baseline)"
    with a dotted line at its mean."""
    entries = list(ranking)
    fig, (ax,) = _figure(height=max(2.4, 0.55 * len(entries) + 1.6))
    palette = colors([e.label for e in entries])
    values = [e.summary.mean for e in entries]
    if per_seed:
        values += [v for seeds in per_seed.values() for v in seeds.values()]
    percent = is_proportion_metric(metric, values)
    scale = 100.0 if percent else 1.0
    if not entries or not any(math.isfinite(e.summary.mean) for e in entries):
        _no_data(ax, metric_words(metric))
        ax.set_title(_text(title or f"Final {metric_words(metric)}"))
        return fig
    finite_all = [v * scale for v in values if isinstance(v, int | float) and math.isfinite(v)]
    span = (max(finite_all) - min(finite_all)) or max(1e-3, abs(finite_all[0]) * 0.01)
    left = min(finite_all) - 0.08 * span
    n = len(entries)
    failed_any = False
    for i, e in enumerate(entries):
        y = n - 1 - i
        s = e.summary
        c = palette[e.label]
        if per_seed and e.label in per_seed:
            raw = list(per_seed[e.label].values())
            pts = np.array([v for v in raw if math.isfinite(v)]) * scale
            # seeds with the same value are stacked downwards, so each one shows
            seen: dict[float, int] = {}
            ys = []
            for v in np.round(pts, 9):
                k = seen.get(float(v), 0)
                seen[float(v)] = k + 1
                ys.append(y - 0.14 - 0.1 * min(k, 3))
            ax.scatter(pts, ys, s=14, facecolors="none", edgecolors=c, linewidths=1.0,
                       zorder=2)
            bad = sum(1 for v in raw if not math.isfinite(v))
            if bad:
                failed_any = True
                ax.scatter([left] * bad, [y - 0.14 - 0.1 * min(k, 3) for k in range(bad)],
                           marker="x", s=22, color="#b3261e", linewidths=1.2, zorder=3)
        if math.isfinite(s.ci_low) and math.isfinite(s.ci_high):
            ax.plot([s.ci_low * scale, s.ci_high * scale], [y, y], color=c, linewidth=3,
                    solid_capstyle="butt", alpha=0.8, zorder=3)
            for end in (s.ci_low, s.ci_high):
                ax.plot([end * scale] * 2, [y - 0.12, y + 0.12], color=c, linewidth=1.5,
                        zorder=3)
        if math.isfinite(s.mean):
            ax.plot(s.mean * scale, y, "o", color=c, markersize=8, markeredgecolor="white",
                    zorder=4)
        if e.label == baseline and math.isfinite(s.mean):
            ax.axvline(s.mean * scale, color="#999999", linestyle=":", linewidth=1, zorder=1)
    ticks = [f"#{e.rank if e.rank is not None else '—'} {e.label}"
             + (" (baseline)" if e.label == baseline else "") for e in entries]
    ax.set_yticks(range(n - 1, -1, -1), [_text(t) for t in ticks])
    for tick, e in zip(ax.get_yticklabels(), entries, strict=True):
        tick.set_color(palette[e.label])
        if e.label == baseline:
            tick.set_fontstyle("italic")
    ax.set_ylim(-0.7, n - 0.4)
    ax.margins(x=0.06)
    ax.grid(axis="y", visible=False)
    conf = entries[0].summary.confidence
    ax.set_xlabel(f"final {metric_words(metric)}" + (" (%)" if percent else ""))
    ax.set_title(_text(title or f"Final {metric_words(metric)}: mean and "
                                f"{conf * 100:g}% CI per configuration"))
    handles = [
        Line2D([], [], marker="o", color="#333333", linestyle="", label="mean over seeds"),
        Line2D([], [], color="#333333", linewidth=3, label=f"{conf * 100:g}% Student-t CI"),
        Line2D([], [], marker="o", markerfacecolor="none", color="#333333", linestyle="",
               markersize=4, label="one seed")]
    if failed_any:
        handles.append(Line2D([], [], marker="x", color="#b3261e", linestyle="",
                              label="diverged / failed seed"))
    legend_outside(ax, handles, [str(h.get_label()) for h in handles])
    return fig


def time_to_target(steps: Mapping[str, TargetSummary], seconds: Mapping[str, TargetSummary],
                   *, target: str = "the target", title: str | None = None) -> Figure:
    """Steps (left) and seconds (right) to reach the target: a bar per configuration at the
    median over all its seeds (never reached = slowest), the distribution-free 95% interval
    of the median as an error bar (an arrow when its upper end was never reached), each seed
    that reached it as a dot, and "k/n reached" beside it."""
    fig, axes = _figure(2, width=11.0, height=max(2.6, 0.5 * len(steps) + 1.6))
    labels = list(steps)
    palette = colors(labels)
    n = len(labels)
    for ax, data, xlabel in ((axes[0], steps, "optimizer steps (updates)"),
                             (axes[1], seconds, "seconds (training)")):
        if not data:
            _no_data(ax, "target")
            continue
        reached = [v for t in data.values() for v in t.values if math.isfinite(v)]
        top = max(reached or [1.0])
        for i, label in enumerate(labels):
            y = n - 1 - i
            t = data.get(label)
            if t is None:
                continue
            color = palette[label]
            pts = [v for v in t.values if math.isfinite(v)]
            if math.isfinite(t.median):
                ax.barh(y, t.median, color=color, alpha=0.35, height=0.6)
            if pts:
                ax.scatter(pts, [y] * len(pts), s=14, color=color, zorder=3)
            if math.isfinite(t.median_low):
                high = t.median_high if math.isfinite(t.median_high) else top * 1.25
                ax.plot([t.median_low, high], [y + 0.2, y + 0.2], color="#333333",
                        linewidth=1)
                if not math.isfinite(t.median_high):
                    ax.annotate("", xy=(top * 1.3, y + 0.2), xytext=(high, y + 0.2),
                                arrowprops={"arrowstyle": "->", "color": "#333333"})
            text = (f"{t.reached}/{t.n} reached" if t.reached else f"not reached (0/{t.n})")
            ax.text(top * 1.32, y, text, va="center", fontsize=8,
                    color="#333333" if t.reached else "#b00020")
        ax.set_yticks(range(n - 1, -1, -1), [_text(label) for label in labels])
        ax.set_ylim(-0.7, n - 0.4)
        ax.set_xlim(0, top * 1.75)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(xlabel)
        unit = "steps" if data is steps else "seconds"
        ax.set_title(f"{unit.capitalize()} to reach {_text(target)} (median)")
    if title:
        fig.suptitle(_text(title))
    return fig


def grad_norms(curves: Curves, *, band: Band = "minmax", smooth: float | None = None,
               title: str | None = None) -> Figure:
    """The global L2 norm of the gradient (before clipping) at each optimizer step, log scale:
    one line per configuration, the geometric mean across seeds, with a band across seeds."""
    _check_beta(smooth)
    fig, (ax,) = _figure()
    palette = colors(list(curves))
    drawn = False
    for label, runs in curves.items():
        series = _step_series(runs, "grad_norm", smooth)
        xs, mean, low, high = _aggregate(series, band, log=True)
        drawn |= _draw(ax, xs, mean, low, high, color=palette[label], label=_text(label),
                       seeds=len(series))
    if not drawn:
        _no_data(ax, "gradient norm")
    else:
        ax.set_yscale("log")
        _plain_log_y(ax)
        _integer_x(ax)
        ax.set_xlabel("optimizer step (updates)")
        ax.set_ylabel("gradient L2 norm (log scale)")
        legend_outside(ax)
    ax.set_title(_text(title or f"Gradient norm over steps{_smooth_note(smooth)}"))
    return fig
