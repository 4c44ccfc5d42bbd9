"""optimlab.schedules — learning-rate schedules as pure closed-form functions ``lr(step)``.

``schedule(step)`` is the absolute learning rate at integer time ``step`` (0-based); a schedule
holds no state, so a resumed run continues exactly. Build one with a constructor::

    from optimlab import schedules as S
    lr = S.warmup(S.cosine(0.1, total=900), steps=100)   # ramp 100 steps, then cosine
    lr(0), lr(100), lr(1000)                             # 0.0, 0.1, 0.0
    S.step_decay(0.1, every=10).per_epoch(steps_per_epoch=50)   # halve every 10 epochs

:func:`available` lists the names and :func:`create` builds one by name; :class:`ScheduleLR`
drives any ``torch.optim`` optimizer from a schedule.
"""

from optimlab.schedules.base import Schedule
from optimlab.schedules.compose import join, warmup
from optimlab.schedules.cyclic import cosine_restarts, cyclic, one_cycle
from optimlab.schedules.decay import (
    constant,
    cosine,
    exponential,
    inverse_time,
    multi_step,
    piecewise,
    polynomial,
    step_decay,
)
from optimlab.schedules.registry import available, create
from optimlab.schedules.scaling import linear_scaling
from optimlab.schedules.torch_adapter import ScheduleLR

__all__ = [
    "Schedule", "ScheduleLR", "available", "constant", "cosine", "cosine_restarts", "create",
    "cyclic", "exponential", "inverse_time", "join", "linear_scaling", "multi_step",
    "one_cycle", "piecewise", "polynomial", "step_decay", "warmup",
]
