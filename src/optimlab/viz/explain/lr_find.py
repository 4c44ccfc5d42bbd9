"""The learning-rate range test, step by step (004, "Tuning Learning Rate with Batch Size":
``find_lr`` and its "typical results"), on the notes' cat-vs-dog setting.

One range test of the cat-vs-dog network 1000 → 100 → 1 (ReLU, plain SGD) at batch size 32 on
the 820 training images: the lr grows as start·(end/start)^(i/(N−1)); each step records the
loss of its batch, measured before the update with lr_i; the EWA

    v_i = β·v_{i−1} + (1 − β)·ℓ_i,   v̂_i = v_i / (1 − β^(i+1))        (optimlab.ewa)

smooths it — without the correction the first points would sit near (1 − β)·ℓ, 10 % of the
loss — and the test stops when v̂ passes 4 × its minimum since step N/10 (the first tenth sets
no minimum: at B = 32 its first batch loss here is a third of the next ones'). The three
suggestions are read off v̂;
the weights are checked to be bit-identical afterwards.

Then the notes' claim: the same test at B = 16, 32, 64, 128 (3 seeds each) and the power law
lr ≈ c·B^b fitted to the suggestions, against "B = 16: ≈ 0.01 … B = 128: ≈ 0.08" (b = 1).

Where the notes differ: their ``find_lr`` spans one epoch (``gamma = (final/init)^(1/len(
train_loader))``), so its number of steps falls with B — 52 at B = 16 but 7 at B = 128 on these
820 images, 8 decades of lr in 7 points — and it stops on the raw loss passing 10 × the first
loss, which one unlucky batch can trigger; the suggested lrs and the slope measured here are in
the topic's output (:data:`NOTES_CLAIM` against the computed ones).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch

from optimlab.data import holdout, load, standardize
from optimlab.lab.lr_range import NOTES_CLAIM, sweep
from optimlab.smoothing import ewa
from optimlab.train import Trainer
from optimlab.train.lr_find import DEFAULTS, RULES
from optimlab.viz.explain.base import NotesCheck, Table, TopicResult, fmt, save
from optimlab.viz.lr_find import range_test_figure

BATCH = 32
BATCH_SIZES = [16, 32, 64, 128]
SEEDS = [0, 1, 2]
MODEL = {"type": "mlp", "hidden": [100], "activation": "relu"}


def _trainer(seed: int) -> Trainer:
    return Trainer(MODEL, optimizer="sgd", lr=0.1, seed=seed, metrics=[], progress=False)


def run(out_dir: Path) -> TopicResult:
    """One range test walked through, then the batch-size sweep against the notes' table."""
    split, _ = standardize(holdout(load("cat_vs_dog", n=1024, n_features=1000), seed=0))
    train = split.train
    trainer = _trainer(0)
    trainer.fit(train, epochs=1, max_steps=1, batch_size=BATCH)  # builds model and optimizer
    before = copy.deepcopy(trainer.model.state_dict())
    r = trainer.lr_find(train, batch_size=BATCH)
    restored = all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    beta = r.beta
    raw_v = ewa(r.losses, beta)  # without bias correction
    v_hat = np.asarray(r.smoothed)
    skip = r.num_steps // 10  # these set no minimum (see optimlab.train.lr_find)
    best = np.full(len(v_hat), math.nan)
    best[skip:] = np.minimum.accumulate(v_hat[skip:])
    marks = {s.index for s in r.suggestions.values()}
    shown = sorted({*range(0, len(r.lrs), 8), len(r.lrs) - 1, *marks, r.num_steps // 10})
    rows = []
    for i in shown:
        tags = ", ".join(f"{k}" for k, s in r.suggestions.items() if s.index == i)
        low = "—" if i < skip else float(best[i])
        ratio = "—" if i < skip else float(v_hat[i] / best[i])
        rows.append([i, r.lrs[i], r.losses[i], float(raw_v[i]), 1 - beta ** (i + 1),
                     float(v_hat[i]), low, ratio, tags])
    columns = ["step i", "lr_i", "loss ℓ_i", f"v_i (β={beta:g})", "1−β^(i+1)", "v̂_i",
               f"min v̂ from step {skip}", "v̂_i / min", "suggestion read here"]

    suggestion_rows = [[k, s.lr, s.at_lr, s.loss, s.how] for k, s in r.suggestions.items()]

    result = sweep(_trainer, train, BATCH_SIZES, SEEDS)
    s = result.slope
    per_epoch = {b: math.ceil(len(train) / b) for b in BATCH_SIZES}
    sweep_rows = [[b, NOTES_CLAIM[b], *(result.suggested(b)), result.median(b), per_epoch[b]]
                  for b in BATCH_SIZES]

    check = NotesCheck("004 Tuning Learning Rate with Batch Size")
    for b in BATCH_SIZES:
        measured = result.median(b)
        if not 0.5 <= measured / NOTES_CLAIM[b] <= 2.0:
            check.claim(f"\"Batch size {b}: Optimal LR ≈ {NOTES_CLAIM[b]:g}\": the range test "
                        f"({result.rule} rule, median of {len(SEEDS)} seeds) suggests "
                        f"{fmt(measured, 2)} here")
    if s is not None and math.isfinite(s.ci_low) and not s.covers(1.0):
        check.claim(f"\"Pattern: LR scales roughly linearly with batch size\" (slope 1): the "
                    f"fitted slope is {fmt(s.slope, 2)}, 95% CI [{fmt(s.ci_low, 2)}, "
                    f"{fmt(s.ci_high, 2)}], which excludes 1")
    check.claim(f"find_lr runs one epoch (gamma = (final/init)^(1/len(train_loader))): on "
                f"{len(train)} images that is "
                + ", ".join(f"{per_epoch[b]} steps at B = {b}" for b in BATCH_SIZES)
                + " — at B = 128 eight decades of lr in 7 points, too coarse to read a "
                  "suggestion from; optimlab runs the same number of steps at every B")

    findings = [
        f"The test ran {len(r.lrs)} of {r.num_steps} steps and stopped: {r.stop_reason}.",
        f"Bias correction matters at the start: v₀ = (1−β)·ℓ₀ = {fmt(raw_v[0], 4)} but "
        f"v̂₀ = ℓ₀ = {fmt(v_hat[0], 4)}; by step 20 the factor 1−β^21 is "
        f"{fmt(1 - beta**21, 3)} and the two nearly agree.",
        "Suggestions: " + "; ".join(f"{k} {fmt(x.lr, 3)}" for k, x in r.suggestions.items())
        + f" (the {r.rule} rule is the default; `--rule` picks another).",
        "The weights after the test are bit-identical to those before it: "
        + ("yes" if restored else "NO") + ".",
        *result.sentences(),
    ]

    fig = range_test_figure({f"B={BATCH}, seed 0": [r]}, rule=r.rule, raw=True,
                            title=f"One range test: cat-vs-dog, B = {BATCH}, SGD")
    single = save(fig, out_dir, "explain_lr_find.png")
    curves = {f"B={b}": result.results[b] for b in result.batch_sizes}
    fig2 = range_test_figure(curves, rule=result.rule, sweep=result,
                             title="Range tests at B = 16 … 128 (3 seeds each)")
    many = save(fig2, out_dir, "explain_lr_find_batch_sizes.png")

    return TopicResult(
        name="lr-find",
        title="The learning-rate range test, step by step",
        table_title=(f"One range test (cat-vs-dog, B = {BATCH}, lr {DEFAULTS['start']:g} → "
                     f"{DEFAULTS['end']:g} over ≤ {DEFAULTS['num_steps']} steps, stop at "
                     f"{DEFAULTS['diverge']:g} × the minimum of v̂): every 8th step, the last "
                     "and the suggestions"),
        columns=columns, rows=rows,
        extra_tables=[
            Table("The suggestions (read off v̂)", ["rule", "lr", "read at lr", "v̂ there",
                                                   "how"], suggestion_rows),
            Table(f"Suggested lr ({result.rule} rule) per batch size: the notes' table, "
                  f"seeds {', '.join(map(str, SEEDS))}, median; and the steps of one epoch "
                  "(the notes' find_lr length)",
                  ["B", "notes ≈", *(f"seed {x}" for x in SEEDS), "median",
                   "steps in one epoch"], sweep_rows),
        ],
        notes_differences=check.differences,
        figures=[single, many],
        key_numbers={
            "lrs": r.lrs, "losses": r.losses, "smoothed": r.smoothed,
            "uncorrected": [float(x) for x in raw_v], "beta": beta, "diverge": r.diverge,
            "stop_reason": r.stop_reason, "diverged": r.diverged, "restored": restored,
            "suggestions": {k: x.lr for k, x in r.suggestions.items()}, "rule": r.rule,
            "rules": list(RULES),
            "sweep": {str(b): result.suggested(b) for b in BATCH_SIZES},
            "slope": None if s is None else {"slope": s.slope, "ci_low": s.ci_low,
                                             "ci_high": s.ci_high, "n": s.n},
            "steps_per_epoch": {str(b): n for b, n in per_epoch.items()},
            "train_rows": len(train),
        },
        findings=findings,
    )
