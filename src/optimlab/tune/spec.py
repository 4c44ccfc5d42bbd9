"""A search spec: a study spec whose ``[search]`` table says what to vary, and ``[tune]`` how.

.. code-block:: toml

    name = "mlp-on-digits"
    seeds = 1                     # the search trains every trial with the first seed

    [data]
    dataset = "digits"

    [train]                       # what every trial starts from; also the baseline
    model = { type = "mlp", hidden = [64] }
    epochs = 20
    optimizer = "sgd"
    lr = 0.05

    [search]                      # the space (see optimlab.tune.space)
    lr = { low = 1e-4, high = 0.3, log = true }
    optimizer = ["sgd", "momentum", "adam"]

    [tune]                        # every key optional; the command's flags override them
    trials = 30
    sampler = "tpe"               # tpe | gp | random | grid
    pruner = "hyperband"          # hyperband | halving | median | none
    seed = 0                      # the sampler's seed: one seed, one sequence of trials
    timeout = 600                 # seconds: no new trial starts after this
    startup = 10                  # trials drawn at random before TPE / GP model the rest
    confirm = 3                   # the top K configurations re-run over fresh seeds ...
    confirm_seeds = 5             # ... this many, with the [train] baseline (0: none)

Errors name the table and key, the value, what is allowed, and the file and line, as for a
study spec (:mod:`optimlab.lab.spec`). ``[axes]``, ``[[configs]]`` and ``baseline`` do not
belong in a search spec: the search chooses the configurations, and the baseline is
``[train]`` itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from optimlab._checks import check_number
from optimlab.lab.spec import (
    SpecError,
    StudySpec,
    line_of,
    parse_spec,
    read_toml,
    resolve_data_paths,
)
from optimlab.tune.space import Space, parse_space

__all__ = ["PRUNERS", "SAMPLERS", "SearchSpec", "TuneOptions", "load_search_spec",
           "parse_search_spec"]

SAMPLERS = ("tpe", "gp", "random", "grid")
PRUNERS = ("hyperband", "halving", "median", "none")
#: trials of a search that names no count (a grid runs each of its points once)
DEFAULT_TRIALS = 20
MAX_SEARCH_TRIALS = 10000


class TuneOptions(BaseModel):
    """How a search runs: ``[tune]`` in a spec; ``optimlab tune`` flags override each."""

    model_config = ConfigDict(extra="forbid", strict=True)

    trials: int | None = None
    sampler: Literal["tpe", "gp", "random", "grid"] = "tpe"
    pruner: Literal["hyperband", "halving", "median", "none"] = "none"
    seed: int = 0
    timeout: float | int | None = None
    startup: int | None = None
    confirm: int = 3
    confirm_seeds: int = 5

    @model_validator(mode="after")
    def _ranges(self) -> TuneOptions:
        if self.trials is not None:
            check_number("trials", self.trials, low=1, high=MAX_SEARCH_TRIALS, integer=True)
        check_number("seed", self.seed, low=0, high=2**31 - 1, integer=True)
        if self.timeout is not None:
            check_number("timeout", self.timeout, low=0, low_open=True)
        if self.startup is not None:
            check_number("startup", self.startup, low=0, integer=True)
        check_number("confirm", self.confirm, low=0, high=100, integer=True)
        check_number("confirm_seeds", self.confirm_seeds, low=2, high=1000, integer=True)
        return self


@dataclass(frozen=True)
class SearchSpec:
    """A validated search: the base study (data, [train], target), the space (None when a
    Python function defines it) and the options."""

    study: StudySpec
    space: Space | None
    options: TuneOptions

    @property
    def name(self) -> str:
        return self.study.name

    def with_options(self, **changes: Any) -> SearchSpec:
        """The same search with some options replaced (``None`` keeps an option as it is);
        checked like ``[tune]``."""
        given = {k: v for k, v in changes.items() if v is not None}
        try:
            options = TuneOptions.model_validate({**self.options.model_dump(), **given})
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            raise SpecError(f"{where}: {e['msg'].removeprefix('Value error, ')}") from None
        return SearchSpec(self.study, self.space, options)

    def trials(self) -> int:
        """How many trials the search runs: ``trials``, else every point of a grid, else
        :data:`DEFAULT_TRIALS`."""
        if self.options.trials is not None:
            return self.options.trials
        if self.options.sampler == "grid" and self.space is not None:
            import math

            return math.prod(len(v) for v in self.space.grid_space().values())
        return DEFAULT_TRIALS


def parse_search_spec(data: dict[str, Any], *, source: str = "<spec>", text: str | None = None,
                      space_required: bool = True) -> SearchSpec:
    """Validate a search spec dict (from TOML or Python). ``SpecError`` names the key, the
    value, what is allowed, and the file and line. ``space_required=False``: a spec whose
    space comes from a Python function (no ``[search]``)."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a search spec is a table (a dict); got {type(data).__name__}")
    data = dict(data)
    raw_search = data.pop("search", None)
    raw_tune = data.pop("tune", {})
    for key, why in (("axes", "the search chooses the configurations: move each axis into "
                              "[search] as a list of values"),
                     ("configs", "the search chooses the configurations: describe what varies "
                                 "in [search]"),
                     ("baseline", "the baseline of a search is [train] itself: remove it")):
        if data.get(key):
            raise SpecError(f"{_place(source, text, (key,))}: {key}: a search spec has no "
                            f"{key}; {why}")
    if raw_search is None and space_required:
        raise SpecError(f"{source}: no [search] table: a search needs a space (what to vary), "
                        "e.g. [search] lr = { low = 1e-4, high = 0.1, log = true }; for a fixed "
                        "set of configurations use optimlab run")
    study = parse_spec(data, source=source, text=text)
    if not isinstance(raw_tune, dict):
        raise SpecError(f"{_place(source, text, ('tune',))}: tune must be a table of options")
    try:
        options = TuneOptions.model_validate(raw_tune)
    except ValidationError as err:
        e = err.errors()[0]
        loc = [str(p) for p in e["loc"]]
        msg = e["msg"].removeprefix("Value error, ")
        key = loc[0] if loc else (re.match(r"(\w+)=", msg) or [None, None])[1]
        got = f" (got {e['input']!r})" if "input" in e and e["type"] != "missing" and \
            not isinstance(e["input"], dict) else ""
        allowed = ""
        if e["type"] == "extra_forbidden":
            allowed = f"; allowed: {', '.join(TuneOptions.model_fields)}"
        place = _place(source, text, ("tune", key) if key else ("tune",))
        raise SpecError(f"{place}: tune.{'.'.join(loc) or key}: {msg}{got}{allowed}") from None
    space = None
    if raw_search is not None:
        base = study.train.model_dump()
        try:
            space = parse_space(raw_search, base)
            space.check(base)
        except SpecError as err:
            raise SpecError(f"{_search_place(source, text, str(err), raw_search)}: "
                            f"{err}") from None
        if options.sampler == "grid":
            try:
                space.grid_space()
            except SpecError as err:
                raise SpecError(f"{_search_place(source, text, str(err), raw_search)}: "
                                f"{err} (tune.sampler = \"grid\")") from None
    return SearchSpec(study, space, options)


def load_search_spec(path: str | Path) -> SearchSpec:
    """Read and validate a TOML search spec."""
    text, data = read_toml(path)
    spec = parse_search_spec(data, source=str(path), text=text)
    resolve_data_paths(spec.study, Path(path).parent)
    return spec


def _place(source: str, text: str | None, loc: tuple[Any, ...]) -> str:
    line = line_of(text, loc) if text else None
    if line is None and text and len(loc) > 1:
        line = line_of(text, loc[:1])
    return f"{source}:{line}" if line else source


def _search_place(source: str, text: str | None, message: str, raw: Any) -> str:
    """``file:line`` of the [search] key an error message names (``search.<key>…``)."""
    if not text:
        return source
    named = re.match(r"search\.(\S+?):", message)
    keys = sorted((str(k) for k in (raw if isinstance(raw, dict) else {})), key=len,
                  reverse=True)
    key = None
    if named:
        full = named.group(1)
        key = next((k for k in keys if full == k or full.startswith(k + ".")), None)
    line = _search_line(text, key) if key else None
    if line is None:
        line = line_of(text, ("search",))
    return f"{source}:{line}" if line else source


def _search_line(text: str, key: str) -> int | None:
    """The line that gives ``key`` in [search]: ``key = …`` / ``"key" = …`` under [search], or a
    table header ``[search."key"]``."""
    current = None
    quoted = {key, f'"{key}"', f"'{key}'"}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[]").strip()
            if current in {f"search.{q}" for q in quoted}:
                return number
            continue
        if current == "search" and "=" in line and line.split("=", 1)[0].strip() in quoted:
            return number
    return None
