"""``optimlab lr-find`` — the learning-rate range test (notes 004, "Tuning Learning Rate with
Batch Size").

The learning rate grows exponentially from --start to --end over at most --steps updates; the
loss is smoothed by a bias-corrected EWA (--beta) and the test stops when the smoothed loss
passes --diverge × its minimum. The model and optimizer come from a study SPEC (its first
configuration, or --config LABEL) or from --dataset/--csv with --model and --optimizer. The
weights, the optimizer's state and its learning rate are left as they were.

Three suggestions are read off the curve, each drawn on the plot: the steepest descent, the
minimum ÷ 10 and the valley (fastai's names); --rule picks the one printed first and fitted.
With several --batch-sizes, each (batch size, seed) gets its own test, and the suggested lr is
fitted against the batch size on log–log axes: the slope, with its 95% interval, says how the
lr scales with B (1: the linear scaling rule the notes' table claims; 0.5: the square root).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from optimlab.commands._study import positive_int

ORDER = 45


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _spec(args: argparse.Namespace) -> tuple[Any, str, dict[str, Any]]:
    """(study spec, configuration label, settings) that the flags describe."""
    from optimlab.lab.grid import configurations
    from optimlab.lab.spec import load_spec, parse_spec

    if args.spec is not None:
        if args.dataset or args.csv:
            raise ValueError("give a SPEC or --dataset/--csv, not both: the spec names its data")
        spec = load_spec(args.spec)
    else:
        if args.csv:
            if not args.target:
                raise ValueError("--csv needs --target COLUMN (the name or index of the target)")
            data: dict[str, Any] = {"csv": str(Path(args.csv).resolve()), "target": args.target}
        else:
            data = {"dataset": args.dataset or "digits"}
        model: Any = args.model or "mlp"
        if isinstance(model, str) and model.lstrip().startswith("{"):
            try:
                model = json.loads(model)
            except json.JSONDecodeError as err:
                raise ValueError(f"--model {args.model!r} is not valid JSON ({err.msg}); write "
                                 "a name such as mlp or a table such as "
                                 "'{\"type\": \"mlp\", \"hidden\": [100]}'") from None
        spec = parse_spec({"name": "lr-find", "data": data,
                           "train": {"model": model, "optimizer": args.optimizer or "sgd"}},
                          source="lr-find")
    configs = configurations(spec)
    if args.config is not None:
        found = [c for c in configs if c[0] == args.config]
        if not found:
            raise ValueError(f"--config {args.config!r} is not a configuration of "
                             f"{spec.name!r}; its labels: {', '.join(c[0] for c in configs)}")
        label, settings = found[0]
    else:
        label, settings = configs[0]
    settings = dict(settings)
    if args.spec is not None and args.optimizer:
        from optimlab.lab.spec import TrainSpec

        settings = TrainSpec.model_validate({**settings, "optimizer": args.optimizer,
                                             "optimizer_kwargs": {}}).model_dump()
    return spec, label, settings


def _options(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    from optimlab.lab.lr_range import lr_find_settings
    from optimlab.train.lr_find import check_settings

    options = lr_find_settings(settings)
    for key, flag in (("start", "start"), ("end", "end"), ("num_steps", "steps"),
                      ("beta", "beta"), ("diverge", "diverge"), ("rule", "rule")):
        value = getattr(args, flag)
        if value is not None:
            options[key] = value
    check_settings(**options)  # ValueError naming the setting: exit 2
    return options


def run(args: argparse.Namespace) -> int:
    import torch

    from optimlab.commands._study import check_output_file
    from optimlab.lab.checks import check_study
    from optimlab.lab.lr_range import sweep
    from optimlab.lab.studydata import StudyData
    from optimlab.lab.trial import build_trainer

    spec, label, settings = _spec(args)
    options = _options(args, settings)
    out = check_output_file(args.out, "--out") if args.out else None
    spec, facts = check_study(spec, args.device)
    sizes = args.batch_sizes or [settings["batch_size"] or facts.train]
    for b in sizes:
        if b > facts.train:
            raise ValueError(f"--batch-sizes: {b} is larger than the {facts.train} training "
                             "rows; use smaller batch sizes")
    seeds = list(range(args.seeds))
    split = StudyData(spec.data).split(spec.seed_list[0])
    previous = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)

    def make(seed: int) -> Any:
        return build_trainer(spec, {**settings, "lr": 1e-3}, seed, split, [],
                             device=facts.device)

    def progress(b: int, seed: int, result: Any) -> None:
        if not args.json:
            import sys

            chosen = (f"{result.lr:.3g}" if options["rule"] in result.suggestions
                      else "none")
            print(f"  B={b} seed {seed}: {len(result.lrs)} steps, suggested lr {chosen}",
                  file=sys.stderr, flush=True)

    try:
        result = sweep(make, split.train, sizes, seeds, on_result=progress, **options)
    finally:
        torch.set_num_threads(previous)
    figure_path = None
    if out is not None:
        from optimlab.viz.curves import to_png
        from optimlab.viz.lr_find import range_test_figure

        curves = {f"B={b}": result.results[b] for b in result.batch_sizes}
        source = spec.data.describe().split(",")[0]
        fig = range_test_figure(curves, rule=options["rule"],
                                sweep=result if len(sizes) > 1 else None,
                                title=f"Range test{'s' if len(sizes) > 1 else ''} of "
                                      f"{label!r} on {source}"
                                      + (" (B from --batch-sizes)" if args.batch_sizes
                                         else ""))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(to_png(fig, dpi=110))
        figure_path = out
    if args.json:
        data = result.to_dict()
        data.update({"configuration": label, "options": options,
                     "figure": str(figure_path) if figure_path else None})
        print(json.dumps(data, indent=2, allow_nan=False))
        return 0
    _print(result, label, options, figure_path)
    return 0


def _print(result: Any, label: str, options: dict[str, Any], figure: Path | None) -> None:
    from rich.table import Table

    from optimlab.commands._lab import console
    from optimlab.commands._study import markup_safe as safe
    from optimlab.train.lr_find import RULES

    out = console()
    table = Table(title=f"Learning-rate range test of {safe(repr(label))} "
                        f"(lr {options['start']:g} → "
                        f"{options['end']:g} over ≤ {options['num_steps']} steps, EWA β = "
                        f"{options['beta']:g}, stop at {options['diverge']:g} × the minimum)")
    for col in ("B", "seed", "steps", *(f"{r}{' (used)' if r == result.rule else ''}"
                                        for r in RULES), "stopped"):
        table.add_column(col, justify="left" if col == "stopped" else "right")
    for b in result.batch_sizes:
        for seed, r in zip(result.seeds, result.results[b], strict=True):
            cells = [f"{r.suggestions[k].lr:.3g}" if k in r.suggestions else "—"
                     for k in RULES]
            table.add_row(str(b), str(seed), str(len(r.lrs)), *cells,
                          safe(r.stop_reason if not r.problem else r.problem))
    out.print(table)
    if len(result.batch_sizes) > 1:
        for sentence in result.sentences():
            out.print(safe(sentence))
    else:
        values = result.suggested(result.batch_sizes[0])
        if values:
            mid = result.median(result.batch_sizes[0])
            shown = f"{mid:.3g}" if math.isfinite(mid) else "—"
            out.print(f"Suggested lr ({result.rule}): {shown}"
                      + (f" (median of {len(values)} seeds)" if len(values) > 1 else ""))
    if figure is not None:
        out.print(f"figure: {safe(figure)}")


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.train.lr_find import DEFAULTS, RULES

    p = sub.add_parser("lr-find", help="the learning-rate range test, at one or several batch "
                                       "sizes (with the fitted lr-vs-batch-size slope)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", default=None, metavar="SPEC",
                   help="a study spec: its data and (first) configuration")
    p.add_argument("--config", metavar="LABEL", help="the spec's configuration to test")
    p.add_argument("--dataset", help="a dataset (see `optimlab datasets`; default digits)")
    p.add_argument("--csv", help="a CSV file instead (needs --target)")
    p.add_argument("--target", help="the target column of --csv")
    p.add_argument("--model", help="a model name or JSON table (default mlp)")
    p.add_argument("--optimizer", help="an optimizer name (default sgd; with SPEC: replaces "
                                       "the configuration's, with its default settings)")
    p.add_argument("--batch-sizes", type=positive_int, nargs="+", metavar="B",
                   help="one test per batch size (default: the configuration's)")
    p.add_argument("--seeds", type=positive_int, default=1,
                   help="tests per batch size, seeds 0 … N−1 (default 1)")
    p.add_argument("--start", type=_number, help=f"first lr (default {DEFAULTS['start']:g})")
    p.add_argument("--end", type=_number, help=f"last lr (default {DEFAULTS['end']:g})")
    p.add_argument("--steps", type=int, help=f"at most this many updates (default "
                                             f"{DEFAULTS['num_steps']})")
    p.add_argument("--beta", type=_number, help=f"EWA β of the smoothing (default "
                                                f"{DEFAULTS['beta']:g})")
    p.add_argument("--diverge", type=_number, help=f"stop when the smoothed loss passes this × "
                                                   f"its minimum (default {DEFAULTS['diverge']:g})")
    p.add_argument("--rule", choices=RULES, help=f"the suggestion used (default "
                                                 f"{DEFAULTS['rule']})")
    p.add_argument("--out", "-o", default="lr_find.png",
                   help="the PNG to write ('' for none; default lr_find.png)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where to train (default: the spec's, cpu)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print the curves and suggestions as "
                                                       "JSON")
    p.set_defaults(func=run)
