"""What the commands that run studies share before anything trains: their flags (checked by
argparse), the checks of the files they will write, and text shown safely on a terminal."""

from __future__ import annotations

import argparse
import math
import os
import unicodedata
from pathlib import Path
from typing import Any

from optimlab.errors import UserError


def _int_from(text: str, low: int, words: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is {words} (give {low} or more)")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1 (``--workers 0`` and ``--threads -1`` are refused)."""
    return _int_from(text, 1, "not a positive integer")


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer ≥ 0 (a seed, a count that may be none)."""
    return _int_from(text, 0, "negative")


def study_name(text: str) -> str:
    """An argparse type: a study name as a spec's ``name`` allows it (not blank, plain text)."""
    from optimlab.lab.spec import check_text

    try:
        return check_text("name", text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_study_flags(p: argparse.ArgumentParser) -> None:
    """``--db``, ``--workers``, ``--threads``, ``--device``, ``--one-at-a-time``, ``--json``
    (run and compare)."""
    p.add_argument("--db", default="optimlab.db", help="the store file (default optimlab.db)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="run trials in this many processes (default 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per process (default: 1 for small models, else the "
                        "cores shared among the workers)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where trials train: cpu, cuda, or auto (cuda when torch sees a GPU); "
                        "default: the spec's device, cpu if it names none")
    p.add_argument("--one-at-a-time", action="store_true",
                   help="train each seed on its own (by default the seeds of a configuration "
                        "train together as one stacked model where they can)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _float_from(text: str, zero: bool, unit: str = "") -> float:
    """A finite number > 0 (≥ 0 with ``zero``); ``unit`` names what it counts in messages."""
    what = f"number{unit}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise argparse.ArgumentTypeError(f"{text} is not a {what} ≥ 0" if zero
                                         else f"{text} is not a positive {what}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0 (``--num-cpus 0.5``)."""
    return _float_from(text, zero=False)


def non_negative_float(text: str) -> float:
    """An argparse type: a number ≥ 0 (``--num-gpus 0``)."""
    return _float_from(text, zero=True)


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds > 0 (``--timeout 60``)."""
    return _float_from(text, zero=False, unit=" of seconds")


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--address``, ``--storage``, ``--num-cpus``, ``--num-gpus`` (run and
    tune): where trials train (:func:`executor_options` reads them back)."""
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where trials train: local processes (--workers), or ray: Ray tasks on "
                        "a cluster (pip install -e \".[ray]\")")
    p.add_argument("--address", default=None,
                   help="with --executor ray: the cluster to join (auto: the one this machine "
                        "belongs to; ray://host:10001); default: start a local one")
    p.add_argument("--storage", default=None, metavar="DIR",
                   help="the trials' epoch checkpoints (default DB.ckpt); with Ray on several "
                        "machines, a folder every node reaches at the same path")
    p.add_argument("--num-cpus", type=positive_float, default=None,
                   help="with --executor ray: CPUs per task (a trial, or the seeds of one "
                        "configuration trained together; default: the spec's [resources], else "
                        "1)")
    p.add_argument("--num-gpus", type=non_negative_float, default=None,
                   help="with --executor ray: GPUs per task (default: the spec's [resources], "
                        "else 1 with --device cuda, else 0)")


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor flags as ``run_study`` keywords, checked: the Ray-only ones need
    ``--executor ray``; the storage must be a folder that can be made and written."""
    executor = getattr(args, "executor", "local")
    if executor != "ray":
        given = [flag for flag, name in (("--address", "address"), ("--num-cpus", "num_cpus"),
                                         ("--num-gpus", "num_gpus"))
                 if getattr(args, name, None) is not None]
        if given:
            raise UserError(f"{', '.join(given)} only apply to --executor ray; add it, or leave "
                            f"{'them' if len(given) > 1 else 'it'} out")
    storage = getattr(args, "storage", None)
    if storage:
        check_folder(storage, "--storage")
    return {"executor": executor, "address": getattr(args, "address", None),
            "storage": storage or None, "num_cpus": getattr(args, "num_cpus", None),
            "num_gpus": getattr(args, "num_gpus", None)}


def check_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """A folder a command will write into: a folder already, or one that can be made in a
    writable place."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file; give a folder")
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {out}: {probe} is not a writable folder; give a path you can "
                        "write to")
    return out


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """The file a command will write at the end, checked now: not a folder, in a folder that
    exists (or can be made) and is writable — so a long run does not fail at its last step."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{flag} {out} is a folder; give a file name, e.g. {out / 'report.html'}")
    folder = out.parent if str(out.parent) else Path(".")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag} {out}: {probe} is a file, not a folder; give another path")
    if not os.access(probe, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"{flag} {out}: {out if out.exists() else probe} is not writable; "
                        "give a path you can write to")
    return out


def prepare(spec: Any, args: argparse.Namespace) -> Any:
    """The spec a run/compare command will run: ``--device`` applied; the store and report
    paths checked before any training."""
    check_output_file(args.db, "--db")
    report = getattr(args, "report", None)
    if report:
        check_output_file(report, "--report")
    if getattr(args, "device", None):
        spec = spec.model_copy(update={"device": args.device})
    return spec


def visible(text: Any) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), so a name or label read
    from a store cannot restyle the terminal it is printed on."""
    return "".join(c.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(c) == "Cc" else c for c in str(text))


def markup_safe(text: Any) -> str:
    """:func:`visible`, with rich markup escaped too (``[bold]`` prints as ``[bold]``): for
    text inside rich tables and ``console.print``."""
    from rich.markup import escape

    return escape(visible(text))
