"""The history of a fit as an append-only journal beside ``last.pt``: each save writes only the
epochs and steps recorded since the one before, instead of the whole history again.

The file is JSON lines: a header ``{"journal": "optimlab-history", "run": <token>}``, then one
line per save with the new epoch records and step values (floats written with ``repr``
precision, so they read back bit for bit; NaN and ±inf as such). A checkpoint refers to the
journal by its run token and a byte length: it holds the history up to that byte, whatever was
appended after it (a crash between the append and the checkpoint's rename leaves an extra line,
which the next save of a resumed fit cuts off).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from optimlab.train.history import History

MARKER = "optimlab-history"
STEP_KEYS = ("step", "epoch", "loss", "lr", "grad_norm")


@dataclass(frozen=True)
class Position:
    """Where a journal stands: its run token, its length in bytes, and how many epochs and
    steps those bytes hold."""

    run: str
    bytes: int
    epochs: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        return cls(str(data["run"]), int(data["bytes"]), int(data["epochs"]),
                   int(data["steps"]))


def _line(obj: Any) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=True) + "\n").encode()


def _chunk(history: History, epochs: int, steps: int) -> bytes:
    return _line({"epochs": history.epochs[epochs:],
                  "steps": {k: list(v[steps:]) for k, v in history.steps.items()}})


def _fsync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def create(path: Path, history: History, *, sync: bool) -> Position:
    """A new journal at ``path`` (replaced all or nothing) holding ``history`` so far."""
    run = secrets.token_hex(8)
    data = _line({"journal": MARKER, "run": run})
    if history.epochs or history.n_steps:
        data += _chunk(history, 0, 0)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                _fsync(fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return Position(run, len(data), len(history.epochs), history.n_steps)


def append(path: Path, position: Position, history: History, *, sync: bool) -> Position:
    """Append what ``history`` recorded after ``position``; return the new position."""
    data = _chunk(history, position.epochs, position.steps)
    with open(path, "ab") as fh:
        fh.write(data)
        if sync:
            _fsync(fh)
    return Position(position.run, position.bytes + len(data), len(history.epochs),
                    history.n_steps)


def reopen(path: Path, position: Position, history: History) -> Position | None:
    """Continue the journal at ``path`` from ``position`` (cutting off anything written after
    it) when it is that run's journal and ``history`` is what it holds; else None."""
    if position.epochs != len(history.epochs) or position.steps != history.n_steps:
        return None
    try:
        with open(path, "rb+") as fh:
            header = json.loads(fh.readline())
            if header.get("run") != position.run or os.fstat(fh.fileno()).st_size < \
                    position.bytes:
                return None
            fh.truncate(position.bytes)
    except (OSError, ValueError, AttributeError):
        return None
    return position


def read(path: Path, position: Position) -> tuple[list[dict[str, float]], dict[str, list[Any]]]:
    """The epoch records and step values the first ``position.bytes`` bytes of the journal at
    ``path`` hold; ValueError naming the problem when the file does not fit ``position``."""
    fix = f"keep {path.name} beside the checkpoint it belongs to"
    try:
        with open(path, "rb") as fh:
            data = fh.read(position.bytes)
    except FileNotFoundError:
        raise ValueError(f"the checkpoint keeps its history in {path}, which is missing; "
                         f"{fix}") from None
    lines = data.split(b"\n")
    try:
        header = json.loads(lines[0])
        chunks = [json.loads(line) for line in lines[1:] if line]
    except ValueError as err:
        raise ValueError(f"{path} is not a readable history journal ({err}); {fix}") from None
    if not isinstance(header, dict) or header.get("journal") != MARKER:
        raise ValueError(f"{path} is not an optimlab history journal")
    if header.get("run") != position.run:
        raise ValueError(f"{path} belongs to another run than the checkpoint (a newer fit "
                         f"started in its folder); {fix}")
    epochs: list[dict[str, float]] = []
    steps: dict[str, list[Any]] = {k: [] for k in STEP_KEYS}
    for chunk in chunks:
        epochs.extend(chunk["epochs"])
        for key, values in chunk["steps"].items():
            steps.setdefault(key, []).extend(values)
    if len(data) != position.bytes or len(epochs) != position.epochs or \
            len(steps["step"]) != position.steps:
        raise ValueError(f"{path} holds {len(epochs)} epochs in {len(data)} bytes but the "
                         f"checkpoint needs {position.epochs} in {position.bytes}; {fix}")
    return epochs, steps
