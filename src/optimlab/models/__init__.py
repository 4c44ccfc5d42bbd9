"""Models from specs, initializers, activations, losses and weight penalties.

>>> import torch
>>> from optimlab.models import build_model, get_loss, output_activation, task_defaults
>>> x, y = torch.randn(8, 20), torch.randint(0, 3, (8,))
>>> net = build_model({"type": "mlp", "hidden": [64], "activation": "relu"}, 20, 3, seed=0)
>>> loss = get_loss(task_defaults("multiclass")["loss"], "multiclass")      # ce
>>> probs = output_activation("multiclass")(net(x))                         # softmax
>>> loss(net(x), y).shape
torch.Size([])

**Outputs are logits.** A built model ends in a bare Linear: 1 logit for a binary task, K for
multiclass (or multilabel), raw values for regression. The losses take these logits:
``bce`` is ``binary_cross_entropy_with_logits`` — exactly the notes' sigmoid + binary
cross-entropy, −[y·log σ(z) + (1−y)·log(1−σ(z))] — and ``ce`` is ``cross_entropy`` on logits —
exactly softmax + categorical cross-entropy, −Σ y_k·log softmax(z)_k — both in the fused form
that cannot overflow. For probabilities (``predict_proba``) apply
``output_activation(task)``: sigmoid, softmax or identity.

Contents: :func:`build_model` / :func:`normalize_spec` (``spec``), :class:`MLP`, :class:`CNN`;
:func:`initialize` (``init``); :func:`make_activation` (``activations``); :func:`get_loss`,
:func:`check_targets` (``losses``); :func:`l1_penalty`, :func:`l2_penalty`,
:func:`elastic_net`, :func:`penalized_parameters` (``penalties``); :func:`task_defaults`,
:func:`output_activation`, :func:`n_outputs` (``tasks``); :func:`available` lists every choice.
"""

from __future__ import annotations

import copy
from typing import Any

from optimlab.models.activations import (
    ACTIVATIONS,
    available_activations,
    make_activation,
    parse_activation,
)
from optimlab.models.cnn import CNN
from optimlab.models.init import INITS, available_inits, initialize, parse_init
from optimlab.models.losses import LOSSES, Loss, available_losses, check_targets, get_loss
from optimlab.models.mlp import MLP, NORMS
from optimlab.models.penalties import (
    elastic_net,
    l1_penalty,
    l2_penalty,
    penalized_parameters,
)
from optimlab.models.spec import MODEL_DEFAULTS, build_model, normalize_spec
from optimlab.models.tasks import TASKS, check_task, n_outputs, output_activation, task_defaults


def available() -> dict[str, Any]:
    """Every choice a spec may name: model types with their fields and defaults, activations,
    initializers, losses (with the tasks they fit and their parameters), norms, tasks (with
    their defaults), and the aliases of each name."""
    return {
        "models": copy.deepcopy(MODEL_DEFAULTS),
        "activations": available_activations(),
        "inits": available_inits(),
        "losses": available_losses(),
        "norms": ["none", *NORMS],
        "tasks": {t: task_defaults(t) for t in TASKS},
        "aliases": {
            "activations": ACTIVATIONS.aliases(),
            "inits": INITS.aliases(),
            "losses": LOSSES.aliases(),
        },
    }


__all__ = [
    "CNN",
    "MLP",
    "Loss",
    "available",
    "available_activations",
    "available_inits",
    "available_losses",
    "build_model",
    "check_targets",
    "check_task",
    "elastic_net",
    "get_loss",
    "initialize",
    "l1_penalty",
    "l2_penalty",
    "make_activation",
    "n_outputs",
    "normalize_spec",
    "output_activation",
    "parse_activation",
    "parse_init",
    "penalized_parameters",
    "task_defaults",
]
