"""Learning-rate decay schedules over 100 epochs (000 "Learning Rate Decay"; 003 "Learning Rate
Decay and Momentum"; 004 Adam §17 "Learning Rate Schedules with Adam").

All start from α₀ = 0.001 (the notes' Adam section) and are read once per epoch e = 0 … 99:

    inverse time     α₀ / (1 + k·e),  k = 0.1                         S.inverse_time
    exponential      α₀ · 0.95^e                                      S.exponential
    step             α₀ · 0.1^⌊e/30⌋   (torch StepLR(30, 0.1))        S.step_decay
    cosine           α_min + (α₀ − α_min)·(1 + cos(π·e/100))/2, α_min = 1e-6   S.cosine
    warmup + cosine  α₀·(e+1)/10 for e < 10, then cosine over the remaining 90 epochs
                     (the notes' get_lr; S.join of S.warmup and S.cosine)
    SGDR             cosine restarts, periods 10, 20, 40, … (T₀ = 10, ×2)    S.cosine_restarts
    one-cycle        α₀/25 → α₀ over the first 30 %, then down to α₀/(25·10⁴)  S.one_cycle

Where the notes differ: cosine annealing is said to go "from 0.001 → 1e-6"; at the last epoch
(e = 99 of T_max = 100) it is 1.25e-6 — 1e-6 is reached only at e = 100, after training. The
step-decay evolution printed (0.001, 1e-4, 1e-5, 1e-6) is right.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from optimlab import schedules as S
from optimlab.viz.explain.base import NotesCheck, TopicResult, fmt, new_figure, save

LR0, MIN_LR, EPOCHS, WARMUP = 1e-3, 1e-6, 100, 10
SHOWN_EPOCHS = [0, 9, 10, 29, 30, 50, 60, 69, 70, 90, 99]
_SHORT = ["inverse time", "exponential", "step", "cosine", "warmup+cosine", "SGDR", "one-cycle"]
_PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#4d4d4d"]


def build() -> dict[str, Callable[[int], float]]:
    """The seven schedules, by the name the plot shows."""
    return {
        "inverse time α₀/(1+0.1·e)": S.inverse_time(LR0, decay_rate=0.1),
        "exponential α₀·0.95^e": S.exponential(LR0, 0.95),
        "step ×0.1 every 30": S.step_decay(LR0, every=30, factor=0.1),
        "cosine (T = 100)": S.cosine(LR0, total=EPOCHS, min_lr=MIN_LR),
        "warmup 10 + cosine (notes' get_lr)": S.join(
            [S.warmup(S.constant(LR0), WARMUP - 1, 1 / WARMUP),
             S.cosine(LR0, EPOCHS - WARMUP, MIN_LR)], [WARMUP]),
        "SGDR (T₀ = 10, ×2)": S.cosine_restarts(LR0, first_period=10, period_mult=2,
                                                 min_lr=MIN_LR),
        "one-cycle (30 % up)": S.one_cycle(LR0, total_steps=EPOCHS),
    }


def run(out_dir: Path) -> TopicResult:
    """Evaluate every schedule at each epoch and plot them together."""
    scheds = build()
    epochs = np.arange(EPOCHS)
    values = {name: np.array([float(s(int(e))) for e in epochs]) for name, s in scheds.items()}
    rows = [[e, *(v[e] for v in values.values())] for e in SHOWN_EPOCHS]
    columns = ["epoch", *(_SHORT[i] for i in range(len(values)))]

    check = NotesCheck("004 Adam §17")
    step = values["step ×0.1 every 30"]
    check.series("step decay 'LR evolution'", [f"epoch {e}" for e in (0, 29, 30, 59, 60, 89, 90,
                                                                       99)],
                 [step[e] for e in (0, 29, 30, 59, 60, 89, 90, 99)],
                 ["0.001", "0.001", "0.0001", "0.0001", "0.00001", "0.00001", "0.000001",
                  "0.000001"], tol=1e-12)
    cos = values["cosine (T = 100)"]
    check.value("cosine annealing 'LR smoothly decreases from 0.001 → 1e-6', at the last "
                "epoch (e = 99)", cos[-1], "1e-6", tol=1e-8,
                why="CosineAnnealingLR(T_max=100) reaches η_min at e = 100, one past the last "
                    "epoch")

    totals = {name: float(v.sum()) for name, v in values.items()}
    findings = [
        "Decays that keep falling: inverse time ends at "
        f"{fmt(values['inverse time α₀/(1+0.1·e)'][-1], 3)} (α₀/10.9), exponential at "
        f"{fmt(values['exponential α₀·0.95^e'][-1], 3)} (0.95⁹⁹ = {fmt(0.95**99, 3)}·α₀), step at "
        f"{fmt(step[-1], 3)}.",
        f"Cosine stays near α₀ early (e = 20: {fmt(cos[20], 3)}) and drops fastest mid-way "
        f"(e = 50: {fmt(cos[50], 3)}), then flattens near α_min.",
        "Warmup ramps α₀/10 → α₀ over 10 epochs, then a cosine over the other 90; SGDR restarts "
        "to α₀ at e = 10, 30, 70; one-cycle climbs from α₀/25 to α₀ at e = 29 and ends "
        f"far below the start ({fmt(values['one-cycle (30 % up)'][-1], 2)}).",
        "Sum of the learning rates over the 100 epochs (total step budget, in units of α₀): "
        + ", ".join(f"{short} {fmt(t / LR0, 3)}" for short, t in zip(_SHORT, totals.values(),
                                                                    strict=True)) + ".",
    ]

    fig, (ax, ax2) = new_figure(2, 1, width=13.0, height=5.4)
    for (name, v), c in zip(values.items(), _PALETTE, strict=True):
        ax.plot(epochs, v * 1e3, color=c, lw=1.6, label=name)
        ax2.plot(epochs, v, color=c, lw=1.6)
    ax.set(title="Learning-rate schedules, α₀ = 0.001, 100 epochs", xlabel="epoch",
           ylabel="learning rate α (×10⁻³)")
    ax2.set(yscale="log", title="The same on a log scale", xlabel="epoch",
            ylabel="learning rate α (log)", ylim=(1e-9, 2e-3))
    fig.legend(loc="outside lower center", ncols=4, fontsize=9)
    figure = save(fig, out_dir, "explain_schedules.png")

    return TopicResult(
        name="schedules",
        title="Learning-rate schedules over 100 epochs",
        table_title="Learning rate at selected epochs (α₀ = 0.001)",
        columns=columns, rows=rows,
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={"epochs": epochs.tolist(),
                     "lr": {name: v.tolist() for name, v in values.items()},
                     "sum_over_epochs": totals},
        findings=findings,
    )
