"""ProgressBar: a rich progress bar over the epochs of a fit (Keras's ProgbarLogger).

The Trainer adds one after its own callbacks when ``progress`` is True (or None and standard
output is a terminal); it is not part of ``Trainer.callbacks``, so a checkpoint written with
the bar resumes without it and the other way round.
"""

from __future__ import annotations

import time
from typing import Any

from optimlab.train.callbacks.base import Callback, State


class ProgressBar(Callback):
    """Epochs done out of the fit's, the latest step loss (refreshed a few times a second, not
    every step) and, after each epoch, its record (losses and metrics)."""

    main_only = True  # it writes: rank 0 only under DDP

    def __init__(self, refresh: float = 0.2) -> None:
        self.refresh = refresh
        self._progress: Any = None
        self._task: Any = None
        self._last = 0.0

    def on_fit_start(self, state: State) -> None:
        # lazy: rich.progress takes ~50 ms to import, and most fits (the lab's) show no bar
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.close()
        first = state.epoch + 1 if state.resumed else 0
        total = max(0, (state.max_epochs or 0) - first)
        self._progress = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                  TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                  transient=False)
        self._task = self._progress.add_task("fit", total=total, info="")
        self._last = 0.0
        self._progress.start()

    def on_step_end(self, state: State) -> None:
        now = time.perf_counter()
        if self._progress is not None and now - self._last > self.refresh:
            self._last = now
            self._progress.update(self._task, info=f"loss {state.logs['loss']:.4g}")

    def on_epoch_close(self, state: State) -> None:
        if self._progress is None:
            return
        shown = "  ".join(f"{k} {v:.4g}" for k, v in state.logs.items()
                          if k not in ("epoch", "time", "lr"))
        self._progress.update(self._task, advance=1, info=shown)

    def on_fit_end(self, state: State) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (the Trainer calls this also when fit ends with an exception)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
