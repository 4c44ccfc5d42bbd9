"""A study, as a TOML file or the same structure from Python, validated before anything runs.

    name = "optimizers-on-digits"
    seeds = 3                       # or a list: [0, 1, 2]
    baseline = "sgd"                # the label of one configuration

    [data]
    dataset = "digits"              # a name from `optimlab datasets`, or csv = "file.csv"
    target = "label"                # the target column, for csv
    val = 0.1
    test = 0.1

    [train]                         # settings every trial starts from
    model = { type = "mlp", hidden = [128], activation = "relu", init = "he_normal" }
    epochs = 30
    batch_size = 64
    optimizer = "sgd"
    lr = 0.1

    [axes]                          # a grid: every combination is a configuration
    optimizer = ["sgd", "adam"]
    "model.init" = ["xavier_normal", "he_normal"]   # dotted keys reach into tables

    [[configs]]                     # or name configurations one by one
    label = "adam"
    optimizer = "adam"
    lr = 0.001

    [target]                        # optional: steps- and time-to-target
    metric = "val_accuracy"
    value = 0.95

Errors name the field, the bad value, what is allowed, and the file and line.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimlab._checks import check_choice, check_number


class SpecError(ValueError):
    """A study spec that cannot run; the message says where and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    """Where the data come from and how it is split (the same split for every trial)."""

    dataset: str | None = None
    csv: str | None = None
    npz: str | None = None
    target: str | int | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    split: Literal["holdout", "time"] = "holdout"
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    standardize: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("dataset", "csv", "npz") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dataset (a name), csv (a file) or npz (a file)")
        if self.csv is not None and self.target is None:
            raise ValueError("csv needs target = the name or index of the target column")
        if self.dataset is not None:
            from optimlab.data import available

            names = available()
            if self.dataset not in names:
                raise ValueError(f"dataset={self.dataset!r} is unknown; available: "
                                 f"{', '.join(n for n in names if n not in ('csv', 'npz'))} "
                                 "(or csv = \"file.csv\" with target = \"column\")")
        check_number("val", self.val, low=0.0, high=0.9)
        check_number("test", self.test, low=0.0, high=0.9)
        if self.val == 0:
            raise ValueError("val must be > 0: the lab compares configurations on validation "
                             "data")
        return self


class TrainSpec(_Strict):
    """What one trial trains with. Every field may be set in [train], an axis or a config."""

    model: str | dict[str, Any] = "mlp"
    loss: str | None = None
    metrics: list[str] | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    optimizer_kwargs: dict[str, Any] = Field(default_factory=dict)
    schedule: dict[str, Any] | None = None
    schedule_unit: Literal["step", "epoch"] = "step"
    epochs: int | None = 20
    max_steps: int | None = None
    #: an integer, or "full" (also None from Python) for batch gradient descent
    batch_size: int | Literal["full"] | None = 64
    linear_scaling: bool = False
    base_batch_size: int = 64
    drop_last: bool = False
    accumulate: int = 1
    clip_grad_norm: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    early_stopping: int | None = None
    monitor: str | None = None

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        from optimlab.optim import available

        check_choice("optimizer", v, list(available()))
        return v

    @field_validator("batch_size")
    @classmethod
    def _full_batch(cls, v: int | str | None) -> int | None:
        return None if v == "full" else v  # type: ignore[return-value]

    @model_validator(mode="after")
    def _ranges(self) -> TrainSpec:
        if self.lr is not None:
            check_number("lr", self.lr, low=0.0)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs or max_steps")
        for name in ("epochs", "max_steps", "batch_size", "accumulate", "base_batch_size",
                     "early_stopping"):
            value = getattr(self, name)
            if value is not None:
                check_number(name, value, low=1, integer=True)
        for name in ("l1", "l2"):
            check_number(name, getattr(self, name), low=0.0)
        if self.clip_grad_norm is not None:
            check_number("clip_grad_norm", self.clip_grad_norm, low=0.0, low_open=True)
        from optimlab.optim import available

        allowed = set(available()[self.optimizer]["defaults"]) - {"lr"}
        unknown = sorted(set(self.optimizer_kwargs) - allowed)
        if unknown:
            raise ValueError(f"optimizer_kwargs {unknown} do not apply to {self.optimizer}; it "
                             f"takes {', '.join(sorted(allowed))}")
        if self.schedule is not None:
            if "name" not in self.schedule:
                raise ValueError("schedule needs name = one of optimlab.schedules.available()")
            from optimlab.schedules import create

            create(**self.schedule)  # builds it once: unknown names or arguments fail here
        return self


class TargetSpec(_Strict):
    metric: str
    value: float


class StudySpec(_Strict):
    """The whole study: data, the base training settings, what to sweep, seeds and baseline."""

    name: str = Field(min_length=1)
    description: str = ""
    seeds: int | list[int] = 3
    baseline: str | None = None
    data: DataSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    configs: list[dict[str, Any]] = Field(default_factory=list)
    target: TargetSpec | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int):
            check_number("seeds", v, low=1, integer=True)
        else:
            if not v or len(set(v)) != len(v):
                raise ValueError("seeds must be a count or a list of distinct integers")
            for s in v:
                check_number("seeds[]", s, low=0, integer=True)
        return v

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"axis {key!r} has no values")
        return v

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def _set_dotted(settings: dict[str, Any], key: str, value: Any) -> None:
    """``settings["model"]["init"] = value`` for ``key = "model.init"``."""
    head, _, rest = key.partition(".")
    if not rest:
        settings[head] = value
        return
    inner = settings.get(head)
    if isinstance(inner, str):
        inner = {"type": inner}
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise SpecError(f"axis {key!r}: {head} is {inner!r}, not a table to reach into")
    inner = dict(inner)
    _set_dotted(inner, rest, value)
    settings[head] = inner


def _short(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true / false / null, as TOML and JSON write them
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def configurations(spec: StudySpec) -> list[tuple[str, dict[str, Any]]]:
    """(label, full train settings) for every configuration: the axes' grid, then [[configs]].

    Each is validated as a :class:`TrainSpec`; labels are unique.
    """
    base = spec.train.model_dump()
    out: list[tuple[str, dict[str, Any]]] = []
    if spec.axes:
        keys = list(spec.axes)
        for combo in itertools.product(*(spec.axes[k] for k in keys)):
            settings = copy.deepcopy(base)
            for k, v in zip(keys, combo, strict=True):
                _set_dotted(settings, k, v)
            label = (_short(combo[0]) if len(keys) == 1 else
                     ", ".join(f"{k}={_short(v)}" for k, v in zip(keys, combo, strict=True)))
            out.append((label, settings))
    for i, config in enumerate(spec.configs):
        config = dict(config)
        label = str(config.pop("label", "")) or ", ".join(
            f"{k}={_short(v)}" for k, v in config.items())
        settings = copy.deepcopy(base)
        for k, v in config.items():
            _set_dotted(settings, k, v)
        out.append((label or f"config {i}", settings))
    if not out:
        out.append(("base", base))
    seen: set[str] = set()
    checked: list[tuple[str, dict[str, Any]]] = []
    for label, settings in out:
        if label in seen:
            raise SpecError(f"two configurations are both labelled {label!r}; give each a "
                            "distinct label")
        seen.add(label)
        try:
            checked.append((label, TrainSpec.model_validate(settings).model_dump()))
        except ValidationError as err:
            raise SpecError(f"configuration {label!r}: {_first_error(err)}") from None
        except ValueError as err:
            raise SpecError(f"configuration {label!r}: {err}") from None
    if spec.baseline is not None and spec.baseline not in seen:
        raise SpecError(f"baseline={spec.baseline!r} is not a configuration; the labels are: "
                        f"{', '.join(label for label, _ in checked)}")
    return checked


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    shown = f"{where}: " if where else ""
    return f"{shown}{msg} (got {e.get('input')!r})" if "input" in e and where else shown + msg


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


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a TOML study spec."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no spec file at {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    spec = parse_spec(data, source=str(path), text=text)
    if spec.data.csv is not None and not Path(spec.data.csv).is_absolute():
        spec.data.csv = str((path.parent / spec.data.csv).resolve())
    if spec.data.npz is not None and not Path(spec.data.npz).is_absolute():
        spec.data.npz = str((path.parent / spec.data.npz).resolve())
    return spec
