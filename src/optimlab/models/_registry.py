"""Named choices with parameters — activations, initializers, losses — parsed from a Python or
TOML spec in one of three spellings::

    "leaky_relu"                       # defaults
    "leaky_relu:0.1"                   # the entry's primary parameter (here alpha)
    {"name": "leaky_relu", "alpha": 0.1}

Every error names the field path (``model.activation[1]``), the bad value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optimlab._checks import check_number


@dataclass(frozen=True)
class Param:
    """A parameter of a named entry: a number (optionally bounded below) or one of ``choices``."""

    default: Any
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Entry:
    """A named choice: its parameters, the one a ``"name:value"`` string sets, and aliases."""

    name: str
    params: dict[str, Param] = field(default_factory=dict)
    primary: str | None = None
    aliases: tuple[str, ...] = ()
    doc: str = ""


class Registry:
    """Canonical names plus aliases → :class:`Entry`; :meth:`parse` validates a spec."""

    def __init__(self, kind: str, entries: Iterable[Entry]) -> None:
        self.kind = kind
        self.entries: dict[str, Entry] = {}
        self._lookup: dict[str, str] = {}
        for e in entries:
            self.entries[e.name] = e
            for n in (e.name, *e.aliases):
                self._lookup[n] = e.name

    def names(self) -> list[str]:
        """Canonical names, in registration order."""
        return list(self.entries)

    def aliases(self) -> dict[str, str]:
        """Alias → canonical name."""
        return {a: c for a, c in self._lookup.items() if a != c}

    def canonical(self, name: Any, path: str) -> str:
        """The canonical name for ``name`` (an alias or a canonical name), else ``ValueError``."""
        key = name.strip().lower() if isinstance(name, str) else name
        if not isinstance(key, str) or key not in self._lookup:
            raise ValueError(
                f"{path}={name!r} is unknown; choose one of {', '.join(self.names())}"
                + _alias_note(self.aliases())
            )
        return self._lookup[key]

    def parse(self, spec: Any, path: str) -> tuple[str, dict[str, Any]]:
        """Parse ``spec`` into ``(canonical name, parameters with defaults filled in)``."""
        given: dict[str, Any] = {}
        if isinstance(spec, str):
            name, sep, value = spec.partition(":")
            canon = self.canonical(name, path)
            entry = self.entries[canon]
            if sep:
                if entry.primary is None:
                    raise ValueError(
                        f"{path}={spec!r}: {canon} takes no parameter; write {canon!r}"
                    )
                try:
                    given[entry.primary] = float(value)
                except ValueError:
                    raise ValueError(
                        f"{path}={spec!r}: {value.strip()!r} is not a number "
                        f"(the part after ':' sets {canon}'s {entry.primary})"
                    ) from None
        elif isinstance(spec, Mapping):
            if "name" not in spec:
                raise ValueError(
                    f"{path}={dict(spec)!r} has no 'name'; write e.g. {{name = "
                    f"{self.names()[0]!r}, ...}}"
                )
            canon = self.canonical(spec["name"], f"{path}.name")
            entry = self.entries[canon]
            for key, value in spec.items():
                if key == "name":
                    continue
                if key not in entry.params:
                    allowed = ", ".join(entry.params) or "none"
                    raise ValueError(
                        f"{path}.{key} is not a parameter of {self.kind} {canon!r}; "
                        f"its parameters: {allowed}"
                    )
                given[key] = value
        else:
            raise ValueError(
                f"{path}={spec!r} must be a name such as {self.names()[0]!r}, a string "
                f"'name:value' or a table {{name = ..., <parameter> = ...}}"
            )
        params: dict[str, Any] = {}
        for key, p in entry.params.items():
            if key in given:
                params[key] = _check_param(f"{path}.{key}", given[key], p)
            else:
                params[key] = p.default
        return canon, params


def _check_param(path: str, value: Any, p: Param) -> Any:
    if p.choices is not None:
        if value not in p.choices:
            shown = ", ".join(repr(c) for c in p.choices)
            raise ValueError(f"{path}={value!r} is not allowed; choose one of {shown}")
        return value
    check_number(path, value, low=p.low, low_open=p.low_open, high=p.high, high_open=p.high_open)
    return float(value)


def _alias_note(aliases: Mapping[str, str]) -> str:
    if not aliases:
        return ""
    return " (aliases: " + ", ".join(f"{a}={c}" for a, c in aliases.items()) + ")"


def describe(canon: str, params: Mapping[str, Any]) -> str:
    """Compact text for a parsed entry: ``leaky_relu(alpha=0.1)``."""
    if not params:
        return canon
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not None)
    return f"{canon}({inner})" if inner else canon


def positive_int(path: str, value: Any) -> int:
    """``value`` as an int ≥ 1, else ``ValueError`` naming ``path``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or int(value) != value
        or value < 1
    ):
        raise ValueError(f"{path}={value!r}: must be a positive integer")
    return int(value)


def int_list(path: str, value: Any) -> list[int]:
    """A list of positive integers (a single integer is a list of one)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValueError(f"{path}={value!r}: must be a list of positive integers")
    return [positive_int(f"{path}[{i}]", v) for i, v in enumerate(value)]


def per_layer(path: str, value: Any, n: int, what: str) -> list[Any]:
    """One value for every layer, or a list with exactly ``n`` entries (one per layer)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"{path} has {len(value)} entries but there are {n} {what}; give one value "
                f"for all of them or a list of {n}"
            )
        return list(value)
    return [value] * n
