"""What every ``explain`` topic returns, and the helpers the topics share.

A topic computes one of the course's worked examples with optimlab's own pieces, and returns a
:class:`TopicResult`: the table (what the notes print, recomputed), the figures it saved, the key
numbers (for tests and ``--json``), what the computation shows, and — compared number by number
with :class:`NotesCheck` — every place where the notes print something else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Table:
    """A titled table: ``rows`` hold numbers or strings, one entry per column."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class TopicResult:
    """The outcome of one topic: main table, extra tables, figures, key numbers, findings and
    the differences from the numbers printed in the notes."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes_differences: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    key_numbers: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    extra_tables: list[Table] = field(default_factory=list)
    table_title: str = ""

    def tables(self) -> list[Table]:
        """The main table first, then the extra ones."""
        return [Table(self.table_title or self.title, self.columns, self.rows),
                *self.extra_tables]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings, NumPy / torch scalars as Python numbers)."""
        return {
            "name": self.name,
            "title": self.title,
            "tables": [{"title": t.title, "columns": t.columns, "rows": _plain(t.rows)}
                       for t in self.tables()],
            "findings": list(self.findings),
            "notes_differences": list(self.notes_differences),
            "figures": [str(p) for p in self.figures],
            "key_numbers": _plain(self.key_numbers),
        }


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if hasattr(x, "item") and callable(x.item):  # a 0-d torch tensor
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# -- comparing with the printed numbers ---------------------------------------------------------
_NUMBER = re.compile(r"^[−-]?\d*\.?\d+(?:[eE][−+-]?\d+)?$")


def printed_tolerance(printed: str) -> float:
    """One unit in the last printed digit: ``"9.407"`` → 0.001, ``"4.4e-6"`` → 1e-7 (a bare
    ``"0"`` → 0).

    A printed number is taken as correct when the computed value lies within one unit of its
    last digit: that allows for rounding of the result and of one intermediate value.
    """
    text = printed.strip().replace("−", "-")
    if not _NUMBER.match(text):
        raise ValueError(f"not a printed number: {printed!r}")
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    if float(text) == 0 and not decimals:
        return 0.0  # a bare "0" in a table means exactly nothing
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def fmt(x: float, digits: int = 6) -> str:
    """``x`` with at most ``digits`` significant digits (``"%.{digits}g"``): 1.8, 9.20701,
    4e-09."""
    if isinstance(x, str):
        return x
    return f"{float(x):.{digits}g}"


class NotesCheck:
    """Collects the places where a computed number differs from the one the notes print.

    >>> check = NotesCheck("004 · EWA")
    >>> check.series("β=0.9 table, v", ["day 6"], [9.207012], ["9.40701"])
    False
    >>> check.differences[0]
    '004 · EWA — β=0.9 table, v: day 6 notes 9.40701, computed 9.207012'
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.differences: list[str] = []

    def series(self, what: str, labels: list[str], computed: list[float],
               printed: list[str | None], *, tol: float | None = None, why: str = "") -> bool:
        """Compare ``computed[i]`` with ``printed[i]`` (a string, as printed; None = not
        printed); record one line naming every entry that differs. True when all agree.

        ``tol``: absolute tolerance; default one unit in each printed number's last digit.
        """
        bad = []
        for label, c, p in zip(labels, computed, printed, strict=True):
            if p is None:
                continue
            t = printed_tolerance(p) if tol is None else tol
            if not abs(float(c) - float(p.replace("−", "-"))) <= t * (1 + 1e-9):
                digits = max(len(re.sub(r"[^0-9]", "", p.lower().partition("e")[0]).lstrip("0"))
                             + 1, 3)
                bad.append(f"{label} notes {p}, computed {fmt(float(c), digits)}")
        if bad:
            self.differences.append(f"{self.source} — {what}: " + "; ".join(bad)
                                    + (f" ({why})" if why else ""))
        return not bad

    def value(self, what: str, computed: float, printed: str, *, tol: float | None = None,
              why: str = "") -> bool:
        """Compare one number (see :meth:`series`)."""
        t = printed_tolerance(printed) if tol is None else tol
        if abs(float(computed) - float(printed.replace("−", "-"))) <= t * (1 + 1e-9):
            return True
        digits = max(len(re.sub(r"[^0-9]", "", printed.lower().partition("e")[0]).lstrip("0"))
                     + 1, 3)
        self.differences.append(f"{self.source} — {what}: notes {printed}, computed "
                                f"{fmt(float(computed), digits)}" + (f" ({why})" if why else ""))
        return False

    def claim(self, text: str) -> None:
        """Record a difference that is not a single number (a wrong statement, a mixed-up
        formula); ``text`` quotes the notes and gives the computed value."""
        self.differences.append(f"{self.source} — {text}")


# -- figures ------------------------------------------------------------------------------------
def save(fig: Any, out_dir: Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir/name`` (PNG), close it and return the path."""
    import matplotlib.pyplot as plt  # lazy: listing the topics loads no matplotlib

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path)
    plt.close(fig)
    return path


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 7.0, height: float = 4.5,
               **kwargs: Any) -> tuple[Any, Any]:
    """A figure in optimlab's style (``viz.style.apply()``) with ``nrows × ncols`` axes."""
    import matplotlib.pyplot as plt  # lazy: listing the topics loads no matplotlib

    from optimlab.viz import style  # (imports matplotlib)

    style.apply()
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)
