"""Exponentially weighted averages: the notes' temperature example (004, "Exponentially Weighted
Averages", §3–§6; 000 §1, §3).

    v_t = β·v_{t−1} + (1 − β)·θ_t,   v_0 = 0          (optimlab.ewa)
    v̂_t = v_t / (1 − β^t)                             (bias correction)
    v_t = (1 − β)·Σ_{i=1..t} β^{t−i}·θ_i,  weights sum to 1 − β^t

θ = 18, 23, 19, 20, 17, 21, 19, 18, 22, 20 °C with β = 0.9 and 0.98 gives v = 1.8, 3.92, 5.428,
6.8852, 7.89668, … (β = 0.9) and v̂₁ = 18 exactly.

Rule of thumb "the average covers ≈ 1/(1−β) values": the last n = 1/(1−β) values carry weight
1 − β^n = 1 − (1 − 1/n)^n → 1 − 1/e ≈ 0.632 (0.651 for β = 0.9, 0.636 for 0.98). It is measured
here by running ``optimlab.ewa`` over a long series that is 1 on its last n values and 0 before.

Where the notes differ (found by the comparison in :func:`run`; the CLI prints the full list):
the β = 0.9 table goes wrong from day 6 (notes 9.40701, computed 9.20701 = 0.9·7.89668 + 0.1·21)
and the β = 0.98 table from day 6 (2.2647 vs 2.24471); the bias-corrected and multi-β tables
inherit the error (v̂₁₀ = 19.75, not 19.96) and print wrong running means from day 6 (19.8 vs
19.667); v̂₄ is 20.021 and v̂₅ 19.283 (notes' table 20.01, 19.26); the multi-β table's β = 0.5
column is wrong on days 2–3 (20.5, 19.8 vs 21.33, 20.00) and its β = 0.98 column on every day
from 2 (20.9 vs 20.53 …); the correction factors for β = 0.999 at t = 100, 500, 1000 are
×10.5, ×2.54, ×1.58 (notes ×1.6, ×1.0, ×1.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimlab.smoothing import ewa
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, new_figure, save

THETA: list[float] = [18, 23, 19, 20, 17, 21, 19, 18, 22, 20]

# Numbers as printed in 004 (strings, exactly as printed; compared, never used).
_PRINTED_V09 = ["1.8", "3.92", "5.428", "6.8852", "7.89668", "9.40701", "10.36631", "11.12968",
                "12.21671", "12.99504"]
_PRINTED_V098 = ["0.36", "0.8128", "1.1765", "1.5530", "1.8619", "2.2647", "2.5994", "2.8674",
                 "3.2501", "3.5851"]
_PRINTED_VHAT09 = ["18.0", "20.63", "20.03", "20.01", "19.26", "20.06", "19.86", "19.52",
                   "19.93", "19.96"]
_PRINTED_TRUE_AVG = ["18.0", "20.5", "20.0", "20.0", "19.4", "19.8", "19.7", "19.5", "19.8",
                     "19.9"]
_PRINTED_MULTI = {  # "Comparing Different β Values": all bias-corrected
    0.5: ["18.0", "20.5", "19.8", "19.9", "18.4", "19.7", "19.4", "18.7", "20.3", "20.2"],
    0.9: ["18.0", "20.6", "20.0", "20.0", "19.3", "20.1", "19.9", "19.5", "19.9", "20.0"],
    0.98: ["18.0", "20.9", "20.6", "20.4", "19.9", "20.2", "19.9", "19.7", "20.1", "20.0"],
}
_FACTOR_T = [1, 5, 10, 100, 500, 1000]
_PRINTED_FACTORS = {  # "Numerical Impact": the multiplier 1/(1 − β^t)
    0.5: ["2.0", "1.03", "1.0", "1.0", "1.0", "1.0"],
    0.9: ["10", "2.4", "1.5", "1.0", "1.0", "1.0"],
    0.98: ["50", "10.5", "5.5", "1.1", "1.0", "1.0"],
    0.999: ["1000", "200", "100", "1.6", "1.0", "1.0"],
}


def window_weight(beta: float, n: int, length: int = 5000) -> float:
    """Weight the EWA gives its last ``n`` values, measured with ``optimlab.ewa``:
    the final v of a series that is 1 on its last ``n`` entries and 0 before (= 1 − βⁿ)."""
    series = np.zeros(length)
    series[-n:] = 1.0
    return float(ewa(series, beta)[-1])


def run(out_dir: Path) -> TopicResult:
    """Compute the temperature example, the correction factors and the 1/(1−β) rule."""
    days = list(range(1, len(THETA) + 1))
    v9, vh9 = ewa(THETA, 0.9), ewa(THETA, 0.9, bias_correction=True)
    v98, vh98 = ewa(THETA, 0.98), ewa(THETA, 0.98, bias_correction=True)
    vh5 = ewa(THETA, 0.5, bias_correction=True)
    mean = np.cumsum(THETA) / np.arange(1, len(THETA) + 1)
    weight_sum = 1 - 0.9 ** np.arange(1, len(THETA) + 1)

    rows = [[d, THETA[i], v9[i], vh9[i], v98[i], vh98[i], weight_sum[i], mean[i]]
            for i, d in enumerate(days)]
    columns = ["day t", "θ_t (°C)", "v_t β=0.9", "v̂_t β=0.9", "v_t β=0.98", "v̂_t β=0.98",
               "1−0.9^t", "mean θ₁..θ_t"]

    # the ≈ 1/(1−β) rule
    rule_rows, rule = [], {}
    for beta in (0.9, 0.98, 0.999):
        n = round(1 / (1 - beta))
        w = window_weight(beta, n)
        rule[str(beta)] = {"n": n, "weight_last_n": w, "beta_pow_n": beta**n}
        rule_rows.append([beta, n, w, 1 - beta**n, beta**n, 1 - 1 / np.e])
    factors = {b: [1 / (1 - b**t) for t in _FACTOR_T] for b in _PRINTED_FACTORS}

    check = NotesCheck("004 EWA")
    labels = [f"day {d}" for d in days]
    check.series("β=0.9 table, v_t", labels, list(v9), _PRINTED_V09,
                 why="the error enters at day 6: 0.9×7.89668 + 0.1×21 = 9.207012; later rows "
                     "carry it")
    check.series("β=0.98 table, v_t", labels, list(v98), _PRINTED_V098)
    check.series("bias-correction table, v̂_t (β=0.9)", labels, list(vh9), _PRINTED_VHAT09,
                 why="v̂₅ = 7.89668/0.40951 = 19.283, as the notes' own day-5 calculation says "
                     "(19.28); from day 6 the wrong v_t above")
    check.series("bias-correction table, 'True avg' (mean of θ₁..θ_t)", labels, list(mean),
                 _PRINTED_TRUE_AVG)
    for beta, printed in _PRINTED_MULTI.items():
        series = {0.5: vh5, 0.9: vh9, 0.98: vh98}[beta]
        check.series(f"multi-β table, β={beta} (corrected)", labels, list(series), printed)
    for beta, printed in _PRINTED_FACTORS.items():
        check.series(f"correction multiplier 1/(1−β^t), β={beta}",
                     [f"t={t}" for t in _FACTOR_T], factors[beta], printed)

    findings = [
        f"v_t (β=0.9) = {', '.join(fmt(x, 6) for x in v9[:5])}, … — far below the ≈20 °C "
        f"temperatures, because the weights sum to 1−β^t (0.1 on day 1).",
        f"Bias correction fixes it from day 1: v̂₁ = v₁/(1−β) = {fmt(vh9[0])} exactly; "
        f"v̂₁₀ = {fmt(vh9[-1], 5)} (β=0.9), {fmt(vh98[-1], 5)} (β=0.98) against the running "
        f"mean {fmt(mean[-1], 4)}.",
        "Larger β averages over more values and warms up slower: on day 10 the raw v_t is "
        f"{fmt(v9[-1], 5)} (β=0.9) but only {fmt(v98[-1], 5)} (β=0.98).",
        "Rule of thumb: the last n = 1/(1−β) values carry weight 1−βⁿ = "
        + ", ".join(f"{fmt(r[2], 4)} (β={r[0]})" for r in rule_rows)
        + f" → 1−1/e = {fmt(1 - 1 / np.e, 4)} as β → 1.",
    ]

    fig, (ax, ax2) = new_figure(2, 1, width=11.5, height=4.3)
    ax.plot(days, THETA, "o", color="#333333", label="θ_t (measured)")
    ax.plot(days, mean, "-", color="#999999", lw=5, alpha=0.5, label="running mean of θ₁..θ_t")
    for beta, v, vh, c in ((0.9, v9, vh9, "#0072b2"), (0.98, v98, vh98, "#d55e00")):
        ax.plot(days, v, "--", color=c, label=f"v_t, β={beta} (raw)")
        ax.plot(days, vh, "-", color=c, marker=".", label=f"v̂_t, β={beta} (bias-corrected)")
    ax.set(title="Temperature example: EWA with and without bias correction",
           xlabel="day t", ylabel="temperature (°C)", ylim=(0, 33), xticks=days)
    ax.legend(loc="upper center", ncols=2, fontsize=8)
    ages = np.arange(0, 120)
    for beta, c in ((0.9, "#0072b2"), (0.98, "#d55e00")):
        n = round(1 / (1 - beta))
        w = (1 - beta) * beta**ages
        ax2.plot(ages, w, color=c, label=f"β={beta}: weight (1−β)·βᵏ")
        ax2.fill_between(ages[:n], w[:n], color=c, alpha=0.2,
                         label=f"last 1/(1−β)={n} values: {fmt(1 - beta**n, 3)} of the weight")
    ax2.set(title="Weight of a value k days old", xlabel="age k (days)",
            ylabel="weight in v_t (fraction)", xlim=(0, 119))
    ax2.legend()
    figure = save(fig, out_dir, "explain_ewa.png")

    return TopicResult(
        name="ewa",
        title="Exponentially weighted averages — the temperature example",
        table_title="Temperature example (θ from the notes; v from optimlab.ewa)",
        columns=columns, rows=rows,
        extra_tables=[
            Table("Rule of thumb: weight of the last 1/(1−β) values (measured with optimlab.ewa)",
                  ["β", "n = 1/(1−β)", "weight of last n (measured)", "1−βⁿ", "βⁿ", "1−1/e"],
                  rule_rows),
            Table("Bias-correction multiplier 1/(1−β^t)",
                  ["β", *[f"t={t}" for t in _FACTOR_T]],
                  [[b, *f] for b, f in factors.items()]),
        ],
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "v_beta_0.9": list(v9), "v_hat_beta_0.9": list(vh9),
            "v_beta_0.98": list(v98), "v_hat_beta_0.98": list(vh98),
            "v_hat_beta_0.5": list(vh5), "running_mean": list(mean),
            "rule_of_thumb": rule,
            "correction_factors": {str(b): f for b, f in factors.items()},
        },
        findings=findings,
    )
