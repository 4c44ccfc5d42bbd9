"""Batch normalization and the batch size (004 Part 9 "Batch Normalization and Batch Size";
002 "Batch Normalization").

In training, batch norm normalizes with the batch's own statistics,

    μ_B = (1/B)·Σ x_i,   σ²_B = (1/B)·Σ (x_i − μ_B)²,   x̂_i = (x_i − μ_B)/√(σ²_B + ε),

which estimate the population's μ, σ² with errors E[(μ_B − μ)²] = σ²/B·(N−B)/(N−1) (so
≈ σ/√B) and E[σ²_B] = σ²·(B−1)/B·N/(N−1) (biased low for small B). In eval mode it uses running
statistics, an EWA over batches with weight ``momentum`` = 0.1 on the newest (torch's
convention, i.e. β = 0.9: about the last 1/(1−β) = 10 batches), far less noisy than one batch.
Layer norm (over a sample's features) and group norm (over groups of features) use no batch
statistics, so one sample's output does not depend on the batch — they work at B = 1.

Measured on ``load("digits")`` (pixels/16) through a fixed Linear(64 → 32) (He, seed 0): the
population is the 1797 × 32 pre-activations; for B = 2 … 256, 300 random batches give the
error of μ_B and σ²_B (in units of σ and σ²), a BatchNorm1d(32) fed 200 batches gives the
error of its running statistics, and one fixed sample placed in 100 different batches shows
how much its normalized output moves with the company it keeps.

Where the notes differ: their example "batch size 2: μ_B = 0.23, σ_B = 0.67" is one draw; for a
standardized feature the typical |μ_B| at B = 2 is √(2/(πB)) = 0.56 (Gaussian) and E[σ_B] =
0.56 — the printed μ_B understates the noise; their B = 32 line (0.05, 1.02) is typical
(|μ_B| ≈ 0.14, σ_B ≈ 0.98).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from optimlab.data import load
from optimlab.models import initialize
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, new_figure, save

SIZES: list[int] = [2, 4, 8, 16, 32, 64, 128, 256]
FEATURES, GROUPS, DRAWS, RUNNING_BATCHES, PLACEMENTS, SEED = 32, 8, 300, 200, 100, 0


def features() -> torch.Tensor:
    """The population: digits (N × 64, pixels/16) through a fixed He-initialized Linear(64 →
    32)."""
    x = load("digits").X / 16
    layer = initialize(nn.Linear(64, FEATURES), "he_normal", seed=SEED)
    with torch.no_grad():
        return layer(x)


def expected_sigma_b(b: int) -> float:
    """E[σ_B] for a standard normal feature, σ_B with 1/B: √(2/B)·Γ(B/2)/Γ((B−1)/2)."""
    return math.sqrt(2 / b) * math.exp(math.lgamma(b / 2) - math.lgamma((b - 1) / 2))


def run(out_dir: Path) -> TopicResult:
    """Batch vs running statistics for each batch size, and the batch dependence of BN/LN/GN."""
    z = features()
    n = z.shape[0]
    mu, var = z.mean(0), z.var(0, unbiased=False)
    sd = var.sqrt()
    gen = torch.Generator().manual_seed(SEED)
    x0 = z[0]
    others = z[1:]
    ln = nn.LayerNorm(FEATURES)
    gn = nn.GroupNorm(GROUPS, FEATURES)
    rows, stats = [], {}
    for b in SIZES:
        idx = torch.rand(DRAWS, n, generator=gen).argsort(1)[:, :b]
        batch = z[idx]                                            # (DRAWS, B, F)
        mb, vb = batch.mean(1), batch.var(1, unbiased=False)
        mean_err = float((((mb - mu) / sd) ** 2).mean().sqrt())   # RMS, units of σ
        var_err = float(((vb / var - 1) ** 2).mean().sqrt())      # RMS, units of σ²
        var_ratio = float((vb / var).mean())
        bn = nn.BatchNorm1d(FEATURES, momentum=0.1)
        bn.train()
        with torch.no_grad():
            for _ in range(RUNNING_BATCHES):
                bn(z[torch.randperm(n, generator=gen)[:b]])
            run_mean_err = float((((bn.running_mean - mu) / sd) ** 2).mean().sqrt())
            run_var_err = float(((bn.running_var / var - 1) ** 2).mean().sqrt())
            # one sample in PLACEMENTS different batches: how much does its output move?
            comp = torch.stack([others[torch.randperm(n - 1, generator=gen)[:b - 1]]
                                for _ in range(PLACEMENTS)])
            batches = torch.cat([x0.expand(PLACEMENTS, 1, FEATURES), comp], dim=1)
            bn_out = torch.stack([bn(bt)[0] for bt in batches])
            ln_out = torch.stack([ln(bt)[0] for bt in batches])
            gn_out = torch.stack([gn(bt)[0] for bt in batches])
            bn.eval()
            eval_out = bn(x0[None])[0]
        spread = {k: float(o.std(0).mean()) for k, o in
                  (("bn", bn_out), ("ln", ln_out), ("gn", gn_out))}
        train_eval_gap = float((bn_out - eval_out).abs().mean())
        predicted = 1 / math.sqrt(b) * math.sqrt((n - b) / (n - 1))
        stats[b] = {"mean_err": mean_err, "mean_err_predicted": predicted,
                    "var_err": var_err, "var_ratio": var_ratio,
                    "var_ratio_predicted": (b - 1) / b * n / (n - 1),
                    "running_mean_err": run_mean_err, "running_var_err": run_var_err,
                    "spread_bn": spread["bn"], "spread_ln": spread["ln"],
                    "spread_gn": spread["gn"], "train_eval_gap": train_eval_gap}
        rows.append([b, mean_err, predicted, var_err, var_ratio, run_mean_err, run_var_err,
                     spread["bn"], spread["ln"], spread["gn"]])
    columns = ["B", "RMS(μ_B−μ)/σ", "√((N−B)/(B(N−1)))", "RMS(σ²_B/σ²−1)", "mean σ²_B/σ²",
               "running mean err /σ", "running var err", "BN output spread",
               "LN output spread", "GN output spread"]

    # B = 1: batch norm refuses in training, layer / group norm do not
    one = z[:1]
    try:
        nn.BatchNorm1d(FEATURES).train()(one)
        bn_one = "accepted"
    except ValueError as err:
        bn_one = f"ValueError: {err}"
    ln_one = bool(torch.isfinite(ln(one)).all())
    gn_one = bool(torch.isfinite(gn(one)).all())

    # the notes' illustration for a standardized feature (their μ_B, σ_B are one draw)
    typical = {b: {"abs_mean": math.sqrt(2 / (math.pi * b)), "sigma": expected_sigma_b(b)}
               for b in (2, 32)}
    check = NotesCheck("004 Part 9")
    check.claim(
        "'Batch size 2: μ_B = 0.23, σ_B = 0.67 (noisy estimate!)' understates the noise: for a "
        f"standardized (Gaussian) feature the typical |μ_B| at B = 2 is √(2/(πB)) = "
        f"{fmt(typical[2]['abs_mean'], 2)} and E[σ_B] = {fmt(typical[2]['sigma'], 2)}; measured "
        f"on the digits features RMS(μ_B − μ)/σ = {fmt(stats[2]['mean_err'], 2)}. The B = 32 "
        f"line (0.05, 1.02) is typical: {fmt(typical[32]['abs_mean'], 2)} and "
        f"{fmt(typical[32]['sigma'], 2)}")

    s2, s256 = stats[2], stats[256]
    findings = [
        f"Batch statistics stray less as B grows: RMS error of μ_B {fmt(s2['mean_err'], 3)}σ at "
        f"B = 2, {fmt(stats[32]['mean_err'], 3)}σ at 32, {fmt(s256['mean_err'], 3)}σ at 256 "
        "— as √((N−B)/(B(N−1))) predicts; σ²_B's relative error "
        f"{fmt(s2['var_err'], 3)} → {fmt(s256['var_err'], 3)}.",
        f"σ²_B is biased low for small batches: mean σ²_B/σ² = {fmt(s2['var_ratio'], 3)} at "
        f"B = 2 (predicted (B−1)/B·N/(N−1) = {fmt(s2['var_ratio_predicted'], 3)}).",
        "Running statistics (EWA, momentum 0.1 ≈ the last 10 batches) are much closer: mean "
        f"error {fmt(s2['running_mean_err'], 3)}σ at B = 2 and "
        f"{fmt(stats[32]['running_mean_err'], 3)}σ at 32, about √(0.1/1.9) = "
        f"{fmt(math.sqrt(0.1 / 1.9), 2)}× the single-batch error.",
        f"One sample's batch-norm output moves with its batch: spread {fmt(s2['spread_bn'], 3)} "
        f"at B = 2 (there x̂ = ±1 whatever x is), {fmt(s256['spread_bn'], 3)} at B = 256; "
        f"layer norm and group norm: {fmt(s2['spread_ln'], 2)} and {fmt(s2['spread_gn'], 2)} — "
        "they do not look at the batch.",
        f"B = 1: BatchNorm1d in training says '{bn_one}'; "
        f"LayerNorm and GroupNorm give finite outputs ({ln_one}, {gn_one}).",
    ]

    b = np.array(SIZES, dtype=float)
    fig, (ax, ax2) = new_figure(2, 1, width=12.5, height=4.8)
    grid = np.geomspace(2, 256, 100)
    ax.plot(grid, np.sqrt((n - grid) / (grid * (n - 1))), "-", color="#0072b2", lw=1,
            label="√((N−B)/(B(N−1))) (μ_B, predicted)")
    ax.plot(b, [stats[k]["mean_err"] for k in SIZES], "o", color="#0072b2",
            label="batch mean μ_B: RMS error / σ")
    ax.plot(b, [stats[k]["var_err"] for k in SIZES], "s", color="#d55e00",
            label="batch variance σ²_B: RMS relative error")
    ax.plot(b, [stats[k]["running_mean_err"] for k in SIZES], "o--", color="#0072b2",
            mfc="white", label="running mean (EWA of batches): error / σ")
    ax.plot(b, [stats[k]["running_var_err"] for k in SIZES], "s--", color="#d55e00",
            mfc="white", label="running variance: relative error")
    ax.set(xscale="log", yscale="log", xlabel="batch size B (samples)",
           ylabel="error (units of σ, or relative for σ²)",
           title="Batch vs running statistics (digits features)", xticks=SIZES,
           xticklabels=[str(k) for k in SIZES], ylim=(3e-3, 1.5))
    ax.legend(fontsize=8, loc="lower left")
    ax2.plot(b, [stats[k]["spread_bn"] for k in SIZES], "o-", color="#0072b2",
             label="batch norm (train mode)")
    ax2.plot(b, [stats[k]["spread_ln"] for k in SIZES], "s-", color="#009e73",
             label="layer norm")
    ax2.plot(b, [stats[k]["spread_gn"] for k in SIZES], "^--", color="#cc79a7",
             label=f"group norm ({GROUPS} groups)")
    ax2.set(xscale="log", xticks=SIZES, xticklabels=[str(k) for k in SIZES],
            xlabel="batch size B (samples)",
            ylabel="std of one sample's output across batches",
            title=f"Does a sample's output depend on its batch? ({PLACEMENTS} batches)")
    ax2.legend(fontsize=8)
    figure = save(fig, out_dir, "explain_batchnorm.png")

    return TopicResult(
        name="batchnorm",
        title="Batch normalization — batch vs running statistics; layer and group norm",
        table_title=f"digits through Linear(64→{FEATURES}); errors averaged over {FEATURES} "
                    f"features, {DRAWS} batches per B",
        columns=columns, rows=rows,
        extra_tables=[Table("The notes' illustration: a standardized (Gaussian) feature",
                            ["B", "typical |μ_B| = √(2/(πB))", "E[σ_B]", "notes' μ_B",
                             "notes' σ_B"],
                            [[2, typical[2]["abs_mean"], typical[2]["sigma"], 0.23, 0.67],
                             [32, typical[32]["abs_mean"], typical[32]["sigma"], 0.05, 1.02]])],
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={"sizes": SIZES, "stats": {str(k): v for k, v in stats.items()},
                     "batch_of_one": {"batchnorm": bn_one, "layernorm_ok": ln_one,
                                      "groupnorm_ok": gn_one},
                     "typical_standard_normal": {str(k): v for k, v in typical.items()}},
        findings=findings,
    )
