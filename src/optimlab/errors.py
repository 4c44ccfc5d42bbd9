"""The project's own errors, and the one rule that tells a user's mistake from a bug.

A :class:`UserError` is a mistake in what the user asked for — a spec, a flag, a data file, a
store — and its message names the thing and the fix. The CLI prints it without a traceback and
exits with code 2; the lab records it with the trial and does not retry it in the same run.

Anything else that escapes is a bug: the CLI exits with code 1 and saves the traceback to a log
file named in the message (:func:`save_traceback`); the lab stores the traceback with the failed
trial. :func:`is_user_error` also counts a ``ValueError`` or ``OSError`` that optimlab's own code
raised (argument checks such as ``check_number``, files it opens) as the user's: the innermost
frame of its traceback is in the optimlab package. The same exception raised inside torch,
numpy or matplotlib is a bug of ours — we passed it something we should not have.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep


class UserError(ValueError):
    """A mistake in what the user asked for: printed without a traceback, exit code 2."""


class DataError(UserError):
    """Data that cannot train a model: a missing or unreadable file, a bad column, NaN, one
    class…; the message names the file (and row or column) and the fix."""


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is the user's mistake (exit 2) rather than a bug (exit 1)."""
    if isinstance(err, UserError):
        return True
    if not isinstance(err, ValueError | OSError):
        return False
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_PACKAGE)


def one_line(err: BaseException) -> str:
    """``"ValueError: the message"`` on one line (what a table or a progress line shows)."""
    return "".join(traceback.format_exception_only(type(err), err)).strip().replace("\n", " ")


def log_dir() -> Path:
    """Where crash logs go: ``$OPTIMLAB_LOG_DIR``, else the system's temporary folder."""
    return Path(os.environ.get("OPTIMLAB_LOG_DIR") or tempfile.gettempdir())


def save_traceback(err: BaseException | None, context: str = "", *,
                   text: str | None = None) -> Path | None:
    """Write ``err``'s traceback (or ``text``, a traceback formatted in another process), the
    command line and the versions to a new log file; return its path (None if no log file
    could be written)."""
    if text is None:
        assert err is not None, "give the exception or its formatted traceback"
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        from importlib.metadata import version

        versions = f"optimlab {version('optimlab')}, torch {version('torch')}"
    except Exception:  # a log must be written whatever is broken
        versions = "versions unknown"
    header = (f"optimlab crash log, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
              f"command: {' '.join(sys.argv)}\n{context}\nPython {sys.version.split()[0]}, "
              f"{versions}\n\n")
    folder = log_dir()
    name = f"optimlab-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.log"
        n = 1
        while path.exists():
            path, n = folder / f"{name}-{n}.log", n + 1
        path.write_text(header + text, encoding="utf-8")
    except OSError:
        return None
    return path
