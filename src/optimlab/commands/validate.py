"""``optimlab validate SPEC`` — check a study spec and its data without training."""

from __future__ import annotations

import argparse
import json

ORDER = 25


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._study import visible
    from optimlab.lab.checks import check_study
    from optimlab.lab.grid import configurations
    from optimlab.lab.runner import expand
    from optimlab.lab.spec import load_spec

    spec = load_spec(args.spec)
    labels = [label for label, _ in configurations(spec)]
    spec, facts = check_study(spec)
    trials = expand(spec)
    if args.json:
        print(json.dumps({"valid": True, "study": spec.name, "configurations": labels,
                          "seeds": spec.seed_list, "trials": len(trials),
                          "baseline": spec.baseline or labels[0], "device": facts.device,
                          "data": {"task": facts.task, "rows": facts.rows,
                                   "train": facts.train, "val": facts.val, "test": facts.test,
                                   "features": list(facts.feature_shape),
                                   "classes": facts.n_classes,
                                   "fingerprint": facts.fingerprint},
                          "parameters": facts.params, "warnings": facts.warnings}, indent=2))
        return 0
    folds = len(spec.data.fold_ids) if spec.data.split == "kfold" else 0
    restarts = sum(1 for t in trials if t.restart) > 0
    shape = (f"{len(labels)} configurations"
             + (f" × {folds} folds" if folds else "")
             + f" × {len(spec.seed_list)} seeds" + (" (with restarts)" if restarts else ""))
    print(f"{args.spec} is valid: study {visible(spec.name)}, {shape} = {len(trials)} "
          f"trials; baseline {visible(spec.baseline or labels[0])}")
    print(f"data: {spec.data.describe()}: {facts.describe()}")
    for label in labels:
        print(f"  - {visible(label)} ({facts.params[label]:,} parameters)")
    for text in facts.warnings:
        print(f"warning: {visible(text)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a study spec and its data without training",
                       description="Validate SPEC: the spec (every error names the field, the "
                                   "bad value, what is allowed, and the line), its data (loaded "
                                   "and checked: file, columns, values, classes) and every "
                                   "configuration built once for it (model, loss, metrics, "
                                   "optimizer, monitored and target metric). Warnings name what "
                                   "is legal but likely a mistake.")
    p.add_argument("spec", help="the study spec (TOML)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
