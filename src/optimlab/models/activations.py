"""Activation functions by name, as ``torch.nn`` modules.

==============  =========================================  ==========================
name            formula                                    parameter (``name:value``)
==============  =========================================  ==========================
identity        f(x) = x                                   —
sigmoid         σ(x) = 1 / (1 + e^(−x))                    —
tanh            (e^x − e^(−x)) / (e^x + e^(−x))            —
relu            max(0, x)                                  —
leaky_relu      x if x > 0 else α·x                        alpha (0.01)
elu             x if x > 0 else α·(e^x − 1)                alpha (1.0)
gelu            x·Φ(x)   (Φ: standard normal CDF)          approximate ('none'|'tanh')
silu / swish    x·σ(x)                                     —
softmax         e^(x_i) / Σ_j e^(x_j)   over features      —
==============  =========================================  ==========================

``softmax`` normalizes over dimension 1 (the features of an MLP layer, the channels of a
convolution). Hidden-layer activations are these modules; the *output* layer of a model built
by :func:`optimlab.models.build_model` has no activation (it returns logits, see
:func:`optimlab.models.output_activation`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from optimlab.models._registry import Entry, Param, Registry

ACTIVATIONS = Registry(
    "activation",
    [
        Entry("identity", aliases=("linear", "none")),
        Entry("sigmoid", aliases=("logistic",)),
        Entry("tanh"),
        Entry("relu"),
        Entry("leaky_relu", {"alpha": Param(0.01)}, primary="alpha", aliases=("leakyrelu",)),
        Entry("elu", {"alpha": Param(1.0, low=0.0, low_open=True)}, primary="alpha"),
        Entry("gelu", {"approximate": Param("none", choices=("none", "tanh"))}),
        Entry("silu", aliases=("swish",)),
        Entry("softmax"),
    ],
)

#: Activations of the ReLU family: He (Kaiming) initialization is derived for them.
RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "gelu", "silu"})


def parse_activation(spec: Any, path: str = "activation") -> tuple[str, dict[str, Any]]:
    """Validate an activation spec → ``(canonical name, parameters)``.

    >>> parse_activation("leaky_relu:0.1")
    ('leaky_relu', {'alpha': 0.1})
    """
    return ACTIVATIONS.parse(spec, path)


def make_activation(spec: Any, path: str = "activation") -> nn.Module:
    """The ``torch.nn`` module for an activation spec (see the module table)."""
    name, p = parse_activation(spec, path)
    return _module(name, p)


def _module(name: str, p: dict[str, Any]) -> nn.Module:
    if name == "identity":
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=p["alpha"])
    if name == "elu":
        return nn.ELU(alpha=p["alpha"])
    if name == "gelu":
        return nn.GELU(approximate=p["approximate"])
    if name == "silu":
        return nn.SiLU()
    if name == "softmax":
        return nn.Softmax(dim=1)
    raise AssertionError(name)  # pragma: no cover - the registry lists exactly these


def available_activations() -> list[str]:
    """Canonical activation names (aliases: ``linear``/``none`` → identity, ``swish`` → silu,
    ``logistic`` → sigmoid)."""
    return ACTIVATIONS.names()
