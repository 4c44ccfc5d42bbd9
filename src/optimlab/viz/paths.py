"""Optimizer paths on 2-D surfaces: the notes' pictures (zig-zags across a ravine, a ball rolling
through a plateau), computed.

:func:`run_paths` starts every optimizer at the same point of a :mod:`~optimlab.viz.surfaces`
surface, follows the autograd gradient for ``steps`` steps and records each path with a summary:
when it came within ε (``tol``) of a minimum, where it ended, whether it diverged and, near a
saddle, when it escaped. :func:`plot_paths` draws the paths over the contours, :func:`animate_paths`
makes a GIF of them, :func:`format_table` a rich table of the summary.

>>> result = run_paths("ravine", ["sgd", "momentum", "adam"], steps=300)
>>> plot_paths(result, "paths.png")
PosixPath('paths.png')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimlab.viz import style
from optimlab.viz.surfaces import Surface, get_surface

#: names accepted besides those of ``optimlab.optim.available()``: "gd" is plain gradient descent
ALIASES: dict[str, str] = {"gd": "sgd"}

OptimizerSpec = tuple[str, Mapping[str, Any]]
Optimizers = Mapping[str, OptimizerSpec | str] | Sequence[str]


@dataclass
class PathRun:
    """One optimizer's path and what it achieved.

    ``path`` has one row per visited point (the start first), ``losses`` f at each. A step
    count t means "after t updates". ``reached_step``: the first step within ``tol`` of a
    minimum (``None`` if never); ``diverged_step``: the step at which the point became non-finite
    or left the divergence radius (the run stops there); ``escape_step``: the first step farther
    than the escape radius from the tracked saddle (``None`` if it never left, or if no saddle is
    tracked: then ``escaped`` is ``None`` too).
    """

    label: str
    optimizer: str
    hparams: dict[str, Any]
    path: np.ndarray
    losses: np.ndarray
    reached_step: int | None
    nearest_minimum: tuple[float, float] | None
    final_distance: float | None
    final_loss: float
    diverged: bool
    diverged_step: int | None
    escaped: bool | None
    escape_step: int | None

    @property
    def steps_run(self) -> int:
        """Updates made (fewer than asked when the run diverged)."""
        return len(self.path) - 1

    def summary(self) -> dict[str, Any]:
        """The row of the summary table, as JSON-ready values."""
        return {
            "label": self.label, "optimizer": self.optimizer, "hparams": _jsonable(self.hparams),
            "steps_run": self.steps_run, "reached_step": self.reached_step,
            "nearest_minimum": list(self.nearest_minimum) if self.nearest_minimum else None,
            "final_distance": _finite_or_none(self.final_distance),
            "final_loss": _finite_or_none(self.final_loss), "diverged": self.diverged,
            "diverged_step": self.diverged_step, "escaped": self.escaped,
            "escape_step": self.escape_step,
        }


@dataclass
class PathResult:
    """Every optimizer's :class:`PathRun` on one surface from one start."""

    surface: Surface
    start: tuple[float, float]
    steps: int
    tol: float
    escape_radius: float | None
    saddle: tuple[float, float] | None
    runs: list[PathRun] = field(default_factory=list)

    def __getitem__(self, label: str) -> PathRun:
        for run in self.runs:
            if run.label == label:
                return run
        raise KeyError(f"no run labelled {label!r}; labels: "
                       f"{', '.join(r.label for r in self.runs)}")

    def summary(self) -> dict[str, Any]:
        """The whole result as JSON-ready values (no paths)."""
        return {
            "surface": self.surface.name, "surface_params": self.surface.params,
            "formula": self.surface.formula, "start": list(self.start), "steps": self.steps,
            "tol": self.tol, "minima": [list(m) for m in self.surface.minima],
            "minimum_value": self.surface.minimum_value,
            "saddle": list(self.saddle) if self.saddle else None,
            "escape_radius": self.escape_radius,
            "runs": [run.summary() for run in self.runs],
        }


# -- running ---------------------------------------------------------------------------------------
def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


def _known_names() -> list[str]:
    import optimlab.optim as oo

    return [*oo.available(), *ALIASES]


def _describe(hparams: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in hparams.items())


def _normalize(optimizers: Optimizers) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, name, hparams)`` for each optimizer, with unique labels."""
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    if isinstance(optimizers, Mapping):
        items: list[tuple[str, Any]] = list(optimizers.items())
    else:
        items = []
        for entry in optimizers:
            if isinstance(entry, str):
                items.append((entry, entry))
            elif isinstance(entry, tuple | list) and len(entry) == 2:
                name, hp = entry
                items.append((f"{name} ({_describe(hp)})" if hp else str(name), (name, hp)))
            else:
                raise ValueError(f"optimizer entry {entry!r} must be a name or (name, hparams)")
    if not items:
        raise ValueError("give at least one optimizer")
    known = _known_names()
    out: list[tuple[str, str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for label, spec in items:
        name, hparams = (spec, {}) if isinstance(spec, str) else spec
        if not isinstance(name, str) or name.lower() not in known:
            raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(known)}")
        if not isinstance(hparams, Mapping):
            raise ValueError(f"hyperparameters of {label!r} must be a mapping; got {hparams!r}")
        seen[label] = seen.get(label, 0) + 1
        unique = label if seen[label] == 1 else f"{label} #{seen[label]}"
        out.append((unique, name.lower(), dict(hparams)))
    return out


def _check_point(name: str, point: Any) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={point!r} must be two numbers (x, y)") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name}={point!r} must be finite")
    return x, y


def run_paths(surface: Surface | str, optimizers: Optimizers,
              start: Sequence[float] | None = None, steps: int = 500, tol: float = 1e-3, *,
              lr: float | None = None, escape_radius: float | None = None,
              diverge_radius: float | None = None) -> PathResult:
    """Run every optimizer from the same start on ``surface`` and record the paths.

    ``optimizers`` is a list of names (``["sgd", "momentum", "adam"]``; ``"gd"`` is ``sgd``),
    or a dict ``{label: (name, hparams)}`` (or ``{label: name}``) to run one optimizer with
    several settings. Each runs on one float64 parameter ``w = (x, y)``:
    ``loss = f(w); loss.backward(); opt.step()``, ``steps`` times.

    ``lr`` is the learning rate of every optimizer whose hparams do not set one; by default the
    surface's ``lr`` (so that, unless told otherwise, all run at the same learning rate).
    ``tol`` is ε: a run has reached a minimum at the first step t with ‖w_t − w*‖ ≤ ε.
    A run diverges when w or f(w) is not finite or ‖w − start‖ exceeds ``diverge_radius``
    (default 1000 × the larger side of the surface's window); it stops there.
    Escape is tracked from the surface's saddle nearest the start, when the start lies within
    ``escape_radius`` (default the surface's) of it: the first step with ‖w_t − saddle‖ > r.
    """
    import optimlab.optim as oo

    surf = get_surface(surface) if isinstance(surface, str) else surface
    if not isinstance(surf, Surface):
        raise ValueError(f"surface must be a Surface or a name; got {surface!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol={tol!r} must be a number > 0")
    if lr is not None and not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a number > 0")
    origin = _check_point("start", surf.start if start is None else start)
    specs = _normalize(optimizers)

    (x0, x1), (y0, y1) = surf.bounds
    radius = diverge_radius if diverge_radius is not None else 1e3 * max(x1 - x0, y1 - y0)
    minima = np.asarray(surf.minima, dtype=np.float64).reshape(-1, 2)

    saddle: tuple[float, float] | None = None
    r_escape = escape_radius if escape_radius is not None else surf.escape_radius
    if surf.saddles and r_escape is not None:
        near = min(surf.saddles, key=lambda s: math.dist(s, origin))
        if math.dist(near, origin) < r_escape:
            saddle = near
    if saddle is None:
        r_escape = None

    result = PathResult(surf, origin, steps, float(tol), r_escape, saddle)
    for label, name, hparams in specs:
        hp = dict(hparams)
        hp.setdefault("lr", surf.lr if lr is None else lr)
        w = torch.tensor(origin, dtype=torch.float64, requires_grad=True)
        opt = oo.create(ALIASES.get(name, name), [w], **hp)
        points = [origin]
        losses: list[float] = []
        diverged_step: int | None = None
        for t in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = surf.f(w)
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):  # f overflowed at a finite point
                diverged_step = t - 1
                break
            loss.backward()
            opt.step()
            px, py = w.detach().tolist()
            point = (px, py)
            if not all(map(math.isfinite, point)):
                diverged_step = t
                break
            points.append(point)
            if math.dist(point, origin) > radius:
                diverged_step = t
                break
        if len(losses) < len(points):
            with torch.no_grad():
                losses.append(float(surf.f(w.detach())))
        result.runs.append(_summarize(label, name, hp, np.asarray(points), np.asarray(losses),
                                      minima, float(tol), diverged_step, saddle, r_escape))
    return result


def _summarize(label: str, name: str, hparams: dict[str, Any], path: np.ndarray,
               losses: np.ndarray, minima: np.ndarray, tol: float, diverged_step: int | None,
               saddle: tuple[float, float] | None, r_escape: float | None) -> PathRun:
    reached = nearest = final_distance = None
    if len(minima):
        dists = np.linalg.norm(path[:, None, :] - minima[None, :, :], axis=-1)  # (T+1, M)
        hits = np.flatnonzero(dists.min(axis=1) <= tol)
        reached = int(hits[0]) if len(hits) else None
        last = int(np.argmin(dists[-1]))
        nearest = (float(minima[last, 0]), float(minima[last, 1]))
        final_distance = float(dists[-1, last])
    escaped = escape_step = None
    if saddle is not None and r_escape is not None:
        out = np.flatnonzero(np.linalg.norm(path - np.asarray(saddle), axis=1) > r_escape)
        escape_step = int(out[0]) if len(out) else diverged_step
        escaped = escape_step is not None
    final_loss = float(losses[-1]) if len(losses) else math.nan
    return PathRun(label, name, hparams, path, losses, reached, nearest, final_distance,
                   final_loss, diverged_step is not None, diverged_step, escaped, escape_step)


# -- showing ------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "∞"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def format_table(result: PathResult) -> Any:
    """A ``rich.table.Table`` of the summary, one row per optimizer."""
    from rich.table import Table

    surf = result.surface
    x, y = result.start
    notes = []
    if surf.minima:
        notes.append(f"steps to ε: first step within ε = {result.tol:g} of a minimum")
    if result.saddle is not None:
        sx, sy = result.saddle
        notes.append(f"escaped: first step farther than r = {result.escape_radius:g} from the "
                     f"saddle ({sx:g}, {sy:g})")
    table = Table(title=f"{surf.title}: f = {surf.formula}, from ({x:.3g}, {y:.3g}), "
                        f"{result.steps} steps", caption="; ".join(notes) or None)
    table.add_column("optimizer", style="bold", overflow="fold", min_width=10)  # may wrap
    table.add_column("lr", justify="right", no_wrap=True)
    if surf.minima:
        table.add_column("steps to ε", justify="right", no_wrap=True)
        table.add_column("final dist", justify="right", no_wrap=True)
    table.add_column("final f", justify="right", no_wrap=True)
    table.add_column("diverged", no_wrap=True)
    if result.saddle is not None:
        table.add_column("escaped", no_wrap=True)
    for run in result.runs:
        row = [run.label, _fmt(run.hparams.get("lr"))]
        if surf.minima:
            row += [str(run.reached_step) if run.reached_step is not None else "—",
                    _fmt(run.final_distance)]
        row += [_fmt(run.final_loss), f"step {run.diverged_step}" if run.diverged else "no"]
        if result.saddle is not None:
            row.append(f"step {run.escape_step}" if run.escaped else "no")
        table.add_row(*row)
    return table


def _legend_label(run: PathRun, result: PathResult) -> str:
    if run.diverged:
        note = f"diverged at step {run.diverged_step}"
    elif run.reached_step is not None:
        note = f"minimum in {run.reached_step} steps"
    elif run.final_distance is not None:
        note = f"{_fmt(run.final_distance)} from a minimum"
    else:
        note = f"f = {_fmt(run.final_loss)}"
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
            import matplotlib.patches as mpatches

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
    lr = f", lr={_fmt(lrs.pop())}" if len(lrs) == 1 else ""
    return (f"{result.surface.title}: f = {result.surface.formula}\n"
            f"{result.steps} steps from ({x:.3g}, {y:.3g}){lr}, ε={result.tol:g}")


def plot_paths(result: PathResult, path: str | Path = "paths.png", *, grid: int = 240) -> Path:
    """Draw every path over the surface's contours and save the figure to ``path``.

    Contours are log-spaced above the minimum where the surface's values span decades; each
    path has its optimizer's colour (``optimlab.viz.style.color``) with a dot at its end, the
    start is a white circle and the minima gold stars. Paths too short to see (a run stalled on
    a plateau) get a zoomed inset. Returns the path written.
    """
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

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
