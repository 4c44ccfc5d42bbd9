"""What a training run leaves behind: per-step and per-epoch records and how it ended."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["running", "completed", "early_stopped", "diverged", "stopped", "pruned"]


@dataclass
class History:
    """The record of one ``Trainer.fit``.

    ``steps`` holds one entry per optimizer update: ``step`` (1-based), ``epoch``, ``loss`` (the
    mini-batch loss that produced the update), ``lr`` (of the first parameter group) and
    ``grad_norm`` (global L2 norm of the gradients, before clipping). ``epochs`` holds one dict
    per epoch: ``epoch``, ``train_loss`` (mean of the epoch's step losses), ``train_<metric>``,
    ``val_loss``, ``val_<metric>``, ``lr`` and ``time`` (seconds). ``status`` says how the run
    ended: completed, early_stopped, diverged (with ``stop_step``), pruned (by a search's pruner,
    through :class:`~optimlab.train.callbacks.EpochReport`), or stopped by a callback.
    """

    steps: dict[str, list[float]] = field(default_factory=lambda: {
        "step": [], "epoch": [], "loss": [], "lr": [], "grad_norm": []})
    epochs: list[dict[str, float]] = field(default_factory=list)
    status: Status = "running"
    stop_step: int | None = None
    reason: str = ""
    skipped_steps: int = 0

    def __getitem__(self, key: str) -> list[float]:
        """Per-epoch values of ``key`` (``history["val_loss"]``), NaN where an epoch lacks it."""
        if not any(key in e for e in self.epochs):
            known = sorted({k for e in self.epochs for k in e})
            raise KeyError(f"no epoch records {key!r}; recorded: {', '.join(known)}")
        return [e.get(key, math.nan) for e in self.epochs]

    @property
    def n_steps(self) -> int:
        return len(self.steps["step"])

    def best(self, key: str, mode: Literal["min", "max"] = "min") -> tuple[int, float]:
        """(epoch, value) of the best finite value of ``key``."""
        values = [(e["epoch"], e[key]) for e in self.epochs
                  if key in e and math.isfinite(e[key])]
        if not values:
            raise KeyError(f"no finite values of {key!r} recorded")
        pick = min if mode == "min" else max
        return pick(values, key=lambda ev: ev[1])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, dicts, numbers and strings: JSON-ready, and loadable by
        ``torch.load(weights_only=True)`` inside a checkpoint."""
        return {"steps": {k: list(v) for k, v in self.steps.items()},
                "epochs": [dict(e) for e in self.epochs], "status": self.status,
                "stop_step": self.stop_step, "reason": self.reason,
                "skipped_steps": self.skipped_steps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(steps={k: list(v) for k, v in data["steps"].items()},
                   epochs=[dict(e) for e in data["epochs"]], status=data["status"],
                   stop_step=data["stop_step"], reason=data["reason"],
                   skipped_steps=data.get("skipped_steps", 0))

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                          if k not in ("epoch", "time") and isinstance(v, float))
        end = f" at step {self.stop_step}" if self.stop_step is not None else ""
        return (f"History({len(self.epochs)} epochs, {self.n_steps} steps, "
                f"{self.status}{end}; last: {shown})")
