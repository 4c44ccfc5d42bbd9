"""optimlab — train neural networks well, and see why.

Subpackages: ``optimlab.optim`` (optimizers as chains of gradient transforms),
``optimlab.schedules`` (learning-rate schedules), and ``optimlab.ewa`` (smoothing a series).
"""

from optimlab.smoothing import ewa

__version__ = "0.1.0"
__all__ = ["__version__", "ewa"]
