"""Problem types and what goes with each — the notes' "matching activations to problem types":

===========  ==============  ====================  =====================  ===================
task         model outputs   output activation     loss (default; fits)   targets
===========  ==============  ====================  =====================  ===================
binary       1 logit         sigmoid               bce; hinge             0/1 labels
multiclass   K logits        softmax               ce; kl_div             labels 0..K−1, or
                                                                          one-hot/probabilities
multilabel   K logits        sigmoid (each)        bce; hinge             K columns of 0/1
regression   D values        identity              mse; mae, huber,       real values
                                                   cosine
===========  ==============  ====================  =====================  ===================

Models return **logits** (pre-activation scores), never probabilities: the losses apply the
output activation inside, in the numerically stable fused form (``binary_cross_entropy_with_
logits`` is exactly sigmoid + binary cross-entropy, ``cross_entropy`` on logits is exactly
softmax + categorical cross-entropy, without overflow in e^z or log 0). To turn outputs into
probabilities, apply :func:`output_activation` (``probs = output_activation(task)(model(x))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.models._registry import positive_int

TASKS: dict[str, dict[str, Any]] = {
    "binary": {
        "output_activation": "sigmoid",
        "loss": "bce",
        "losses": ["bce", "hinge"],
        "outputs": "1 logit",
        "targets": "labels 0/1, shape (N,) or (N, 1)",
    },
    "multiclass": {
        "output_activation": "softmax",
        "loss": "ce",
        "losses": ["ce", "kl_div"],
        "outputs": "K logits (K = number of classes)",
        "targets": "integer labels 0..K-1, shape (N,); or one-hot / probabilities, shape (N, K)",
    },
    "multilabel": {
        "output_activation": "sigmoid",
        "loss": "bce",
        "losses": ["bce", "hinge"],
        "outputs": "K logits, one per label",
        "targets": "0/1 per label, shape (N, K)",
    },
    "regression": {
        "output_activation": "identity",
        "loss": "mse",
        "losses": ["mse", "mae", "huber", "cosine"],
        "outputs": "D values (D = target dimension)",
        "targets": "real values, shape (N,) or (N, D)",
    },
}


def check_task(task: Any, path: str = "task") -> str:
    """``task`` if it is a known task, else ``ValueError`` listing them."""
    if task not in TASKS:
        raise ValueError(f"{path}={task!r} is unknown; choose one of {', '.join(TASKS)}")
    return task


def task_defaults(task: str) -> dict[str, Any]:
    """What goes with ``task``: ``output_activation``, ``loss`` (the default), ``losses`` (all
    that fit), and text for ``outputs`` and ``targets``.

    >>> task_defaults("binary")["loss"]
    'bce'
    """
    check_task(task)
    d = TASKS[task]
    return {"task": task, **{k: list(v) if isinstance(v, list) else v for k, v in d.items()}}


def identity(z: Tensor) -> Tensor:
    """f(z) = z."""
    return z


def sigmoid(z: Tensor) -> Tensor:
    """σ(z) = 1 / (1 + e^(−z)), elementwise."""
    return torch.sigmoid(z)


def softmax(z: Tensor) -> Tensor:
    """softmax(z)_i = e^(z_i) / Σ_j e^(z_j), over the last dimension (the classes)."""
    return torch.softmax(z, dim=-1)


_OUTPUT = {"identity": identity, "sigmoid": sigmoid, "softmax": softmax}


def output_activation(task: str) -> Callable[[Tensor], Tensor]:
    """The function from model outputs to predictions: sigmoid (binary, multilabel) and softmax
    (multiclass) give probabilities, identity (regression) the values themselves."""
    check_task(task)
    return _OUTPUT[TASKS[task]["output_activation"]]


def n_outputs(task: str, n_classes: int | None = None, target_shape: Sequence[int] = ()) -> int:
    """The width of the output layer for ``task`` (the table above): 1 logit for binary, K =
    ``n_classes`` logits for multiclass and multilabel, D values for regression — D the second
    dimension of targets shaped (N, D), else 1.

    >>> n_outputs("multiclass", 10), n_outputs("regression", target_shape=(100, 3))
    (10, 3)
    """
    check_task(task)
    if task == "binary":
        return 1
    if task == "regression":
        return int(target_shape[1]) if len(target_shape) == 2 else 1
    if not n_classes:
        raise ValueError(f"a {task} model needs the number of classes (n_classes) for its "
                         "output layer")
    return int(n_classes)


def check_outputs(task: str | None, n_outputs: Any, path: str = "n_outputs") -> int:
    """Validate the output width for ``task``: binary needs 1 logit, multiclass at least 2."""
    n = positive_int(path, n_outputs)
    if task is None:
        return n
    check_task(task)
    if task == "binary" and n != 1:
        raise ValueError(
            f"{path}={n} but a binary model gives 1 logit (sigmoid + bce); for {n} classes "
            "use task='multiclass'"
        )
    if task == "multiclass" and n < 2:
        raise ValueError(
            f"{path}={n} but a multiclass model gives one logit per class (at least 2); for "
            "two classes with one logit use task='binary'"
        )
    return n
