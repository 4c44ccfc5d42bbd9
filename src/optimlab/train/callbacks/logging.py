"""Loggers: write each epoch's record to CSV, JSON lines or TensorBoard as training goes.

Files are written one whole line at a time and flushed (and fsynced) after every epoch, so a
crash loses at most the epoch in progress; a torn last line is dropped when a run resumes. A
fresh ``fit`` starts the file anew; a resumed one (``fit(resume=…)``) keeps the rows of the
epochs the checkpoint holds, drops any written after it, and appends. An epoch that ends the
run as diverged gets no ``on_epoch_end``; its record is written at ``on_fit_end``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import IO, Any

from optimlab._checks import check_number
from optimlab.train.callbacks.base import Callback, State


def _rewrite(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file and a rename (all or nothing)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _epoch_of(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _FileLogger(Callback):
    """Shared file handling: open at fit start (fresh or resumed), one line per epoch."""

    main_only = True  # it writes: rank 0 only under DDP

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None
        self._last_epoch: float | None = None

    def _open(self, state: State) -> None:
        self._close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        resumed = state.resumed and bool(state.history.epochs)
        self._last_epoch = float(state.history.epochs[-1]["epoch"]) if resumed else None
        if resumed and self.path.exists():
            self._trim(self._last_epoch)  # type: ignore[arg-type]
            self._reopen("a")
        else:
            self._start_fresh()
            self._reopen("w")

    def _reopen(self, mode: str) -> None:
        """Keep the file open across epochs (closed at fit end): one handle, one line a write."""
        self._fh = open(self.path, mode, encoding="utf-8", newline="")  # noqa: SIM115

    def _start_fresh(self) -> None: ...

    def _trim(self, last_epoch: float) -> None: ...

    def _write(self, text: str) -> None:
        assert self._fh is not None
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _log_epoch(self, record: dict[str, Any]) -> None: ...

    def on_fit_start(self, state: State) -> None:
        self._open(state)

    def on_epoch_end(self, state: State) -> None:
        if self._fh is None:
            self._open(state)
        self._log_epoch(dict(state.logs))
        self._last_epoch = _epoch_of(state.logs.get("epoch"))

    def _catch_up(self, state: State) -> None:
        """Write the records on_epoch_end never saw (an epoch that diverged)."""
        for record in state.history.epochs:
            epoch = _epoch_of(record.get("epoch"))
            if epoch is not None and (self._last_epoch is None or epoch > self._last_epoch):
                self._log_epoch(dict(record))
                self._last_epoch = epoch

    def on_fit_end(self, state: State) -> None:
        if self._fh is None:
            return
        self._catch_up(state)
        self._close()


class CSVLogger(_FileLogger):
    """One CSV row per epoch: the epoch record (``epoch``, ``train_loss``, ``val_loss``, …,
    ``lr``, ``time``) plus what callbacks listed before this one added to ``State.logs``.

    The header is the first row's keys; a key that first appears later widens the header (the
    file is rewritten once, atomically) and rows without a key leave it empty. Floats are
    written with ``repr`` (exact round trip; ``nan``/``inf`` as such), ``epoch`` as an integer.

    >>> Trainer(model, callbacks=[CSVLogger("runs/a/epochs.csv")])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._header: list[str] | None = None

    def _start_fresh(self) -> None:
        self._header = None

    def _trim(self, last_epoch: float) -> None:
        text = self.path.read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            epoch = _epoch_of(row.get("epoch"))
            if epoch is None or epoch > last_epoch or None in row or None in row.values():
                continue  # written after the checkpoint, or torn by a crash
            rows.append(row)
        self._header = header or None
        new = self._render(header, rows) if header else ""
        if new != text:
            _rewrite(self.path, new)

    @staticmethod
    def _render(header: list[str], rows: list[dict[str, Any]]) -> str:
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    @staticmethod
    def _format(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            if key == "epoch" and value.is_integer():
                return str(int(value))
            return repr(value)
        return "" if value is None else str(value)

    def _log_epoch(self, record: dict[str, Any]) -> None:
        row = {k: self._format(k, v) for k, v in record.items()}
        if self._header is None:
            self._header = list(row)
            self._write(self._render(self._header, [row]))
            return
        new_keys = [k for k in row if k not in self._header]
        if new_keys:
            self._close()
            with open(self.path, encoding="utf-8", newline="") as fh:
                old_rows = list(csv.DictReader(fh))
            self._header = self._header + new_keys
            _rewrite(self.path, self._render(self._header, [*old_rows, row]))
            self._reopen("a")
            return
        self._write(self._render(self._header, [row]).split("\n", 1)[1])


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JSONLogger(_FileLogger):
    """JSON lines: ``{"event": "epoch", <epoch record>}`` per epoch, then one summary line

        {"event": "end", "status", "reason", "epochs", "steps", "stop_step",
         "skipped_steps", "elapsed"}

    when ``fit`` returns. NaN and ±Inf are written as ``null`` (strict JSON). Each line is
    complete on its own, so a crash leaves every earlier line readable.

    >>> Trainer(model, callbacks=[JSONLogger("runs/a/log.jsonl")])
    >>> [json.loads(line) for line in open("runs/a/log.jsonl")][-1]["status"]
    """

    def _trim(self, last_epoch: float) -> None:
        text = self.path.read_text(encoding="utf-8")
        kept = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a crash
            if not isinstance(item, dict):
                continue
            epoch = _epoch_of(item.get("epoch"))
            if item.get("event") == "epoch" and (epoch is None or epoch > last_epoch):
                continue
            kept.append(line + "\n")
        new = "".join(kept)
        if new != text:
            _rewrite(self.path, new)

    def _line(self, item: dict[str, Any]) -> None:
        self._write(json.dumps({k: _jsonable(v) for k, v in item.items()},
                               allow_nan=False) + "\n")

    def _log_epoch(self, record: dict[str, Any]) -> None:
        epoch = record.get("epoch")
        if isinstance(epoch, float) and epoch.is_integer():
            record["epoch"] = int(epoch)
        self._line({"event": "epoch", **{k: v for k, v in record.items() if k != "event"}})

    def on_fit_end(self, state: State) -> None:
        if self._fh is None:
            return
        self._catch_up(state)
        h = state.history
        self._line({"event": "end", "status": h.status, "reason": h.reason,
                    "epochs": len(h.epochs), "steps": state.step, "stop_step": h.stop_step,
                    "skipped_steps": h.skipped_steps, "elapsed": state.elapsed})
        self._close()


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard: ``epoch/<key>`` for every key of the epoch logs (``epoch/val_loss``,
    ``epoch/lr``, …) at each epoch end, and with ``per_step=True`` ``step/loss``, ``step/lr``,
    ``step/grad_norm`` every ``step_every`` updates. The x-axis is the update count for both, so
    the curves line up. On resume, events after the checkpoint's step are purged.

    TensorBoard is optional: without it, constructing this raises ImportError saying how to
    install it (``pip install tensorboard``).

    >>> Trainer(model, callbacks=[TensorBoardLogger("runs/a/tb", per_step=True)])
    """

    main_only = True  # it writes: rank 0 only under DDP

    def __init__(self, logdir: str | os.PathLike[str], *, per_step: bool = False,
                 step_every: int = 1) -> None:
        check_number("step_every", step_every, low=1, integer=True)
        try:
            from torch.utils.tensorboard import SummaryWriter  # lazy: an optional extra
        except ImportError as err:
            raise ImportError("TensorBoardLogger needs TensorBoard, an optional dependency; "
                              "install it with: pip install tensorboard") from err
        self.logdir = Path(logdir)
        self.per_step, self.step_every = per_step, step_every
        self._writer_cls = SummaryWriter
        self._writer: Any = None

    def on_fit_start(self, state: State) -> None:
        self._close()
        resumed = state.resumed and bool(state.history.epochs)
        self._writer = self._writer_cls(str(self.logdir),
                                        purge_step=state.step + 1 if resumed else None)

    def on_step_end(self, state: State) -> None:
        if not self.per_step or self._writer is None or state.step % self.step_every:
            return
        for key, value in state.logs.items():
            self._writer.add_scalar(f"step/{key}", float(value), state.step)

    def on_epoch_end(self, state: State) -> None:
        if self._writer is None:
            self.on_fit_start(state)
        for key, value in state.logs.items():
            if key != "epoch" and isinstance(value, int | float):
                self._writer.add_scalar(f"epoch/{key}", float(value), state.step)
        self._writer.flush()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_fit_end(self, state: State) -> None:
        self._close()
