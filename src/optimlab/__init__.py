"""optimlab — train neural networks well, and see why.

Subpackages: ``optimlab.optim`` (optimizers as chains of gradient transforms),
``optimlab.schedules`` (learning-rate schedules), ``optimlab.data``, ``optimlab.models``,
``optimlab.train`` (the ``Trainer``), and ``optimlab.ewa`` (smoothing a series).
"""

from optimlab.smoothing import ewa
from optimlab.train import History, Trainer

__version__ = "0.1.0"
__all__ = ["History", "Trainer", "__version__", "ewa"]
