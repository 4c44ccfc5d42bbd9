"""Adam on the notes' two-weight example: a rare feature fires at batch 3 (004, "Adam", §2–§4,
§10).

    m_t = β₁·m_{t−1} + (1 − β₁)·g_t          v_t = β₂·v_{t−1} + (1 − β₂)·g_t²
    m̂_t = m_t/(1 − β₁^t)                     v̂_t = v_t/(1 − β₂^t)
    w ← w − α·m̂_t/(√v̂_t + ε)                (oo.adam; α = 0.001, β = (0.9, 0.999), ε = 1e-8)

w₁ sees small gradients every batch (0.002, 0.0018, …), w₂ sees 2.5 at batch 3 and 3.1 at batch
7, else 0. m and v are read from the optimizer's state after each step, the steps are the
weights' changes. At t = 1, m̂ = g and v̂ = g², so the first step is α·g/(|g| + ε) ≈ α: Adam's
first step has the size of the learning rate whatever the gradient's scale. Without bias
correction it would be α·(1 − β₁)/√(1 − β₂) = 3.16·α.

Where the notes differ (see :func:`run`): in the w₁ table v̂₁ grows 4.4e-6 → 5.9e-6 and the
effective rate falls 0.476 → 0.412 from batch 4 on; computed, v̂₁ stays 3.8–4.0e-6 and the rate
0.50–0.53 (v₁ itself is printed too low from batch 7: 2.71e-8 vs 2.73e-8 … 3.85e-8 vs 3.92e-8;
m̂₁ at batches 7–9 is 0.001972, 0.001959, 0.001982, not 0.00199, 0.00199, 0.00201; the worked
batch-3 update is 0.0009999, not 0.000997, from √v̂₁ rounded to 0.001975).
In the w₂ table v̂₂ is 1.563, 1.250, 1.041 at batches 4–6 (notes 1.810, 1.527, 1.273) and
v₂ = 0.015835 at batch 7 (notes 0.01581), so the batch-7 rate is 0.000664 (notes 0.000574) and
the update 0.000603 (notes 0.000526); and w₂ does *not* stay put between the spikes: m̂₂ ≠ 0,
so Adam moves w₂ by 0.000523, 0.000442, 0.000381 at batches 4–6 and w₂ ends at 0.495986
(notes 0.498836, "only updated when gradients fired").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import optimlab.optim as oo
from optimlab.viz import style
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, new_figure, save

ALPHA, BETAS, EPS, W0 = 1e-3, (0.9, 0.999), 1e-8, 0.5
G1: list[float] = [0.002, 0.0018, 0.0021, 0.0019, 0.0020, 0.0022, 0.0018, 0.0019, 0.0021,
                   0.0020]
G2: list[float] = [0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0]

_LABELS = {"sgd": "SGD", "momentum": "momentum (EWA, β = 0.9)",
           "rmsprop": "RMSprop (β = 0.999, no bias correction)", "adam": "Adam"}

# the notes' tables (strings as printed; None where the notes print "-")
_P1 = {
    "m": ["0.0002", "0.00036", "0.000534", "0.000671", "0.000804", "0.000944", "0.001030",
          "0.001117", "0.001215", "0.001294"],
    "v": ["4e-9", "7.2e-9", "1.16e-8", "1.52e-8", "1.92e-8", "2.40e-8", "2.71e-8", "3.05e-8",
          "3.46e-8", "3.85e-8"],
    "m_hat": ["0.002", "0.00190", "0.00197", "0.00195", "0.00197", "0.00201", "0.00199",
              "0.00199", "0.00201", "0.00199"],
    "v_hat": ["4e-6", "3.6e-6", "3.9e-6", "4.4e-6", "4.7e-6", "4.9e-6", "5.2e-6", "5.4e-6",
              "5.6e-6", "5.9e-6"],
    "eff": ["0.500", "0.526", "0.506", "0.476", "0.461", "0.452", "0.439", "0.430", "0.422",
            "0.412"],
    "w": ["0.499", "0.498", "0.497", "0.496", "0.495", "0.494", "0.493", "0.492", "0.491",
          "0.490"],
}
_P2 = {
    "m": ["0", "0", "0.25", "0.225", "0.2025", "0.1823", "0.4741", "0.4267", "0.3840", "0.3456"],
    "v": ["0", "0", "0.00625", "0.00624", "0.00623", "0.00622", "0.01581", "0.01579", "0.01577",
          "0.01575"],
    "m_hat": ["0", "0", "0.9225", "0.6535", "0.4962", "0.3878", "0.9155", "0.7605", "0.6353",
              "0.5320"],
    "v_hat": ["0", "0", "2.086", "1.810", "1.527", "1.273", "3.030", "2.811", "2.567", "2.348"],
    "eff": [None, None, "0.000692", None, None, None, "0.000574", None, None, None],
    "step": ["0", "0", "0.000638", "0", "0", "0", "0.000526", "0", "0", "0"],  # "0" for "-"
    "w": ["0.500", "0.500", "0.499362", "0.499362", "0.499362", "0.499362", "0.498836",
          "0.498836", "0.498836", "0.498836"],
}


def drive(grads: list[tuple[float, float]], name: str = "adam", **kw: object
          ) -> dict[str, np.ndarray]:
    """Run optimizer ``name`` (``oo.create``) on two weights starting at 0.5 with fixed
    gradients; arrays (steps, 2) of the weights ``w``, the steps ``step`` (w_{t−1} − w_t) and,
    for Adam, the state's moments ``m`` and ``v``."""
    w = torch.tensor([W0, W0], dtype=torch.float64, requires_grad=True)
    opt = oo.create(name, [w], **kw)
    ws, ms, vs = [], [], []
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ws.append(w.detach().numpy().copy())
        if name == "adam":
            ms.append(opt.state[w]["ewa"].numpy().copy())
            vs.append(opt.state[w]["sq_avg"].numpy().copy())
    path = np.array(ws)
    out = {"w": path, "step": np.vstack([[W0, W0], path])[:-1] - path}
    if name == "adam":
        out |= {"m": np.array(ms), "v": np.array(vs)}
    return out


def run(out_dir: Path) -> TopicResult:
    """Compute the Adam table for both weights, the uncorrected variant and the other
    optimizers on the same gradients."""
    b1, b2 = BETAS
    grads = list(zip(G1, G2, strict=True))
    adam = drive(grads, lr=ALPHA, betas=BETAS, eps=EPS)
    t = np.arange(1, len(grads) + 1)[:, None]
    m_hat = adam["m"] / (1 - b1**t)
    v_hat = adam["v"] / (1 - b2**t)
    eff = ALPHA / (np.sqrt(v_hat) + EPS)
    raw = drive(grads, lr=ALPHA, betas=BETAS, eps=EPS, bias_correction=False)
    others = {
        "sgd": drive(grads, "sgd", lr=ALPHA),
        "momentum": drive(grads, "momentum", lr=ALPHA, momentum=b1),
        "rmsprop": drive(grads, "rmsprop", lr=ALPHA, alpha=b2, eps=EPS),
        "adam": adam,
    }

    def table(i: int) -> list[list[float]]:
        return [[k + 1, grads[k][i], adam["m"][k, i], adam["v"][k, i], m_hat[k, i],
                 v_hat[k, i], eff[k, i], adam["step"][k, i], adam["w"][k, i]]
                for k in range(len(grads))]

    cols = ["batch", "∇w", "m", "v", "m̂", "v̂", "α/(√v̂+ε)", "step α·m̂/(√v̂+ε)", "w"]
    computed = [{"m": adam["m"][:, i], "v": adam["v"][:, i], "m_hat": m_hat[:, i],
                 "v_hat": v_hat[:, i], "eff": eff[:, i], "step": adam["step"][:, i],
                 "w": adam["w"][:, i]} for i in (0, 1)]

    check = NotesCheck("004 Adam")
    labels = [f"batch {k}" for k in range(1, 11)]
    names = {"m": "m", "v": "v", "m_hat": "m̂", "v_hat": "v̂", "eff": "effective rate",
             "step": "update", "w": "w"}
    for i, printed in ((0, _P1), (1, _P2)):
        for key, values in printed.items():
            check.series(f"table for w{'₁₂'[i]}, {names[key]}", labels, list(computed[i][key]),
                         values, tol=2e-6 if (i, key) == (0, "m") else None,
                         why=("m̂₂ ≠ 0 after batch 3, so w₂ moves at every batch"
                              if (i, key) == (1, "step") else ""))
    check.value("batch 3 worked calculation, w₁'s update", adam["step"][2, 0], "0.000997",
                why="the notes round √v̂₁ to 0.001975; √3.88347e-6 = 0.0019707")
    # §10 "Combined effect": one gradient of 0.02, without and with bias correction
    one = [(0.02, 0.0)]
    step_raw = float(drive(one, lr=ALPHA, betas=BETAS, eps=EPS,
                           bias_correction=False)["step"][0, 0])
    step_bc = float(drive(one, lr=ALPHA, betas=BETAS, eps=EPS)["step"][0, 0])
    check.value("§10 combined effect, first update without bias correction (g = 0.02)",
                step_raw, "0.00316")
    check.value("§10 combined effect, first update with bias correction (g = 0.02)", step_bc,
                "0.001")

    findings = [
        f"First step: w₁ moves {fmt(adam['step'][0, 0], 6)} ≈ α = {ALPHA} — m̂₁ = g and "
        "v̂₁ = g², so the first step is α·g/(|g|+ε), whatever the scale of g. Without bias "
        f"correction it is {fmt(raw['step'][0, 0], 4)} = α·(1−β₁)/√(1−β₂) = "
        f"{fmt(raw['step'][0, 0] / ALPHA, 3)}·α.",
        f"w₁ (steady small gradients): effective rate stays {fmt(eff[:, 0].min(), 3)}–"
        f"{fmt(eff[:, 0].max(), 3)} and every step is ≈ α, so w₁ falls by "
        f"{fmt(W0 - adam['w'][-1, 0], 3)} in 10 batches (plain SGD: "
        f"{fmt(W0 - others['sgd']['w'][-1, 0], 2)}).",
        f"w₂ (rare spikes 2.5, 3.1): the spike at batch 3 gives a step of "
        f"{fmt(adam['step'][2, 1], 3)} (< α, not 2.5·α as SGD's "
        f"{fmt(others['sgd']['step'][2, 1], 3)}); "
        "momentum keeps m̂₂ > 0 afterwards, so w₂ keeps moving at batches 4–6 "
        f"({', '.join(fmt(x, 3) for x in adam['step'][3:6, 1])}), ending at "
        f"{fmt(adam['w'][-1, 1])}.",
        "RMSprop without bias correction on the same gradients moves w₁ by "
        f"{fmt(W0 - others['rmsprop']['w'][-1, 0], 3)} in 10 batches: its s is still warming up "
        "(inflated rates), which Adam's v̂ avoids.",
    ]

    fig, axes = new_figure(3, 1, width=15.0, height=4.4)
    k = np.arange(0, len(grads) + 1)
    for i, ax in enumerate(axes[:2]):
        for name, r in others.items():
            ax.plot(k, np.r_[W0, r["w"][:, i]], "o-", ms=3, color=style.color(name),
                    label=_LABELS[name])
        what = "∇ ≈ 0.002 every batch" if i == 0 else "∇ = 2.5, 3.1 at batches 3, 7"
        ax.set(title=f"w{'₁₂'[i]}: {what} (α = 0.001)",
               xlabel="batch", ylabel=f"weight w{'₁₂'[i]}", xticks=k)
        ax.legend(fontsize=8)
    ax = axes[2]
    width = 0.38
    ax.bar(t[:, 0] - width / 2, adam["step"][:, 0] / ALPHA, width, color="#0072b2",
           label="w₁ step / α")
    ax.bar(t[:, 0] + width / 2, adam["step"][:, 1] / ALPHA, width, color="#d55e00",
           label="w₂ step / α")
    ax.axhline(1.0, color="#555555", lw=0.8, ls="--", label="step = α")
    ax.set(title="Adam's step per batch, in units of α", xlabel="batch",
           ylabel="step size / α (dimensionless)", xticks=t[:, 0], ylim=(0, 1.3))
    ax.legend(fontsize=8, loc="upper center", ncols=3)
    figure = save(fig, out_dir, "explain_adam.png")

    return TopicResult(
        name="adam",
        title="Adam — the two-weight example (a rare feature fires at batch 3)",
        table_title="w₁: frequent, small gradients (α = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8)",
        columns=cols, rows=table(0),
        extra_tables=[
            Table("w₂: rare, large gradients", cols, table(1)),
            Table("Final weights after 10 batches, same gradients and α = 0.001",
                  ["optimizer", "w₁", "w₂"],
                  [[n, r["w"][-1, 0], r["w"][-1, 1]] for n, r in others.items()]
                  + [["adam, no bias correction", raw["w"][-1, 0], raw["w"][-1, 1]]]),
        ],
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "m": adam["m"].T.tolist(), "v": adam["v"].T.tolist(),
            "m_hat": m_hat.T.tolist(), "v_hat": v_hat.T.tolist(), "eff": eff.T.tolist(),
            "step": adam["step"].T.tolist(), "w": adam["w"].T.tolist(),
            "first_step": float(adam["step"][0, 0]),
            "first_step_no_bias_correction": float(raw["step"][0, 0]),
            "final_w": {n: r["w"][-1].tolist() for n, r in others.items()},
        },
        findings=findings,
    )
