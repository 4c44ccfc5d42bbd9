"""Optimizer paths on 2-D surfaces: the notes' pictures (zig-zags across a ravine, a ball rolling
through a plateau), computed.

:func:`run_paths` starts every optimizer at the same point of a :mod:`~optimlab.viz.surfaces`
surface, follows the autograd gradient for ``steps`` steps and records each path with a summary:
when it came within ε (``tol``) of a minimum, where it ended, whether it diverged and, near a
saddle, when it escaped; :func:`format_table` makes a rich table of the summary.
:mod:`optimlab.viz.path_plots` draws the paths over the contours (``plot_paths``) and makes a
GIF of them (``animate_paths``).

>>> result = run_paths("ravine", ["sgd", "momentum", "adam"], steps=300)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.table import Table

import optimlab.optim as oo
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
def fmt_number(value: float | None) -> str:
    """A table cell: 3 significant digits, "—" for none, "∞" for a non-finite value."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "∞"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def format_table(result: PathResult) -> Any:
    """A ``rich.table.Table`` of the summary, one row per optimizer."""
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
        row = [run.label, fmt_number(run.hparams.get("lr"))]
        if surf.minima:
            row += [str(run.reached_step) if run.reached_step is not None else "—",
                    fmt_number(run.final_distance)]
        row += [fmt_number(run.final_loss), f"step {run.diverged_step}" if run.diverged else "no"]
        if result.saddle is not None:
            row.append(f"step {run.escape_step}" if run.escaped else "no")
        table.add_row(*row)
    return table
