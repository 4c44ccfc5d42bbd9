"""Loss landscapes: the loss along a line, on a plane, and along the training path.

Every view evaluates the loss ``L(θ)`` of a model at parameter vectors ``θ`` that are not the
model's own, with the model's buffers (BatchNorm running statistics) kept as they are and the
model in eval mode (no dropout, running statistics instead of batch statistics).

- :func:`line_loss` — Goodfellow, Vinyals & Saxe (2015): the loss along the straight line from
  the initial to the final weights, ``θ(α) = (1 − α)·θ₀ + α·θ₁``.
- :func:`random_directions` — Li, Xu, Taylor, Studer & Goldstein (2018): Gaussian directions
  with *filter normalization*, ``d_{i,j} ← d_{i,j} · ‖θ_{i,j}‖ / ‖d_{i,j}‖`` for filter (row)
  ``j`` of layer ``i``, so that a step of 1 along ``d`` changes every filter by its own size and
  the pictures of two networks (with different weight scales) can be compared.
- :func:`slice_2d` — the loss on the plane ``θ(a, b) = θ* + a·d₁ + b·d₂`` around the final
  weights ``θ*``, evaluated for many grid points at once (``torch.func.vmap`` over
  ``functional_call``: one batched forward pass per chunk of grid points over all samples).
- :func:`trajectory_pca` — the training path ``θ_0 … θ_T`` projected on its two principal
  directions (Li et al., Sec. 7), which :func:`slice_2d` then uses, so the path is drawn on the
  landscape it crossed.
- :func:`sharpness` — a flatness number: the mean loss increase at radius ``r`` along
  filter-normalized directions (the notes' "sharp vs flat minima": a sharp minimum is
  "sensitive to parameter changes").
- :func:`plot_line`, :func:`plot_slice`, :func:`plot_sharp_vs_flat` draw them;
  :func:`landscape_report` trains a quick model, records its path and writes the figures (used
  by ``optimlab landscape``).

Parameter vectors are *flat*: one tensor ``[P]`` in the order of ``model.parameters()`` (the
layout of ``torch.nn.utils.parameters_to_vector``); :func:`flatten_params` and
:func:`unflatten` convert.

>>> d1, d2 = random_directions(model, seed=0)
>>> a, b, L = slice_2d(model, loss_fn, X, y, d1, d2, grid=51, span=1.0)
>>> plot_slice(a, b, L).savefig("slice.png")
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from torch import Tensor, nn

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.viz import style

LossFn = Callable[[Tensor, Tensor], Tensor]
Weights = Tensor | Mapping[str, Tensor] | nn.Module
#: a symmetric half-width, or an explicit (a_min, a_max, b_min, b_max) box
Span = float | tuple[float, float, float, float]

#: rows × (largest layer width) of activations one chunk of grid points may hold, which sets
#: how many grid points go into one forward pass: about 64 MB of float32 on the CPU (72 grid
#: points for the digits MLP: a 51² slice in about 4 s on 2 cores; smaller, cache-sized chunks are
#: a little faster on an idle machine but several times slower on a busy one), 256 MB on an
#: accelerator
_ACTIVATION_BUDGET = {"cpu": 1 << 24, "other": 1 << 26}


# ---------------------------------------------------------------------------- flat parameters
def _named_params(model: nn.Module) -> list[tuple[str, Tensor]]:
    return list(model.named_parameters())


def flatten_params(model: nn.Module) -> Tensor:
    """The model's parameters as one detached vector ``[P]`` (order of ``model.parameters()``)."""
    params = [p.detach().reshape(-1) for _, p in _named_params(model)]
    if not params:
        raise ValueError("the model has no parameters: there is no landscape to draw")
    return torch.cat(params).clone()


def unflatten(model: nn.Module, vec: Tensor) -> dict[str, Tensor]:
    """Split a flat vector ``[P]`` into ``{parameter name: tensor shaped like it}`` (views)."""
    named = _named_params(model)
    sizes = [p.numel() for _, p in named]
    total = sum(sizes)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"a parameter vector for this model has shape [{total}]; got "
                         f"{list(vec.shape)}")
    return {name: part.view(p.shape)
            for (name, p), part in zip(named, torch.split(vec, sizes), strict=True)}


def as_flat(model: nn.Module, weights: Weights) -> Tensor:
    """A flat ``[P]`` vector from a flat tensor, a ``state_dict``-like mapping or a module.

    A mapping must hold every parameter name of ``model`` (extra entries, such as BatchNorm
    buffers, are ignored)."""
    if isinstance(weights, nn.Module):
        weights = dict(weights.named_parameters())
    if isinstance(weights, Mapping):
        named = _named_params(model)
        missing = [n for n, _ in named if n not in weights]
        if missing:
            raise ValueError(f"the weights lack parameters {missing[:5]} of the model; give a "
                             "state_dict of the same architecture")
        parts = []
        for name, p in named:
            w = torch.as_tensor(weights[name])
            if w.shape != p.shape:
                raise ValueError(f"weights[{name!r}] has shape {list(w.shape)} but the model's "
                                 f"parameter has {list(p.shape)}")
            parts.append(w.detach().reshape(-1).to(p.device, p.dtype))
        return torch.cat(parts)
    vec = torch.as_tensor(weights)
    ref = flatten_params(model)
    if vec.ndim != 1 or vec.numel() != ref.numel():
        raise ValueError(f"a parameter vector for this model has shape [{ref.numel()}]; got "
                         f"{list(vec.shape)}")
    return vec.detach().to(ref.device, ref.dtype)


# ---------------------------------------------------------------------------- evaluation
def _max_width(model: nn.Module, X: Tensor) -> int:
    """Largest per-sample activation size of one forward pass (for chunk sizing)."""
    widest = [int(X[0].numel())]

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, Tensor) and out.ndim >= 1:
            widest.append(int(out[0].numel()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model(X[:1])
    finally:
        for h in handles:
            h.remove()
    return max(widest)


@torch.no_grad()
def loss_at_points(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, thetas: Tensor, *,
                   chunk_size: int | None = None, batch_size: int | None = None,
                   vectorize: bool = True) -> Tensor:
    """``L(θ_k)`` for each row ``θ_k`` of ``thetas`` ``[K, P]``, in eval mode: ``[K]``.

    The grid points are evaluated ``chunk_size`` at a time (default: as many as fit in about
    64 MB of activations on the CPU, 256 MB on an accelerator) with ``vmap(functional_call)``:
    one batched forward pass per chunk over all samples (or over sample batches of
    ``batch_size``, whose losses are averaged weighted by their sizes — exact for a mean-reduced
    ``loss_fn``). Buffers (BatchNorm running statistics) stay those of ``model``.
    ``vectorize=False`` (or a model ``vmap`` cannot trace) evaluates one grid point at a time,
    each over all samples at once.
    """
    from torch.func import functional_call, vmap

    if thetas.ndim != 2:
        raise ValueError(f"thetas must be [K, P]; got shape {list(thetas.shape)}")
    first = next(model.parameters(), None)
    if first is None:
        raise ValueError("the model has no parameters: there is no landscape to draw")
    device, dtype = first.device, first.dtype
    X, y = torch.as_tensor(X).to(device), torch.as_tensor(y).to(device)
    n = len(X)
    if n == 0:
        raise ValueError("X is empty: the loss needs at least one sample")
    if batch_size is not None:
        check_number("batch_size", batch_size, low=1, integer=True)
    bs = n if batch_size is None else min(batch_size, n)
    buffers = dict(model.named_buffers())
    named = _named_params(model)
    names = [name for name, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]

    def loss_one(theta: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        parts = torch.split(theta, sizes)
        params = {k: v.view(s) for k, v, s in zip(names, parts, shapes, strict=True)}
        return loss_fn(functional_call(model, (params, buffers), (xb,)), yb)

    was_training = model.training
    model.eval()
    try:
        if chunk_size is None:
            budget = _ACTIVATION_BUDGET["cpu" if device.type == "cpu" else "other"]
            chunk_size = max(1, budget // (bs * _max_width(model, X)))
        check_number("chunk_size", chunk_size, low=1, integer=True)
        out = torch.empty(len(thetas), dtype=torch.float64)
        batched = vmap(loss_one, in_dims=(0, None, None))
        for start in range(0, len(thetas), chunk_size):
            block = thetas[start:start + chunk_size].to(device, dtype)
            total = torch.zeros(len(block), dtype=torch.float64, device=device)
            for i in range(0, n, bs):
                xb, yb = X[i:i + bs], y[i:i + bs]
                if vectorize:
                    try:
                        values = batched(block, xb, yb)
                    except Exception as err:  # a module vmap cannot trace: go on point by point
                        warnings.warn(f"vmap could not evaluate this model ({err}); evaluating "
                                      "one grid point at a time", RuntimeWarning, stacklevel=2)
                        vectorize = False
                if not vectorize:
                    values = torch.stack([loss_one(t, xb, yb) for t in block])
                total += values.double() * len(xb)
            out[start:start + len(block)] = (total / n).cpu()
    finally:
        model.train(was_training)
    return out


def line_loss(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, theta0: Weights,
              theta1: Weights, points: int = 51,
              extend: tuple[float, float] = (-0.25, 1.25)) -> tuple[Tensor, Tensor]:
    """Loss along the line from ``θ₀`` to ``θ₁`` (Goodfellow et al., 2015):

        θ(α) = (1 − α)·θ₀ + α·θ₁,   α ∈ linspace(extend[0], extend[1], points)

    so α = 0 is ``θ₀`` (typically the initial weights) and α = 1 is ``θ₁`` (the final ones);
    α outside [0, 1] extrapolates. ``θ₀``/``θ₁`` are flat vectors, state dicts or modules;
    ``model`` gives the architecture and the buffers. Returns ``(alphas [points], losses
    [points])`` (float64). When 0 and 1 lie in ``extend``, the grid point nearest to each is
    moved onto it, so ``losses`` holds ``L(θ₀)`` and ``L(θ₁)`` exactly.
    """
    check_number("points", points, low=2, integer=True)
    lo, hi = (float(v) for v in extend)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"extend={extend!r} must be (low, high) with low < high")
    t0, t1 = as_flat(model, theta0), as_flat(model, theta1)
    alphas = torch.linspace(lo, hi, points, dtype=torch.float64)
    snapped: set[int] = set()
    for anchor in (0.0, 1.0):
        i = int(torch.argmin((alphas - anchor).abs()))
        if lo <= anchor <= hi and i not in snapped:
            alphas[i] = anchor
            snapped.add(i)
    w = alphas[:, None].to(t0.device, t0.dtype)
    thetas = (1 - w) * t0 + w * t1
    return alphas, loss_at_points(model, loss_fn, X, y, thetas)


# ---------------------------------------------------------------------------- directions
def filter_normalize(direction: Tensor, model: nn.Module,
                     bias_bn: Literal["zero", "weights"] = "zero") -> Tensor:
    """Filter normalization of Li et al. (2018) for a flat ``direction`` ``[P]``.

    For every parameter with ≥ 2 dimensions (Linear ``[out, in]``, Conv ``[out, in, k, k]``) each
    filter ``j`` — the slice ``[j]``: the weights that produce output unit / channel ``j`` — is
    rescaled to the norm of the same filter of the weights:

        d_{i,j} ← d_{i,j} · ‖θ_{i,j}‖ / ‖d_{i,j}‖

    Parameters with ≤ 1 dimension (biases, BatchNorm / LayerNorm scales and shifts) are set to
    zero (``bias_bn="zero"``, the authors' code default ``--xignore biasbn``: they are not
    perturbed) or to the weights themselves (``"weights"``, the code's other choice). A zero
    filter of the weights gives a zero filter of the direction.
    """
    check_choice("bias_bn", bias_bn, ("zero", "weights"))
    parts = unflatten(model, direction.clone())
    weights = dict(model.named_parameters())
    for name, d in parts.items():
        w = weights[name].detach().to(d.dtype)
        if d.ndim <= 1:
            d.copy_(w if bias_bn == "weights" else torch.zeros_like(d))
            continue
        d_rows, w_rows = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)
        d_norm = torch.linalg.vector_norm(d_rows, dim=1, keepdim=True)
        w_norm = torch.linalg.vector_norm(w_rows, dim=1, keepdim=True)
        scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30),
                            torch.zeros_like(d_norm))
        d.copy_((d_rows * scale).reshape(d.shape))
    return torch.cat([d.reshape(-1) for d in parts.values()])


def random_directions(model: nn.Module, seed: int = 0, filter_norm: bool = True,
                      bias_bn: Literal["zero", "weights"] = "zero") -> tuple[Tensor, Tensor]:
    """Two random directions ``(d₁, d₂)``, flat ``[P]``, drawn ``N(0, I)`` from ``seed``.

    With ``filter_norm`` each is filter-normalized (:func:`filter_normalize`; biases and norm
    parameters per ``bias_bn``), so that ``θ + a·d`` perturbs each filter by ``a`` times its own
    norm: a=1 is a change as large as the weights themselves. Without it, the raw Gaussian
    directions (every entry perturbed). The same seed gives the same Gaussian draws for every
    model of the same size, so two models are compared along matching directions.
    """
    check_number("seed", seed, low=0, integer=True)
    ref = flatten_params(model)
    gen = torch.Generator().manual_seed(int(seed))
    dirs = [torch.randn(ref.numel(), generator=gen, dtype=torch.float32).to(ref.device,
                                                                           ref.dtype)
            for _ in range(2)]
    if filter_norm:
        dirs = [filter_normalize(d, model, bias_bn) for d in dirs]
    return dirs[0], dirs[1]


def _extent(span: Span) -> tuple[float, float, float, float]:
    if isinstance(span, Sequence):
        if len(span) != 4:
            raise ValueError(f"span={span!r}: give a half-width or (a_min, a_max, b_min, b_max)")
        a0, a1, b0, b1 = (float(v) for v in span)
        if not all(math.isfinite(v) for v in (a0, a1, b0, b1)) or a0 >= a1 or b0 >= b1:
            raise ValueError(f"span={span!r}: need finite a_min < a_max and b_min < b_max")
        return a0, a1, b0, b1
    check_number("span", span, low=0.0, low_open=True)
    s = float(span)
    return -s, s, -s, s


def slice_2d(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, d1: Tensor, d2: Tensor,
             grid: int = 51, span: Span = 1.0, *, center: Weights | None = None,
             chunk_size: int | None = None, batch_size: int | None = None,
             vectorize: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """The loss on a plane through the final weights ``θ*`` (the model's, or ``center``):

        L(a, b) = L(θ* + a·d₁ + b·d₂),   a, b ∈ linspace(−span, span, grid)

    (or the box ``span = (a_min, a_max, b_min, b_max)``). ``d₁, d₂`` are flat ``[P]`` directions:
    from :func:`random_directions` (filter-normalized: ``span`` is relative to the weights'
    size) or from :func:`trajectory_pca` (unit vectors: ``span`` in parameter units). Evaluated
    in eval mode, batched over chunks of grid points (see :func:`loss_at_points`). Returns
    ``(a [grid], b [grid], losses [grid, grid])`` with ``losses[i, j] = L(a[j], b[i])`` — rows
    follow ``b``, as ``plt.contourf(a, b, losses)`` expects.
    """
    check_number("grid", grid, low=2, integer=True)
    a0, a1, b0, b1 = _extent(span)
    theta = as_flat(model, center if center is not None else model)
    d1, d2 = as_flat(model, d1), as_flat(model, d2)
    a = torch.linspace(a0, a1, grid, dtype=torch.float64)
    b = torch.linspace(b0, b1, grid, dtype=torch.float64)
    bb, aa = torch.meshgrid(b, a, indexing="ij")           # [grid, grid]: row = b, column = a
    coef = torch.stack([aa.reshape(-1), bb.reshape(-1)], dim=1).to(theta.device, theta.dtype)
    thetas = theta + coef @ torch.stack([d1, d2])
    losses = loss_at_points(model, loss_fn, X, y, thetas, chunk_size=chunk_size,
                            batch_size=batch_size, vectorize=vectorize)
    return a, b, losses.reshape(grid, grid)


# ---------------------------------------------------------------------------- trajectory
def trajectory_pca(weights: Sequence[Tensor] | Tensor,
                   center: Literal["final", "mean"] | Tensor = "final"
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Project a training path ``θ_0 … θ_{T−1}`` (flat vectors) on its two principal directions.

    With ``M = [θ_t − θ̄]_t`` (rows centred on their mean θ̄) and its SVD ``M = U S Vᵀ``, the
    directions are the first two right singular vectors ``v₁, v₂`` (unit vectors in parameter
    space) and the coordinates of each point are taken relative to ``c`` (the final weights by
    default, so the end of the path is the origin of :func:`slice_2d`'s plane):

        coords_t = ((θ_t − c)·v₁, (θ_t − c)·v₂)

    ``explained_variance`` is the *fraction* of the path's variance along each direction,
    ``s_k² / Σ s²`` (their sum is 1 for a path in a 2-D plane). Signs are fixed so that the
    start of the path has non-positive coordinates. Returns ``(coords [T, 2], directions
    [2, P], explained_variance [2])``; coords and directions in the weights' dtype.
    """
    W = torch.stack(list(weights)) if not isinstance(weights, Tensor) else weights
    if W.ndim != 2 or W.shape[0] < 2:
        raise ValueError(f"weights must be T ≥ 2 flat parameter vectors [T, P]; got shape "
                         f"{list(W.shape)}")
    W64 = W.detach().double().cpu()
    if isinstance(center, Tensor):
        c = center.detach().double().cpu().reshape(-1)
        if c.numel() != W.shape[1]:
            raise ValueError(f"center has {c.numel()} entries but the weights have "
                             f"{W.shape[1]}")
    else:
        check_choice("center", center, ("final", "mean"))
        c = W64[-1] if center == "final" else W64.mean(0)
    M = W64 - W64.mean(0)
    _, S, Vh = torch.linalg.svd(M, full_matrices=False)
    total = float((S ** 2).sum())
    if total == 0.0:
        raise ValueError("the weights never change along the path: no direction to project on")
    dirs = torch.zeros(2, W.shape[1], dtype=torch.float64)
    k = min(2, Vh.shape[0])
    dirs[:k] = Vh[:k]
    coords = (W64 - c) @ dirs.T
    for i in range(2):  # the path starts in the negative quadrant
        if coords[0, i] > 0:
            coords[:, i], dirs[i] = -coords[:, i], -dirs[i]
    explained = torch.zeros(2, dtype=torch.float64)
    explained[:k] = S[:k] ** 2 / total
    return coords.to(W.dtype), dirs.to(W.dtype).to(W.device), explained


def path_extent(coords: Tensor, margin: float = 0.2,
                scale: float = 1.0) -> tuple[float, float, float, float]:
    """A box ``(a_min, a_max, b_min, b_max)`` around a projected path (and the origin),
    widened by ``margin`` of its size on each side, then scaled by ``scale`` about its centre."""
    check_number("margin", margin, low=0.0)
    check_number("scale", scale, low=0.0, low_open=True)
    pts = torch.cat([coords.detach().double().cpu(), torch.zeros(1, 2, dtype=torch.float64)])
    lo, hi = pts.min(0).values, pts.max(0).values
    size = (hi - lo).clamp_min(1e-12)
    mid, half = (lo + hi) / 2, size / 2 * (1 + 2 * margin) * scale
    return (float(mid[0] - half[0]), float(mid[0] + half[0]),
            float(mid[1] - half[1]), float(mid[1] + half[1]))


class TrajectoryRecorder(Callback):
    """Record the flat weights ``θ_t`` (on the CPU) every ``every`` updates, plus the start.

    ``weights[0]`` is the initial state (before the first update), then every ``every``-th
    update, and the final weights are always the last entry; ``steps`` holds the update count of
    each. Memory: ``len(weights) × P`` floats.

    >>> rec = TrajectoryRecorder(every=5)
    >>> Trainer(..., callbacks=[rec]).fit(train, epochs=10)
    >>> coords, dirs, var = trajectory_pca(rec.weights)
    """

    def __init__(self, every: int = 1) -> None:
        check_number("every", every, low=1, integer=True)
        self.every = every
        self.weights: list[Tensor] = []
        self.steps: list[int] = []

    def _record(self, state: State) -> None:
        self.weights.append(flatten_params(state.model).cpu())
        self.steps.append(int(state.step))

    def on_fit_start(self, state: State) -> None:
        self.weights, self.steps = [], []
        self._record(state)

    def on_step_end(self, state: State) -> None:
        if state.step % self.every == 0:
            self._record(state)

    def on_fit_end(self, state: State) -> None:
        if not self.steps or self.steps[-1] != state.step:
            self._record(state)


# ---------------------------------------------------------------------------- sharpness
def sharpness(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, radius: float = 0.1,
              n_directions: int = 10, seed: int = 0, *,
              bias_bn: Literal["zero", "weights"] = "zero") -> dict[str, float]:
    """A sharpness proxy: the mean loss increase at radius ``r`` along filter-normalized
    random directions ``d_k`` (k = 1 … n), both ways:

        sharpness = (1/2n) Σ_k [L(θ* + r·d_k) + L(θ* − r·d_k)] − L(θ*)
                  ≈ (r²/2) · mean_k d_kᵀ H d_k        (second order; the gradient terms cancel)

    Filter normalization makes ``r`` a *relative* perturbation (each filter moved by ``r`` times
    its norm), so the number does not change when a ReLU network is rescaled without changing
    its function, and two networks can be compared. Returns ``{"loss": L(θ*), "sharpness": …,
    "radius": r, "n_directions": n}``.
    """
    check_number("radius", radius, low=0.0, low_open=True)
    check_number("n_directions", n_directions, low=1, integer=True)
    theta = flatten_params(model)
    dirs = []
    for k in range((n_directions + 1) // 2):
        dirs.extend(random_directions(model, seed=seed + k, bias_bn=bias_bn))
    D = torch.stack(dirs[:n_directions])
    thetas = torch.cat([theta[None], theta + radius * D, theta - radius * D])
    L = loss_at_points(model, loss_fn, X, y, thetas)
    center = float(L[0])
    return {"loss": center, "sharpness": float(L[1:].mean()) - center, "radius": float(radius),
            "n_directions": int(n_directions)}


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
        from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, ScalarFormatter

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


# ---------------------------------------------------------------------------- report
@dataclass
class LandscapeReport:
    """What :func:`landscape_report` wrote and measured."""

    files: list[Path] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [str(f) for f in self.files], "numbers": self.numbers}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)


def _infer_mlp_spec(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """An MLP spec (hidden widths, norm) that fits a state dict written for an optimlab MLP."""
    hidden, i = [], 0
    while f"linear{i}.weight" in state_dict:
        hidden.append(int(state_dict[f"linear{i}.weight"].shape[0]))
        i += 1
    if "output.weight" not in state_dict:
        raise ValueError("the checkpoint's model is not an optimlab MLP (no 'output.weight'); "
                         "give its spec with --model '{\"type\": ..., ...}'")
    norm = None
    if "norm0.weight" in state_dict:
        norm = "batch" if "norm0.running_mean" in state_dict else "layer"
    return {"type": "mlp", "hidden": hidden, "norm": norm}


def _train(spec: Any, split: Any, *, epochs: int, batch_size: int, seed: int, lr: float,
           optimizer: str, callbacks: Sequence[Callback] = ()) -> Any:
    from optimlab.train import Trainer

    trainer = Trainer(spec, optimizer=optimizer, lr=lr, metrics=["accuracy"],
                      callbacks=list(callbacks), seed=seed, progress=False)
    trainer.fit(split.train, split.val, epochs=epochs, batch_size=batch_size)
    return trainer


def _study_trial(db: str | Path, study: str | None, config: str | None,
                 seed: int) -> tuple[Any, Any, Any]:
    """(study spec, trial row, data split) of one finished trial in a lab store."""
    from optimlab.lab.runner import prepare_data
    from optimlab.lab.spec import parse_spec
    from optimlab.lab.store import FINISHED, Store

    with Store(db, create=False) as store:
        study_id, name, spec_data = store.study(study)
        rows = [r for r in store.trials(study_id) if r.status in FINISHED]
    labels = list(dict.fromkeys(r.label for r in rows))
    if not labels:
        raise ValueError(f"study {name!r} in {db} has no finished trial yet")
    label = labels[0] if config is None else config
    match = [r for r in rows if r.label == label and r.seed == seed]
    if not match:
        seeds = sorted({r.seed for r in rows if r.label == label})
        raise ValueError(f"study {name!r} has no finished trial {label!r} with seed {seed}; "
                         f"configurations: {', '.join(labels)}"
                         + (f"; seeds of {label!r}: {seeds}" if seeds else ""))
    lab_spec = parse_spec(spec_data)
    return lab_spec, match[0], prepare_data(lab_spec.data)


def _retrain_trial(lab_spec: Any, row: Any, split: Any, recorder: Callback,
                   nums: dict[str, Any]) -> Any:
    """Train the trial again from its stored settings, recording the path; check it matches."""
    from optimlab.lab.runner import build_trainer, monitor_for

    settings = row.config
    trainer = build_trainer(lab_spec, settings, row.seed, split, [recorder])
    trainer.fit(split.train, split.val, epochs=settings["epochs"],
                max_steps=settings["max_steps"], batch_size=settings["batch_size"],
                drop_last=settings["drop_last"])
    monitor = monitor_for(lab_spec, split.train.task)
    stored = (row.final or {}).get(monitor)
    again = trainer.history.epochs[-1].get(monitor)
    nums.update({"study_trial": f"{row.label} (seed {row.seed})", "monitor": monitor,
                 "stored_final": stored, "retrained_final": again,
                 "reproduces_store": stored == again})
    return trainer


class _StopAtTrainLoss(Callback):
    """Stop once the (eval-mode) training loss is at most ``target``."""

    def __init__(self, target: float) -> None:
        self.target = target

    def on_epoch_end(self, state: State) -> None:
        assert state.evaluate is not None
        loss = state.evaluate(state.train_data)["loss"]
        if loss <= self.target:
            state.request_stop(f"training loss {loss:.4g} reached {self.target:.4g}")


def landscape_report(dataset: str = "digits", *, grid: int = 51, span: float = 1.0,
                     epochs: int = 10, batch_size: int = 64,
                     compare_batch_sizes: Sequence[int] | None = None,
                     checkpoint: str | Path | None = None, out: str | Path = ".",
                     seed: int = 0, model: Any = None, lr: float = 1e-3,
                     optimizer: str = "adam", radius: float = 0.1,
                     max_path_points: int = 200, db: str | Path | None = None,
                     study: str | None = None, config: str | None = None,
                     trial_seed: int = 0) -> LandscapeReport:
    """Train a quick model on ``dataset`` (train split of a seeded, standardized 80/10/10
    holdout), record its path, and write into ``out``:

    - ``landscape_line.png``: train and validation loss along θ(α) = (1 − α)·θ₀ + α·θ₁, from the
      initial weights θ₀ to the final θ₁ (α ∈ [−0.25, 1.25]);
    - ``landscape_slice.png``: the training loss on the path's PCA plane with the path drawn
      (left), and on a plane of filter-normalized random directions, a, b ∈ [−span, span]
      (right), ``grid × grid`` points each;
    - ``sharp_vs_flat.png`` when ``compare_batch_sizes=(small, large)``: a model trained the same
      way at the small batch size for ``epochs`` epochs, and one at the large batch size trained
      until its training loss reaches the small-batch model's (at most as many updates), so the
      two minima are compared at equal training loss; drawn by :func:`plot_sharp_vs_flat`.

    With ``db`` (a lab store) the model is a trial of a study: the configuration labelled
    ``config`` (the first when None) with seed ``trial_seed`` of ``study`` (the latest when None)
    is trained again from its stored settings — same data split, same seed, so on the CPU the
    very weights the study produced (``numbers["reproduces_store"]`` checks the final metric
    against the store) — recording its path; ``dataset``, ``epochs``, ``batch_size``, ``lr``,
    ``optimizer`` and ``model`` come from the study.

    With ``checkpoint`` (a ``ModelCheckpoint`` file) nothing is trained: only the right-hand
    slice around its weights is drawn. ``model`` is the spec (default ``{"type": "mlp",
    "hidden": [128]}``; for a checkpoint, inferred from its weights for an optimlab MLP).
    The numbers include the loss at the centre and the :func:`sharpness` proxy at ``radius``.
    """
    from optimlab.data import holdout, load, standardize
    from optimlab.models import build_model, get_loss, n_outputs, task_defaults

    check_number("grid", grid, low=2, integer=True)
    check_number("span", span, low=0.0, low_open=True)
    check_number("epochs", epochs, low=1, integer=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_number("radius", radius, low=0.0, low_open=True)
    check_number("max_path_points", max_path_points, low=2, integer=True)
    if compare_batch_sizes is not None:
        sizes = list(compare_batch_sizes)
        if len(sizes) != 2:
            raise ValueError(f"compare_batch_sizes={sizes}: give two batch sizes, small and large")
        for s in sizes:
            check_number("compare batch size", s, low=1, integer=True)
        if sizes[0] == sizes[1]:
            raise ValueError(f"compare_batch_sizes={sizes}: the two batch sizes must differ")
        compare_batch_sizes = sorted(sizes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trial = None
    if db is not None:
        if checkpoint is not None or compare_batch_sizes is not None:
            raise ValueError("a study trial (--db) cannot be combined with --checkpoint or "
                             "--compare-batch-sizes")
        trial = _study_trial(db, study, config, trial_seed)
        lab_spec, row, split = trial
        dataset = lab_spec.data.dataset or Path(lab_spec.data.csv or lab_spec.data.npz).name
        settings = row.config
        model, optimizer = settings["model"], settings["optimizer"]
        epochs = settings["epochs"] or 1
        batch_size = settings["batch_size"] or len(split.train)
    else:
        split, _ = standardize(holdout(load(dataset), seed=seed))
    train = split.train
    X, y = train.X, train.y
    report = LandscapeReport()
    nums = report.numbers
    nums.update({"dataset": dataset, "train_samples": len(train), "grid": grid, "span": span,
                 "seed": seed})
    style.apply()

    if checkpoint is not None:
        from optimlab.train.callbacks import read_checkpoint

        state = read_checkpoint(checkpoint, history=False)["model"]
        spec = model if model is not None else _infer_mlp_spec(state)
        net = build_model(spec, tuple(train.X.shape[1:]),
                          n_outputs(train.task, train.n_classes, tuple(train.y.shape)),
                          task=train.task, seed=seed)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"the checkpoint {checkpoint} does not fit model {spec!r} on "
                             f"{dataset!r} ({str(err).splitlines()[0]}); give the model spec "
                             "it was trained with") from None
        loss_fn = get_loss(task_defaults(train.task)["loss"], train.task)
        nums["checkpoint"] = str(checkpoint)
        nums["model"] = spec
        _random_slice_figure(net, loss_fn, X, y, grid, span, seed, radius, out, report,
                             title=f"Training loss around the weights of {Path(checkpoint).name}"
                                   f" ({dataset}, {_describe(spec)})")
        return report

    spec = model if model is not None else {"type": "mlp", "hidden": [128]}
    nums["model"] = spec
    steps_per_epoch = math.ceil(len(train) / batch_size)
    every = max(1, math.ceil(epochs * steps_per_epoch / max_path_points))
    rec = TrajectoryRecorder(every=every)
    if trial is not None:
        trainer = _retrain_trial(*trial, rec, nums)
        lr = float(trainer.state.base_lrs[0])
    else:
        trainer = _train(spec, split, epochs=epochs, batch_size=batch_size, seed=seed, lr=lr,
                         optimizer=optimizer, callbacks=[rec])
    net, loss_fn = trainer.model, trainer.loss_fn
    last = trainer.history.epochs[-1]
    nums.update({"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
                 "train_loss": float(trainer.evaluate(train)["loss"]),
                 "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
                 "path_points": len(rec.weights)})

    # 1-D: initial → final
    theta0, theta1 = rec.weights[0], rec.weights[-1]
    curves = {}
    alphas, curves["train"] = line_loss(net, loss_fn, X, y, theta0, theta1)
    if split.val is not None:
        _, curves["validation"] = line_loss(net, loss_fn, split.val.X, split.val.y, theta0,
                                            theta1)
    fig = plot_line(alphas, curves, title=f"Loss from initial (α=0) to final (α=1) weights\n"
                                          f"{dataset}, {_describe(spec)}, {optimizer} "
                                          f"lr={lr:g}, B={batch_size}, {_epochs(epochs)}")
    report.files.append(_save(fig, out / "landscape_line.png"))
    L_init = float(curves["train"][alphas == 0.0][0])
    L_final = float(curves["train"][alphas == 1.0][0])
    inside = float(curves["train"][(alphas >= 0) & (alphas <= 1)].max())
    nums.update({"line_loss_init": L_init, "line_loss_final": L_final,
                 # Goodfellow et al.: no bump between start and end ⇒ barrier 0
                 "line_barrier": inside - max(L_init, L_final)})

    # 2-D: the path's PCA plane, and filter-normalized random directions
    coords, dirs, explained = trajectory_pca(rec.weights)
    box = path_extent(coords, margin=0.2, scale=span)
    t0 = time.perf_counter()
    a, b, L = slice_2d(net, loss_fn, X, y, dirs[0], dirs[1], grid=grid, span=box)
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
    _random_slice_panel(fig, axes[1], net, loss_fn, X, y, grid, span, seed, radius, nums)
    fig.suptitle(f"Training-loss landscape: {dataset}, {_describe(spec)}, {optimizer} "
                 f"lr={lr:g}, B={batch_size}, {_epochs(epochs)}", fontsize=13, y=1.01)
    fig.tight_layout()
    report.files.append(_save(fig, out / "landscape_slice.png"))

    if compare_batch_sizes is not None:
        small, large = compare_batch_sizes
        models: dict[str, nn.Module] = {}
        notes: dict[str, str] = {}
        small_tr = trainer if small == batch_size else _train(
            spec, split, epochs=epochs, batch_size=small, seed=seed, lr=lr, optimizer=optimizer)
        target = float(small_tr.evaluate(train)["loss"])
        # the large batch takes fewer updates per epoch: let it train until it reaches the
        # small-batch model's training loss (at most as many updates), so that the two minima
        # are compared at the same training loss, not a trained one against an unfinished one
        updates = small_tr.history.n_steps
        large_epochs = max(epochs, math.ceil(updates / math.ceil(len(train) / large)))
        large_tr = _train(spec, split, epochs=large_epochs, batch_size=large, seed=seed, lr=lr,
                          optimizer=optimizer, callbacks=[_StopAtTrainLoss(target)])
        for label, bs, tr in (("small", small, small_tr), ("large", large, large_tr)):
            models[label] = tr.model
            val_acc = tr.history.epochs[-1].get("val_accuracy")
            train_loss = float(tr.evaluate(train)["loss"])
            n_epochs = len(tr.history.epochs)
            notes[label] = (f"{_epochs(n_epochs)}, {tr.history.n_steps} updates; train loss "
                            f"{train_loss:.3g}"
                            + (f", val accuracy {val_acc:.3f}" if val_acc is not None else ""))
            nums[f"compare_{label}"] = {"batch_size": bs, "epochs": n_epochs,
                                        "updates": tr.history.n_steps, "train_loss": train_loss,
                                        "val_accuracy": val_acc}
        fig = plot_sharp_vs_flat(models["small"], models["large"], loss_fn, X, y,
                                 small_batch_size=small, large_batch_size=large, grid=grid,
                                 span=span, seed=seed, radius=radius, notes=notes)
        for label in ("small", "large"):
            nums[f"compare_{label}"].update(sharpness(models[label], loss_fn, X, y,
                                                      radius=radius, seed=seed))
        report.files.append(_save(fig, out / "sharp_vs_flat.png"))
    return report


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _describe(spec: Any) -> str:
    if isinstance(spec, Mapping):
        kind = spec.get("type", "mlp")
        hidden = spec.get("hidden")
        return f"{kind} {list(hidden)}" if hidden is not None else str(kind)
    return str(spec)


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


def _random_slice_figure(net: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, grid: int,
                         span: float, seed: int, radius: float, out: Path,
                         report: LandscapeReport, title: str) -> None:
    fig = plt.figure(figsize=(7.2, 5.6))
    ax = fig.add_subplot()
    _random_slice_panel(fig, ax, net, loss_fn, X, y, grid, span, seed, radius, report.numbers,
                        center_label="checkpoint weights")
    fig.suptitle(title, fontsize=12, y=1.02)
    report.files.append(_save(fig, out / "landscape_slice.png"))


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = [
    "LandscapeReport", "TrajectoryRecorder", "as_flat", "filter_normalize", "flatten_params",
    "landscape_report", "line_loss", "loss_at_points", "path_extent", "plot_line",
    "plot_sharp_vs_flat", "plot_slice", "random_directions", "sharpness", "slice_2d",
    "trajectory_pca", "unflatten",
]
