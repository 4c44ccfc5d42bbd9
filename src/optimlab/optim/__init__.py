"""optimlab.optim — optimizers built from small, composable gradient transforms.

``optimlab.optim.adam(model.parameters(), lr=1e-3)`` returns a ``torch.optim.Optimizer``;
``available()`` lists every name with its defaults; ``transforms`` holds the pieces and
``from_chain`` turns your own chain into an optimizer.
"""

from optimlab.optim import transforms
from optimlab.optim.alias import (
    adagrad,
    adam,
    adamax,
    adamw,
    amsgrad,
    available,
    create,
    lion,
    momentum,
    nadam,
    nesterov,
    rmsprop,
    sgd,
)
from optimlab.optim.base import chain
from optimlab.optim.optimizer import ChainOptimizer, from_chain
from optimlab.optim.wrappers import Accumulate, Ema, Lookahead, accumulate, ema, lookahead

__all__ = [
    "Accumulate", "ChainOptimizer", "Ema", "Lookahead", "accumulate", "adagrad", "adam",
    "adamax", "adamw", "amsgrad", "available", "chain", "create", "ema", "from_chain", "lion",
    "lookahead", "momentum", "nadam", "nesterov", "rmsprop", "sgd", "transforms",
]
