"""A search space: what a hyperparameter search may vary, checked before anything trains.

In a study spec the space is the ``[search]`` table; from Python the same dict. Each key is a
setting, written as in ``[train]`` or an ``[axes]`` key (dotted keys reach into tables:
``"model.activation"``; a number indexes a list: ``"optimizer_kwargs.betas.1"`` is β₂), or
``"data.standardize"``; each value says how it varies:

.. code-block:: toml

    [search]
    lr = { low = 1e-4, high = 0.3, log = true }      # float: bounds written as floats
    epochs = { low = 5, high = 30, step = 5 }        # int: bounds written as integers
    batch_size = [32, 64, 128]                       # a list: one of these values
    "model.activation" = ["relu", "tanh", "elu"]
    "model.dropout" = { low = 0.0, high = 0.5 }
    optimizer = ["sgd", "momentum", "nesterov", "adam", "adamw"]
    schedule = [{ name = "constant" }, { name = "exponential", rate = 0.95 }]
    "schedule.rate" = { low = 0.8, high = 0.99, when = { schedule = "exponential" } }
    l2 = { low = 1e-6, high = 1e-2, log = true }
    "data.standardize" = [true, false]

    [search."model.hidden"]                          # how many hidden layers, and the
    layers = { low = 1, high = 3 }                   # units of each one
    units = { low = 16, high = 256, log = true }

    [search."optimizer_kwargs.momentum"]             # only when the optimizer has momentum
    low = 0.8
    high = 0.99
    when = { optimizer = ["momentum", "nesterov"] }

    [search."optimizer_kwargs.betas.1"]              # Adam's β₂, only for the Adam family
    low = 0.99
    high = 0.9999
    when = { optimizer = ["adam", "adamw"] }

* **float** ``{ low, high }`` (floats), uniform or ``log = true``; ``step`` draws from
  low, low + step, …, high.
* **int** ``{ low, high }`` (integers), ``step`` and ``log`` as for floats.
* **categorical**: a list, or ``{ choices = [...], when = ... }``. A choice may be a table (a
  whole schedule); it is named by its ``name`` (``"cosine"``) in conditions and reports.
* **layers** ``{ layers = { low, high }, units = { low, high, ... } }``: the number of hidden
  layers, then the units of each layer that exists (``model.hidden.units1``, ``units2``, …),
  KerasTuner's ``for i in range(hp.Int("num_layers", …))`` habit.
* **conditional**: ``when = { parent = [values] }`` — the parameter exists only when every
  parent (a categorical, int or ``layers`` parameter of the space) takes one of the values; when
  it does not, the setting keeps its ``[train]`` value and the trial has no such parameter.

Everything is checked at once (:func:`parse_space`): an empty or reversed range, ``log`` with
``low ≤ 0``, a ``step`` that does not divide the range, integer bounds on a float setting, an
unknown setting or key, a condition on a parameter or value that does not exist, a cycle of
conditions. :meth:`Space.check` then builds the settings at each parameter's extremes and
validates them as ``[train]`` settings, so a value that cannot train is an error naming the
parameter and the value before the first trial. Sampling is Optuna's (define-by-run:
:meth:`Space.suggest` asks the trial for each active parameter, parents first).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from optimlab.lab.spec_models import MAX_CONFIGS, SpecError, TrainSpec, first_error

__all__ = ["Condition", "Param", "Space", "parse_space", "set_path"]

Kind = Literal["float", "int", "categorical", "layers"]

#: settings outside [train] a search may vary
DATA_PARAMS = ("data.standardize",)
_RANGE_KEYS = {"low", "high", "step", "log", "when"}
_CHOICE_KEYS = {"choices", "when"}
_LAYER_KEYS = {"layers", "units", "when"}


@dataclass(frozen=True)
class Condition:
    """The parameter exists only when ``parent`` takes one of ``values`` (labels)."""

    parent: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Param:
    """One dimension of the space. ``name`` is the setting's dotted path; for ``layers`` the
    trial's parameters are ``<name>.layers`` and ``<name>.units1`` … (``units`` describes each
    layer's range)."""

    name: str
    kind: Kind
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    labels: tuple[Any, ...] = ()
    units: Param | None = None
    when: tuple[Condition, ...] = ()

    # -- the names and values Optuna sees ------------------------------------------------------
    @property
    def layers_name(self) -> str:
        return f"{self.name}.layers"

    def units_name(self, i: int) -> str:
        """The parameter of layer ``i`` (1-based)."""
        return f"{self.name}.units{i}"

    def trial_names(self) -> list[str]:
        """Every name this parameter may give a trial."""
        if self.kind != "layers":
            return [self.name]
        return [self.layers_name, *(self.units_name(i) for i in range(1, int(self.high) + 1))]

    def label_of(self, value: Any) -> Any:
        """A categorical choice as Optuna and conditions see it."""
        return self.labels[self.choices.index(value)] if self.kind == "categorical" else value

    def value_of(self, label: Any) -> Any:
        """The choice a label stands for (a categorical), or the value itself."""
        if self.kind != "categorical":
            return label
        for lab, choice in zip(self.labels, self.choices, strict=True):
            if _same(lab, label):
                return copy.deepcopy(choice)
        raise KeyError(label)

    def grid(self) -> list[Any]:
        """Every value a grid takes (labels for categoricals); ``SpecError`` when infinite."""
        if self.kind == "categorical":
            return list(self.labels)
        if self.kind == "layers":
            raise AssertionError("a layers parameter has a grid per trial name")
        if self.kind == "float" and self.step is None:
            raise SpecError(f"search.{self.name}: a grid needs a finite set of values, but "
                            f"{self.name} is a continuous range [{self.low:g}, {self.high:g}]; "
                            "give it a step, or list the values, or use another sampler")
        step = self.step if self.step is not None else 1
        n = round((Decimal(str(self.high)) - Decimal(str(self.low))) / Decimal(str(step)))
        values = [_exact(self.low, step, k, self.kind) for k in range(n + 1)]
        return values

    def describe(self) -> str:
        """``float in [0.0001, 0.3], log`` — for tables and messages."""
        if self.kind == "categorical":
            return "one of " + ", ".join(_show(lab) for lab in self.labels)
        if self.kind == "layers":
            assert self.units is not None
            return (f"{self.low}–{self.high} layers of {self.units.describe()} units each")
        extra = (", log" if self.log else "") + (f", step {self.step:g}" if self.step else "")
        return f"{self.kind} in [{self.low:g}, {self.high:g}]{extra}"


def _exact(low: float, step: float, k: int, kind: str) -> float | int:
    """low + k·step without binary drift (0.1 + 2·0.1 is 0.3, not 0.30000000000000004)."""
    if kind == "int":
        return int(low + k * step)
    return float(Decimal(str(low)) + k * Decimal(str(step)))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# ------------------------------------------------------------------------------------------
# Paths into the settings
# ------------------------------------------------------------------------------------------


def _optimizer_default(settings: Mapping[str, Any], key: str) -> Any:
    from optimlab.optim import available

    defaults = available().get(str(settings.get("optimizer")), {}).get("defaults", {})
    value = defaults.get(key)
    return list(value) if isinstance(value, tuple) else value


def set_path(settings: dict[str, Any], path: str, value: Any) -> None:
    """``settings["model"]["init"] = value`` for ``"model.init"``; a number indexes a list
    (``"optimizer_kwargs.betas.1"``: a list the settings lack starts from the optimizer's
    default); a model given by name becomes a table (``"mlp"`` → ``{"type": "mlp"}``)."""
    parts = path.split(".")
    node: Any = settings
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        child = node[int(part)] if isinstance(node, list) else node.get(part)
        if isinstance(child, str) and part == "model" and i == 0:
            child = {"type": child}
        if child is None:
            if nxt.isdigit():
                child = _optimizer_default(settings, part) if parts[0] == "optimizer_kwargs" \
                    else None
                if child is None and parts[0] == "optimizer_kwargs":
                    raise SpecError(f"search.{path}: optimizer {settings.get('optimizer')!r} "
                                    f"takes no {part}; add when = {{ optimizer = [...] }} "
                                    "naming the optimizers that do")
                if child is None:
                    raise SpecError(f"search.{path}: {'.'.join(parts[:i + 1])} is not set, so "
                                    f"there is no list to index; set it in [train]")
            else:
                child = {}
        child = copy.deepcopy(child)
        if isinstance(node, list):
            node[int(part)] = child
        else:
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise SpecError(f"search.{path}: index {last} is beyond the list "
                            f"{_show(node)} (it has {len(node)} entries)")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"search.{path}: {'.'.join(parts[:-1])} is {_show(node)}, not a table "
                        "to reach into")


def _get_path(settings: Mapping[str, Any], path: str) -> Any:
    node: Any = settings
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping):
            node = node.get(part)
        else:
            return None
    return node


# ------------------------------------------------------------------------------------------
# The space
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """The parameters of a search, parents before the parameters that depend on them."""

    params: tuple[Param, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.params:
            raise SpecError("search: the space is empty; give at least one parameter")

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    # -- sampling ------------------------------------------------------------------------------
    def active(self, p: Param, values: Mapping[str, Any]) -> bool:
        """Whether ``p`` exists given the parameters drawn so far (``values``, by trial name)."""
        for c in p.when:
            parent = self.param(c.parent)
            key = parent.layers_name if parent.kind == "layers" else parent.name
            if key not in values or not any(_same(values[key], v) for v in c.values):
                return False
        return True

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for every active parameter (define-by-run, parents first);
        returns the drawn values by trial name (labels for categoricals)."""
        values: dict[str, Any] = {}
        for p in self.params:
            if not self.active(p, values):
                continue
            if p.kind == "categorical":
                values[p.name] = trial.suggest_categorical(p.name, list(p.labels))
            elif p.kind == "layers":
                assert p.units is not None
                n = trial.suggest_int(p.layers_name, int(p.low), int(p.high))
                values[p.layers_name] = n
                for i in range(1, n + 1):
                    values[p.units_name(i)] = _draw(trial, p.units, p.units_name(i))
            else:
                values[p.name] = _draw(trial, p, p.name)
        return values

    def grid_space(self) -> dict[str, list[Any]]:
        """Every trial name with its values, for Optuna's GridSampler."""
        out: dict[str, list[Any]] = {}
        for p in self.params:
            if p.kind == "layers":
                assert p.units is not None
                out[p.layers_name] = list(range(int(p.low), int(p.high) + 1))
                units = p.units.grid()
                for i in range(1, int(p.high) + 1):
                    out[p.units_name(i)] = units
            else:
                out[p.name] = p.grid()
        size = math.prod(len(v) for v in out.values())
        if size > MAX_CONFIGS:
            raise SpecError(f"search: the grid has {size} points "
                            f"({' × '.join(str(len(v)) for v in out.values())}); the lab allows "
                            f"at most {MAX_CONFIGS}: grid fewer values, or use a sampler")
        return out

    def configurations(self) -> int:
        """The number of distinct configurations a grid of this space holds (conditional
        parameters counted only where they exist)."""
        grid = self.grid_space()
        seen = set()
        import itertools

        names = list(grid)
        for combo in itertools.product(*(grid[n] for n in names)):
            values = dict(zip(names, combo, strict=True))
            seen.add(json.dumps(self.visible(values), sort_keys=True, default=str))
        return len(seen)

    def visible(self, drawn: Mapping[str, Any]) -> dict[str, Any]:
        """The values of ``drawn`` that exist under its own choices (for a grid point that
        names every parameter)."""
        out: dict[str, Any] = {}
        for p in self.params:
            if not self.active(p, out):
                continue
            if p.kind == "layers":
                n = drawn[p.layers_name]
                out[p.layers_name] = n
                for i in range(1, n + 1):
                    out[p.units_name(i)] = drawn[p.units_name(i)]
            else:
                out[p.name] = drawn[p.name]
        return out

    # -- settings ------------------------------------------------------------------------------
    def apply(self, base: Mapping[str, Any], values: Mapping[str, Any]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(train settings, data overrides) for drawn ``values`` (by trial name): each active
        parameter written into a copy of ``base``, parents first."""
        settings = copy.deepcopy(dict(base))
        data: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "layers":
                if p.layers_name not in values:
                    continue
                n = int(values[p.layers_name])
                set_path(settings, p.name, [int(values[p.units_name(i)])
                                            for i in range(1, n + 1)])
                continue
            if p.name not in values:
                continue
            value = p.value_of(values[p.name])
            if p.name.startswith("data."):
                data[p.name.removeprefix("data.")] = value
            else:
                set_path(settings, p.name, value)
        return settings, data

    def check(self, base: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Build the settings at every parameter's extremes (each choice; low and high), with
        the parents a condition needs, and validate each as [train] settings; return the
        distinct (settings, data overrides) probed. ``SpecError`` names the parameter and the
        value that does not fit."""
        probes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for p in self.params:
            for drawn in self._extremes(p):
                try:
                    settings, data = self.apply(base, drawn)
                    full = TrainSpec.model_validate(settings).model_dump()
                except SpecError:
                    raise
                except ValueError as err:  # pydantic's ValidationError is a ValueError
                    text = first_error(err) if hasattr(err, "errors") else str(err)
                    shown = ", ".join(f"{k} = {_show(v)}" for k, v in drawn.items())
                    raise SpecError(f"search.{p.name}: the settings with {shown} do not "
                                    f"train: {text}") from None
                probes[json.dumps([full, data], sort_keys=True, default=str)] = (full, data)
        return list(probes.values())

    def _extremes(self, p: Param) -> list[dict[str, Any]]:
        """Drawn values that reach ``p``'s extremes, its conditions satisfied."""
        parents: dict[str, Any] = {}
        chain = [p, *(self.param(name) for name in self._ancestors(p))]
        for name in self._ancestors(p):
            q = self.param(name)
            needs = [c for r in chain for c in r.when if c.parent == name]
            value = self._first_allowed(q, needs)
            if q.kind == "layers":
                assert q.units is not None
                parents[q.layers_name] = value
                for i in range(1, int(value) + 1):
                    parents[q.units_name(i)] = q.units.low
            else:
                parents[q.name] = value
        out = []
        if p.kind == "categorical":
            out = [{**parents, p.name: lab} for lab in p.labels]
        elif p.kind == "layers":
            assert p.units is not None
            for n in (int(p.low), int(p.high)):
                for u in (p.units.low, p.units.high):
                    drawn = {**parents, p.layers_name: n}
                    drawn.update({p.units_name(i): u for i in range(1, n + 1)})
                    out.append(drawn)
        else:
            out = [{**parents, p.name: p.low}, {**parents, p.name: p.high}]
        return out

    def _ancestors(self, p: Param) -> list[str]:
        out: list[str] = []
        for c in p.when:
            for name in [*self._ancestors(self.param(c.parent)), c.parent]:
                if name not in out:
                    out.append(name)
        return out

    def _first_allowed(self, q: Param, needs: list[Condition]) -> Any:
        """A value of ``q`` that satisfies the conditions on it (the first that satisfies
        them all, else the first of the first condition)."""
        if q.kind == "categorical":
            options = list(q.labels)
        else:
            options = list(range(int(q.low), int(q.high) + 1))
        for option in options:
            if all(any(_same(option, v) for v in c.values) for c in needs):
                return option
        return needs[0].values[0] if needs else options[0]

    def to_json(self) -> dict[str, Any]:
        """The space as written (for the store and the report)."""
        return self.raw


def _draw(trial: Any, p: Param, name: str) -> Any:
    if p.kind == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1),
                                 log=p.log)
    return trial.suggest_float(name, float(p.low), float(p.high), step=p.step, log=p.log)


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------


def parse_space(raw: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> Space:
    """Validate a ``[search]`` table (or the same dict from Python) against the ``[train]``
    settings ``base`` (a full :class:`TrainSpec` dump); ``SpecError`` names the parameter, the
    value and what is allowed, as ``search.<name>: …``."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"search must be a table of parameters; got {_show(raw)}")
    base = dict(base) if base is not None else TrainSpec().model_dump()
    params = []
    for name, value in raw.items():
        _check_name(name, base)
        params.append(_parse_param(str(name), value, base))
    by_name = {p.name: p for p in params}
    for p in params:
        for c in p.when:
            _check_condition(p, c, by_name)
    ordered = _order(params)
    _check_overlaps(ordered)
    return Space(tuple(ordered), raw=json.loads(json.dumps(dict(raw), default=str)))


def _check_name(name: Any, base: Mapping[str, Any]) -> None:
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"search: a parameter needs a name (got {name!r})")
    head = name.split(".")[0]
    if head == "data":
        if name not in DATA_PARAMS:
            raise SpecError(f"search.{name}: only {', '.join(DATA_PARAMS)} of [data] can be "
                            "searched (the data and its split are what trials are compared on)")
        return
    if head not in TrainSpec.model_fields:
        raise SpecError(f"search.{name}: {head!r} is not a setting; a parameter is a [train] "
                        f"setting ({', '.join(TrainSpec.model_fields)}), a dotted key into one "
                        f"(\"model.activation\"), or {', '.join(DATA_PARAMS)}")
    for part in name.split(".")[1:]:
        if not part:
            raise SpecError(f"search.{name}: an empty part in the dotted name")


def _parse_param(name: str, value: Any, base: Mapping[str, Any]) -> Param:
    where = f"search.{name}"
    if isinstance(value, list):
        return _categorical(name, value, ())
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: {_show(value)} is a single value; give a range {{ low = …, "
                        "high = … }}, a list of values, or a layers table; to fix a value, set "
                        "it in [train]")
    keys = set(value)
    when = _conditions(name, value.get("when"))
    if "layers" in keys or "units" in keys:
        return _layers(name, value, keys, when)
    if "choices" in keys:
        extra = sorted(keys - _CHOICE_KEYS)
        if extra:
            raise SpecError(f"{where}: unknown key {', '.join(extra)} for a list of choices; "
                            f"allowed: {', '.join(sorted(_CHOICE_KEYS))}")
        if not isinstance(value["choices"], list):
            raise SpecError(f"{where}.choices={_show(value['choices'])} must be a list")
        return _categorical(name, value["choices"], when)
    extra = sorted(keys - _RANGE_KEYS)
    if extra:
        raise SpecError(f"{where}: unknown key {', '.join(extra)}; a range takes "
                        f"{', '.join(sorted(_RANGE_KEYS))}, a list of values takes choices, "
                        "hidden layers take layers and units")
    return _range(name, value, when, base)


def _number(where: str, key: str, v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SpecError(f"{where}: {key}={_show(v)} is not a number")
    if not math.isfinite(v):
        raise SpecError(f"{where}: {key}={_show(v)} is not finite")
    return v


def _range(name: str, value: Mapping[str, Any], when: tuple[Condition, ...],
           base: Mapping[str, Any], *, what: str | None = None) -> Param:
    where = f"search.{what or name}"
    for key in ("low", "high"):
        if key not in value:
            raise SpecError(f"{where}: a range needs low and high (missing {key})")
    low = _number(where, "low", value["low"])
    high = _number(where, "high", value["high"])
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{where}: log={_show(log)} must be true or false")
    step = value.get("step")
    integer = isinstance(low, int) and isinstance(high, int)
    kind: Kind = "int" if integer else "float"
    if step is not None:
        step = _number(where, "step", step)
        if integer and not isinstance(step, int):
            raise SpecError(f"{where}: step={_show(step)} is not an integer, but low and high "
                            "are: an integer range takes an integer step (or write the bounds "
                            "as floats)")
    if high < low:
        raise SpecError(f"{where}: low={_show(low)} > high={_show(high)}; the range must "
                        "have low < high")
    if high == low:
        raise SpecError(f"{where}: the range [{_show(low)}, {_show(high)}] is empty (low = "
                        "high); give high > low, or fix the value in [train]")
    if log and low <= 0:
        raise SpecError(f"{where}: log = true needs low > 0 (got low={_show(low)}); a "
                        "log-uniform range cannot reach 0 or below")
    if step is not None:
        if step <= 0:
            raise SpecError(f"{where}: step={_show(step)} must be > 0")
        if log and kind == "float":
            raise SpecError(f"{where}: a float range takes log or step, not both (Optuna "
                            "draws a log range continuously)")
        if log and step != 1:
            raise SpecError(f"{where}: an integer log range takes step = 1 only (got "
                            f"step={_show(step)})")
        span = Decimal(str(high)) - Decimal(str(low))
        if span % Decimal(str(step)) != 0:
            raise SpecError(f"{where}: step={_show(step)} does not divide the range "
                            f"[{_show(low)}, {_show(high)}] (its width is {_show(float(span))}); "
                            "choose a step that lands on high, or move high")
    if integer and what is None and _is_float_setting(name, base, when):
        raise SpecError(f"{where}: low={low} and high={high} are integers, so {name} would be "
                        f"drawn as an integer, but it is a float setting; write the bounds as "
                        f"floats ({float(low)!r}, {float(high)!r})")
    return Param(name, kind, low=low, high=high, step=step, log=log, when=when)


def _is_float_setting(name: str, base: Mapping[str, Any], when: tuple[Condition, ...]) -> bool:
    """Whether the setting ``name`` holds floats (where its current value says so)."""
    head = name.split(".")[0]
    if name == head:
        field_ = TrainSpec.model_fields.get(head)
        text = str(field_.annotation) if field_ is not None else ""
        return "float" in text and "int" not in text
    if head == "model":
        from optimlab.models.spec import normalize_spec

        try:
            model = normalize_spec(base.get("model", "mlp"))
        except ValueError:
            return False
        value = _get_path({"model": model}, name)
    elif head == "optimizer_kwargs":
        parts = name.split(".")
        from optimlab.optim import available

        optimizers = [str(v) for c in when if c.parent == "optimizer" for v in c.values] or \
            [str(base.get("optimizer", "sgd"))]
        value = None
        for opt in optimizers:
            default = available().get(opt, {}).get("defaults", {}).get(parts[1])
            if default is not None:
                value = default
                break
        if isinstance(value, tuple | list) and len(parts) > 2 and parts[2].isdigit():
            value = value[int(parts[2])] if int(parts[2]) < len(value) else None
    else:
        value = _get_path(base, name)
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, float) for v in value)
    return isinstance(value, float)


def _categorical(name: str, choices: list[Any], when: tuple[Condition, ...]) -> Param:
    where = f"search.{name}"
    if not choices:
        raise SpecError(f"{where}: the list of choices is empty; give at least one value")
    labels: list[Any] = []
    for c in choices:
        if c is None or isinstance(c, bool | int | float | str):
            labels.append(c)
        elif isinstance(c, Mapping):
            labels.append(str(c["name"]) if isinstance(c.get("name"), str) else _show(c))
        elif isinstance(c, list):
            labels.append(_show(c))
        else:
            raise SpecError(f"{where}: the choice {c!r} is not a TOML value")
    for i, lab in enumerate(labels):
        if any(_same(lab, other) for other in labels[:i]):
            raise SpecError(f"{where}: the choice {_show(lab)} is listed twice (choices of "
                            "tables are named by their name); list each value once")
    return Param(name, "categorical", choices=tuple(choices), labels=tuple(labels), when=when)


def _layers(name: str, value: Mapping[str, Any], keys: set[str],
            when: tuple[Condition, ...]) -> Param:
    where = f"search.{name}"
    extra = sorted(keys - _LAYER_KEYS)
    if extra:
        raise SpecError(f"{where}: unknown key {', '.join(extra)} for hidden layers; allowed: "
                        f"{', '.join(sorted(_LAYER_KEYS))}")
    if name.split(".")[-1] not in ("hidden", "channels"):
        raise SpecError(f"{where}: layers and units describe a list of layer sizes "
                        "(model.hidden or model.channels), not a single setting")
    for key in ("layers", "units"):
        if not isinstance(value.get(key), Mapping):
            raise SpecError(f"{where}: {key} must be a range {{ low = …, high = … }} (got "
                            f"{_show(value.get(key))})")
    layers = _range(name, value["layers"], (), {}, what=f"{name}.layers")
    units = _range(name, value["units"], (), {}, what=f"{name}.units")
    for p, what in ((layers, "layers"), (units, "units")):
        if p.kind != "int":
            raise SpecError(f"{where}.{what}: low and high must be integers (got "
                            f"{_show(p.low)}, {_show(p.high)})")
        if p.low < (0 if what == "layers" else 1):
            raise SpecError(f"{where}.{what}: low={p.low} must be ≥ "
                            f"{0 if what == 'layers' else 1}")
    if layers.step not in (None, 1) or layers.log:
        raise SpecError(f"{where}.layers: the number of layers takes no step or log")
    from optimlab.lab.spec_models import MAX_LAYERS, MAX_WIDTH

    if int(layers.high) > MAX_LAYERS or int(units.high) > MAX_WIDTH:
        raise SpecError(f"{where}: at most {MAX_LAYERS} layers of {MAX_WIDTH} units (got "
                        f"layers up to {layers.high}, units up to {units.high})")
    return Param(name, "layers", low=layers.low, high=layers.high, units=units, when=when)


def _conditions(name: str, when: Any) -> tuple[Condition, ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise SpecError(f"search.{name}: when={_show(when)} must be a table {{ parent = "
                        "[values] }}")
    out = []
    for parent, values in when.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SpecError(f"search.{name}: when.{parent} lists no values")
        out.append(Condition(str(parent), tuple(values)))
    return tuple(out)


def _check_condition(p: Param, c: Condition, by_name: Mapping[str, Param]) -> None:
    where = f"search.{p.name}"
    parent = by_name.get(c.parent)
    if parent is None and c.parent.endswith(".layers"):
        parent = by_name.get(c.parent.removesuffix(".layers"))
        if parent is not None and parent.kind != "layers":
            parent = None
    if parent is None:
        raise SpecError(f"{where}: when.{c.parent}: {c.parent!r} is not a parameter of the "
                        f"search; conditions name one of {', '.join(by_name)}")
    if parent.name == p.name:
        raise SpecError(f"{where}: a parameter cannot depend on itself")
    if parent.kind == "float":
        raise SpecError(f"{where}: when.{c.parent}: a condition needs a parameter with "
                        f"separate values (a list, an int range or layers); {c.parent} is a "
                        "float range")
    for v in c.values:
        if parent.kind == "categorical":
            if not any(_same(v, lab) for lab in parent.labels):
                raise SpecError(f"{where}: when.{c.parent}={v!r} is not one of its "
                                f"choices: {', '.join(repr(x) for x in parent.labels)}")
        elif isinstance(v, bool) or not isinstance(v, int) or not parent.low <= v <= parent.high:
            raise SpecError(f"{where}: when.{c.parent}={_show(v)} is not an integer in "
                            f"[{parent.low}, {parent.high}]")
    if parent.name != c.parent:  # "model.hidden.layers" written for the layers parameter
        object.__setattr__(p, "when", tuple(Condition(parent.name, x.values)
                                            if x is c else x for x in p.when))


def _order(params: list[Param]) -> list[Param]:
    """Parents before children, otherwise in the order written; a cycle is an error."""
    out: list[Param] = []
    placed: set[str] = set()
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(c.parent in placed for c in p.when)]
        if not ready:
            names = ", ".join(p.name for p in pending)
            raise SpecError(f"search: the conditions of {names} form a cycle (each exists only "
                            "when another does); make one of them unconditional")
        for p in ready:
            out.append(p)
            placed.add(p.name)
        pending = [p for p in pending if p.name not in placed]
    return out


def _check_overlaps(params: Sequence[Param]) -> None:
    """Two parameters cannot write the same setting (one inside the other) unless the inner
    one is conditional on the outer one (``schedule`` and ``schedule.decay_rate``)."""
    for p in params:
        for q in params:
            if p is q or not q.name.startswith(p.name + "."):
                continue
            if not any(c.parent == p.name for c in q.when) and p.kind != "layers":
                raise SpecError(f"search.{q.name}: it sets part of {p.name}, which is also "
                                f"searched; add when = {{ \"{p.name}\" = [...] }} to say for "
                                f"which {p.name} it applies, or search one of the two")
            if p.kind == "layers":
                raise SpecError(f"search.{q.name}: it sets part of {p.name}, which the layers "
                                "parameter writes whole")
