"""Every transform in one namespace, for building your own optimizer::

    from optimlab.optim import from_chain, transforms as T

    opt = from_chain(model.parameters(),
                     T.chain(T.skip_nonfinite(), T.clip_by_global_norm(1.0),
                             T.ewa(0.9), T.bias_correction(0.9),
                             T.scale_by_rms(0.999, bias_correction=True),
                             T.decay_weights(0.01), T.scale_by_lr()),
                     lr=1e-3)

The final update is added to the weights, so a chain ends with ``scale_by_lr()`` (−α).
"""

from optimlab.optim.base import Chain, Context, Transform, chain
from optimlab.optim.moments import (
    bias_correction,
    ewa,
    lion_momentum,
    nadam_momentum,
    nesterov,
    trace,
)
from optimlab.optim.regularize import decay_weights, l1_proximal
from optimlab.optim.safety import add_noise, clip_by_global_norm, clip_by_value, skip_nonfinite
from optimlab.optim.scaling import (
    lr_decay,
    scale,
    scale_by_adagrad,
    scale_by_inf_norm,
    scale_by_lr,
    scale_by_rms,
    sign,
)
from optimlab.optim.update import Update

__all__ = [
    "Chain", "Context", "Transform", "Update", "add_noise", "bias_correction", "chain",
    "clip_by_global_norm", "clip_by_value", "decay_weights", "ewa", "l1_proximal",
    "lion_momentum", "lr_decay", "nadam_momentum", "nesterov", "scale", "scale_by_adagrad",
    "scale_by_inf_norm", "scale_by_lr", "scale_by_rms", "sign", "skip_nonfinite", "trace",
]
