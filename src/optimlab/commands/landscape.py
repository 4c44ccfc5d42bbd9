"""``optimlab landscape`` — draw the loss landscape of a quick model (or of a checkpoint)."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

ORDER = 50


def _check(args: argparse.Namespace) -> None:
    """Bad arguments → ValueError naming the flag, the value and what is allowed."""
    if args.grid < 2:
        raise ValueError(f"--grid {args.grid}: the slice needs at least 2 points per side "
                         "(e.g. --grid 51)")
    if not (math.isfinite(args.span) and args.span > 0):
        raise ValueError(f"--span {args.span}: must be a positive number (e.g. --span 1.0)")
    if args.epochs < 1:
        raise ValueError(f"--epochs {args.epochs}: must be at least 1")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed}: must be a non-negative integer")
    if not (math.isfinite(args.radius) and args.radius > 0):
        raise ValueError(f"--radius {args.radius}: must be a positive number (e.g. 0.1)")
    if args.compare_batch_sizes is not None:
        small, large = args.compare_batch_sizes
        if small < 1 or large < 1 or small == large:
            raise ValueError(f"--compare-batch-sizes {small} {large}: give two different "
                             "positive batch sizes, e.g. --compare-batch-sizes 16 1024")
        if args.checkpoint is not None:
            raise ValueError("--compare-batch-sizes trains new models; it cannot be combined "
                             "with --checkpoint")
    if args.model is not None:
        try:
            args.model = json.loads(args.model)
        except json.JSONDecodeError:
            args.model = args.model  # a plain name such as "mlp"


def run(args: argparse.Namespace) -> int:
    from optimlab.viz.landscape import landscape_report

    _check(args)
    started = time.perf_counter()
    report = landscape_report(
        args.dataset, grid=args.grid, span=args.span, epochs=args.epochs,
        batch_size=args.batch_size, compare_batch_sizes=args.compare_batch_sizes,
        checkpoint=args.checkpoint, out=args.out, seed=args.seed, model=args.model,
        radius=args.radius, db=args.db, study=args.study, config=args.config,
        trial_seed=args.trial_seed)
    report.numbers["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(report.to_json())
        return 0
    _print(report.numbers, [str(f) for f in report.files])
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print(nums: dict[str, Any], files: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="optimlab landscape", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    shown = [("study_trial", "study trial (trained again from the store)"),
             ("reproduces_store", f"final {nums.get('monitor')} equals the stored value"),
             ("loss_center", "loss at the centre (the model's weights; train split)"),
             ("sharpness", f"sharpness: mean loss increase at r = {nums.get('sharpness_radius')}"
                           " (filter-normalized)"),
             ("val_accuracy", "validation accuracy"),
             ("line_loss_init", "loss at the initial weights (α = 0)"),
             ("line_barrier", "barrier on the line: max over 0 ≤ α ≤ 1 of L − max(L(0), "
                              "L(1))"),
             ("pca_explained_variance", "path variance on PCA directions 1, 2"),
             ("slice_seconds", f"seconds for the {nums.get('grid')}² PCA slice"),
             ("random_slice_seconds", f"seconds for the {nums.get('grid')}² random slice"),
             ("seconds", "seconds in all")]
    for key, label in shown:
        if nums.get(key) is not None:
            table.add_row(label, _fmt(nums[key]))
    for label in ("small", "large"):
        info = nums.get(f"compare_{label}")
        if info:
            table.add_row(f"{label} batch B = {info['batch_size']}",
                          f"train loss {_fmt(info['train_loss'])}, val accuracy "
                          f"{_fmt(info['val_accuracy'])}, sharpness {_fmt(info['sharpness'])}")
    console.print(table)
    for f in files:
        print(f"wrote {f}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "landscape", help="draw the loss landscape of a quick model (line, 2-D slice, "
                          "sharp vs flat minima)",
        description="Train a quick model, record its path and draw the training loss along the "
                    "line from the initial to the final weights (Goodfellow et al. 2015) and on "
                    "2-D slices: the path's PCA plane and filter-normalized random directions "
                    "(Li et al. 2018). Prints the loss at the centre and a sharpness proxy (mean "
                    "loss increase at radius r along filter-normalized directions).")
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    p.add_argument("--grid", type=int, default=51, help="points per side of each 2-D slice "
                                                        "(default: 51)")
    p.add_argument("--span", type=float, default=1.0,
                   help="half-width of the random-direction slice, in filter-normalized units "
                        "(1 = a step as large as the weights); scales the PCA slice's box "
                        "around the path (default: 1.0)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--compare-batch-sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"),
                   help="also train at these two batch sizes and write sharp_vs_flat.png")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="a ModelCheckpoint file: draw only the slice around its weights")
    p.add_argument("--model", metavar="SPEC",
                   help="model spec as JSON (default {\"type\": \"mlp\", \"hidden\": [128]}; "
                        "inferred from a checkpoint of an optimlab MLP)")
    p.add_argument("--radius", type=float, default=0.1,
                   help="radius r of the sharpness proxy (default: 0.1)")
    p.add_argument("--db", metavar="STORE",
                   help="draw a trial of a lab study instead: it is trained again from the "
                        "store's settings and seed (same weights on the CPU)")
    p.add_argument("--study", help="with --db: the study (default: the latest)")
    p.add_argument("--config", help="with --db: the configuration label (default: the first)")
    p.add_argument("--trial-seed", type=int, default=0, help="with --db: the trial's seed")
    p.add_argument("--out", default=".", help="folder for the PNG files (default: .)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, model, training "
                                                       "and directions (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
