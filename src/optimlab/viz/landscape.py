"""Loss-landscape plots, and the figures of a trained model's landscape.

The geometry — lines, slices, the path's PCA plane, sharpness — is computed by
:mod:`optimlab.train.landscape`; this module draws it.

- :func:`plot_line`, :func:`plot_slice`, :func:`plot_sharp_vs_flat` draw one view each;
- :func:`path_landscape` (a trained model and its recorded path), :func:`weights_landscape`
  (weights alone, e.g. a checkpoint's) and :func:`trial_landscape` (a trial of a lab study,
  replayed by :func:`optimlab.lab.replay.replay_trial`) return a :class:`Landscape`: the
  figures and the numbers measured. Viz draws; it does not train: ``optimlab landscape``
  trains its quick models itself and the lab replays a stored trial.

>>> plot_slice(a, b, L).savefig("slice.png")
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, ScalarFormatter
from torch import Tensor, nn

from optimlab._checks import check_number
from optimlab.lab.replay import find_trial, replay_trial
from optimlab.lab.runner import prepare_data
from optimlab.train.landscape import (
    LossFn,
    TrajectoryRecorder,
    flatten_params,
    line_loss,
    loss_at_points,
    path_extent,
    random_directions,
    sharpness,
    slice_2d,
    trajectory_pca,
)
from optimlab.viz import style


# ---------------------------------------------------------------------------- plots
def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, Tensor) else np.asarray(t, float)


def _norm(losses: np.ndarray, vmin: float | None, vmax: float | None, log: bool
          ) -> tuple[Normalize, np.ndarray]:
    finite = losses[np.isfinite(losses)]
    lo = float(finite.min()) if vmin is None else vmin
    hi = float(finite.max()) if vmax is None else vmax
    if log:
        lo = max(lo, 1e-6)
        hi = max(hi, lo * 1.0001)
        return LogNorm(lo, hi), np.geomspace(lo, hi, 25)
    hi = max(hi, lo + 1e-12)
    return Normalize(lo, hi), np.linspace(lo, hi, 25)


def _draw_slice(ax: plt.Axes, a: Any, b: Any, losses: Any, *, path: Any = None,
                vmin: float | None = None, vmax: float | None = None, log: bool = True,
                xlabel: str, ylabel: str, title: str | None, lines: bool = True,
                center_label: str = "end (final weights)") -> Any:
    A, B, L = _np(a), _np(b), _np(losses)
    norm, levels = _norm(L, vmin, vmax, log)
    Lc = np.clip(L, levels[0], levels[-1])
    cs = ax.contourf(A, B, Lc, levels=levels, norm=norm, cmap="viridis", extend="neither")
    if lines:
        ax.contour(A, B, Lc, levels=levels[::3], norm=norm, colors="white", linewidths=0.5,
                   alpha=0.6)
    ax.grid(False)
    if path is not None:
        P = _np(path)
        ax.plot(P[:, 0], P[:, 1], color="#d55e00", lw=1.6, marker=".", ms=3,
                label="training path")
        ax.plot(P[0, 0], P[0, 1], "o", color="white", mec="black", ms=8, label="start (init)")
    ax.plot(0, 0, "*", color="#e69f00", mec="black", ms=14, label=center_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", frameon=True, framealpha=0.85)
    return cs


def _loss_axis(ax: plt.Axes, values: np.ndarray, log: bool) -> None:
    """A loss y axis: log scale when asked and the values span at least a decade."""
    finite = values[np.isfinite(values) & (values > 0)]
    log = log and finite.size > 0 and float(finite.max()) / float(finite.min()) >= 10
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))


def plot_line(alphas: Any, losses: Any | Mapping[str, Any], *, ax: plt.Axes | None = None,
              title: str | None = "Loss along the line from initial to final weights",
              log: bool = True) -> Figure:
    """Loss against α on ``θ(α) = (1 − α)·θ₀ + α·θ₁``; ``losses`` is one curve or
    ``{label: curve}`` (e.g. train and validation). The initial (α=0) and final (α=1) weights
    are marked. ``log``: a log loss axis when the curves span at least a decade."""
    style.apply()
    fig = ax.figure if ax is not None else plt.figure()
    ax = ax if ax is not None else fig.add_subplot()
    curves = dict(losses) if isinstance(losses, Mapping) else {"loss": losses}
    A = _np(alphas)
    for label, curve in curves.items():
        L = _np(curve)
        ax.plot(A, L, lw=2, label=label, color=style.color(label))
        for alpha, name, mk in ((0.0, "initial θ₀", "o"), (1.0, "final θ₁", "*")):
            if A.min() <= alpha <= A.max():
                ax.plot(alpha, np.interp(alpha, A, L), mk, color=style.color(label),
                        mec="black", ms=9 if mk == "o" else 13,
                        label=name if label == next(iter(curves)) else None)
    for alpha in (0.0, 1.0):
        ax.axvline(alpha, color="gray", lw=0.8, ls="--")
    _loss_axis(ax, np.concatenate([_np(c).ravel() for c in curves.values()]), log)
    ax.set_xlabel("α   (θ(α) = (1 − α)·θ₀ + α·θ₁)")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_slice(a: Any, b: Any, losses: Any, *, path: Any = None, ax: plt.Axes | None = None,
               xlabel: str = "direction 1 (filter-normalized)",
               ylabel: str = "direction 2 (filter-normalized)",
               title: str | None = "Loss around the final weights", log: bool = True,
               vmin: float | None = None, vmax: float | None = None) -> Figure:
    """Filled contours of a :func:`slice_2d` result (log colour scale by default), the final
    weights (origin) marked with a star and, if given, the projected training ``path``
    ``[T, 2]`` (from :func:`trajectory_pca`) with its start marked; colorbar labelled "loss"."""
    style.apply()
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 5.2))
    ax = ax if ax is not None else fig.add_subplot()
    cs = _draw_slice(ax, a, b, losses, path=path, vmin=vmin, vmax=vmax, log=log, xlabel=xlabel,
                     ylabel=ylabel, title=title)
    _colorbar(fig, cs, ax, log)
    return fig


def _colorbar(fig: Figure, cs: Any, ax: Any, log: bool) -> None:
    cb = fig.colorbar(cs, ax=ax)
    cb.set_label("loss" + (" (log scale)" if log else ""))
    if log:
        lo, hi = float(cs.norm.vmin), float(cs.norm.vmax)
        if hi / lo < 10:   # less than a decade: evenly spaced round numbers read better
            ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
            cb.locator = FixedLocator(ticks)
        else:
            cb.locator = LogLocator(subs=(1.0, 2.0, 5.0))
        cb.formatter = ScalarFormatter()
        cb.update_ticks()


def plot_sharp_vs_flat(small_batch_model: nn.Module, large_batch_model: nn.Module,
                       loss_fn: LossFn, X: Tensor, y: Tensor, *, small_batch_size: int,
                       large_batch_size: int, grid: int = 31, span: float = 1.0,
                       seed: int = 0, radius: float = 0.1, points: int = 51,
                       notes: Mapping[str, str] | None = None) -> Figure:
    """The notes' "sharp vs flat minima" picture, measured: for a small-batch and a large-batch
    model, the loss on the plane ``θ* + a·d₁ + b·d₂`` of filter-normalized random directions
    (same seed, so matching Gaussian draws) side by side on one shared colour scale, and the
    1-D loss ``L(θ* + a·d₁)`` of both on one axis. Titles give the batch sizes and the
    :func:`sharpness` proxy at ``radius``; ``notes`` adds a line per model (keys ``"small"``,
    ``"large"``, e.g. the validation accuracy)."""
    style.apply()
    views = []
    for label, model, bs in (("small", small_batch_model, small_batch_size),
                             ("large", large_batch_model, large_batch_size)):
        d1, d2 = random_directions(model, seed=seed)
        a, b, L = slice_2d(model, loss_fn, X, y, d1, d2, grid=grid, span=span)
        alphas = torch.linspace(-span, span, points, dtype=torch.float64)
        theta = flatten_params(model)
        line = loss_at_points(model, loss_fn, X, y,
                              theta + alphas[:, None].to(theta.device, theta.dtype) * d1)
        sharp = sharpness(model, loss_fn, X, y, radius=radius, seed=seed)
        views.append((label, bs, a, b, L, alphas, line, sharp))
    allL = np.concatenate([_np(v[4]).ravel() for v in views])
    vmin, vmax = float(np.nanmin(allL)), float(np.nanmax(allL[np.isfinite(allL)]))
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.0), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.15]})
    fig.get_layout_engine().set(wspace=0.06)
    cs = None
    for ax, (label, bs, a, b, L, _, _, sharp) in zip(axes[:2], views, strict=True):
        extra = f"\n{notes[label]}" if notes and label in notes else ""
        cs = _draw_slice(ax, a, b, L, vmin=vmin, vmax=vmax, log=True,
                         xlabel="direction 1 (filter-normalized)",
                         ylabel="direction 2 (filter-normalized)",
                         title=f"{label} batch, B = {bs}: sharpness "
                               f"{sharp['sharpness']:.3g} (r = {radius:g}){extra}")
        ax.title.set_fontsize(11)
    _colorbar(fig, cs, list(axes[:2]), log=True)
    ax = axes[2]
    for label, bs, *rest in views:
        alphas, line = rest[3], rest[4]
        ax.plot(_np(alphas), _np(line), lw=2, label=f"B = {bs} ({label} batch)",
                color="#0072b2" if label == "small" else "#d55e00")
    for r in (-radius, radius):
        ax.axvline(r, color="gray", lw=0.8, ls="--")
    _loss_axis(ax, np.concatenate([_np(v[6]).ravel() for v in views]), log=True)
    ax.set_xlabel("a: step along direction 1 (filter-normalized; 1 = size of the weights)")
    ax.set_title(f"1-D cut L(θ* + a·d₁) of both models\n(dashed: a = ±r = ±{radius:g}, the "
                 "radius of the sharpness proxy)", fontsize=11)
    ax.legend(loc="upper center")
    fig.suptitle("Sharp vs flat minima: small vs large batch — training loss around each "
                 "model's final weights θ*\n(sharpness = mean loss increase at radius r along "
                 "filter-normalized random directions; same seed for both)", fontsize=12)
    return fig


# ---------------------------------------------------------------------------- figures
@dataclass
class Landscape:
    """The figures of a model's loss landscape (file stem → Figure: ``landscape_line``,
    ``landscape_slice``, ``sharp_vs_flat``) and the numbers measured on the way."""

    figures: dict[str, Figure] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> list[Path]:
        """Write each figure to ``<folder>/<name>.png`` and close it; return the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fig in self.figures.items():
            path = folder / f"{name}.png"
            fig.savefig(path)
            plt.close(fig)
            paths.append(path)
        return paths

    def close(self) -> None:
        for fig in self.figures.values():
            plt.close(fig)

    def to_json(self, files: Sequence[Path] = ()) -> str:
        return json.dumps({"files": [str(f) for f in files], "numbers": self.numbers},
                          indent=2, default=float)


def describe(spec: Any) -> str:
    """A model spec in a few words (``mlp [128]``)."""
    if isinstance(spec, Mapping):
        kind = spec.get("type", "mlp")
        hidden = spec.get("hidden")
        return f"{kind} {list(hidden)}" if hidden is not None else str(kind)
    return str(spec)


def epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def path_landscape(model: nn.Module, loss_fn: LossFn, split: Any, path: Sequence[Tensor], *,
                   grid: int = 51, span: float = 1.0, seed: int = 0, radius: float = 0.1,
                   title: str = "") -> Landscape:
    """The landscape of a trained ``model`` and the ``path`` of weights it took (from a
    ``TrajectoryRecorder``: first the initial weights, last the final ones):

    - ``landscape_line``: train (and validation) loss along θ(α) = (1 − α)·θ₀ + α·θ₁ from the
      initial θ₀ to the final θ₁, α ∈ [−0.25, 1.25];
    - ``landscape_slice``: the training loss on the path's PCA plane with the path drawn (left),
      and on a plane of filter-normalized random directions, a, b ∈ [−span, span] (right),
      ``grid × grid`` points each, with the :func:`sharpness` proxy at ``radius``.

    ``title`` describes the model and its training (for the figure titles).
    """
    check_number("grid", grid, low=2, integer=True)
    train = split.train
    X, y = train.X, train.y
    out = Landscape()
    nums = out.numbers
    style.apply()
    theta0, theta1 = path[0], path[-1]
    curves = {}
    alphas, curves["train"] = line_loss(model, loss_fn, X, y, theta0, theta1)
    if split.val is not None:
        _, curves["validation"] = line_loss(model, loss_fn, split.val.X, split.val.y, theta0,
                                            theta1)
    out.figures["landscape_line"] = plot_line(
        alphas, curves, title=f"Loss from initial (α=0) to final (α=1) weights\n{title}")
    L_init = float(curves["train"][alphas == 0.0][0])
    L_final = float(curves["train"][alphas == 1.0][0])
    inside = float(curves["train"][(alphas >= 0) & (alphas <= 1)].max())
    nums.update({"line_loss_init": L_init, "line_loss_final": L_final,
                 # Goodfellow et al.: no bump between start and end ⇒ barrier 0
                 "line_barrier": inside - max(L_init, L_final)})
    coords, dirs, explained = trajectory_pca(path)
    box = path_extent(coords, margin=0.2, scale=span)
    t0 = time.perf_counter()
    a, b, L = slice_2d(model, loss_fn, X, y, dirs[0], dirs[1], grid=grid, span=box)
    nums["slice_seconds"] = round(time.perf_counter() - t0, 3)
    nums["pca_explained_variance"] = [round(float(v), 4) for v in explained]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    cs = _draw_slice(axes[0], a, b, L, path=coords,
                     xlabel=f"PCA direction 1 of the path ({100 * float(explained[0]):.1f}% "
                            "of its variance; parameter units)",
                     ylabel=f"PCA direction 2 ({100 * float(explained[1]):.1f}%; "
                            "parameter units)",
                     title="Training path on its PCA plane")
    _colorbar(fig, cs, axes[0], log=True)
    _random_slice_panel(fig, axes[1], model, loss_fn, X, y, grid, span, seed, radius, nums)
    fig.suptitle(f"Training-loss landscape: {title}", fontsize=13, y=1.01)
    fig.tight_layout()
    out.figures["landscape_slice"] = fig
    return out


def weights_landscape(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, *,
                      grid: int = 51, span: float = 1.0, seed: int = 0, radius: float = 0.1,
                      title: str = "", center_label: str = "checkpoint weights") -> Landscape:
    """``landscape_slice`` alone: the loss around the model's weights on a plane of
    filter-normalized random directions (for weights without a recorded path, such as a
    checkpoint's), with the :func:`sharpness` proxy at ``radius``."""
    check_number("grid", grid, low=2, integer=True)
    style.apply()
    out = Landscape()
    fig = plt.figure(figsize=(7.2, 5.6))
    ax = fig.add_subplot()
    _random_slice_panel(fig, ax, model, loss_fn, X, y, grid, span, seed, radius, out.numbers,
                        center_label=center_label)
    fig.suptitle(title, fontsize=12, y=1.02)
    out.figures["landscape_slice"] = fig
    return out


def trial_landscape(store: Any, study: str | None = None, label: str | None = None,
                    seed: int = 0, *, grid: int = 51, span: float = 1.0, radius: float = 0.1,
                    max_path_points: int = 200) -> Landscape:
    """The landscape of a stored trial of a lab study: the trial ``(label, seed)`` is trained
    again from the store (:func:`optimlab.lab.replay.replay_trial`; on the CPU the very weights
    the study produced — ``numbers["reproduces_store"]`` checks the final metric against the
    store), recording its path, and drawn as by :func:`path_landscape`."""
    check_number("max_path_points", max_path_points, low=2, integer=True)
    spec, row = find_trial(store, study, label, seed)
    settings = row.config
    epochs = settings["epochs"] or 1
    split = prepare_data(spec.data)
    batch_size = settings["batch_size"] or len(split.train)
    steps_per_epoch = math.ceil(len(split.train) / batch_size)
    rec = TrajectoryRecorder(every=max(1, math.ceil(epochs * steps_per_epoch / max_path_points)))
    replay = replay_trial(store, study, row.label, row.seed, [rec])
    trainer = replay.trainer
    assert trainer.model is not None and trainer.loss_fn is not None and trainer.state
    lr = float(trainer.state.base_lrs[0])
    data = spec.data
    dataset = data.dataset or Path(data.csv or data.npz or "data").name
    title = (f"{dataset}, {describe(settings['model'])}, {settings['optimizer']} lr={lr:g}, "
             f"B={batch_size}, {epochs_text(epochs)}")
    out = path_landscape(trainer.model, trainer.loss_fn, split, rec.weights, grid=grid,
                         span=span, seed=seed, radius=radius, title=title)
    last = trainer.history.epochs[-1] if trainer.history and trainer.history.epochs else {}
    out.numbers = {
        "dataset": dataset, "train_samples": len(split.train), "grid": grid, "span": span,
        "seed": seed, "model": settings["model"], "epochs": epochs, "batch_size": batch_size,
        "optimizer": settings["optimizer"], "lr": lr,
        "train_loss": float(trainer.evaluate(split.train)["loss"]),
        "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
        "path_points": len(rec.weights),
        "study_trial": f"{row.label} (seed {row.seed})", "monitor": replay.monitor,
        "stored_final": replay.stored, "retrained_final": replay.replayed,
        "reproduces_store": replay.reproduces, **out.numbers}
    return out


def _random_slice_panel(fig: Figure, ax: plt.Axes, net: nn.Module, loss_fn: LossFn, X: Tensor,
                        y: Tensor, grid: int, span: float, seed: int, radius: float,
                        nums: dict[str, Any], title: str | None = None,
                        center_label: str = "end (final weights)") -> None:
    d1, d2 = random_directions(net, seed=seed)
    t0 = time.perf_counter()
    a, b, L = slice_2d(net, loss_fn, X, y, d1, d2, grid=grid, span=span)
    nums["random_slice_seconds"] = round(time.perf_counter() - t0, 3)
    sharp = sharpness(net, loss_fn, X, y, radius=radius, seed=seed)
    nums["loss_center"] = sharp["loss"]
    nums["sharpness"] = sharp["sharpness"]
    nums["sharpness_radius"] = radius
    cs = _draw_slice(ax, a, b, L, xlabel="direction 1 (filter-normalized; 1 = size of the "
                                         "weights)",
                     ylabel="direction 2 (filter-normalized)",
                     title=title or f"Random filter-normalized directions (Li et al. 2018)\n"
                                    f"sharpness {sharp['sharpness']:.3g} at r = {radius:g}",
                     center_label=center_label)
    _colorbar(fig, cs, ax, log=True)


__all__ = ["Landscape", "describe", "path_landscape", "plot_line", "plot_sharp_vs_flat",
           "plot_slice", "trial_landscape", "weights_landscape"]
