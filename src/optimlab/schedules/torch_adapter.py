"""``ScheduleLR``: drive any ``torch.optim.Optimizer`` from a schedule in a plain PyTorch loop.

Example::

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = ScheduleLR(opt, warmup(cosine(0.1, total=900), steps=100))
    for x, y in batches:
        loss_fn(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        sched.step()        # one optimizer step: lr = schedule(step)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from optimlab._checks import check_choice
from optimlab.schedules.base import ScheduleLike, check_schedule


class ScheduleLR(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` whose rate at step ``n`` is ``schedule(n)``.

    ``mode="absolute"`` (default) sets every group's ``lr`` to ``schedule(n)``.
    ``mode="relative"`` treats the schedule as a multiplier, like ``LambdaLR``: each group's
    ``lr`` is its ``initial_lr × schedule(n)``; build the schedule with ``lr=1.0`` (for example
    ``cosine(1.0, total=1000)``) to keep per-group rates.

    Each ``step()`` advances one step (call it after ``optimizer.step()``). For an epoch
    schedule, call ``step()`` once per epoch, or pass ``schedule.per_epoch(steps_per_epoch)`` and
    call it every batch. Because the schedule is pure, the state is only the step count:
    ``state_dict()`` holds plain values (safe for ``torch.load(weights_only=True)``) and
    ``load_state_dict`` also writes the restored step's rate into the optimizer, so a resumed
    run continues exactly. The schedule itself is not saved (only its ``repr``, for reference):
    build the same one when resuming.
    """

    def __init__(self, optimizer: Optimizer, schedule: ScheduleLike, mode: str = "absolute",
                 last_epoch: int = -1) -> None:
        check_schedule("schedule", schedule)
        check_choice("mode", mode, ("absolute", "relative"))
        self.schedule = schedule
        self.mode = mode
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        """The rates for step ``last_epoch``, one per parameter group."""
        value = float(self.schedule(self.last_epoch))
        if self.mode == "absolute":
            return [value for _ in self.optimizer.param_groups]
        return [base_lr * value for base_lr in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        return self.get_lr()  # a pure schedule is its own closed form

    def state_dict(self) -> dict[str, Any]:
        """The step count and base rates (plain values), plus the schedule's ``repr``."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count,
                "base_lrs": list(self.base_lrs), "_last_lr": list(self._last_lr),
                "mode": self.mode, "schedule": repr(self.schedule)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step count and set each group's ``lr`` to the rate at that step."""
        if state_dict.get("mode", self.mode) != self.mode:
            raise ValueError(f"mode={state_dict['mode']!r} in the saved state differs from this "
                             f"scheduler's mode={self.mode!r}")
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        if "base_lrs" in state_dict:
            self.base_lrs = list(state_dict["base_lrs"])
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(float(lr))
            else:
                group["lr"] = lr
        self._last_lr = [g["lr"].clone() if isinstance(g["lr"], Tensor) else g["lr"]
                         for g in self.optimizer.param_groups]
