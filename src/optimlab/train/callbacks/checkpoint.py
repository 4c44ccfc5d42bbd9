"""ModelCheckpoint: save the best and the last state, atomically, and resume exactly from it.

A checkpoint holds everything the loop needs to go on as if it had never stopped: the model and
optimizer state dicts, the step and epoch, the history, the random-number states, the LR factor,
a torch LR scheduler's or grad scaler's state, and each callback's state. It contains only
tensors, numbers, strings, lists and dicts, so it is read with ``torch.load(weights_only=True)``
— never by unpickling arbitrary objects. It is written to a temporary file in the same folder,
flushed to disk, and renamed over the old one: a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import improves, monitor_mode
from optimlab.train.history import History

if TYPE_CHECKING:
    from optimlab.train.trainer import Trainer

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


def checkpoint_state(trainer: Trainer) -> dict[str, Any]:
    """Everything needed to resume ``trainer`` after the epoch it has just finished."""
    state = trainer.state
    assert state is not None and trainer.model is not None and trainer.optimizer is not None
    schedule = trainer.schedule
    return {
        "format": FORMAT, "version": VERSION,
        "epoch": state.epoch, "step": state.step, "lr_factor": state.lr_factor,
        "elapsed": state.elapsed,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "base_lrs": list(trainer._base_lrs),
        "torch_scheduler": schedule.state_dict()
        if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler) else None,
        "scaler": trainer._scaler.state_dict() if trainer._scaler is not None else None,
        "history": state.history.to_dict(),
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
    }


def read_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``), with clear errors for bad files."""
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
    return data


def load_checkpoint(trainer: Trainer, path: str | os.PathLike[str]) -> tuple[int, list[float]]:
    """Restore ``trainer`` from ``path``; return (first epoch to run, base learning rates)."""
    state = trainer.state
    assert state is not None and trainer.model is not None and trainer.optimizer is not None
    data = read_checkpoint(path, trainer.device)
    if len(data["callbacks"]) != len(trainer.callbacks):
        raise ValueError(f"{path} was written with {len(data['callbacks'])} callbacks but this "
                         f"Trainer has {len(trainer.callbacks)}; resume with the same callbacks")
    trainer.model.load_state_dict(data["model"])
    trainer.optimizer.load_state_dict(data["optimizer"])
    if data["torch_scheduler"] is not None:
        trainer.schedule.load_state_dict(data["torch_scheduler"])
    if data["scaler"] is not None and trainer._scaler is not None:
        trainer._scaler.load_state_dict(data["scaler"])
    history = History.from_dict(data["history"])
    trainer.history = state.history = history
    state.step, state.epoch = int(data["step"]), int(data["epoch"])
    state.lr_factor, state.elapsed = float(data["lr_factor"]), float(data["elapsed"])
    torch.set_rng_state(data["rng"]["torch"].cpu())
    if data["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in data["rng"]["cuda"]])
    for cb, cb_state in zip(trainer.callbacks, data["callbacks"], strict=True):
        cb.load_state_dict(cb_state)
    return int(data["epoch"]) + 1, [float(v) for v in data["base_lrs"]]


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
        payload = checkpoint_state(state.trainer)
        if last:
            atomic_save(payload, self.last_path)
        if self._best_now:
            atomic_save(payload, self.best_path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
