"""``optimlab compare`` — the main job (the lab is not built yet)."""

from __future__ import annotations

import argparse
import sys

ORDER = 10


def run(args: argparse.Namespace) -> int:
    print("optimlab compare: not yet available — the lab (studies, store, report) is not built "
          "yet. Meanwhile `optimlab optimizers` lists the optimizers you can use in your own "
          "PyTorch loop.", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare optimizers on a dataset over several seeds "
                                       "(the main job)")
    p.set_defaults(func=run)
