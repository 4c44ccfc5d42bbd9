"""Synthetic problems, each deterministic in ``seed``.

Classification: ``moons``, ``spirals``, ``blobs`` (2-D pictures of decision boundaries) and
``cat_vs_dog`` (the course's ``1024 × 1000`` mini-batch example, with a learnable signal).
Regression: ``linear`` (true weights known) and ``ill_conditioned`` (a ravine with a chosen
condition number). Generators return ``info`` with everything needed to check a result.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.datasets import make_blobs, make_moons

from optimlab._checks import check_number
from optimlab.data.dataset import Dataset


def _names(d: int) -> list[str]:
    return [f"x{i}" for i in range(d)]


def moons(n: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn ``make_moons``) plus Gaussian ``noise``."""
    check_number("n", n, low=2, integer=True)
    check_number("noise", noise, low=0)
    X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return Dataset(X, y, "binary", 2, "moons", _names(2), {"seed": seed, "noise": noise})


def spirals(
    n: int = 1000, k: int = 3, noise: float = 0.2, turns: float = 1.0, seed: int = 0
) -> Dataset:
    """``k`` interleaved spiral arms in the plane, one class per arm.

    Arm ``j`` has radius ``r ∈ [0.05, 1]`` and angle ``θ = 2πj/k + 2π·turns·r + noise·ε``,
    ``ε ~ N(0, 1)``; the point is ``r·(cos θ, sin θ)``. Samples are split as evenly as possible
    between the arms. Not linearly separable: a test that a network learns curved boundaries.
    """
    check_number("n", n, low=2, integer=True)
    check_number("k", k, low=2, integer=True)
    check_number("noise", noise, low=0)
    check_number("turns", turns, low=0, low_open=True)
    rng = np.random.default_rng(seed)
    counts = [n // k + (j < n % k) for j in range(k)]
    xs, ys = [], []
    for j, m in enumerate(counts):
        r = np.linspace(0.05, 1.0, m)
        theta = 2 * np.pi * j / k + 2 * np.pi * turns * r + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        ys.append(np.full(m, j))
    X, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(n)
    task = "binary" if k == 2 else "multiclass"
    return Dataset(X[order], y[order], task, k, "spirals", _names(2),
                   {"seed": seed, "noise": noise, "turns": turns})


def blobs(
    n: int = 1000,
    centers: int = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """Isotropic Gaussian clusters (scikit-learn ``make_blobs``), one class per center."""
    check_number("n", n, low=2, integer=True)
    check_number("centers", centers, low=2, integer=True)
    check_number("n_features", n_features, low=1, integer=True)
    check_number("cluster_std", cluster_std, low=0)
    X, y, c = make_blobs(n_samples=n, centers=centers, n_features=n_features,
                         cluster_std=cluster_std, random_state=seed, return_centers=True)
    task = "binary" if centers == 2 else "multiclass"
    return Dataset(X, y, task, centers, "blobs", _names(n_features),
                   {"seed": seed, "centers": torch.as_tensor(c, dtype=torch.float32)})


def cat_vs_dog(
    n: int = 1024,
    n_features: int = 1000,
    n_informative: int = 10,
    separation: float = 3.0,
    seed: int = 0,
) -> Dataset:
    """The course's cat-vs-dog problem: ``n`` "images" of ``n_features`` values, 2 classes.

    Generator: labels are balanced (``n//2`` cats = 0, the rest dogs = 1, shuffled). A random
    orthonormal basis ``U ∈ R^{d×r}`` (``r = n_informative``) spans the informative directions
    and ``w = U·1/√r`` is a unit vector spread over them (and so over all ``d`` raw features).
    Each sample is

        ``x = (2y − 1)·(separation/2)·w + ε``,   ``ε ~ N(0, I_d)``

    so the class means are ``±(separation/2)·w`` and the best possible (Bayes) accuracy is
    ``Φ(separation/2)`` (≈ 0.93 for the default 3.0). With ``n ≈ d`` a learner must estimate
    ``d`` weights from about as many samples: logistic regression reaches ≈ 0.85 on a holdout,
    close to the course's table (82–88 % validation). ``info`` holds ``directions`` (``U``),
    ``mean_direction`` (``w``) and ``bayes_accuracy``.
    """
    check_number("n", n, low=2, integer=True)
    check_number("n_features", n_features, low=1, integer=True)
    check_number("n_informative", n_informative, low=1, high=n_features, integer=True)
    check_number("separation", separation, low=0)
    gen = torch.Generator().manual_seed(seed)
    y = torch.zeros(n, dtype=torch.int64)
    y[n // 2:] = 1
    y = y[torch.randperm(n, generator=gen)]
    U, _ = torch.linalg.qr(torch.randn(n_features, n_informative, generator=gen))
    w = U.sum(dim=1) / math.sqrt(n_informative)
    sign = (2 * y - 1).to(torch.float32).unsqueeze(1)
    X = torch.randn(n, n_features, generator=gen) + sign * (separation / 2) * w
    bayes = 0.5 * (1 + math.erf(separation / 2 / math.sqrt(2)))
    info = {"seed": seed, "directions": U, "mean_direction": w, "separation": separation,
            "bayes_accuracy": bayes, "classes": ["cat", "dog"]}
    return Dataset(X, y, "binary", 2, "cat_vs_dog", None, info)


def linear(
    n: int = 1000,
    n_features: int = 10,
    noise: float = 0.1,
    bias: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Linear regression ``y = X·w + b + noise·ε`` with ``X, w, ε ~ N(0, 1)``.

    The true weights are ``info["weights"]`` (shape ``[d]``) and ``info["bias"]``; the least
    squares loss at the truth is ``noise²`` (the floor an optimizer can reach).
    """
    check_number("n", n, low=1, integer=True)
    check_number("n_features", n_features, low=1, integer=True)
    check_number("noise", noise, low=0)
    check_number("bias", bias)
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n_features, generator=gen)
    X = torch.randn(n, n_features, generator=gen)
    y = X @ w + bias + noise * torch.randn(n, generator=gen)
    return Dataset(X, y, "regression", None, "linear", _names(n_features),
                   {"seed": seed, "weights": w, "bias": bias, "noise": noise})


def ill_conditioned(
    n: int = 1000,
    n_features: int = 10,
    condition: float = 100.0,
    noise: float = 0.01,
    seed: int = 0,
) -> Dataset:
    """Linear regression whose design matrix has condition number ``condition`` — a ravine.

    ``X = √n · Q·diag(s)·Vᵀ`` with ``Q`` (``n×d``) and ``V`` (``d×d``) random orthonormal and
    ``s`` geometric from ``1`` down to ``1/condition``, so ``cond(X) = σ_max/σ_min = condition``
    and the Hessian of the mean squared error ``XᵀX/n`` has eigenvalues ``s²`` in ``[1/κ², 1]``
    with condition number ``condition²`` (``info["hessian_condition"]``). Targets are
    ``y = X·w + noise·ε``, ``w ~ N(0, 1)`` in ``info["weights"]``. Gradient descent crawls
    along the flat directions; momentum and RMS scaling help — the course's ravine picture.
    Needs ``n >= n_features``.
    """
    check_number("n_features", n_features, low=1, integer=True)
    check_number("n", n, low=n_features, integer=True)
    check_number("condition", condition, low=1)
    check_number("noise", noise, low=0)
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n_features, generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n_features, n_features, generator=gen,
                                       dtype=torch.float64))
    s = torch.logspace(0, -math.log10(condition), n_features, dtype=torch.float64)
    X = math.sqrt(n) * (Q * s) @ V.T
    w = torch.randn(n_features, generator=gen, dtype=torch.float64)
    y = X @ w + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    info = {"seed": seed, "weights": w.float(), "condition": condition,
            "hessian_condition": condition**2, "singular_values": (math.sqrt(n) * s).float(),
            "noise": noise}
    return Dataset(X.float(), y.float(), "regression", None, "ill_conditioned",
                   _names(n_features), info)
