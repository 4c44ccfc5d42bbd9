"""Weight initializers for every Linear / Conv layer of a model (``torch.nn.init`` underneath).

n_in (fan_in) and n_out (fan_out) are a layer's input and output units; for a convolution they
are channels × kernel area (C_in·k_h·k_w and C_out·k_h·k_w).

==================================  ==================================================  ========
name (aliases)                      distribution of each weight                         ``:x``
==================================  ==================================================  ========
zeros                               w = 0  (every unit the same: symmetry never breaks)  —
normal                              N(mean, std²)                       std = 0.01       std
uniform                             U(−a, a)                            a = 0.05         a
xavier_uniform (glorot_uniform)     U(−b, b),  b = gain·√(6 / (n_in + n_out))            gain
xavier_normal (glorot_normal)       N(0, σ²),  σ = gain·√(2 / (n_in + n_out))            gain
he_uniform (kaiming_uniform)        U(−b, b),  b = √(6 / ((1 + a²)·n_in))                a
he_normal (kaiming_normal)          N(0, σ²),  σ = √(2 / ((1 + a²)·n_in))                a
lecun_uniform                       U(−b, b),  b = √(3 / n_in)                           —
lecun_normal                        N(0, σ²),  σ = √(1 / n_in)                           —
orthogonal                          a (semi-)orthogonal matrix × gain                    gain
default                             torch's own ``reset_parameters()`` (weights and bias)
auto                                he_normal before a ReLU-family activation (relu,
                                    leaky_relu, elu, gelu, silu), xavier_uniform before
                                    sigmoid / tanh / identity / softmax and at the output
==================================  ==================================================  ========

**He and the notes.** The notes write He initialization as "N(0, √(2/n_in))": the second
argument there is the *standard deviation*. optimlab draws with standard deviation √(2/n_in),
i.e. **variance 2/n_in** — the He et al. (2015) value for ReLU, which keeps the variance of the
pre-activations constant from layer to layer since a ReLU zeroes half of its inputs.

**Gain for the activation.** He's ``a`` is the negative slope of the activation that follows
the layer: for a layer followed by ``leaky_relu:0.1`` a model from
:func:`~optimlab.models.build_model` uses a = 0.1, σ = √(2 / ((1 + 0.01)·n_in)); elsewhere
a = 0 (ReLU's √2 gain; also used for elu, gelu and silu, which have no closed-form gain).
Pass ``{"name": "he_normal", "a": 0.2}`` to set it, ``mode = "fan_out"`` to use n_out. Xavier
uses gain 1 as in Glorot & Bengio and the notes; pass ``"xavier_uniform:1.667"`` for another.
Layers learn which activation follows them from the attribute ``optimlab_activation`` that
``build_model`` sets; on a model built elsewhere the activation is unknown and taken as ReLU.

Biases are set to the constant ``bias_init`` (0 by default); ``bias_init=None`` leaves them as
the initializer left them (torch's default uniform). Normalization layers are not touched
(γ = 1, β = 0 is torch's default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from optimlab._checks import check_number
from optimlab.models._registry import Entry, Param, Registry
from optimlab.models.activations import RELU_FAMILY

_POS = {"low": 0.0, "low_open": True}
_HE = {"a": Param(None), "mode": Param("fan_in", choices=("fan_in", "fan_out"))}

INITS = Registry(
    "initializer",
    [
        Entry("auto"),
        Entry("default", aliases=("torch",)),
        Entry("zeros", aliases=("zero",)),
        Entry("normal", {"std": Param(0.01, **_POS), "mean": Param(0.0)}, primary="std"),
        Entry("uniform", {"a": Param(0.05, **_POS)}, primary="a"),
        Entry("xavier_uniform", {"gain": Param(1.0, **_POS)}, "gain", ("glorot_uniform",)),
        Entry("xavier_normal", {"gain": Param(1.0, **_POS)}, "gain", ("glorot_normal",)),
        Entry("he_uniform", dict(_HE), "a", ("kaiming_uniform",)),
        Entry("he_normal", dict(_HE), "a", ("kaiming_normal",)),
        Entry("lecun_uniform"),
        Entry("lecun_normal"),
        Entry("orthogonal", {"gain": Param(1.0, **_POS)}, "gain"),
    ],
)

#: Layer types :func:`initialize` acts on.
INIT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

#: Attribute on a layer naming the activation that follows it: ``(name, params)``.
ACTIVATION_ATTR = "optimlab_activation"


def available_inits() -> list[str]:
    """Canonical initializer names (aliases: glorot_* = xavier_*, kaiming_* = he_*)."""
    return INITS.names()


def parse_init(spec: Any, path: str = "init") -> tuple[str, dict[str, Any]]:
    """Validate an initializer spec → ``(canonical name, parameters)``."""
    return INITS.parse(spec, path)


@contextmanager
def seeded(seed: int | None, devices: list[int] | None = None) -> Iterator[None]:
    """Run the block on torch's RNG seeded with ``seed``, restoring the global state after
    (nothing happens when ``seed`` is None). ``devices``: CUDA indices to fork as well."""
    if seed is None:
        yield
        return
    check_number("seed", seed, low=0, integer=True)
    with torch.random.fork_rng(devices=devices or []):
        torch.manual_seed(int(seed))
        yield


def initialize(
    model: nn.Module,
    init: Any = "auto",
    bias_init: float | None = 0.0,
    seed: int | None = None,
    *,
    path: str = "init",
) -> nn.Module:
    """Initialize the weights of every Linear / Conv layer of ``model`` in place; returns it.

    ``init``: a name from the module table, ``"name:x"`` or ``{"name": ..., <param>: ...}``.
    ``bias_init``: constant for every bias (None: leave as the initializer set it).
    ``seed``: draw from a generator seeded with it, leaving torch's global RNG untouched, so one
    seed gives the same weights bit for bit.

    >>> net = initialize(torch.nn.Linear(1000, 500), "he_normal", seed=0)
    >>> round(net.weight.std().item(), 3)   # √(2/1000)
    0.045
    """
    name, params = parse_init(init, path)
    if bias_init is not None:
        check_number("bias_init", bias_init)
    layers = [m for m in model.modules() if isinstance(m, INIT_LAYERS)]
    for m in layers:
        if isinstance(m.weight, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"{path}: layer {type(m).__name__} is lazy and has no weights yet; run one "
                "forward pass before initializing"
            )
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    with seeded(seed, cuda):
        for m in layers:
            _init_layer(m, name, params, bias_init)
    return model


def _init_layer(m: nn.Module, name: str, p: dict[str, Any], bias_init: float | None) -> None:
    act = getattr(m, ACTIVATION_ATTR, None)
    if name == "auto":
        name, p = _auto(act)
    w = m.weight
    if name == "default":
        m.reset_parameters()
    elif name == "zeros":
        nn.init.zeros_(w)
    elif name == "normal":
        nn.init.normal_(w, mean=p["mean"], std=p["std"])
    elif name == "uniform":
        nn.init.uniform_(w, -p["a"], p["a"])
    elif name == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=p["gain"])
    elif name == "xavier_normal":
        nn.init.xavier_normal_(w, gain=p["gain"])
    elif name in ("he_uniform", "he_normal"):
        a = p["a"] if p["a"] is not None else _slope(act)
        fn = nn.init.kaiming_uniform_ if name == "he_uniform" else nn.init.kaiming_normal_
        fn(w, a=a, mode=p["mode"], nonlinearity="leaky_relu")
    elif name == "lecun_uniform":
        nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="linear")
    elif name == "lecun_normal":
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="linear")
    elif name == "orthogonal":
        nn.init.orthogonal_(w, gain=p["gain"])
    else:  # pragma: no cover - the registry lists exactly these
        raise AssertionError(name)
    if bias_init is not None and getattr(m, "bias", None) is not None:
        nn.init.constant_(m.bias, bias_init)


def _slope(act: tuple[str, dict[str, Any]] | None) -> float:
    """Negative slope of the activation after a layer: α for leaky_relu, else 0 (ReLU)."""
    if act is not None and act[0] == "leaky_relu":
        return float(act[1]["alpha"])
    return 0.0


def _auto(act: tuple[str, dict[str, Any]] | None) -> tuple[str, dict[str, Any]]:
    if act is None or act[0] in RELU_FAMILY:
        return "he_normal", {"a": None, "mode": "fan_in"}
    return "xavier_uniform", {"gain": 1.0}
