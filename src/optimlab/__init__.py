"""optimlab — train neural networks well, and see why.

Subpackages: ``optimlab.optim`` (optimizers as chains of gradient transforms),
``optimlab.schedules`` (learning-rate schedules), ``optimlab.data``, ``optimlab.models``,
``optimlab.train`` (the ``Trainer``), and ``optimlab.ewa`` (smoothing a series).

Imports inside functions are kept for start-up time only — ``optimlab --help`` and
``optimlab datasets`` answer without loading torch, matplotlib or scipy — and each says why on
its line. Everywhere else, modules import what they use at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimlab._lazy import lazy_names

__version__ = "0.1.0"
__all__ = ["History", "Trainer", "__version__", "ewa"]

if TYPE_CHECKING:
    from optimlab.smoothing import ewa
    from optimlab.train import History, Trainer

_LAZY = {"History": "optimlab.train", "Trainer": "optimlab.train", "ewa": "optimlab.smoothing"}


# lazy: the CLI imports this package first, and Trainer/ewa would pull in torch and scipy
__getattr__ = lazy_names(__name__, _LAZY)
