"""One module per ``optimlab`` subcommand.

Each module defines ``ORDER`` (its place in ``optimlab --help``) and
``register(subparsers) -> None``, which adds its parser and sets ``func`` to a handler
``(args) -> int``. The handler raises ``optimlab.errors.UserError`` (or a ``ValueError`` /
``OSError`` from optimlab's own checks) for mistakes in what the user asked for: the CLI prints
those without a traceback and exits with code 2. Anything else is a bug: exit 1, traceback in a
log file. Modules whose name starts with ``_`` hold what commands share.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register_all(subparsers: argparse._SubParsersAction) -> None:
    """Import every command module here and let it add its parser, in ``ORDER``."""
    modules = [importlib.import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(subparsers)
