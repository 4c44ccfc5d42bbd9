"""ModelCheckpoint: save the best and the last state, atomically, and resume exactly from it.

A checkpoint holds everything the loop needs to go on as if it had never stopped —
``Trainer.state_dict()``: the model and optimizer state dicts, the step and epoch, the history,
the random-number states, the LR factor, a torch LR scheduler's or grad scaler's state, and each
callback's state — under a format marker; ``Trainer.fit(resume=path)`` reads it back. It
contains only tensors, numbers, strings, lists and dicts, so it is read with
``torch.load(weights_only=True)`` — never by unpickling arbitrary objects. It is written to a
temporary file in the same folder, flushed to disk, and renamed over the old one: a crash leaves
either the old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import improves, monitor_mode

FORMAT = "optimlab-checkpoint"
VERSION = 1


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``), with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; ModelCheckpoint writes last.pt and "
                                "best.pt in its folder")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several kinds for truncated or foreign files
        raise ValueError(f"{path} is not a readable optimlab checkpoint ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not an optimlab checkpoint (no '{FORMAT}' marker)")
    return data


class ModelCheckpoint(Callback):
    """Save ``last.pt`` after every ``every``-th epoch and ``best.pt`` when ``monitor`` improves.

    >>> Trainer(..., callbacks=[ModelCheckpoint("runs/a", monitor="val_accuracy")])
    >>> trainer.fit(train, val, epochs=30, resume="runs/a/last.pt")   # after a crash

    ``mode`` is "min"/"max", or "auto" (from the metric: losses go down, accuracy goes up).
    """

    def __init__(self, dirpath: str | os.PathLike[str], monitor: str = "val_loss",
                 mode: str = "auto", save_best: bool = True, save_last: bool = True,
                 every: int = 1) -> None:
        check_choice("mode", mode, ("auto", "min", "max"))
        check_number("every", every, low=1, integer=True)
        self.dirpath = Path(dirpath)
        self.monitor, self.mode = monitor, mode
        self.save_best, self.save_last, self.every = save_best, save_last, every
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._best_now = False

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.pt"

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
        payload = {"format": FORMAT, "version": VERSION, **state.trainer_state_dict()}
        if last:
            atomic_save(payload, self.last_path)
        if self._best_now:
            atomic_save(payload, self.best_path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
