"""Training: the ``Trainer`` loop, its callbacks (``optimlab.train.callbacks``), the
``History`` it returns and the metrics it reports (``optimlab.train.metrics``); the seeds of one
configuration trained together as one stacked model (``fit_together``)."""

from optimlab.train.history import History
from optimlab.train.stacked import NotStackable, fit_together, together_problem
from optimlab.train.trainer import Trainer

__all__ = ["History", "NotStackable", "Trainer", "fit_together", "together_problem"]
