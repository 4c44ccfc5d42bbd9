"""Loss-landscape geometry: the loss along a line, on a plane, and along the training path.

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
- :func:`trajectory_pca` — the training path ``θ_0 … θ_T`` (recorded by
  :class:`TrajectoryRecorder`) projected on its two principal directions (Li et al., Sec. 7),
  which :func:`slice_2d` then uses, so the path is drawn on the landscape it crossed.
- :func:`sharpness` — a flatness number: the mean loss increase at radius ``r`` along
  filter-normalized directions (the notes' "sharp vs flat minima": a sharp minimum is
  "sensitive to parameter changes").

``optimlab.viz.landscape`` draws them. Parameter vectors are *flat*: one tensor ``[P]`` in the
order of ``model.parameters()`` (the layout of ``torch.nn.utils.parameters_to_vector``);
:func:`flatten_params` and :func:`unflatten` convert.

>>> d1, d2 = random_directions(model, seed=0)
>>> a, b, L = slice_2d(model, loss_fn, X, y, d1, d2, grid=51, span=1.0)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State

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


__all__ = [
    "LossFn", "Span", "TrajectoryRecorder", "Weights", "as_flat", "filter_normalize",
    "flatten_params", "line_loss", "loss_at_points", "path_extent", "random_directions",
    "sharpness", "slice_2d", "trajectory_pca", "unflatten",
]
