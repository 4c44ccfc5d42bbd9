"""``optimlab compare`` — the main job: which optimizer trains this model best on this data,
and which gets there fastest?

With no arguments: the digits dataset, an MLP 64→128→10 (ReLU, He initialization), and eight
optimizers with the course's default hyperparameters — full-batch gradient descent, mini-batch
SGD, momentum (EWA form, β = 0.9), Nesterov, RMSprop (β = 0.999), Adam, AdamW and Nadam
(β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸) — batch size 64, 20 epochs, 11 seeds, and a target of 95%
validation accuracy. Results go to a store (``optimlab.db``; a rerun skips finished trials) and
``report.html``; the ranking with 95% intervals, the answer in words, and each optimizer
against mini-batch SGD in final accuracy and in steps to the target are printed.

Why 11 seeds: every verdict is an exact paired test, corrected (Holm) over all the study's
comparisons — 28 pairs of optimizers and 7 steps-to-target comparisons with SGD, 35 in all —
and with n seeds the smallest possible p is 2/2ⁿ, so a verdict needs 2/2ⁿ ≤ 0.05/35: n ≥ 11.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

from optimlab.commands._study import add_study_flags, study_name

ORDER = 10


class Entry(NamedTuple):
    """One optimizer of ``compare``'s roster with the course's default hyperparameters."""

    label: str
    optimizer: str
    lr: float
    kwargs: dict[str, Any]
    #: "full": the whole training set as one batch (gradient descent); None: ``--batch-size``
    batch: str | None = None


ROSTER: dict[str, Entry] = {
    "gd": Entry("GD (full batch)", "sgd", 0.1, {}, batch="full"),
    "sgd": Entry("SGD", "sgd", 0.1, {}),
    "momentum": Entry("momentum", "momentum", 0.1, {"momentum": 0.9}),
    "nesterov": Entry("Nesterov", "nesterov", 0.1, {"momentum": 0.9}),
    "adagrad": Entry("Adagrad", "adagrad", 0.01, {}),
    "rmsprop": Entry("RMSprop", "rmsprop", 0.001, {"alpha": 0.999, "eps": 1e-8}),
    "adam": Entry("Adam", "adam", 0.001, {"betas": [0.9, 0.999], "eps": 1e-8}),
    "amsgrad": Entry("AMSGrad", "amsgrad", 0.001, {}),
    "adamw": Entry("AdamW", "adamw", 0.001, {"weight_decay": 0.01}),
    "nadam": Entry("Nadam", "nadam", 0.001, {}),
    "adamax": Entry("Adamax", "adamax", 0.002, {}),
    "lion": Entry("Lion", "lion", 1e-4, {}),
}
DEFAULT = ["gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "nadam"]
#: seeds per optimizer: the fewest for which the default study (8 optimizers, a target) can
#: give a corrected verdict at all — see the module docstring
SEEDS = 11
#: the default target, validation accuracy (classification datasets)
TARGET_ACCURACY = 0.95
_CLASSIFICATION = ("binary", "multiclass")


def _config(entry: str) -> dict[str, Any]:
    """``adam`` or ``adam:lr=0.01,weight_decay=0.1`` → a [[configs]] table."""
    name, _, extra = entry.partition(":")
    name = name.strip().lower()
    if name not in ROSTER:
        raise ValueError(f"unknown optimizer {name!r} for compare; choose from "
                         f"{', '.join(ROSTER)}")
    known = ROSTER[name]
    config: dict[str, Any] = {"label": known.label, "optimizer": known.optimizer,
                              "lr": known.lr, "optimizer_kwargs": dict(known.kwargs)}
    if known.batch == "full":
        config["batch_size"] = None
    for item in filter(None, (p.strip() for p in extra.split(","))):
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"{entry!r}: write settings as name:key=value,key=value")
        value: Any = _number(raw)
        if key == "lr":
            config["lr"] = value
        else:
            config["optimizer_kwargs"][key] = value
    if extra:
        config["label"] = f"{known.label} ({extra})"
    return config


def _number(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The study spec that ``compare``'s flags describe."""
    if args.csv:
        if not args.target:
            raise ValueError("--csv needs --target COLUMN (the name or index of the target)")
        data: dict[str, Any] = {"csv": str(Path(args.csv).resolve()), "target": args.target}
        source = Path(args.csv).stem
    else:
        data = {"dataset": args.dataset}
        source = args.dataset
    names = args.optimizers or DEFAULT
    configs = [_config(n) for n in names]
    baseline = next((c["label"] for c in configs if c["label"] == "SGD"), configs[0]["label"])
    epochs = 3 if args.quick else args.epochs
    spec: dict[str, Any] = {
        "name": args.name or f"compare-{source}",
        "description": "optimlab compare: optimizers with the course's default hyperparameters",
        "seeds": args.seeds, "baseline": baseline, "data": data,
        "train": {"model": {"type": "mlp", "hidden": [args.hidden], "activation": "relu",
                            "init": "he_normal"},
                  "epochs": epochs, "batch_size": args.batch_size},
        "configs": configs,
    }
    goal = args.target_accuracy
    if goal is None and not args.csv and _task(args.dataset) in _CLASSIFICATION:
        goal = TARGET_ACCURACY
    if goal:  # 0 turns the target off
        if not 0.0 < goal <= 1.0:
            raise ValueError(f"--target-accuracy={goal!r} must be a validation accuracy in "
                             "(0, 1], such as 0.95 (0 for no target)")
        spec["target"] = {"metric": "val_accuracy", "value": goal}
    return spec


def _task(dataset: str) -> str | None:
    from optimlab.data import available

    info = available().get(dataset)
    return info.get("task") if isinstance(info, dict) else None


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._lab import run_and_report
    from optimlab.commands._study import prepare
    from optimlab.lab.spec import parse_spec

    return run_and_report(prepare(parse_spec(build_spec(args), source="compare"), args), args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare optimizers on a dataset over several seeds (the main job)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits",
                   help="a bundled or synthetic dataset (see `optimlab datasets`)")
    p.add_argument("--csv", help="train on your own CSV file instead (needs --target)")
    p.add_argument("--target", help="the target column of --csv (name or index)")
    p.add_argument("--optimizers", nargs="+", metavar="NAME[:k=v,…]",
                   help=f"optimizers to compare (default: {' '.join(DEFAULT)}; also: "
                        f"{', '.join(n for n in ROSTER if n not in DEFAULT)})")
    p.add_argument("--seeds", type=int, default=SEEDS,
                   help=f"seeds per optimizer (default {SEEDS}: the fewest at which the default "
                        "study's corrected verdicts are possible)")
    p.add_argument("--target-accuracy", type=float, default=None, metavar="ACC",
                   help=f"compare the steps (and seconds) to reach this validation accuracy "
                        f"(default {TARGET_ACCURACY:g} on classification datasets; 0 for none)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per trial (default 20)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    p.add_argument("--name", type=study_name, help="study name (default compare-DATASET)")
    p.add_argument("--report", default="report.html",
                   help="HTML report to write ('' for none; default report.html)")
    p.add_argument("--quick", action="store_true", help="3 epochs: a smoke test of the setup")
    add_study_flags(p)
    p.set_defaults(func=run)
