"""``optimlab landscape`` — draw the loss landscape of a quick model, of a checkpoint's weights
or of a trial of a lab study.

It trains (a quick model, or two to compare batch sizes), or has the lab replay a stored trial,
then has :mod:`optimlab.viz.landscape` draw the figures, and writes them as PNG files. Heavy
imports (torch, matplotlib) happen inside the functions: ``optimlab --help`` registers this
command without loading them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
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
    _check(args)
    started = time.perf_counter()
    if args.db is not None:
        if args.checkpoint is not None or args.compare_batch_sizes is not None:
            raise ValueError("a study trial (--db) cannot be combined with --checkpoint or "
                             "--compare-batch-sizes")
        result = _trial(args)
    elif args.checkpoint is not None:
        result = _checkpoint(args)
    else:
        result = _quick(args)
    files = result.save(args.out)
    result.numbers["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(result.to_json(files))
        return 0
    _print(result.numbers, [str(f) for f in files])
    return 0


def _trial(args: argparse.Namespace) -> Any:
    """A trial of a lab study, trained again from the store (optimlab.lab.replay)."""
    # lazy, as every import inside this module's functions: `optimlab --help` loads none
    from optimlab.lab.store import Store
    from optimlab.viz.landscape import trial_landscape

    with Store(args.db, create=False) as store:
        return trial_landscape(store, args.study, args.config, args.trial_seed, grid=args.grid,
                               span=args.span, radius=args.radius)


def _split(args: argparse.Namespace) -> Any:
    from optimlab.data import holdout, load, standardize

    split, _ = standardize(holdout(load(args.dataset), seed=args.seed))
    return split


def _checkpoint(args: argparse.Namespace) -> Any:
    """Only the slice around a ModelCheckpoint file's weights: nothing is trained."""
    from optimlab.models import build_model, get_loss, n_outputs, task_defaults
    from optimlab.train.callbacks import read_checkpoint
    from optimlab.viz.landscape import describe, weights_landscape

    split = _split(args)
    train = split.train
    state = read_checkpoint(args.checkpoint, history=False)["model"]
    spec = args.model if args.model is not None else _infer_mlp_spec(state)
    net = build_model(spec, tuple(train.X.shape[1:]),
                      n_outputs(train.task, train.n_classes, tuple(train.y.shape)),
                      task=train.task, seed=args.seed)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"the checkpoint {args.checkpoint} does not fit model {spec!r} on "
                         f"{args.dataset!r} ({str(err).splitlines()[0]}); give the model spec "
                         "it was trained with") from None
    loss_fn = get_loss(task_defaults(train.task)["loss"], train.task)
    name = Path(args.checkpoint).name
    result = weights_landscape(net, loss_fn, train.X, train.y, grid=args.grid, span=args.span,
                               seed=args.seed, radius=args.radius,
                               title=f"Training loss around the weights of {name} "
                                     f"({args.dataset}, {describe(spec)})")
    result.numbers = {"dataset": args.dataset, "train_samples": len(train), "grid": args.grid,
                      "span": args.span, "seed": args.seed, "checkpoint": str(args.checkpoint),
                      "model": spec, **result.numbers}
    return result


def _quick(args: argparse.Namespace) -> Any:
    """Train a quick model, recording its path; with --compare-batch-sizes, two more."""
    from optimlab.train.landscape import TrajectoryRecorder
    from optimlab.viz.landscape import describe, epochs_text, path_landscape

    split = _split(args)
    train = split.train
    spec = args.model if args.model is not None else {"type": "mlp", "hidden": [128]}
    lr, optimizer, epochs, batch_size = 1e-3, "adam", args.epochs, args.batch_size
    every = max(1, math.ceil(epochs * math.ceil(len(train) / batch_size) / 200))
    rec = TrajectoryRecorder(every=every)  # at most ~200 points on the path
    trainer = _train(spec, split, epochs=epochs, batch_size=batch_size, seed=args.seed, lr=lr,
                     optimizer=optimizer, callbacks=[rec])
    last = trainer.history.epochs[-1]
    title = (f"{args.dataset}, {describe(spec)}, {optimizer} lr={lr:g}, B={batch_size}, "
             f"{epochs_text(epochs)}")
    result = path_landscape(trainer.model, trainer.loss_fn, split, rec.weights, grid=args.grid,
                            span=args.span, seed=args.seed, radius=args.radius, title=title)
    result.numbers = {
        "dataset": args.dataset, "train_samples": len(train), "grid": args.grid,
        "span": args.span, "seed": args.seed, "model": spec, "epochs": epochs,
        "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
        "train_loss": float(trainer.evaluate(train)["loss"]),
        "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
        "path_points": len(rec.weights), **result.numbers}
    if args.compare_batch_sizes is not None:
        _sharp_vs_flat(args, result, trainer, split, spec, lr, optimizer)
    return result


def _sharp_vs_flat(args: argparse.Namespace, result: Any, trainer: Any, split: Any, spec: Any,
                   lr: float, optimizer: str) -> None:
    """A small-batch model and a large-batch one trained until its training loss reaches the
    small one's (at most as many updates), compared at equal training loss: sharp_vs_flat."""
    from optimlab.train.callbacks import Callback
    from optimlab.train.landscape import sharpness
    from optimlab.viz.landscape import epochs_text, plot_sharp_vs_flat

    class StopAtTrainLoss(Callback):
        """Stop once the (eval-mode) training loss is at most ``target``."""

        def on_epoch_end(self, state: Any) -> None:
            loss = state.evaluate(state.train_data)["loss"]
            if loss <= target:
                state.request_stop(f"training loss {loss:.4g} reached {target:.4g}")

    small, large = sorted(args.compare_batch_sizes)
    train, nums = split.train, result.numbers
    small_tr = trainer if small == args.batch_size else _train(
        spec, split, epochs=args.epochs, batch_size=small, seed=args.seed, lr=lr,
        optimizer=optimizer)
    target = float(small_tr.evaluate(train)["loss"])
    # the large batch takes fewer updates per epoch: let it train until it reaches the
    # small-batch model's training loss (at most as many updates), so that the two minima
    # are compared at the same training loss, not a trained one against an unfinished one
    updates = small_tr.history.n_steps
    large_epochs = max(args.epochs, math.ceil(updates / math.ceil(len(train) / large)))
    large_tr = _train(spec, split, epochs=large_epochs, batch_size=large, seed=args.seed,
                      lr=lr, optimizer=optimizer, callbacks=[StopAtTrainLoss()])
    models, notes = {}, {}
    for label, bs, tr in (("small", small, small_tr), ("large", large, large_tr)):
        models[label] = tr.model
        val_acc = tr.history.epochs[-1].get("val_accuracy")
        train_loss = float(tr.evaluate(train)["loss"])
        n_epochs = len(tr.history.epochs)
        notes[label] = (f"{epochs_text(n_epochs)}, {tr.history.n_steps} updates; train loss "
                        f"{train_loss:.3g}"
                        + (f", val accuracy {val_acc:.3f}" if val_acc is not None else ""))
        nums[f"compare_{label}"] = {"batch_size": bs, "epochs": n_epochs,
                                    "updates": tr.history.n_steps, "train_loss": train_loss,
                                    "val_accuracy": val_acc}
    loss_fn = trainer.loss_fn
    result.figures["sharp_vs_flat"] = plot_sharp_vs_flat(
        models["small"], models["large"], loss_fn, train.X, train.y, small_batch_size=small,
        large_batch_size=large, grid=args.grid, span=args.span, seed=args.seed,
        radius=args.radius, notes=notes)
    for label in ("small", "large"):
        nums[f"compare_{label}"].update(sharpness(models[label], loss_fn, train.X, train.y,
                                                  radius=args.radius, seed=args.seed))


def _train(spec: Any, split: Any, *, epochs: int, batch_size: int, seed: int, lr: float,
           optimizer: str, callbacks: Sequence[Any] = ()) -> Any:
    from optimlab.train import Trainer

    trainer = Trainer(spec, optimizer=optimizer, lr=lr, metrics=["accuracy"],
                      callbacks=list(callbacks), seed=seed, progress=False)
    trainer.fit(split.train, split.val, epochs=epochs, batch_size=batch_size)
    return trainer


def _infer_mlp_spec(state_dict: dict[str, Any]) -> dict[str, Any]:
    """An MLP spec (hidden widths, norm) that fits a state dict written for an optimlab MLP."""
    hidden, i = [], 0
    while f"linear{i}.weight" in state_dict:
        hidden.append(int(state_dict[f"linear{i}.weight"].shape[0]))
        i += 1
    if "output.weight" not in state_dict:
        raise ValueError("the checkpoint's model is not an optimlab MLP (no 'output.weight'); "
                         "give its spec with --model '{\"type\": ..., ...}'")
    norm = None
    if "norm0.weight" in state_dict:
        norm = "batch" if "norm0.running_mean" in state_dict else "layer"
    return {"type": "mlp", "hidden": hidden, "norm": norm}


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
