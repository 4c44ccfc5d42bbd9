"""Drawing optimizer paths (from :func:`optimlab.viz.paths.run_paths`): the paths over the
surface's contours (:func:`plot_paths`) and a GIF of them growing step by step
(:func:`animate_paths`).

>>> plot_paths(run_paths("ravine", ["sgd", "momentum", "adam"], steps=300), "paths.png")
PosixPath('paths.png')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import PillowWriter

from optimlab.viz import style
from optimlab.viz.paths import PathResult, PathRun, fmt_number
from optimlab.viz.surfaces import Surface


def _legend_label(run: PathRun, result: PathResult) -> str:
    if run.diverged:
        note = f"diverged at step {run.diverged_step}"
    elif run.reached_step is not None:
        note = f"minimum in {run.reached_step} steps"
    elif run.final_distance is not None:
        note = f"{fmt_number(run.final_distance)} from a minimum"
    else:
        note = f"f = {fmt_number(run.final_loss)}"
    if result.saddle is not None:
        escape = f"escaped at {run.escape_step}" if run.escaped else "did not escape"
        note = f"{escape}, {note}"
    return f"{run.label}: {note}"


def _levels(surf: Surface, z: np.ndarray, count: int = 24) -> np.ndarray:
    """Contour levels: log-spaced above the minimum for surfaces whose values span decades,
    square-spaced (evenly spaced in distance) for bowls, linear otherwise."""
    finite = z[np.isfinite(z)]
    low, high = float(finite.min()), float(finite.max())
    base = surf.minimum_value if surf.minimum_value is not None else low
    base = min(base, low)
    if high <= base:
        return np.array([base, base + 1.0])
    if surf.log_levels:
        span = high - base
        return base + np.logspace(math.log10(span) - 5, math.log10(span), count)
    if surf.minimum_value is not None:
        return base + np.linspace(0.0, 1.0, count + 1)[1:] ** 2 * (high - base)
    return np.linspace(low, high, count)


def _clip(path: np.ndarray, surf: Surface) -> np.ndarray:
    (x0, x1), (y0, y1) = surf.bounds
    wx, wy = x1 - x0, y1 - y0
    return np.column_stack([np.clip(path[:, 0], x0 - wx, x1 + wx),
                            np.clip(path[:, 1], y0 - wy, y1 + wy)])


def _styles(result: PathResult) -> list[tuple[str, str]]:
    """``(colour, linestyle)`` per run: the optimizer's colour; a new dash for a repeat."""
    dashes = ["-", "--", ":", "-."]
    used: dict[str, int] = {}
    out = []
    for run in result.runs:
        c = style.color(run.optimizer)  # the same colour as in every other optimlab plot
        out.append((c, dashes[used.get(c, 0) % len(dashes)]))
        used[c] = used.get(c, 0) + 1
    return out


Window = tuple[tuple[float, float], tuple[float, float]]


def _contours(ax: Any, surf: Surface, window: Window, grid: int, *, fill: bool,
              levels: np.ndarray | None = None) -> np.ndarray:
    """Contour ``surf`` over ``window``; returns the levels used."""
    (x0, x1), (y0, y1) = window
    xs = np.linspace(x0, x1, grid)
    ys = np.linspace(y0, y1, grid)
    xy = torch.stack(torch.meshgrid(torch.as_tensor(xs), torch.as_tensor(ys), indexing="xy"),
                     dim=-1)
    with torch.no_grad():
        z = surf.f(xy).numpy()
    if levels is None:
        levels = _levels(surf, z)
    if fill:
        ax.contourf(xs, ys, z, levels=levels, cmap="Blues", alpha=0.45, extend="both")
    # unfilled (the GIF's) lines are not antialiased: a GIF of clean 1-pixel lines is 5× smaller
    ax.contour(xs, ys, z, levels=levels, colors="#8a9bb0" if fill else "#c5cfdb",
               linewidths=0.6, alpha=0.8 if fill else 1.0, antialiased=fill)
    return levels


def _landmarks(ax: Any, result: PathResult, *, labels: bool = True) -> None:
    """Minima (gold stars), saddle points (X), the escape circle and the start (white dot)."""
    surf = result.surface
    if surf.minima:
        m = np.asarray(surf.minima)
        ax.plot(m[:, 0], m[:, 1], linestyle="none", marker="*", markersize=15,
                markerfacecolor="gold", markeredgecolor="black", zorder=5,
                label=("minimum" if len(m) == 1 else "minima") if labels else None)
    if surf.saddles:
        s = np.asarray(surf.saddles)
        ax.plot(s[:, 0], s[:, 1], linestyle="none", marker="X", markersize=9, color="#444444",
                markeredgecolor="white", zorder=5, label="saddle point" if labels else None)
        if result.saddle is not None and result.escape_radius is not None:
            ax.add_patch(mpatches.Circle(
                result.saddle, result.escape_radius, fill=False, linestyle=":",
                edgecolor="#444444", linewidth=1.0,
                label=f"escape radius r={result.escape_radius:g}" if labels else None))
    ax.plot(*result.start, linestyle="none", marker="o", markersize=9, markerfacecolor="white",
            markeredgecolor="black", markeredgewidth=1.5, zorder=6,
            label="start" if labels else None)


def _draw_surface(ax: Any, result: PathResult, grid: int, *, fill: bool = True) -> np.ndarray:
    surf = result.surface
    levels = _contours(ax, surf, surf.bounds, grid, fill=fill)
    _landmarks(ax, result)
    (x0, x1), (y0, y1) = surf.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x (parameter value)")
    ax.set_ylabel("y (parameter value)")
    ax.grid(False)
    return levels


def _widths(result: PathResult) -> list[float]:
    """Line widths, widest first: a path drawn later over the same track leaves the earlier one
    showing at its edges."""
    n = len(result.runs)
    return [1.5 + 0.5 * (n - 1 - i) for i in range(n)]


def _draw_paths(ax: Any, result: PathResult, *, labels: bool = True) -> None:
    """Each path in its colour, ending in a dot; a diverged one faint and thin (it would hide
    the others), with no end to mark."""
    for run, (c, ls), lw in zip(result.runs, _styles(result), _widths(result), strict=True):
        p = _clip(run.path, result.surface)
        ax.plot(p[:, 0], p[:, 1], color=c, linestyle=ls, linewidth=1.0 if run.diverged else lw,
                alpha=0.5 if run.diverged else 0.95, zorder=3 if run.diverged else 4,
                label=_legend_label(run, result) if labels else None)
        if not run.diverged:
            ax.plot(p[-1, 0], p[-1, 1], linestyle="none", marker="o", markersize=7, color=c,
                    markeredgecolor="black", markeredgewidth=0.8, zorder=7)


def _zoom_window(result: PathResult) -> Window | None:
    """A window around the paths too short to see at full scale (a run stuck on a plateau),
    or ``None`` when every path is long enough."""
    (x0, x1), (y0, y1) = result.surface.bounds
    span = max(x1 - x0, y1 - y0)
    short = [run.path for run in result.runs
             if not run.diverged and np.ptp(run.path, axis=0).max() < 0.03 * span]
    if not short:
        return None
    pts = np.concatenate([*short, np.asarray([result.start])])
    extent = float(np.ptp(pts, axis=0).max())
    if result.saddle is not None:
        gap = math.dist(result.saddle, result.start)
        if gap < 5 * max(extent, 1e-12) or gap < 0.03 * span:
            pts = np.concatenate([pts, np.asarray([result.saddle])])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    half = max(0.6 * float((hi - lo).max()), 1e-3 * span)
    return ((centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half))


def _emptiest_corner(result: PathResult) -> list[float]:
    """Axes-fraction rectangle ``[x, y, w, h]`` for an inset, in the corner of the window that
    holds the fewest path points and landmarks."""
    (x0, x1), (y0, y1) = result.surface.bounds
    pts = np.concatenate([_clip(run.path, result.surface) for run in result.runs]
                         + [np.asarray([*result.surface.minima, result.start]).reshape(-1, 2)])
    fx = (pts[:, 0] - x0) / (x1 - x0)
    fy = (pts[:, 1] - y0) / (y1 - y0)
    size = 0.34  # the corners leave room for the inset's own tick labels and title
    corners = [(0.1, 0.58), (0.63, 0.58), (0.1, 0.09), (0.63, 0.09)]

    def crowd(c: tuple[float, float]) -> int:
        inside = (fx >= c[0]) & (fx <= c[0] + size) & (fy >= c[1]) & (fy <= c[1] + size)
        return int(inside.sum())
    cx, cy = min(corners, key=crowd)
    return [cx, cy, size, size]


def _draw_zoom(ax: Any, result: PathResult, window: Window, levels: np.ndarray) -> None:
    inset = ax.inset_axes(_emptiest_corner(result))
    inset.set_facecolor("white")
    _contours(inset, result.surface, window, 80, fill=True, levels=levels)
    _landmarks(inset, result, labels=False)
    _draw_paths(inset, result, labels=False)
    (x0, x1), (y0, y1) = window
    inset.set_xlim(x0, x1)
    inset.set_ylim(y0, y1)
    inset.tick_params(labelsize=7)
    inset.grid(False)
    (b0, b1), _ = result.surface.bounds
    inset.set_title(f"zoom ×{(b1 - b0) / (x1 - x0):.0f}", fontsize=8)
    ax.indicate_inset_zoom(inset, edgecolor="#444444")


def _title(result: PathResult) -> str:
    x, y = result.start
    lrs = {run.hparams.get("lr") for run in result.runs}
    lr = f", lr={fmt_number(lrs.pop())}" if len(lrs) == 1 else ""
    return (f"{result.surface.title}: f = {result.surface.formula}\n"
            f"{result.steps} steps from ({x:.3g}, {y:.3g}){lr}, ε={result.tol:g}")


def plot_paths(result: PathResult, path: str | Path = "paths.png", *, grid: int = 240) -> Path:
    """Draw every path over the surface's contours and save the figure to ``path``.

    Contours are log-spaced above the minimum where the surface's values span decades; each
    path has its optimizer's colour (``optimlab.viz.style.color``) with a dot at its end, the
    start is a white circle and the minima gold stars. Paths too short to see (a run stalled on
    a plateau) get a zoomed inset. Returns the path written.
    """
    style.apply()
    fig, ax = plt.subplots(figsize=(8.0, 5.2))
    try:
        levels = _draw_surface(ax, result, grid)
        _draw_paths(ax, result)
        window = _zoom_window(result)
        if window is not None:
            _draw_zoom(ax, result, window, levels)
        ax.set_title(_title(result))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def animate_paths(result: PathResult, path: str | Path = "paths.gif", *, frames: int = 40,
                  fps: int = 10, grid: int = 120) -> Path:
    """A GIF of the paths growing step by step, written with matplotlib's ``PillowWriter``.

    The longest path is subsampled to ``frames`` evenly spaced steps (the last frame is held for
    half a second); contour lines without fill keep the file small (tens of kB).
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames={frames!r} must be an integer >= 2")
    style.apply()
    longest = max(len(run.path) for run in result.runs)
    marks = np.unique(np.linspace(0, longest - 1, frames).round().astype(int))
    marks = np.concatenate([marks, np.full(max(1, fps // 2), marks[-1])])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # frames must all have the figure's size: no "tight" cropping while grabbing them
    with plt.rc_context({"savefig.bbox": None}):
        fig, ax = plt.subplots(figsize=(7.2, 3.8), dpi=72)
        fig.subplots_adjust(left=0.09, right=0.6, bottom=0.13, top=0.9)
        try:
            _draw_surface(ax, result, grid, fill=False)
            clipped = [_clip(run.path, result.surface) for run in result.runs]
            lines, heads = [], []
            for run, (c, ls), lw in zip(result.runs, _styles(result), _widths(result),
                                        strict=True):
                (line,) = ax.plot([], [], color=c, linestyle=ls, linewidth=lw, zorder=4,
                                  label=run.label)
                (head,) = ax.plot([], [], linestyle="none", marker="o", markersize=7, color=c,
                                  markeredgecolor="black", markeredgewidth=0.8, zorder=7)
                lines.append(line)
                heads.append(head)
            fig.legend(loc="upper left", bbox_to_anchor=(0.61, 0.9), fontsize=8)
            writer = PillowWriter(fps=fps)
            with writer.saving(fig, str(out), dpi=72):
                for t in marks:
                    for p, line, head in zip(clipped, lines, heads, strict=True):
                        k = min(int(t), len(p) - 1)
                        line.set_data(p[:k + 1, 0], p[:k + 1, 1])
                        head.set_data([p[k, 0]], [p[k, 1]])
                    ax.set_title(f"{result.surface.title}: step {int(t)} of {result.steps}")
                    writer.grab_frame()
        finally:
            plt.close(fig)
    return out
