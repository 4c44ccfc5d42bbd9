"""One look for every plot optimlab makes: the same colour for an optimizer everywhere.

``color(name)`` gives a fixed colour to each known optimizer (and a stable one, from its name, to
any other label), so "adam" is the same orange on a path plot, a learning curve and the report.
``apply()`` sets readable defaults: a title, labelled axes and a legend are the caller's job.
"""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")  # files only: no screen here, in CI or on most servers

import matplotlib.pyplot as plt

#: fixed colours (Okabe–Ito and Tableau hues, readable for colour-blind viewers)
OPTIMIZER_COLORS: dict[str, str] = {
    "gd": "#a0a0a0", "sgd": "#3a3a3a", "momentum": "#0072b2", "nesterov": "#56b4e9",
    "adagrad": "#009e73", "rmsprop": "#cc79a7", "adam": "#e69f00", "amsgrad": "#8c564b",
    "adamw": "#d55e00", "nadam": "#7f3c8d", "adamax": "#bcbd22", "lion": "#17becf",
}
EXTRA_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def color(name: str) -> str:
    """The colour of ``name``: an optimizer's fixed colour, else one derived from the name."""
    key = name.lower().split("(")[0].split(" ")[0].strip()
    if key in OPTIMIZER_COLORS:
        return OPTIMIZER_COLORS[key]
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    return EXTRA_COLORS[digest % len(EXTRA_COLORS)]


def apply() -> None:
    """Readable defaults for every figure (size, fonts, grid)."""
    plt.rcParams.update({
        "figure.figsize": (7.0, 4.5), "figure.dpi": 110, "savefig.dpi": 110,
        "savefig.bbox": "tight", "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 12,
        "axes.labelsize": 10, "legend.fontsize": 9, "legend.frameon": False,
        "axes.spines.top": False, "axes.spines.right": False,
    })
