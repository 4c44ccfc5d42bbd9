"""EpochReport: hand each epoch's values to a function that may stop the run as pruned.

The interface through which whatever drives a trial from outside — a hyperparameter search's
pruner (:mod:`optimlab.tune`), a progress stream from a remote worker — sees a running fit::

    def report(epoch: int, logs: dict[str, float]) -> None:
        ...                       # record logs; raise Pruned("why") to stop this run here

    trainer = Trainer(model, callbacks=[EpochReport(report)])

``report`` is called once per finished epoch (0-based ``epoch``, after the other callbacks have
added their values to the epoch's record, before checkpoints are written), with a copy of the
record. If it raises :class:`Pruned`, training ends after this epoch with history status
``"pruned"`` and the exception's message as the reason; the checkpoint written at the end of the
epoch holds that status, so a resumed run stays ended. Any other exception propagates.
"""

from __future__ import annotations

from collections.abc import Callable

from optimlab.train.callbacks.base import Callback, State

__all__ = ["EpochReport", "Pruned"]


class Pruned(Exception):  # a signal, as optuna.TrialPruned, not an error
    """Raised by a report function: stop this run now, it is pruned (the message says why)."""


class EpochReport(Callback):
    """Calls ``report(epoch, logs)`` after every epoch; :class:`Pruned` from it stops the run
    with status ``"pruned"``."""

    def __init__(self, report: Callable[[int, dict[str, float]], None]) -> None:
        if not callable(report):
            raise ValueError(f"report must be a function (epoch, logs) -> None; got {report!r}")
        self.report = report

    def on_epoch_end(self, state: State) -> None:
        try:
            self.report(state.epoch, dict(state.logs))
        except Pruned as signal:
            if state.history.status == "running":  # not when another callback ended it
                state.request_stop(str(signal) or f"pruned after epoch {state.epoch}",
                                   status="pruned")

    def __repr__(self) -> str:
        return f"EpochReport({getattr(self.report, '__name__', self.report)!r})"
