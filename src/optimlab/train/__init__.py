"""Training: the ``Trainer`` loop, its callbacks (``optimlab.train.callbacks``), the
``History`` it returns and the metrics it reports (``optimlab.train.metrics``)."""

from optimlab.train.history import History
from optimlab.train.trainer import Trainer

__all__ = ["History", "Trainer"]
