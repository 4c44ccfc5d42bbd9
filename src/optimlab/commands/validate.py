"""``optimlab validate SPEC`` — check a study spec without running it."""

from __future__ import annotations

import argparse
import json

ORDER = 25


def run(args: argparse.Namespace) -> int:
    from optimlab.lab.runner import expand
    from optimlab.lab.spec import configurations, load_spec

    spec = load_spec(args.spec)
    labels = [label for label, _ in configurations(spec)]
    trials = expand(spec)
    if args.json:
        print(json.dumps({"valid": True, "study": spec.name, "configurations": labels,
                          "seeds": spec.seed_list, "trials": len(trials),
                          "baseline": spec.baseline or labels[0]}, indent=2))
        return 0
    print(f"{args.spec} is valid: study {spec.name!r}, {len(labels)} configurations × "
          f"{len(spec.seed_list)} seeds = {len(trials)} trials; baseline "
          f"{spec.baseline or labels[0]!r}")
    for label in labels:
        print(f"  - {label}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a study spec without running it",
                       description="Validate SPEC: every error names the field, the bad value, "
                                   "what is allowed, and the line.")
    p.add_argument("spec", help="the study spec (TOML)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
