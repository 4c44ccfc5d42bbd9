"""Initialization and the scale of activations and gradients through 10 layers (002 "Weight
Initialization"; 003 "Vanishing and Exploding Gradients").

A stack of 10 Linear(256 → 256) + activation layers (``build_model``, then a Linear head with 10
outputs) sees a batch of 512 inputs x ~ N(0, 1). For each layer l we measure the standard
deviation of its activations a_l (over batch and units), and the gradient norm ‖∂L/∂W_l‖ for
the loss L = (1/N)·Σ out·r with a fixed random r ~ N(0, 1) (unit-scale error at the output).

    zeros            W = 0                        every unit identical; no gradient reaches W_l
    small normal     W ~ N(0, 0.01²)              signal × 0.01·√256 = 0.16 per layer
    Xavier           W ~ U(±√(6/(n_in+n_out)))   Var W = 2/(n_in+n_out) = 1/256
    He               W ~ N(0, 2/n_in)            Var W = 2/256: keeps E[a²] through ReLUs
    large normal     W ~ N(0, 1)                  signal × √256 = 16 per layer: explodes

Backward, each layer multiplies the gradient by Wᵀ and by f′(z): sigmoid's f′ ≤ 0.25, so with
weights of gain ~1 the gradient shrinks ≈ 4× per layer toward the input (vanishing); ReLU with
He keeps it; large weights blow it up (exploding) or saturate sigmoid/tanh (vanishing again).

Where the notes differ: 002 writes He initialization as "a normal distribution with variance
N(0, √(2/n_in))"; √(2/n_in) is the standard deviation (variance 2/n_in), which is what
optimlab draws (measured weight std 0.0884 = √(2/256)).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.lines import Line2D

from optimlab.models import build_model
from optimlab.viz.explain.base import NotesCheck, TopicResult, fmt, new_figure, save

WIDTH, DEPTH, BATCH, SEED = 256, 10, 512, 0
ACTIVATIONS = ["sigmoid", "tanh", "relu"]
#: label → optimlab init spec
INITS: dict[str, str] = {
    "zeros": "zeros",
    "small normal N(0, 0.01²)": "normal:0.01",
    "Xavier (uniform)": "xavier_uniform",
    "He (normal)": "he_normal",
    "large normal N(0, 1)": "normal:1.0",
}
_COLORS = ["#999999", "#0072b2", "#009e73", "#d55e00", "#cc79a7"]


def measure(activation: str, init: str) -> dict[str, list[float]]:
    """Activation std and weight-gradient norm of each of the DEPTH hidden layers, and the
    std of each layer's weights, for one activation and one init spec."""
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(BATCH, WIDTH, generator=gen)
    r = torch.randn(BATCH, 10, generator=gen)
    model = build_model({"type": "mlp", "hidden": [WIDTH] * DEPTH, "activation": activation,
                         "init": init}, WIDTH, 10, seed=SEED)
    stds: list[float] = []
    hooks = [model.get_submodule(f"act{i}").register_forward_hook(
        lambda _m, _i, out: stds.append(float(out.detach().std()))) for i in range(DEPTH)]
    (model(x) * r).sum().div(BATCH).backward()
    for h in hooks:
        h.remove()
    layers = [model.get_submodule(f"linear{i}") for i in range(DEPTH)]
    return {"act_std": stds,
            "grad_norm": [float(lin.weight.grad.norm()) for lin in layers],
            "weight_std": [float(lin.weight.detach().std()) for lin in layers]}


def run(out_dir: Path) -> TopicResult:
    """Measure every activation × initialization pair."""
    res = {a: {label: measure(a, spec) for label, spec in INITS.items()} for a in ACTIVATIONS}
    rows = []
    for a in ACTIVATIONS:
        for label in INITS:
            m = res[a][label]
            s1, s10 = m["act_std"][0], m["act_std"][-1]
            g1, g10 = m["grad_norm"][0], m["grad_norm"][-1]
            rows.append([a, label, s1, s10, (s10 / s1) if s1 else "—", g1, g10,
                         (g1 / g10) if g10 else "—"])
    columns = ["activation", "init", "act std, layer 1", "act std, layer 10",
               "std ratio 10/1", "‖∂L/∂W‖, layer 1", "‖∂L/∂W‖, layer 10", "grad ratio 1/10"]

    he_w = float(np.mean(res["relu"]["He (normal)"]["weight_std"][1:]))
    xa_w = float(np.mean(res["tanh"]["Xavier (uniform)"]["weight_std"][1:]))
    check = NotesCheck("002 Weight Initialization")
    check.claim(
        "He initialization is written 'a normal distribution with variance N(0, √(2/n_in))': "
        f"√(2/n_in) = {fmt(math.sqrt(2 / WIDTH), 3)} for n_in = {WIDTH} is the standard "
        f"deviation (measured weight std {fmt(he_w, 3)}), the variance is 2/n_in = "
        f"{fmt(2 / WIDTH, 3)}; a variance of √(2/n_in) would be a std of "
        f"{fmt((2 / WIDTH) ** 0.25, 3)}, 3.4× too large")

    per_layer = {a: float(np.exp(np.mean(np.diff(np.log(res[a]["Xavier (uniform)"]["grad_norm"])))))
                 for a in ACTIVATIONS}
    s = res["sigmoid"]["small normal N(0, 0.01²)"]
    h = res["relu"]["He (normal)"]
    big = res["relu"]["large normal N(0, 1)"]
    findings = [
        "zeros: every unit computes the same value (activation std 0) and no gradient reaches "
        "the hidden weights (all 0): symmetry never breaks, the network cannot learn.",
        f"sigmoid + small normal: activation std {fmt(s['act_std'][0], 3)} → "
        f"{fmt(s['act_std'][-1], 3)}; the gradient vanishes toward the input, "
        f"{fmt(s['grad_norm'][-1], 3)} at layer 10 but {fmt(s['grad_norm'][0], 3)} at layer 1.",
        f"ReLU + He: activation std {fmt(h['act_std'][0], 3)} → {fmt(h['act_std'][-1], 3)}, "
        f"gradient norms {fmt(min(h['grad_norm']), 3)}–{fmt(max(h['grad_norm']), 3)} in every "
        "layer: the signal neither vanishes nor explodes.",
        f"ReLU + large normal N(0, 1): activation std {fmt(big['act_std'][0], 3)} → "
        f"{fmt(big['act_std'][-1], 3)} (× √(256/2) ≈ 11 per layer) and weight gradients "
        f"≈ {fmt(big['grad_norm'][0], 2)} in every layer: exploding. With sigmoid or tanh the "
        "same weights saturate the units instead.",
        "With Xavier the gradient norm changes per layer (toward the input) by × "
        + ", ".join(f"{fmt(1 / per_layer[a], 3)} ({a})" for a in ACTIVATIONS)
        + f"; Xavier's measured weight std {fmt(xa_w, 3)} = √(2/(256+256)).",
    ]

    fig, axes = new_figure(3, 2, width=15.0, height=8.6, sharex=True)
    layers = np.arange(1, DEPTH + 1)
    for j, a in enumerate(ACTIVATIONS):
        for (label, m), c in zip(res[a].items(), _COLORS, strict=True):
            for i, key in enumerate(("act_std", "grad_norm")):
                y = np.array(m[key])
                if np.all(y == 0):
                    continue
                axes[i, j].plot(layers, np.where(y > 0, y, np.nan), "o-", ms=3, color=c,
                                label=label)
        axes[0, j].set(title=f"{a}: activation std per layer", yscale="log",
                       ylabel="std of activations (log)")
        axes[1, j].set(title=f"{a}: weight-gradient norm per layer", yscale="log",
                       xlabel="layer (1 = next to the input)", ylabel="‖∂L/∂W_l‖ (log)",
                       xticks=layers)
    handles, labels = axes[0, 2].get_legend_handles_labels()
    handles.insert(0, Line2D([], [], color=_COLORS[0], marker="o", ms=3))
    labels.insert(0, "zeros: std 0 and gradient 0 in every layer (off the log scale)")
    fig.legend(handles, labels, loc="outside lower center", ncols=5)
    fig.suptitle(f"Activation and gradient scale through {DEPTH} layers of width {WIDTH} "
                 f"(batch of {BATCH}, x ~ N(0, 1))")
    figure = save(fig, out_dir, "explain_init.png")

    return TopicResult(
        name="init",
        title="Initialization — vanishing and exploding activations and gradients",
        table_title=f"Layers 1 and 10 of a {DEPTH}-layer, width-{WIDTH} MLP",
        columns=columns, rows=rows,
        notes_differences=check.differences,
        figures=[figure],
        key_numbers={
            "act_std": {a: {k: v["act_std"] for k, v in r.items()} for a, r in res.items()},
            "grad_norm": {a: {k: v["grad_norm"] for k, v in r.items()} for a, r in res.items()},
            "he_weight_std": he_w, "xavier_weight_std": xa_w,
            "xavier_grad_factor_per_layer": per_layer,
        },
        findings=findings,
    )
