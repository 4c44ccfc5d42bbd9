"""ModelCheckpoint: save the best and the last state, atomically, and resume exactly from it.

A checkpoint holds everything the loop needs to go on as if it had never stopped —
``Trainer.state_dict()``: the model and optimizer state dicts, the step and epoch, the history,
the random-number states, the LR factor, a torch LR scheduler's or grad scaler's state, and each
callback's state — under a format marker; ``Trainer.fit(resume=path)`` reads it back. It
contains only tensors, numbers, strings, lists and dicts, so it is read with
``torch.load(weights_only=True)`` — never by unpickling arbitrary objects. It is written to a
temporary file in the same folder and renamed over the old one: a killed process leaves either
the old file or the new one (with ``sync=True`` each file is also flushed to disk first, so a
power cut does too).

``last.pt`` is written every epoch, so it writes only what changed: the history — which grows
every epoch — goes to an append-only journal beside it (``history.jsonl``, see
:mod:`optimlab.train.callbacks.journal`) that receives each epoch's records once, and
``last.pt`` refers to it; ``read_checkpoint`` puts the two back together. ``best.pt`` is
written only when the monitored value improves and holds its whole history itself.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks import journal
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import improves, monitor_mode

FORMAT = "optimlab-checkpoint"
#: 2: ``last.pt`` keeps its history in a journal beside it (1: always inline; still read)
VERSION = 2
JOURNAL = "history.jsonl"


def atomic_save(obj: Any, path: str | os.PathLike[str], *, sync: bool = True) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename (all or nothing); with
    ``sync`` the file is flushed to disk (fsync) before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
                    history: bool = True) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``), with clear errors for bad files; its
    history is read back from the journal beside it when it keeps one (``history=False`` skips
    that: for the weights alone, the file suffices)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; ModelCheckpoint writes last.pt and "
                                "best.pt in its folder")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the error says it
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises several kinds for truncated or foreign files
        # torch's own message may quote the file and suggests weights_only=False: neither is
        # passed on (a checkpoint holds only tensors, numbers and strings; nothing else loads)
        why = ("it is damaged, not a checkpoint file, or holds Python objects other than "
               "tensors, numbers and strings (optimlab never loads those)")
        raise ValueError(f"{path} is not a readable optimlab checkpoint: {why}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not an optimlab checkpoint (no '{FORMAT}' marker)")
    kept = data.get("history", {}).get("journal")
    if history and kept is not None:
        epochs, steps = journal.read(path.parent / kept["file"],
                                     journal.Position.from_dict(kept["position"]))
        data["history"] = {**{k: v for k, v in data["history"].items() if k != "journal"},
                           "epochs": epochs, "steps": steps}
    return data


class ModelCheckpoint(Callback):
    """Save ``last.pt`` after every ``every``-th epoch and ``best.pt`` when ``monitor`` improves.

    >>> Trainer(..., callbacks=[ModelCheckpoint("runs/a", monitor="val_accuracy")])
    >>> trainer.fit(train, val, epochs=30, resume="runs/a/last.pt")   # after a crash

    ``mode`` is "min"/"max", or "auto" (from the metric: losses go down, accuracy goes up).
    ``last.pt`` keeps its history in ``history.jsonl`` beside it (see the module docstring).
    ``sync=True`` flushes every file to disk before it counts as written (a power cut then
    leaves the old or the new checkpoint; about 2 ms a file on an SSD); without it, the writes
    are atomic against a killed process and a file torn by a power cut is refused when read.
    """

    main_only = True  # it writes: rank 0 only under DDP

    def __init__(self, dirpath: str | os.PathLike[str], monitor: str = "val_loss",
                 mode: str = "auto", save_best: bool = True, save_last: bool = True,
                 every: int = 1, *, sync: bool = False) -> None:
        check_choice("mode", mode, ("auto", "min", "max"))
        check_number("every", every, low=1, integer=True)
        if not isinstance(sync, bool):
            raise ValueError(f"sync={sync!r} is not allowed; choose True or False")
        self.dirpath = Path(dirpath)
        self.monitor, self.mode = monitor, mode
        self.save_best, self.save_last, self.every = save_best, save_last, every
        self.sync = sync
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._best_now = False
        self._journal: journal.Position | None = None  # this fit's journal, once written
        self._resumed_from: journal.Position | None = None  # the journal of a loaded state

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.pt"

    @property
    def journal_path(self) -> Path:
        return self.dirpath / JOURNAL

    def on_fit_start(self, state: State) -> None:
        self._journal, position, self._resumed_from = None, self._resumed_from, None
        if state.resumed and position is not None:  # the same run's journal goes on
            self._journal = journal.reopen(self.journal_path, position, state.history)

    def on_epoch_end(self, state: State) -> None:
        self._best_now = False
        if self.save_best:
            if self.monitor not in state.logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r} but the epoch logs "
                                 f"have {', '.join(sorted(state.logs))}; pass validation data or "
                                 "monitor a train_ key")
            value = float(state.logs[self.monitor])
            mode = monitor_mode(self.monitor) if self.mode == "auto" else self.mode
            if improves(value, self.best, mode):
                self.best, self.best_epoch, self._best_now = value, state.epoch, True

    def on_epoch_close(self, state: State) -> None:
        """Save after every callback's ``on_epoch_end``, so the file holds their final state."""
        last = self.save_last and (state.epoch + 1) % self.every == 0
        if not (last or self._best_now):
            return
        assert state.trainer_state_dict is not None, "ModelCheckpoint runs inside Trainer.fit"
        if last:  # first the new history rows, so that this callback's state names them
            self.dirpath.mkdir(parents=True, exist_ok=True)
            if self._journal is None:
                self._journal = journal.create(self.journal_path, state.history, sync=self.sync)
            else:
                self._journal = journal.append(self.journal_path, self._journal, state.history,
                                               sync=self.sync)
        payload = {"format": FORMAT, "version": VERSION, **state.trainer_state_dict()}
        if self._best_now:
            atomic_save(payload, self.best_path, sync=self.sync)
        if last:
            assert self._journal is not None
            kept = {k: v for k, v in payload["history"].items() if k not in ("epochs", "steps")}
            kept["journal"] = {"file": JOURNAL, "position": self._journal.to_dict()}
            atomic_save({**payload, "history": kept}, self.last_path, sync=self.sync)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch,
                "journal": self._journal.to_dict() if self._journal is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
        kept = state.get("journal")
        self._resumed_from = journal.Position.from_dict(kept) if kept is not None else None
