"""Mini-batch gradient noise, measured on a real dataset (004, "Mini-Batch Gradient Descent",
Part 4 "Gradient Statistics" and Part 5 "Expected Value of Gradients"; 000 §1).

A mini-batch gradient is the mean of B per-sample gradients g_i, an unbiased estimate of the
full-batch gradient ḡ = (1/N)·Σ g_i. With σ² = (1/N)·Σ‖g_i − ḡ‖² (the total variance of one
sample's gradient, summed over all parameters):

    E‖ĝ_B − ḡ‖² = σ²/B                          B samples drawn with replacement (the notes)
    E‖ĝ_B − ḡ‖² = σ²/B · (N − B)/(N − 1)        B distinct samples (how epochs are batched)

The second (finite-population correction) is 0 at B = N, as the notes' own Var(∇_batch) = 0
says; σ²/B would give σ²/N there.

Measured here on ``load("digits")`` (N = 1797, pixels/16) with a fixed model — a tanh MLP 64 →
16 → 10 with seed 0, cross-entropy — whose per-sample gradients come from ``torch.func``; the
mini-batch gradients are averages of R = 500 random batches per B, drawn both without and with
replacement. The measurement without replacement follows the corrected formula (within a few %
for every B), and the one with replacement follows σ²/B.

Where the notes differ: the "Gradient Statistics" table gives SGD std 0.0892 and mini-batch
(B = 32 of N = 128) std 0.0156 ≈ 0.0892/√32 = 0.0158, i.e. σ/√B; for batches of distinct images the
std is σ/√B·√((N−B)/(N−1)) = 0.0137. Its "Batch" row shows a std of 0.0034, but the full-batch
gradient does not vary at all (std 0); 0.0034 is a spread across weights, not noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from optimlab.data import load
from optimlab.models import build_model
from optimlab.viz.explain.base import NotesCheck, TopicResult, fmt, new_figure, save

BATCH_SIZES: list[int] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1536]  # then N
DRAWS, SEED = 500, 0


def per_sample_gradients() -> tuple[torch.Tensor, torch.Tensor, float]:
    """(N, P) per-sample gradients of the fixed model on digits, the full-batch gradient
    computed by autograd on all N samples, and the largest difference between that and the
    mean of the per-sample gradients (a check: the two must agree)."""
    ds = load("digits")
    x, y = (ds.X / 16).double(), ds.y.long()
    model = build_model({"type": "mlp", "hidden": [16], "activation": "tanh"}, 64, 10,
                        seed=SEED).double()
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (xi[None],))
        return torch.nn.functional.cross_entropy(out, yi[None])

    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    g = torch.cat([per[k].reshape(len(x), -1) for k in params], dim=1)
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    full = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return g, full, float((g.mean(0) - full).abs().max())


def measured_variance(dev: torch.Tensor, sizes: list[int], draws: int = DRAWS,
                      seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """E‖ĝ_B − ḡ‖² over ``draws`` random batches for each B in ``sizes``, where ``dev`` holds
    the deviations g_i − ḡ (N, P): without replacement (the first B of a random permutation)
    and with replacement (B independent uniform indices)."""
    n = dev.shape[0]
    gen = torch.Generator().manual_seed(seed)
    perms = torch.rand(draws, n, generator=gen).argsort(dim=1)
    without, with_ = [], []
    for b in sizes:
        mask = torch.zeros(draws, n, dtype=dev.dtype).scatter_(1, perms[:, :b], 1.0 / b)
        without.append(float(((mask @ dev) ** 2).sum(1).mean()))
        idx = torch.randint(n, (draws, b), generator=gen)
        mask = torch.zeros(draws, n, dtype=dev.dtype).scatter_add_(
            1, idx, torch.full((draws, b), 1.0 / b, dtype=dev.dtype))
        with_.append(float(((mask @ dev) ** 2).sum(1).mean()))
    return np.array(without), np.array(with_)


def run(out_dir: Path) -> TopicResult:
    """Measure the mini-batch gradient variance for B = 1 … N and compare with both formulas."""
    g, _, check_diff = per_sample_gradients()
    n, p = g.shape
    dev = g - g.mean(0)
    sigma2 = float((dev**2).sum(1).mean())
    sizes = [*BATCH_SIZES, n]
    without, with_ = measured_variance(dev, sizes)
    b = np.array(sizes, dtype=float)
    plain = sigma2 / b
    fpc = sigma2 / b * (n - b) / (n - 1)

    rows = [[int(bi), w, f, (w / f - 1) if f > 0 else "—", wr, pl, wr / pl - 1]
            for bi, w, f, wr, pl in zip(b, without, fpc, with_, plain, strict=True)]
    columns = ["B", "measured, distinct samples", "σ²/B·(N−B)/(N−1)", "rel. error",
               "measured, with replacement", "σ²/B", "rel. error"]
    inner = slice(1, len(sizes) - 1)  # 1 < B < N, where the formulas differ
    err_fpc = float(np.mean(np.abs(np.log(without[inner] / fpc[inner]))))
    err_plain = float(np.mean(np.abs(np.log(without[inner] / plain[inner]))))
    follows = "σ²/B·(N−B)/(N−1)" if err_fpc < err_plain else "σ²/B"

    check = NotesCheck("004 Mini-batch")
    sgd_std, nb, bb = 0.0892, 128, 32
    std_fpc = sgd_std / math.sqrt(bb) * math.sqrt((nb - bb) / (nb - 1))
    check.value("'Gradient Statistics' table, mini-batch std (B = 32 of N = 128 images, from "
                "its own SGD std 0.0892)", std_fpc, "0.0156",
                why=f"0.0156 ≈ σ/√B = {fmt(sgd_std / math.sqrt(bb), 4)}, the variance for sampling "
                    "with replacement; 32 distinct images of 128 give σ/√B·√((N−B)/(N−1))")
    check.value("'Gradient Statistics' table, std of the full-batch gradient", 0.0, "0.0034",
                why="the full-batch gradient is the same every time (the notes' own "
                    "Var(∇_batch) = 0); 0.0034 is the spread across weights, not noise")

    findings = [
        f"digits, N = {n}, fixed tanh MLP 64→16→10 ({p} parameters): σ² = {fmt(sigma2, 5)} "
        "(variance of one sample's gradient, summed over the parameters). The mean of the "
        f"per-sample gradients equals autograd's full-batch gradient to {check_diff:.1e}.",
        f"Batches of distinct samples follow {follows}: mean |log ratio| {fmt(err_fpc, 2)} "
        f"against σ²/B·(N−B)/(N−1), {fmt(err_plain, 2)} against σ²/B (1 < B < N, "
        f"R = {DRAWS} batches each).",
        f"The two formulas part as B approaches N: at B = 1024 the corrected variance is "
        f"{fmt(fpc[sizes.index(1024)] / plain[sizes.index(1024)], 2)}× σ²/B, and at B = N the "
        f"measured variance is {fmt(without[-1], 2)} (σ²/N would be {fmt(plain[-1], 3)}).",
        "Sampling with replacement (independent draws) follows σ²/B for every B — the notes' "
        "formula is for that case (or N ≫ B).",
        "Halving the noise's standard deviation takes 4× the batch: std ∝ 1/√B.",
    ]

    fig, ax = new_figure(1, 1, width=7.5, height=5.0)
    bb_line = np.geomspace(1, n, 300)
    ax.plot(bb_line, sigma2 / bb_line, "-", color="#0072b2", label="σ²/B (the notes)")
    b_fpc = np.geomspace(1, n - 1, 300)
    ax.plot(b_fpc, sigma2 / b_fpc * (n - b_fpc) / (n - 1), "-", color="#d55e00",
            label="σ²/B·(N−B)/(N−1) (distinct samples)")
    ax.plot(b[:-1], without[:-1], "o", color="#d55e00", mfc="white",
            label="measured, distinct samples")
    ax.plot(b, with_, "x", color="#0072b2", label="measured, with replacement")
    low = sigma2 / n / 1000
    ax.plot([n], [low * 1.6], "v", color="#d55e00", ms=8)
    ax.annotate(f"B = N = {n}: measured {fmt(without[-1], 2)}, off the axis\n"
                "(the full batch has no noise)", (n, low * 1.6), xytext=(40, low * 1.3),
                fontsize=8, color="#d55e00")
    ax.set_ylim(low, sigma2 * 2.5)
    ax.set(xscale="log", yscale="log", xlabel="batch size B (samples)",
           ylabel="E‖ĝ_B − ḡ‖²  (squared gradient norm, log)",
           title=f"Mini-batch gradient variance on digits (N = {n}, {DRAWS} batches per B)")
    ax.legend()
    figure = save(fig, out_dir, "explain_minibatch.png")

    return TopicResult(
        name="minibatch",
        title="Mini-batch gradient noise — measured against σ²/B and the finite-population "
              "correction",
        table_title=f"E‖ĝ_B − ḡ‖² on digits (N = {n}, σ² = {fmt(sigma2, 5)})",
        columns=columns, rows=rows,
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "n": n, "n_parameters": p, "sigma2": sigma2, "batch_sizes": sizes,
            "measured_without_replacement": without.tolist(),
            "measured_with_replacement": with_.tolist(),
            "sigma2_over_b": plain.tolist(), "fpc": fpc.tolist(),
            "follows": follows, "mean_abs_log_error": {"fpc": err_fpc, "plain": err_plain},
            "per_sample_mean_vs_autograd": check_diff,
        },
        findings=findings,
    )
