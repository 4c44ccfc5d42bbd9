"""Gradient descent with momentum: the notes' single weight and a ravine (004, "Gradient Descent
with Momentum", §2, §3, §7, §10).

    GD:              w ← w − α·g
    EWA form:        v ← β·v + (1 − β)·g,  w ← w − α·v      (oo.momentum, form="ewa")
    heavy ball:      v ← β·v + g,          w ← w − α·v      (form="heavy_ball", torch.optim.SGD)

The heavy-ball velocity is the EWA velocity divided by 1 − β, so heavy ball with learning rate
α·(1 − β) follows exactly the EWA path with α (and heavy ball with α is EWA with α/(1 − β)).

Single weight: w₀ = 0.5, α = 0.1, β = 0.9, gradients 0.08, 0.09, 0.07, 0.10, −0.02, 0.08, 0.09,
0.08, 0.11, 0.07 (fixed, as in the notes). Ravine: L(w) = ½(0.02·w₁² + 2·w₂²) from (−10, 1):
GD (α = 0.9) zig-zags across the steep w₂, then crawls along w₁ (error × 0.982 per step);
momentum (β = 0.9, heavy-ball α = 0.3 ≡ EWA α = 3) gains speed along w₁ (error × √β ≈ 0.95 per
step) while its swing across w₂ decays as √β too.

Where the notes differ (see :func:`run`): the worked batches 1–6 use the EWA form but batch 5's
weight is printed 0.489932 (computed 0.490032; 0.492480 − 0.1×0.0244798), batch 6 0.486929
(0.487029); the "continuing" table then silently switches to the heavy-ball form (v₁ = 0.08,
not 0.008), whose −0.303 (4× GD) is the EWA form's path with α = 1.0. With the EWA form and
α = 0.1 as set up, w ends at 0.4697 (−0.030, 0.4× GD). In the ravine example the notes' "w₁:
0 → 15.2" after 100 batches (with the α = 1 their GD numbers imply) cannot happen: a constant
∇w₁ = 0.01 moves heavy ball by 9.10 (at most 1/(1−β) = 10× GD's 1.0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import optimlab.optim as oo
from optimlab.viz import style
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, new_figure, save

W0, ALPHA, BETA = 0.5, 0.1, 0.9
GRADS: list[float] = [0.08, 0.09, 0.07, 0.10, -0.02, 0.08, 0.09, 0.08, 0.11, 0.07]
#: the ravine L(w) = ½(H₁·w₁² + H₂·w₂²), its start, the learning rates (GD; heavy ball) and steps
H, RAVINE_START, RAVINE_STEPS = (0.02, 2.0), (-10.0, 1.0), 100
RAVINE_LR_GD, RAVINE_LR_HB = 0.9, 0.3

_PRINTED_GD_W = ["0.492", "0.483", "0.476", "0.466", "0.468", "0.460", "0.451", "0.443", "0.432",
                 "0.425"]
_PRINTED_EWA_W = ["0.4992", "0.49758", "0.495422", "0.492480", "0.489932", "0.486929"]
_PRINTED_EWA_V = ["0.008", "0.0162", "0.02158", "0.029422", "0.0244798", "0.03003182"]
_PRINTED_TABLE_V = ["0.08", "0.162", "0.2158", "0.29422", "0.2448", "0.30032", "0.36029",
                    "0.40426", "0.47383", "0.49645"]
_PRINTED_TABLE_W = ["0.492", "0.4758", "0.45422", "0.42480", "0.40032", "0.37029", "0.33426",
                    "0.29383", "0.24645", "0.19680"]


def drive(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], w0: float,
          grads: list[float], state_key: str | None = None) -> tuple[list[float], list[float]]:
    """Run an optimizer on one weight with the fixed gradients ``grads``; the weight after each
    step and (``state_key``) the optimizer's state entry (the velocity) after each step."""
    w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
    opt = make([w])
    path, state = [], []
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        path.append(float(w.detach()[0]))
        if state_key is not None:
            state.append(float(opt.state[w][state_key][0]))
    return path, state


def ravine_path(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
                steps: int = RAVINE_STEPS) -> np.ndarray:
    """Positions (steps+1, 2) of an optimizer on L(w) = ½(H₁w₁² + H₂w₂²) from RAVINE_START,
    gradients by autograd."""
    w = torch.tensor(RAVINE_START, dtype=torch.float64, requires_grad=True)
    h = torch.tensor(H, dtype=torch.float64)
    opt = make([w])
    out = [w.detach().clone().numpy()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (h * w**2).sum()).backward()
        opt.step()
        out.append(w.detach().clone().numpy())
    return np.array(out)


def run(out_dir: Path) -> TopicResult:
    """Compute the single-weight example in every form, and the ravine."""
    a, b = ALPHA, BETA
    gd, _ = drive(lambda p: oo.sgd(p, lr=a), W0, GRADS)
    ewa_w, ewa_v = drive(lambda p: oo.momentum(p, lr=a, momentum=b), W0, GRADS, "ewa")
    hb_w, hb_v = drive(lambda p: oo.momentum(p, lr=a, momentum=b, form="heavy_ball"), W0, GRADS,
                       "trace")
    hbs_w, _ = drive(lambda p: oo.momentum(p, lr=a * (1 - b), momentum=b, form="heavy_ball"),
                     W0, GRADS)
    same = float(np.max(np.abs(np.subtract(hbs_w, ewa_w))))

    rows = [[i + 1, g, gd[i], ewa_v[i], ewa_w[i], hb_v[i], hb_w[i], hbs_w[i]]
            for i, g in enumerate(GRADS)]
    columns = ["batch", "∇L", "w: GD α=0.1", "v: EWA form", "w: EWA α=0.1", "v: heavy ball",
               "w: heavy ball α=0.1", "w: heavy ball α(1−β)=0.01"]

    # the ravine
    hb_name = f"momentum, heavy ball α={RAVINE_LR_HB}"
    ewa_name = f"momentum, EWA α={fmt(RAVINE_LR_HB / (1 - b))}"
    paths = {
        f"GD α={RAVINE_LR_GD}": ravine_path(lambda p: oo.sgd(p, lr=RAVINE_LR_GD)),
        ewa_name: ravine_path(lambda p: oo.momentum(p, lr=RAVINE_LR_HB / (1 - b), momentum=b)),
        hb_name: ravine_path(
            lambda p: oo.momentum(p, lr=RAVINE_LR_HB, momentum=b, form="heavy_ball")),
    }
    ravine_rows = []
    for name, p in paths.items():
        dist = np.linalg.norm(p, axis=1)
        outside = np.nonzero(dist >= 0.1)[0]
        settled = int(outside[-1]) + 1 if outside.size else 0
        ravine_rows.append([name, p[25, 0], p[50, 0], p[100, 0], dist[100],
                            settled if settled <= RAVINE_STEPS else "> 100"])
    # the notes' ravine numbers: constant ∇w₁ = 0.01 for 100 batches, α = 1 (GD moves 1.0)
    const = [0.01] * 100
    gd_far = W0 - drive(lambda p: oo.sgd(p, lr=1.0), W0, const)[0][-1]
    hb_far = W0 - drive(lambda p: oo.momentum(p, lr=1.0, momentum=b, form="heavy_ball"), W0,
                        const)[0][-1]

    check = NotesCheck("004 Momentum")
    check.series("'Without Momentum' table, new weight", [f"batch {i}" for i in range(1, 11)],
                 gd, _PRINTED_GD_W)
    check.series("worked batches 1–6 (EWA form), velocity", [f"v{i}" for i in range(1, 7)],
                 ewa_v[:6], _PRINTED_EWA_V)
    check.series("worked batches 1–6 (EWA form), weight", [f"batch {i}" for i in range(1, 7)],
                 ewa_w[:6], _PRINTED_EWA_W,
                 why="batch 5: 0.492480 − 0.1×0.0244798 = 0.490032; batch 6 carries it")
    table_is_heavy_ball = NotesCheck("").series("", [""] * 10, hb_v, _PRINTED_TABLE_V)
    if table_is_heavy_ball:
        check.claim(
            "the 'continuing' table is not the EWA form of the worked batches above it: its "
            "velocity 0.08, 0.162, … is the heavy-ball v ← βv + g (computed heavy-ball v₁₀ = "
            f"{fmt(hb_v[-1])}, final w = {fmt(hb_w[-1])}, matching the notes' 0.49645 and "
            f"0.19680 to rounding). With the EWA form and α = 0.1 as set up, w ends at "
            f"{fmt(ewa_w[-1])} (change {fmt(ewa_w[-1] - W0, 3)}, "
            f"{fmt((W0 - ewa_w[-1]) / (W0 - gd[-1]), 2)}× GD's), not 0.197 ('4× more progress' "
            "holds for heavy ball, i.e. EWA with α/(1−β) = 1.0)")
    check.series("heavy-ball table, new weight", [f"batch {i}" for i in range(1, 11)], hb_w,
                 _PRINTED_TABLE_W)
    check.value("ravine example, w₁ after 100 batches with momentum (constant ∇w₁ = 0.01, "
                "α = 1 as the GD line 0 → 1.0 implies)", hb_far, "15.2",
                why=f"heavy ball moves w₁ by Σ 0.01·(1−β^t)/(1−β) = {fmt(hb_far, 4)}; at most "
                    "1/(1−β) = 10× GD's 1.0")

    findings = [
        f"Plain GD ends at w = {fmt(gd[-1])} (−0.075). EWA momentum with α = 0.1 ends at "
        f"{fmt(ewa_w[-1])}: it starts slowly because v₀ = 0 (v₁ = 0.008 = (1−β)·g₁).",
        f"Heavy ball (v ← βv + g) with α = 0.1 ends at {fmt(hb_w[-1])} (−0.303): its velocity "
        "is the EWA velocity ×1/(1−β) = 10, i.e. 10× the learning rate.",
        f"Heavy ball with α·(1−β) = {fmt(a * (1 - b))} follows the EWA path with α = {a}: "
        f"largest difference {same:.1e} (rounding) — the two forms differ only in how α is "
        "scaled.",
        f"At batch 5 the gradient flips to −0.02: GD steps backwards (w {fmt(gd[3])} → "
        f"{fmt(gd[4])}), momentum keeps going (EWA v₅ = {fmt(ewa_v[4])} > 0).",
        f"Ravine L = ½(0.02·w₁² + 2·w₂²): GD (α = {RAVINE_LR_GD}, near its best 2/(H₁+H₂)) "
        f"zig-zags across w₂ and after 100 steps is still at w₁ = "
        f"{fmt(paths[f'GD α={RAVINE_LR_GD}'][100, 0], 3)}; momentum (β = 0.9) is at "
        f"w₁ = {fmt(paths[hb_name][100, 0], 2)}: it builds speed along the floor (error × √β ≈ "
        "0.95 per step against GD's 1 − α·H₁ = 0.982) but its swing across w₂ also decays only "
        "as √β, slower than GD's zig-zag — on a quadratic, momentum trades a longer oscillation "
        "for much faster progress. EWA with α/(1−β) and heavy ball with α trace the same path.",
    ]

    fig, (ax, ax2) = new_figure(2, 1, width=12.5, height=4.8)
    k = np.arange(0, len(GRADS) + 1)
    c_gd, c_m = style.color("gd"), style.color("momentum")
    ax.plot(k, [W0, *gd], "o-", color=c_gd, label="GD, α=0.1")
    ax.plot(k, [W0, *ewa_w], "-", color=c_m, lw=5, alpha=0.35,
            label="momentum, EWA form, α=0.1")
    ax.plot(k, [W0, *hbs_w], "x--", color=c_m, lw=1,
            label="momentum, heavy ball, α(1−β)=0.01 (same path)")
    ax.plot(k, [W0, *hb_w], "^:", color=c_m,
            label="momentum, heavy ball, α=0.1 (the notes' table)")
    ax.axvline(5, color="#999999", lw=0.8)
    ax.annotate("batch 5: ∇L = −0.02", (5, 0.30), xytext=(5.15, 0.30), fontsize=8)
    ax.set(title="One weight, the notes' 10 gradients (β = 0.9)", xlabel="batch",
           ylabel="weight w", xticks=k)
    ax.legend(loc="lower left", fontsize=8)

    g1, g2 = np.meshgrid(np.linspace(-11, 2, 200), np.linspace(-1.1, 1.5, 200))
    ax2.contour(g1, g2, 0.5 * (H[0] * g1**2 + H[1] * g2**2), levels=12, colors="#bbbbbb",
                linewidths=0.7)
    looks = [dict(color=c_gd, marker="o", ms=3, lw=1),
             dict(color=c_m, lw=5, alpha=0.35),
             dict(color=c_m, marker="x", ms=3, lw=1, ls="--")]
    for (name, p), look in zip(paths.items(), looks, strict=True):
        ax2.plot(p[:, 0], p[:, 1], **look,
                 label=f"{name}: w₁ = {fmt(p[100, 0], 2)} after 100 steps")
    ax2.plot(0, 0, "*", color="black", ms=10, label="minimum")
    ax2.set(title="Ravine L(w) = ½(0.02·w₁² + 2·w₂²), β = 0.9, 100 steps",
            xlabel="w₁ (shallow direction)", ylabel="w₂ (steep direction)", xlim=(-11, 2),
            ylim=(-1.1, 1.5))
    ax2.legend(loc="upper right", fontsize=8)
    figure = save(fig, out_dir, "explain_momentum.png")

    return TopicResult(
        name="momentum",
        title="Gradient descent with momentum — one weight, both forms, a ravine",
        table_title="Single weight: w₀ = 0.5, α = 0.1, β = 0.9, the notes' gradients",
        columns=columns, rows=rows,
        extra_tables=[
            Table("Ravine L = ½(0.02·w₁² + 2·w₂²) from (−10, 1), β = 0.9",
                  ["optimizer", "w₁ at step 25", "w₁ at 50", "w₁ at 100", "‖w‖ at 100",
                   "steps until ‖w‖ stays < 0.1"], ravine_rows),
            Table("Notes' ravine: constant ∇w₁ = 0.01 for 100 batches, α = 1",
                  ["optimizer", "distance moved along w₁"],
                  [["GD", gd_far], ["momentum (heavy ball, β = 0.9)", hb_far]]),
        ],
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "gd_path": gd, "ewa_path": ewa_w, "ewa_velocity": ewa_v,
            "heavy_ball_path": hb_w, "heavy_ball_velocity": hb_v,
            "heavy_ball_scaled_path": hbs_w, "max_diff_heavy_ball_scaled_vs_ewa": same,
            "ravine_final": {n: p[-1].tolist() for n, p in paths.items()},
            "notes_ravine_w1_moved": {"gd": gd_far, "heavy_ball": hb_far},
        },
        findings=findings,
    )

