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
    from optimlab.lab.spec import load_spec, read_toml

    if "search" in read_toml(args.spec)[1]:  # a hyperparameter search's spec
        return _validate_search(args)
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


def _validate_search(args: argparse.Namespace) -> int:
    from optimlab.commands._study import visible
    from optimlab.tune.search import plan_search
    from optimlab.tune.spec import load_search_spec

    plan = plan_search(load_search_spec(args.spec))
    spec, facts = plan.spec, plan.facts
    assert spec.space is not None
    if args.json:
        print(json.dumps({"valid": True, "search": spec.name, "trials": plan.trials,
                          "sampler": spec.options.sampler, "pruner": spec.options.pruner,
                          "parameters": {p.name: p.describe() for p in spec.space.params},
                          "probes": len(plan.probes), "monitor": plan.monitor,
                          "max_epochs": plan.max_epochs, "device": facts.device,
                          "warnings": plan.warnings}, indent=2))
        return 0
    print(f"{args.spec} is a valid search: {visible(spec.name)}, {plan.trials} trials of "
          f"{spec.options.sampler} with pruner {spec.options.pruner}, final "
          f"{plan.monitor} ({'higher' if plan.direction == 'maximize' else 'lower'} is better)")
    print(f"data: {spec.study.data.describe()}: {facts.describe()}")
    for p in spec.space.params:
        when = "; ".join(f"when {c.parent} in {list(c.values)}" for c in p.when)
        print(f"  - {visible(p.name)}: {p.describe()}" + (f" ({when})" if when else ""))
    print(f"{len(plan.probes)} configurations built on the data (each parameter at its "
          "extremes)")
    for text in plan.warnings:
        print(f"warning: {visible(text)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a study spec and its data without training",
                       description="Validate SPEC: the spec (every error names the field, the "
                                   "bad value, what is allowed, and the line), its data (loaded "
                                   "and checked: file, columns, values, classes) and every "
                                   "configuration built once for it (model, loss, metrics, "
                                   "optimizer, monitored and target metric). Warnings name what "
                                   "is legal but likely a mistake. A search spec ([search]) is "
                                   "checked with each parameter at its extremes.")
    p.add_argument("spec", help="the study spec (TOML)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
