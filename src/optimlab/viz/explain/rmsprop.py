"""RMSprop: two weights whose gradients differ in scale (004, "RMSprop", §2–§4).

    s_t = β·s_{t−1} + (1 − β)·g_t²                    (oo.rmsprop: β is ``alpha``)
    w ← w − α/(√s_t + ε)·g_t                          ε outside the root (default, torch)
    w ← w − α/√(s_t + ε)·g_t                          ε inside (``eps_inside=True``)
    ŝ_t = s_t/(1 − β^t) in place of s_t               (``bias_correction=True``, as in Adam)

The effective learning rate α/(√s + ε) is large for the weight whose gradients are small (w₁:
0.002 every batch) and small for the weight whose gradients are large (w₂: 2.5 and 3.1 at
batches 3 and 7, else 0). The notes' gradients (α = 0.001, β = 0.999, ε = 10⁻⁸) are repeated
every 10 batches for the 200-iteration plot.

Where the two ε conventions part: when √s is not ≫ √ε. Before w₂'s first gradient s₂ = 0, so
the effective rate is α/ε = 10⁵ outside but α/√ε = 10 inside (harmless here: g₂ = 0); for w₁ at
batch 1 without correction √s₁ = 6.3·10⁻⁵ is comparable to √ε = 10⁻⁴: 15.8 outside, 8.45 inside.

Where the notes differ (see :func:`run`): the "realistic example" applies bias correction,
but at batch 3 computes w₁'s effective rate from the uncorrected s₁ (9.27, so w₁ = 0.478553);
with ŝ₁ it is 0.507 and w₁ = 0.496988. Its 10-batch table prints s columns that are 1000·s_t
(neither s_t nor ŝ_t), effective rates 0.5 → 0.16 for w₁ (computed: 0.50–0.53 throughout with
correction; 15.8 → 5.05 without), w₁ = 0.4950 at the end (computed 0.48995 with correction)
and w₂ = 0.49822 (computed 0.496211 with correction, 0.443742 without). The batch-1 example
with β = 0.9, α = 0.1 gives w₁ = 0.18378 (notes 0.1836, from √s rounded to 0.000632).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.lines import Line2D

import optimlab.optim as oo
from optimlab.viz import style
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, new_figure, save

ALPHA, BETA, EPS, W0 = 1e-3, 0.999, 1e-8, 0.5
G1: list[float] = [0.002, 0.0018, 0.0021, 0.0019, 0.0020, 0.0022, 0.0018, 0.0019, 0.0021,
                   0.0020]
G2: list[float] = [0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0]
PLOT_STEPS = 200

#: the variants compared: name → keyword arguments of oo.rmsprop
VARIANTS: dict[str, dict[str, bool]] = {
    "ε outside (notes' formula, torch)": {"eps_inside": False, "bias_correction": False},
    "ε inside √(s+ε)": {"eps_inside": True, "bias_correction": False},
    "bias-corrected ŝ (notes' 'realistic example')": {"eps_inside": False,
                                                      "bias_correction": True},
}

_PRINTED_REALISTIC_W1 = {1: "0.499", 2: "0.498053"}
_PRINTED_TABLE_EFF1 = ["0.5", "0.38", "0.30", "0.26", "0.23", "0.20", "0.19", "0.18", "0.17",
                       "0.16"]
_PRINTED_TABLE_W1 = ["0.499", "0.4983", "0.4977", "0.4972", "0.4967", "0.4963", "0.4960",
                     "0.4956", "0.4953", "0.4950"]
_PRINTED_TABLE_W2 = [None, None, "0.4990", None, None, None, "0.49822", None, None, "0.49822"]
_PRINTED_TABLE_S1 = ["0.000004", "0.000007", "0.000011", "0.000015", "0.000019", "0.000024",
                     "0.000027", "0.000031", "0.000035", "0.000039"]
_PRINTED_GD_W2 = {3: "0.4975", 7: "0.49440"}


def drive(grads: list[tuple[float, float]], *, lr: float = ALPHA, beta: float = BETA,
          eps: float = EPS, eps_inside: bool = False, bias_correction: bool = False,
          sgd: bool = False) -> dict[str, np.ndarray]:
    """Run oo.rmsprop (or oo.sgd) on two weights with fixed gradients.

    Returns arrays of shape (steps, 2): the weights after each step ``w``, the state ``s``
    (RMSprop only) and the effective learning rate ``eff`` = α/(√ŝ + ε) or α/√(ŝ + ε), with
    ŝ = s/(1 − β^t) when bias-corrected, else s.
    """
    w = torch.tensor([W0, W0], dtype=torch.float64, requires_grad=True)
    opt = (oo.sgd([w], lr=lr) if sgd else
           oo.rmsprop([w], lr=lr, alpha=beta, eps=eps, eps_inside=eps_inside,
                      bias_correction=bias_correction))
    ws, ss, eff = [], [], []
    for t, g in enumerate(grads, start=1):
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ws.append(w.detach().numpy().copy())
        if not sgd:
            s = opt.state[w]["sq_avg"].numpy().copy()
            s_hat = s / (1 - beta**t) if bias_correction else s
            ss.append(s)
            eff.append(lr / (np.sqrt(s_hat + eps) if eps_inside else np.sqrt(s_hat) + eps))
    out = {"w": np.array(ws)}
    if not sgd:
        out |= {"s": np.array(ss), "eff": np.array(eff)}
    return out


def run(out_dir: Path) -> TopicResult:
    """Compute the two-weight example under each variant, plus plain SGD."""
    grads = list(zip(G1, G2, strict=True))
    long = [grads[i % len(grads)] for i in range(PLOT_STEPS)]
    runs = {name: drive(long, **kw) for name, kw in VARIANTS.items()}
    sgd = drive(long, sgd=True)
    main, inside, corrected = (runs[n] for n in VARIANTS)

    rows = [[t + 1, G1[t], G2[t], main["s"][t, 0], main["s"][t, 1], main["eff"][t, 0],
             main["eff"][t, 1], main["w"][t, 0], main["w"][t, 1]] for t in range(10)]
    columns = ["batch", "∇w₁", "∇w₂", "s₁", "s₂", "α/(√s₁+ε)", "α/(√s₂+ε)", "w₁", "w₂"]
    variant_rows = [[t + 1, *(r["eff"][t, i] for r in runs.values() for i in (0, 1)),
                     corrected["w"][t, 0], corrected["w"][t, 1]] for t in range(10)]
    short = ["outside", "inside", "corrected"]
    variant_cols = ["batch", *(f"{k}: {p}" for k in short for p in ("w₁", "w₂")),
                    "w₁ (corrected)", "w₂ (corrected)"]

    # the notes' first example: β = 0.9, α = 0.1, one batch
    first = drive([grads[0]], lr=0.1, beta=0.9)

    check = NotesCheck("004 RMSprop")
    check.value("batch 1 (β=0.9, α=0.1), effective rate of w₁", first["eff"][0, 0], "158.2")
    check.value("batch 1 (β=0.9, α=0.1), w₁", first["w"][0, 0], "0.1836",
                why="0.1/0.000632 rounds √(4·10⁻⁷) = 0.00063246")
    for t, p in _PRINTED_REALISTIC_W1.items():
        check.value(f"'realistic example' (bias-corrected), w₁ after batch {t}",
                    corrected["w"][t - 1, 0], p)
    check.claim(
        "'realistic example', batch 3: it applies bias correction to s₂ (ŝ₂ = 2.086) but "
        "computes w₁'s effective rate from the uncorrected s₁ ('≈ 9.27', so w₁ = 0.478553); "
        f"with ŝ₁ it is {fmt(corrected['eff'][2, 0], 4)} and w₁ = "
        f"{fmt(corrected['w'][2, 0])} (without any correction: {fmt(main['eff'][2, 0], 4)} and "
        f"w₁ = {fmt(main['w'][2, 0])})")
    labels = [f"batch {t}" for t in range(1, 11)]
    check.series("10-batch RMSprop table, s₁ (against ŝ₁; the printed column is 1000·s₁)",
                 labels, list(corrected["s"][:10, 0] / (1 - BETA ** np.arange(1, 11))),
                 _PRINTED_TABLE_S1)
    check.series("10-batch RMSprop table, effective rate of w₁ (against the bias-corrected run)",
                 labels, list(corrected["eff"][:10, 0]), _PRINTED_TABLE_EFF1,
                 why="without correction it is 15.8 → 5.05; with it 0.50–0.53 throughout, since "
                     "ŝ₁ ≈ g₁² when g₁ is steady")
    check.series("10-batch RMSprop table, w₁ (bias-corrected run)", labels,
                 list(corrected["w"][:10, 0]), _PRINTED_TABLE_W1)
    check.series("10-batch RMSprop table, w₂ (bias-corrected run)", labels,
                 list(corrected["w"][:10, 1]), _PRINTED_TABLE_W2,
                 why=f"without correction w₂ = {fmt(main['w'][9, 1], 5)}")
    for t, p in _PRINTED_GD_W2.items():
        check.value(f"standard GD table, w₂ after batch {t}", sgd["w"][t - 1, 1], p)

    findings = [
        f"w₁ (gradients ≈ 0.002): effective rate {fmt(main['eff'][0, 0], 3)} at batch 1, "
        f"{fmt(main['eff'][9, 0], 3)} at batch 10 — boosted thousands of times over α = 0.001; "
        f"w₂ (gradients 2.5, 3.1): {fmt(main['eff'][2, 1], 3)} at batch 3, "
        f"{fmt(main['eff'][6, 1], 3)} at batch 7 — about α/(√(1−β)·|g|) just after a gradient.",
        f"After 10 batches plain GD (α = 0.001) has moved w₁ by {fmt(W0 - sgd['w'][9, 0], 2)} "
        f"and w₂ by {fmt(W0 - sgd['w'][9, 1], 3)}; RMSprop moves w₁ by "
        f"{fmt(W0 - main['w'][9, 0], 3)} and w₂ by {fmt(W0 - main['w'][9, 1], 3)}.",
        "Without bias correction s starts near 0 (β = 0.999 averages ≈ 1000 values), so the "
        f"early rates are inflated: w₁'s falls from {fmt(main['eff'][0, 0], 3)} to "
        f"{fmt(main['eff'][-1, 0], 3)} over {PLOT_STEPS} iterations as s warms up; with "
        f"correction it is {fmt(corrected['eff'][0, 0], 3)} from the first batch "
        f"(α/|g₁| = {fmt(ALPHA / G1[0], 3)}).",
        f"ε inside vs outside: w₁ at batch 1 gets {fmt(main['eff'][0, 0], 3)} (outside) vs "
        f"{fmt(inside['eff'][0, 0], 3)} (inside), since √s₁ = {fmt(np.sqrt(main['s'][0, 0]), 2)}"
        f" is comparable to √ε = 1e-4; w₂ before its first gradient (s₂ = 0) gets α/ε = "
        f"{fmt(main['eff'][0, 1], 3)} vs α/√ε = {fmt(inside['eff'][0, 1], 3)}. Once √s ≫ √ε "
        "the two agree.",
    ]

    fig, axes = new_figure(3, 1, width=15.5, height=4.6)
    steps = np.arange(1, PLOT_STEPS + 1)
    c_w = {0: "#0072b2", 1: "#d55e00"}
    dashes: dict[str, Any] = dict(zip(VARIANTS, ["-", "--", ":"], strict=True))
    ax = axes[0]
    for name, r in runs.items():
        for i in (0, 1):
            ax.plot(steps, r["eff"][:, i], dashes[name], color=c_w[i], lw=1.4)
    ax.set(xscale="log", yscale="log", title="Effective learning rate α/(√s+ε)",
           xlabel="iteration (log; the notes' 10 gradients, repeated)",
           ylabel="effective learning rate (log)")
    handles = [Line2D([], [], color=c_w[0], label="w₁: small gradients, every batch"),
               Line2D([], [], color=c_w[1], label="w₂: large gradients, rarely"),
               *(Line2D([], [], color="#555555", ls=dashes[n], label=n) for n in VARIANTS)]
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    for i, ax in ((0, axes[1]), (1, axes[2])):
        ax.plot(np.r_[0, steps], np.r_[W0, sgd["w"][:, i]], "-", color=style.color("sgd"),
                label="SGD, α = 0.001")
        for name, r in runs.items():
            ax.plot(np.r_[0, steps], np.r_[W0, r["w"][:, i]], dashes[name],
                    color=style.color("rmsprop"), label=f"RMSprop, {name}")
        what = ("small gradients every batch" if i == 0
                else "large gradients at batches 3, 7, 13, …")
        ax.set(title=f"w{'₁₂'[i]}: {what}",
               xlabel="iteration", ylabel=f"weight w{'₁₂'[i]}")
        ax.legend(fontsize=7)
    figure = save(fig, out_dir, "explain_rmsprop.png")

    return TopicResult(
        name="rmsprop",
        title="RMSprop — two weights whose gradients differ in scale",
        table_title="The notes' formula: α = 0.001, β = 0.999, ε = 1e-8 outside the root, "
                    "no bias correction",
        columns=columns, rows=rows,
        extra_tables=[Table("Effective learning rate α/(√s+ε) by variant, and the "
                            "bias-corrected weights", variant_cols, variant_rows)],
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "grads": [G1, G2],
            **{f"{k}_eff": r["eff"][:10].T.tolist() for k, r in zip(short, runs.values(),
                                                                    strict=True)},
            **{f"{k}_w": r["w"][:10].T.tolist() for k, r in zip(short, runs.values(),
                                                                  strict=True)},
            "s": main["s"][:10].T.tolist(),
            "sgd_w": sgd["w"][:10].T.tolist(),
            "first_example_beta_0.9": {"eff": float(first["eff"][0, 0]),
                                       "w1": float(first["w"][0, 0])},
        },
        findings=findings,
    )
