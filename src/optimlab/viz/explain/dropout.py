"""Inverted dropout keeps the expected activation (003 "Dropout Implementation").

In training each unit is kept with probability 1 − p and the kept ones are scaled by 1/(1 − p):

    ã = a · m / (1 − p),  m ~ Bernoulli(1 − p)   ⇒   E[ã] = a,   E[ã²] = a²/(1 − p)

so the next layer sees the same mean input in training and in evaluation, where dropout does
nothing (``model.eval()``). Without the scaling ("plain" dropout) the training mean is (1 − p)·a
and evaluation would have to multiply by 1 − p.

Measured on ``load("digits")`` (pixels/16): the activations a are the 256 ReLU units of
``build_model({"hidden": [256], "dropout": p}, seed=0)``; train mode is averaged over 20
forward passes (fresh masks), for p = 0.1 … 0.9. The notes' own ``dropout_layer`` (mask
``rand > p``, scale 1/(1 − p)) is run alongside torch's ``nn.Dropout`` and gives the same
statistics.

The notes print no numbers for dropout; nothing to compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from optimlab.data import load
from optimlab.models import build_model
from optimlab.viz.explain.base import TopicResult, fmt, new_figure, save

RATES: list[float] = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
PASSES, SEED, HIDDEN = 20, 0, 256


def notes_dropout(x: torch.Tensor, p: float, training: bool = True, scale: bool = True,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The notes' ``dropout_layer``: keep where rand > p, scale the kept by 1/(1 − p)
    (``scale=False``: the plain, non-inverted form)."""
    if not training:
        return x
    mask = (torch.rand(x.shape, generator=generator) > p).to(x.dtype)
    return x * mask * (1.0 / (1.0 - p) if scale else 1.0)


def run(out_dir: Path) -> TopicResult:
    """Measure the activation mean in train and eval mode for each dropout rate."""
    ds = load("digits")
    x = ds.X / 16
    rows, per_rate = [], {}
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)  # nn.Dropout draws its masks from torch's global generator
    for p in RATES:
        model = build_model({"type": "mlp", "hidden": [HIDDEN], "dropout": p}, 64, 10,
                            seed=SEED)
        hidden, after = model[:3], model.get_submodule("drop0")  # flatten, linear0, act0
        out_layer = model.get_submodule("output")
        with torch.no_grad():
            a = hidden(x)                                   # the activations, no dropout
            after.eval()
            evals = after(a)
            logits_eval = out_layer(evals)
            after.train()
            train = torch.stack([after(a) for _ in range(PASSES)])
            logits_train = out_layer(train).mean(0)
            mine = torch.stack([notes_dropout(a, p, generator=gen) for _ in range(PASSES)])
            plain = torch.stack([notes_dropout(a, p, scale=False, generator=gen)
                                 for _ in range(PASSES)])
        mean_a = float(a.mean())
        m = {
            "mean_no_dropout": mean_a,
            "mean_train": float(train.mean()),
            "mean_train_notes": float(mine.mean()),
            "mean_train_plain": float(plain.mean()),
            "mean_eval": float(evals.mean()),
            "eval_equals_no_dropout": bool(torch.equal(evals, a)),
            # of the units that were active, the fraction a mask switched off (≈ p)
            "fraction_dropped": float(((train == 0) & (a != 0)).sum() / ((a != 0).sum() * PASSES)),
            "second_moment_train": float((train**2).mean()),
            "second_moment_predicted": float((a**2).mean()) / (1 - p),
            "logit_mean_train": float(logits_train.mean()),
            "logit_mean_eval": float(logits_eval.mean()),
        }
        # standard error of the train-mode mean over the passes
        m["se_train"] = float(train.mean(dim=(1, 2)).std() / np.sqrt(PASSES))
        per_rate[p] = m
        rows.append([p, mean_a, m["mean_train"], m["mean_train_notes"], m["mean_train_plain"],
                     (1 - p) * mean_a, m["mean_eval"], m["second_moment_train"],
                     m["second_moment_predicted"]])
    columns = ["p", "mean a (no dropout)", "train: nn.Dropout", "train: notes' dropout_layer",
               "train: plain (no 1/(1−p))", "(1−p)·mean a", "eval mode",
               "E[ã²] train", "E[a²]/(1−p)"]

    worst = max(abs(m["mean_train"] / m["mean_no_dropout"] - 1) for m in per_rate.values())
    findings = [
        f"Inverted dropout keeps the mean: over {PASSES} masks the train-mode mean is within "
        f"{fmt(100 * worst, 2)} % of the no-dropout mean {fmt(per_rate[0.5]['mean_no_dropout'], 4)}"
        " for every p from 0.1 to 0.9; the notes' dropout_layer gives the same.",
        "Plain dropout (no scaling) shrinks the mean to (1−p)·a: "
        f"{fmt(per_rate[0.5]['mean_train_plain'], 4)} at p = 0.5 — evaluation would then see "
        "inputs twice as large as in training.",
        "Evaluation mode is the identity: the eval output equals the activations exactly "
        f"({all(m['eval_equals_no_dropout'] for m in per_rate.values())} for every p).",
        "The mean is kept, the spread is not: E[ã²] = E[a²]/(1−p), "
        f"{fmt(per_rate[0.5]['second_moment_train'], 4)} vs "
        f"{fmt(per_rate[0.5]['second_moment_predicted'], 4)} predicted at p = 0.5.",
        "So the next layer sees the same input on average: its mean output (logit) is "
        f"{fmt(per_rate[0.5]['logit_mean_train'], 4)} in train mode (p = 0.5, {PASSES} masks) "
        f"and {fmt(per_rate[0.5]['logit_mean_eval'], 4)} in eval mode.",
    ]

    fig, (ax, ax2) = new_figure(2, 1, width=12.0, height=4.6)
    ps = np.array(RATES)
    ref = per_rate[RATES[0]]["mean_no_dropout"]
    ax.axhline(ref, color="#4d4d4d", lw=1, label="no dropout: mean a")
    ax.errorbar(ps, [per_rate[p]["mean_train"] for p in RATES],
                yerr=[2 * per_rate[p]["se_train"] for p in RATES], fmt="o", color="#0072b2",
                capsize=3, label="train, inverted (nn.Dropout), ±2 s.e.")
    ax.plot(ps, [per_rate[p]["mean_train_notes"] for p in RATES], "x", color="#56b4e9", ms=8,
            label="train, notes' dropout_layer")
    ax.plot(ps, [per_rate[p]["mean_eval"] for p in RATES], "s", mfc="none", color="#009e73",
            ms=9, label="eval mode")
    ax.plot(ps, [per_rate[p]["mean_train_plain"] for p in RATES], "v--", color="#d55e00",
            label="train, plain (no 1/(1−p)): (1−p)·mean a")
    ax.set(title="Mean activation with dropout (digits, 256 ReLU units)",
           xlabel="dropout rate p", ylabel="mean activation (same units as a)",
           ylim=(0, ref * 1.35))
    ax.legend(fontsize=8, loc="upper right")
    ax2.plot(ps, [per_rate[p]["second_moment_train"] for p in RATES], "o", color="#0072b2",
             label="train, inverted: measured E[ã²]")
    grid = np.linspace(0.05, 0.92, 100)
    m2 = per_rate[RATES[0]]["second_moment_predicted"] * (1 - RATES[0])
    ax2.plot(grid, m2 / (1 - grid), "-", color="#0072b2", label="E[a²]/(1−p)")
    ax2.axhline(m2, color="#4d4d4d", lw=1, label="no dropout / eval: E[a²]")
    ax2.set(title="…but the second moment grows as 1/(1−p)", xlabel="dropout rate p",
            ylabel="mean squared activation (units of a²)", ylim=(0, None))
    ax2.legend(fontsize=8)
    figure = save(fig, out_dir, "explain_dropout.png")

    return TopicResult(
        name="dropout",
        title="Dropout — inverted dropout keeps the expected activation",
        table_title=f"Activation mean over batch × units, train mode averaged over {PASSES} "
                    "masks",
        columns=columns, rows=rows,
        notes_differences=[],
        figures=[figure],
        key_numbers={"rates": RATES, "per_rate": {str(p): m for p, m in per_rate.items()}},
        findings=findings,
    )
