"""``optimlab paths`` — run optimizers on a 2-D test surface and draw their paths.

    optimlab paths --surface ravine --optimizers sgd momentum adam --steps 300
    optimlab paths --surface plateau_saddle --optimizers gd momentum:form=heavy_ball adam:lr=0.05

prints a table (steps to the minimum, final distance and loss, divergence, saddle escape) and
writes ``paths.png`` (and ``paths.gif`` with ``--gif``) in ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path
from typing import Any

ORDER = 40


def _split(text: str) -> list[str]:
    """Split ``a=1,b=(0.9,0.99)`` at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_optimizer(text: str) -> tuple[str, dict[str, Any]]:
    """``"momentum:lr=0.1,momentum=0.9"`` → ``("momentum", {"lr": 0.1, "momentum": 0.9})``.

    Values are Python literals (``betas=(0.9,0.99)``, ``nesterov=True``); anything else is kept
    as a string (``form=heavy_ball``).
    """
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"optimizer {text!r} has no name; write NAME or NAME:key=value,...")
    hparams: dict[str, Any] = {}
    for item in _split(rest):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"in optimizer {text!r}: {item!r} is not key=value "
                             f"(write e.g. momentum:lr=0.1,momentum=0.9)")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        hparams[key.strip()] = value
    return name, hparams


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from optimlab.viz import path_plots, surfaces
    from optimlab.viz import paths as vp

    kwargs: dict[str, Any] = {}
    if args.condition is not None:
        if args.surface.lower() != "ravine":
            raise ValueError(f"--condition applies to --surface ravine only, not {args.surface!r}")
        kwargs["condition"] = args.condition
    surface = surfaces.get_surface(args.surface, **kwargs)

    optimizers = [parse_optimizer(text) for text in args.optimizers]  # labelled "name (k=v)"

    result = vp.run_paths(surface, optimizers, start=args.start, steps=args.steps, tol=args.tol,
                          lr=args.lr)
    out = Path(args.out)
    files = [path_plots.plot_paths(result, out / "paths.png")]
    if args.gif:
        files.append(path_plots.animate_paths(result, out / "paths.gif"))

    if args.json:
        print(json.dumps({**result.summary(), "files": [str(f) for f in files]}, indent=2))
    else:
        console = Console()
        console.print(vp.format_table(result))
        for f in files:
            console.print(f"wrote {f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.viz.surfaces import available

    names = available()
    p = sub.add_parser(
        "paths", help="draw optimizer paths on a 2-D test surface (ravine, saddle, …)",
        description="Run optimizers from the same start on a 2-D surface with known minima and "
                    "show their paths: a table of steps to the minimum, divergence and saddle "
                    "escape, a contour plot (paths.png) and optionally a GIF (paths.gif). "
                    f"Surfaces: {', '.join(names)}.",
        epilog="Example: optimlab paths --surface plateau_saddle "
               "--optimizers gd momentum:form=heavy_ball adam --steps 300 --gif")
    p.add_argument("--surface", default="ravine", metavar="NAME",
                   help=f"the surface: {', '.join(names)} (default: ravine)")
    p.add_argument("--optimizers", nargs="+", default=["sgd", "momentum", "adam"],
                   metavar="OPT",
                   help="optimizer names (gd is sgd), each optionally with hyperparameters as "
                        "NAME:key=value,... e.g. momentum:lr=0.1,momentum=0.9 "
                        "(default: sgd momentum adam)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate for every optimizer that does not set its own "
                        "(default: the surface's, e.g. 1.5/condition on the ravine)")
    p.add_argument("--steps", type=int, default=300, help="updates per optimizer (default 300)")
    p.add_argument("--start", type=float, nargs=2, default=None, metavar=("X", "Y"),
                   help="start point (default: the surface's)")
    p.add_argument("--condition", type=float, default=None,
                   help="condition number of the ravine (default 50)")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="ε: distance to a minimum that counts as reached (default 1e-3)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="folder for paths.png / paths.gif (default: .)")
    p.add_argument("--gif", action="store_true", help="also write an animated paths.gif")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
