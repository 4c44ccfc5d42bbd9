"""``optimlab compare`` — the main job: which optimizer trains this model best on this data?

With no arguments: the digits dataset, an MLP 64→128→10 (ReLU, He initialization), and eight
optimizers with the course's default hyperparameters — full-batch gradient descent, mini-batch
SGD, momentum (EWA form, β = 0.9), Nesterov, RMSprop (β = 0.999), Adam, AdamW and Nadam
(β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸) — batch size 64, 3 seeds, 30 epochs. Results go to a store
(``optimlab.db``; a rerun skips finished trials) and ``report.html``; the ranking table with
95% intervals and the comparisons with mini-batch SGD are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.commands._study import add_study_flags, study_name

ORDER = 10

#: name → (label, optimizer, lr, optimizer_kwargs, batch size override: "full" = whole data)
ROSTER: dict[str, tuple[str, str, float, dict[str, Any], str | None]] = {
    "gd": ("GD (full batch)", "sgd", 0.1, {}, "full"),
    "sgd": ("SGD", "sgd", 0.1, {}, None),
    "momentum": ("momentum", "momentum", 0.1, {"momentum": 0.9}, None),
    "nesterov": ("Nesterov", "nesterov", 0.1, {"momentum": 0.9}, None),
    "adagrad": ("Adagrad", "adagrad", 0.01, {}, None),
    "rmsprop": ("RMSprop", "rmsprop", 0.001, {"alpha": 0.999, "eps": 1e-8}, None),
    "adam": ("Adam", "adam", 0.001, {"betas": [0.9, 0.999], "eps": 1e-8}, None),
    "amsgrad": ("AMSGrad", "amsgrad", 0.001, {}, None),
    "adamw": ("AdamW", "adamw", 0.001, {"weight_decay": 0.01}, None),
    "nadam": ("Nadam", "nadam", 0.001, {}, None),
    "adamax": ("Adamax", "adamax", 0.002, {}, None),
    "lion": ("Lion", "lion", 1e-4, {}, None),
}
DEFAULT = ["gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "nadam"]


def _config(entry: str) -> dict[str, Any]:
    """``adam`` or ``adam:lr=0.01,weight_decay=0.1`` → a [[configs]] table."""
    name, _, extra = entry.partition(":")
    name = name.strip().lower()
    if name not in ROSTER:
        raise ValueError(f"unknown optimizer {name!r} for compare; choose from "
                         f"{', '.join(ROSTER)}")
    label, optimizer, lr, kwargs, batch = ROSTER[name]
    config: dict[str, Any] = {"label": label, "optimizer": optimizer, "lr": lr,
                              "optimizer_kwargs": dict(kwargs)}
    if batch == "full":
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
        config["label"] = f"{label} ({extra})"
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
    return {
        "name": args.name or f"compare-{source}",
        "description": "optimlab compare: optimizers with the course's default hyperparameters",
        "seeds": args.seeds, "baseline": baseline, "data": data,
        "train": {"model": {"type": "mlp", "hidden": [args.hidden], "activation": "relu",
                            "init": "he_normal"},
                  "epochs": epochs, "batch_size": args.batch_size},
        "configs": configs,
    }


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
    p.add_argument("--seeds", type=int, default=3, help="seeds per optimizer (default 3)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per trial (default 30)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    p.add_argument("--name", type=study_name, help="study name (default compare-DATASET)")
    p.add_argument("--report", default="report.html",
                   help="HTML report to write ('' for none; default report.html)")
    p.add_argument("--quick", action="store_true", help="3 epochs: a smoke test of the setup")
    add_study_flags(p)
    p.set_defaults(func=run)
