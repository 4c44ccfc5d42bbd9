"""Training: the ``Trainer`` loop, its callbacks (``optimlab.train.callbacks``), the
``History`` it returns and the metrics it reports (``optimlab.train.metrics``); the
learning-rate range test (``Trainer.lr_find``, :mod:`optimlab.train.lr_find`), random
restarts (:func:`restarts`), and the seeds of one configuration trained together as one stacked
model (``fit_together``).

The names are loaded on first use: ``optimlab lr-find --help`` reads the range test's defaults
from :mod:`optimlab.train.lr_find` without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimlab._lazy import lazy_names

# eager (it loads no torch): the function ``restarts`` must be what ``optimlab.train.restarts``
# names, not the module of the same name that importing it binds on this package
from optimlab.train.restarts import Restarts, restarts

__all__ = ["History", "LRFindResult", "NotStackable", "Restarts", "Trainer", "fit_together",
           "restarts", "together_problem"]

if TYPE_CHECKING:
    from optimlab.train.history import History
    from optimlab.train.lr_find import LRFindResult
    from optimlab.train.stacked import NotStackable, fit_together, together_problem
    from optimlab.train.trainer import Trainer

_LAZY = {"History": "optimlab.train.history", "LRFindResult": "optimlab.train.lr_find",
         "Trainer": "optimlab.train.trainer", "NotStackable": "optimlab.train.stacked",
         "fit_together": "optimlab.train.stacked", "together_problem": "optimlab.train.stacked"}


# lazy: the CLI registers its commands (and their defaults) without loading torch
__getattr__ = lazy_names(__name__, _LAZY)
