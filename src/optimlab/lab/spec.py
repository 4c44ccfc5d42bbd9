"""A study, as a TOML file or the same structure from Python, validated before anything runs.

    name = "optimizers-on-digits"
    seeds = 3                       # or a list: [0, 1, 2]
    baseline = "sgd"                # the label of one configuration
    device = "cpu"                  # "cpu" (default), "cuda" or "auto" (cuda when there is one)

    [data]
    dataset = "digits"              # a name from `optimlab datasets`, or csv = "file.csv"
    target = "label"                # the target column, for csv
    val = 0.1
    test = 0.1
    resplit = false                 # true: a new train/val split for every seed

    [train]                         # settings every trial starts from
    model = { type = "mlp", hidden = [128], activation = "relu", init = "he_normal" }
    epochs = 30
    batch_size = 64
    optimizer = "sgd"
    lr = 0.1
    schedule = { name = "cosine", total = 30 }   # relative to lr: starts at lr = 0.1
    schedule_unit = "epoch"
    clip_grad_value = 1.0           # or clip_grad_norm
    swa = { start_epoch = 20, lr = 0.05 }        # or ema = { decay = 0.99 }, or
                                                 # snapshot = { cycles = 5 }
    plateau = { patience = 3, factor = 0.5 }     # ReduceLROnPlateau on the monitored metric
    layer_grads = true              # per-layer gradient norms, plotted in the report

    [axes]                          # a grid: every combination is a configuration
    optimizer = ["sgd", "adam"]
    "model.init" = ["xavier_normal", "he_normal"]   # dotted keys reach into tables

    [[configs]]                     # or name configurations one by one; with [axes] as well,
    label = "adam"                  # every config gets every combination of the axes
    optimizer = "adam"
    lr = 0.001

    [target]                        # optional: steps- and time-to-target
    metric = "val_accuracy"
    value = 0.95

    [resources]                     # optional: per trial on a Ray cluster (--executor ray)
    num_cpus = 1
    num_gpus = 0

Errors name the field, the bad value, what is allowed, and the file and line. Values are
strict: ``epochs = true`` or ``epochs = 2.5`` is an error, not 1 or 2.

``lr`` has one owner. A schedule in a spec is written relative to it: give the schedule no
``lr`` and it starts at the configuration's ``lr`` (after ``linear_scaling``); a schedule that
names its own rate must agree with an ``lr`` that is also given, and a schedule with rates of its
own (``cyclic``, ``one_cycle``, ``piecewise``) cannot be combined with ``lr``. Under
``linear_scaling`` the whole schedule is scaled by B / base_batch_size.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from optimlab.lab.grid import configurations
from optimlab.lab.spec_models import (
    MAX_CONFIGS,
    MAX_LAYERS,
    MAX_SEEDS,
    MAX_TRIALS,
    MAX_WIDTH,
    DataSpec,
    EMASpec,
    LRFindSpec,
    PlateauSpec,
    ResourcesSpec,
    SnapshotSpec,
    SpecError,
    StudySpec,
    SWASpec,
    TargetSpec,
    TrainSpec,
    check_monitor,
    check_text,
    first_error,
)

__all__ = ["MAX_CONFIGS", "MAX_LAYERS", "MAX_SEEDS", "MAX_TRIALS", "MAX_WIDTH", "DataSpec",
           "EMASpec", "LRFindSpec", "PlateauSpec", "ResourcesSpec", "SWASpec", "SnapshotSpec",
           "SpecError", "StudySpec", "TargetSpec", "TrainSpec", "check_monitor", "check_text",
           "first_error", "line_of", "load_spec", "parse_spec", "read_toml",
           "resolve_data_paths"]


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` (("train", "batch_size")) in a TOML text: the key under its table."""
    lines = text.splitlines()
    if len(loc) == 1:  # a whole table: its header, or an inline table at the top
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if line.strip("[]").strip() == str(loc[0]) and line.startswith("["):
                return number
    table, key = (str(loc[0]), str(loc[1])) if len(loc) >= 2 else (None, str(loc[0]) if loc
                                                                      else None)
    current = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[]").strip()
            if table is not None and current == table and key is None:
                return number
            continue
        name = line.split("=", 1)[0].strip().strip('"') if "=" in line else None
        if name is None:
            continue
        if table is None and current is None and name == key:
            return number
        if table is not None and current == table and name == key:
            return number
        if table is not None and current is None and name == table:  # inline table
            return number
    return None


#: the line of a key in a TOML text: ``line_of(text, ("train", "batch_size"))``
line_of = _line_of


def parse_spec(data: dict[str, Any], *, source: str = "<spec>", text: str | None = None
               ) -> StudySpec:
    """Validate a spec dict (from TOML or Python); ``SpecError`` names field, value and line."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = tuple(p for p in e["loc"] if not isinstance(p, int))
        where = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        named = re.match(r"(\w+)=", msg)  # a validator's message starts with the field it checks
        line = None
        if text:
            line = (_line_of(text, (*loc, named.group(1))) if named else None) or \
                _line_of(text, loc)
        place = f"{source}:{line}" if line else source
        got = f" (got {e['input']!r})" if e["type"] != "missing" and "input" in e and not \
            isinstance(e["input"], dict) else ""
        extra = ""
        if e["type"] == "extra_forbidden":
            parent = _model_for(loc[:-1])
            if parent is not None:
                extra = f"; allowed: {', '.join(parent.model_fields)}"
        raise SpecError(f"{place}: {where}: {msg}{got}{extra}") from None
    try:
        configurations(spec)
    except SpecError as err:
        bad = re.search(r"=('[^']*'|[-\w.]+) ", str(err))
        line = None
        if text and bad:  # the line that holds the bad value, when it is written once
            needle = bad.group(1).strip("'")
            hits = [i for i, raw in enumerate(text.splitlines(), 1) if needle in raw]
            line = hits[0] if len(hits) == 1 else None
        place = f"{source}:{line}" if line else source
        raise SpecError(f"{place}: {err}") from None
    return spec


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = StudySpec
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
    return model


def read_toml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(text, data) of a TOML spec file; ``SpecError`` for a missing, unreadable, non-UTF-8 or
    invalid file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no spec file at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not UTF-8 text (byte {err.start}); a spec is a TOML text "
                        "file — is this the right file?") from None
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    return text, data


def resolve_data_paths(spec: StudySpec, folder: str | Path) -> StudySpec:
    """A spec's relative csv/npz paths made absolute, relative to the spec's ``folder``."""
    folder = Path(folder)
    if spec.data.csv is not None and not Path(spec.data.csv).is_absolute():
        spec.data.csv = str((folder / spec.data.csv).resolve())
    if spec.data.npz is not None and not Path(spec.data.npz).is_absolute():
        spec.data.npz = str((folder / spec.data.npz).resolve())
    return spec


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a TOML study spec."""
    text, data = read_toml(path)
    spec = parse_spec(data, source=str(path), text=text)
    return resolve_data_paths(spec, Path(path).parent)
