"""The plot of random restarts: every restart's validation and test value per configuration,
the one kept (chosen on validation) filled, so the spread over restarts and what the choice
is worth on test data show side by side."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimlab.lab.units import RestartSummary
from optimlab.lab.words import is_proportion_metric, metric_words
from optimlab.viz import style
from optimlab.viz.curves import colors, legend_outside

__all__ = ["restarts_figure"]


def restarts_figure(summaries: Mapping[str, RestartSummary], *, metric: str) -> Figure:
    """Left: each restart's final validation ``metric``, one row of points per configuration
    (one small cluster per unit, stacked); right: the same restarts' test values. The restart
    kept in each unit is filled, the others open; a red × marks a restart that diverged."""
    style.apply()
    labels = list(summaries)
    n = len(labels)
    fig = Figure(figsize=(11.0, max(2.6, 0.7 * n + 1.8)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    palette = colors(labels)
    values = [v for s in summaries.values() for vs in (*s.values.values(), *s.tests.values())
              for v in vs]
    percent = is_proportion_metric(metric, values)
    scale = 100.0 if percent else 1.0
    test_metric = "test_" + metric.removeprefix("val_")
    for ax, which, name in ((axes[0], "values", metric), (axes[1], "tests", test_metric)):
        finite = [v * scale for v in values if math.isfinite(v)]
        left = min(finite) if finite else 0.0
        for i, label in enumerate(labels):
            s = summaries[label]
            y0 = n - 1 - i
            per_unit = getattr(s, which)
            k = max(1, len(per_unit))
            for j, (uid, vs) in enumerate(per_unit.items()):
                y = y0 + 0.3 - 0.6 * (j + 0.5) / k
                chosen = s.chosen.get(uid)
                for r, v in enumerate(vs):
                    if not math.isfinite(v):
                        ax.plot(left, y, "x", color="#b3261e", markersize=5)
                        continue
                    kept = r == chosen
                    ax.plot(v * scale, y, "o", color=palette[label],
                            markerfacecolor=palette[label] if kept else "white",
                            markersize=6 if kept else 4.5, alpha=1.0 if kept else 0.8,
                            zorder=3 if kept else 2)
        ax.set_xlabel(metric_words(name) + (" (%)" if percent else ""))
        ax.set_title("validation: where the restart is chosen" if which == "values" else
                     "test: what the choice is worth")
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(np.arange(n - 1, -1, -1), labels)
    for tick, label in zip(axes[0].get_yticklabels(), labels, strict=True):
        tick.set_color(palette[label])
    axes[0].set_ylim(-0.6, n - 0.4)
    handles = [Line2D([], [], marker="o", linestyle="", color="#333333",
                      label="restart kept (best on validation)"),
               Line2D([], [], marker="o", linestyle="", color="#333333",
                      markerfacecolor="white", label="other restarts"),
               Line2D([], [], marker="x", linestyle="", color="#b3261e", label="diverged")]
    legend_outside(axes[1], handles, [str(h.get_label()) for h in handles])
    return fig
