"""Gradients per layer across a study: vanishing and exploding gradients, seen at a glance.

A study with ``layer_grads = true`` records, for every trial and epoch, each layer's gradient
norm ‖g_layer‖ = √(Σ_{p in layer} ‖∇p‖²) averaged over the epoch's updates
(:class:`optimlab.train.callbacks.GradientMonitor`). :func:`layer_grad_norms` draws one panel
per configuration: epochs on x, the norm on a log axis, one line per layer coloured from the
first layer (dark) to the last (light), each the geometric mean across seeds (a layer whose
gradient is exactly 0 has no line; the panel counts such layers). Vanishing
gradients show as the first layers' lines lying decades below the last ones'; exploding ones as
lines that climb. The panels share their y axis, so configurations compare directly.

>>> per_config = {label: {seed: store.layer_grads(trial_id), ...}, ...}
>>> fig = layer_grad_norms(per_config)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimlab.viz import style

#: label → seed → per-epoch records {"epoch", "mean": {layer: norm}, "min": …, "max": …}
LayerGrads = Mapping[str, Mapping[int, Sequence[Mapping[str, Any]]]]

__all__ = ["layer_grad_norms", "layer_series"]


def layer_series(runs: Mapping[int, Sequence[Mapping[str, Any]]]
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(layers in model order, epochs, norms[layer, epoch]): the geometric mean across seeds of
    each layer's mean gradient norm per epoch (NaN where no seed has a finite positive value)."""
    layers: list[str] = []
    for records in runs.values():
        for r in records:
            for layer in r.get("mean", {}):
                if layer not in layers:
                    layers.append(layer)
    epochs = sorted({int(r["epoch"]) for records in runs.values() for r in records})
    col = {e: i for i, e in enumerate(epochs)}
    logs = np.full((len(runs), len(layers), len(epochs)), np.nan)
    for s, records in enumerate(runs.values()):
        for r in records:
            for i, layer in enumerate(layers):
                v = r.get("mean", {}).get(layer)
                if isinstance(v, int | float) and math.isfinite(v) and v > 0:
                    logs[s, i, col[int(r["epoch"])]] = math.log(v)
    with np.errstate(all="ignore"):
        counts = np.sum(np.isfinite(logs), axis=0)
        total = np.nansum(logs, axis=0)
        norms = np.where(counts > 0, np.exp(total / np.maximum(counts, 1)), np.nan)
    return layers, np.asarray(epochs, dtype=float), norms


def _always_zero(runs: Mapping[int, Sequence[Mapping[str, Any]]], layer: str) -> bool:
    values = [r.get("mean", {}).get(layer) for records in runs.values() for r in records]
    values = [v for v in values if v is not None]
    return bool(values) and all(v == 0 for v in values)


def layer_grad_norms(per_config: LayerGrads, *, ncols: int = 3) -> Figure:
    """One panel per configuration: each layer's gradient norm per epoch (log scale); a panel
    notes how many layers had a gradient of exactly 0 throughout (a log axis cannot show it)."""
    import matplotlib

    style.apply()
    labels = [label for label, runs in per_config.items() if any(runs.values())]
    n = max(1, len(labels))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols + 1.8, 3.0 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    cmap = matplotlib.colormaps["viridis"]
    drawn_any = False
    for k, ax in enumerate(axes.flat):
        if k >= len(labels):
            ax.set_visible(k < n)
            continue
        label = labels[k]
        layers, epochs, norms = layer_series(per_config[label])
        for i, layer in enumerate(layers):
            if not np.isfinite(norms[i]).any():
                continue
            shade = cmap(0.85 * i / max(1, len(layers) - 1))
            ax.plot(epochs, norms[i], color=shade, lw=1.6, marker="o" if len(epochs) < 3
                    else None, label=f"layer {layer}")
            drawn_any = True
        zero = [layer for layer in layers if _always_zero(per_config[label], layer)]
        if zero:  # a log axis cannot show 0: say so rather than draw nothing silently
            ax.text(0.02, 0.03, f"gradient exactly 0 in {len(zero)} of {len(layers)} layers",
                    transform=ax.transAxes, fontsize=8, color="#b00020")
        ax.set_yscale("log")
        ax.set_title(label.replace("$", r"\$"), fontsize=10)
        ax.set_xlabel("epoch")
        if k % ncols == 0:
            ax.set_ylabel("gradient norm per layer (log)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if not labels or not drawn_any:
        ax = axes.flat[0]
        ax.set_visible(True)
        ax.text(0.5, 0.5, "no per-layer gradient norms recorded", ha="center", va="center",
                transform=ax.transAxes, color="#666666")
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    first = next(iter(per_config[labels[0]].values()))
    names = list(first[0]["mean"]) if first else []
    handles = [Line2D([], [], color=cmap(0.85 * i / max(1, len(names) - 1)),
                                       lw=2) for i in range(len(names))]
    fig.legend(handles, [f"layer {n}" for n in names], loc="outside right upper",
               title="first → last", fontsize=8, title_fontsize=8)
    fig.suptitle("Gradient norm of each layer per epoch (mean over its updates; geometric mean "
                 "across seeds)", fontsize=11)
    return fig
