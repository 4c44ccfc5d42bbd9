"""Model specs (a Python dict or a TOML table) → ``torch.nn`` modules.

.. code-block:: toml

    [model]
    type = "mlp"                  # "mlp" (default), "cnn" or "linear"
    hidden = [128, 64]            # units per hidden layer ([] = a linear / logistic model)
    activation = "relu"           # one for all hidden layers, or a list (one per layer);
                                  # "leaky_relu:0.1" or {name = "leaky_relu", alpha = 0.1}
    dropout = 0.0                 # after each hidden activation; a number or a list
    input_dropout = 0.0           # on the inputs
    norm = "none"                 # "none" | "batch" | "layer" | "group"
    groups = 8                    # GroupNorm groups (must divide each layer's width)
    init = "auto"                 # see optimlab.models.init; "normal:0.01", {name = ..., ...}
    bias_init = 0.0               # a constant, or "default" to keep the initializer's bias

    [model]                       # a small CNN for (C, H, W) images
    type = "cnn"
    channels = [32, 64]           # one Conv2d block per entry
    kernel_size = 3
    pool = "max"                  # "max" | "avg" | "none"   (2×2 after each block)
    conv_dropout = 0.0            # Dropout2d after each block
    global_pool = false           # average over H×W before the head instead of flattening
    hidden = [128]                # dense head; activation / dropout / norm / init as above
                                  # (an activation list has len(channels) + len(hidden) entries)

A string (``"mlp"``, ``"cnn"``, ``"linear"``) means the defaults; a table without ``type`` is an
MLP. In Python, ``norm=None`` and ``bias_init=None`` work too. Every error names the field path,
the value and what is allowed: ``model.hidden[1]=-4: must be a positive integer``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from optimlab._checks import check_number
from optimlab.models._registry import int_list, per_layer, positive_int
from optimlab.models.activations import parse_activation
from optimlab.models.cnn import CNN, POOLS
from optimlab.models.init import initialize, parse_init, seeded
from optimlab.models.mlp import MLP, NORMS, ActSpec
from optimlab.models.tasks import check_outputs

_COMMON = {"init": "auto", "bias_init": 0.0}
_DENSE = {"activation": "relu", "dropout": 0.0, "norm": None, "groups": 8}

#: Model type → its fields and their defaults.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [128, 64], **_DENSE, "input_dropout": 0.0, **_COMMON},
    "cnn": {
        "channels": [32, 64],
        "kernel_size": 3,
        "pool": "max",
        "conv_dropout": 0.0,
        "global_pool": False,
        "hidden": [128],
        **_DENSE,
        **_COMMON,
    },
    "linear": {"input_dropout": 0.0, **_COMMON},
}


def _as_spec(name: str, params: Mapping[str, Any]) -> Any:
    """Canonical, TOML-friendly form of a parsed entry: a name, or a table when it has params."""
    kept = {k: v for k, v in params.items() if v is not None}
    return {"name": name, **kept} if kept else name


def _rate(path: str, value: Any) -> float:
    check_number(path, value, low=0, high=1, high_open=True)
    return float(value)


def _validate(spec: Any, path: str) -> tuple[dict[str, Any], list[ActSpec]]:
    if isinstance(spec, str):
        given: dict[str, Any] = {"type": spec}
    elif isinstance(spec, Mapping):
        given = dict(spec)
    else:
        raise ValueError(
            f"{path}={spec!r} must be a model type ('mlp', 'cnn', 'linear'), a table of fields "
            "or a torch.nn.Module"
        )
    kind = given.pop("type", "mlp")
    kind_key = kind.strip().lower() if isinstance(kind, str) else kind
    if kind_key not in MODEL_DEFAULTS:
        raise ValueError(
            f"{path}.type={kind!r} is unknown; choose one of {', '.join(MODEL_DEFAULTS)}"
        )
    defaults = MODEL_DEFAULTS[kind_key]
    for key in given:
        if key not in defaults:
            raise ValueError(
                f"{path}.{key} is not a field of a {kind_key!r} model; its fields: "
                f"type, {', '.join(defaults)}"
            )
    s = {**defaults, **given}
    out: dict[str, Any] = {"type": kind_key}

    channels = int_list(f"{path}.channels", s["channels"]) if "channels" in s else []
    hidden = int_list(f"{path}.hidden", s["hidden"]) if "hidden" in s else []
    n_layers = len(channels) + len(hidden)
    what = "hidden layers" if not channels else "layers (channels, then hidden)"

    acts: list[ActSpec] = []
    if "activation" in s:
        raw = s["activation"]
        listed = isinstance(raw, (list, tuple))
        for i, a in enumerate(per_layer(f"{path}.activation", raw, n_layers, what)):
            acts.append(parse_activation(a, f"{path}.activation[{i}]" if listed else
                                         f"{path}.activation"))
    if channels:
        out["channels"] = channels
        out["kernel_size"] = positive_int(f"{path}.kernel_size", s["kernel_size"])
        pool = s["pool"] if s["pool"] is not None else "none"
        if pool not in POOLS:
            raise ValueError(
                f"{path}.pool={s['pool']!r} is unknown; choose one of {', '.join(POOLS)}"
            )
        out["pool"] = pool
        out["conv_dropout"] = _rate(f"{path}.conv_dropout", s["conv_dropout"])
        if not isinstance(s["global_pool"], bool):
            raise ValueError(f"{path}.global_pool={s['global_pool']!r}: must be true or false")
        out["global_pool"] = s["global_pool"]
    elif kind_key == "cnn":
        out.update(channels=[], kernel_size=3, pool="none", conv_dropout=0.0, global_pool=False)
    if "hidden" in s:
        out["hidden"] = hidden
    if "activation" in s:
        out["activation"] = [_as_spec(*a) for a in acts]
    if "dropout" in s:
        raw = s["dropout"]
        listed = isinstance(raw, (list, tuple))
        out["dropout"] = [
            _rate(f"{path}.dropout[{i}]" if listed else f"{path}.dropout", p)
            for i, p in enumerate(per_layer(f"{path}.dropout", raw, len(hidden), "hidden layers"))
        ]
    if "input_dropout" in s:
        out["input_dropout"] = _rate(f"{path}.input_dropout", s["input_dropout"])
    if "norm" in s:
        norm = s["norm"]
        norm = None if norm is None or (isinstance(norm, str) and norm.lower() == "none") else norm
        if norm is not None and norm not in NORMS:
            raise ValueError(
                f"{path}.norm={s['norm']!r} is unknown; choose one of none, {', '.join(NORMS)}"
            )
        out["norm"] = norm
        out["groups"] = positive_int(f"{path}.groups", s["groups"])
        if norm == "group":
            named = [("channels", i, c) for i, c in enumerate(channels)]
            named += [("hidden", i, h) for i, h in enumerate(hidden)]
            for field, i, width in named:
                if width % out["groups"]:
                    raise ValueError(
                        f"{path}.groups={out['groups']} does not divide {path}.{field}[{i}]="
                        f"{width}; GroupNorm splits each layer's units into equal groups"
                    )
    out["init"] = _as_spec(*parse_init(s["init"], f"{path}.init"))
    bias = s["bias_init"]
    if bias is None or (isinstance(bias, str) and bias.lower() in ("default", "none")):
        out["bias_init"] = None
    else:
        check_number(f"{path}.bias_init", bias)
        out["bias_init"] = float(bias)
    return out, acts


def normalize_spec(spec: Any, path: str = "model") -> dict[str, Any]:
    """Validate ``spec`` and return it complete: every field present, names canonical,
    per-layer lists expanded (activation, dropout). ``ValueError`` names the bad field."""
    return _validate(spec, path)[0]


def _in_shape(in_features: Any, path: str = "in_features") -> tuple[int, ...]:
    if isinstance(in_features, (tuple, list)):
        if not in_features:
            raise ValueError(f"{path}={in_features!r}: give the feature count or shape")
        return tuple(positive_int(f"{path}[{i}]", v) for i, v in enumerate(in_features))
    return (positive_int(path, in_features),)


def build_model(
    spec: dict[str, Any] | str | nn.Module,
    in_features: int | tuple[int, ...],
    n_outputs: int,
    *,
    task: str | None = None,
    seed: int | None = None,
    path: str = "model",
) -> nn.Module:
    """Build the model a spec describes (see the module docstring); a ``torch.nn.Module`` is
    returned unchanged.

    ``in_features``: the number of input features, or the input shape — (C, H, W) for a CNN
    ((H, W) means C = 1); an MLP flattens any shape. ``n_outputs``: logits (1 for binary, K for
    multiclass) or regression targets; checked against ``task`` when given. ``seed``: the
    weights are drawn from torch's RNG seeded with it (the global RNG is left as it was), so one
    seed gives one model, bit for bit.

    >>> import torch
    >>> net = build_model({"type": "mlp", "hidden": [32], "activation": "tanh"}, 64, 10, seed=0)
    >>> net(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """
    if isinstance(spec, nn.Module):
        return spec
    n_out = check_outputs(task, n_outputs)
    s, acts = _validate(spec, path)
    shape = _in_shape(in_features)
    with seeded(seed):
        if s["type"] == "cnn":
            if len(shape) not in (2, 3):
                raise ValueError(
                    f"in_features={in_features!r}: a cnn needs the image shape (C, H, W), "
                    "e.g. (1, 28, 28) for MNIST or (1, 8, 8) for digits"
                )
            c, h, w = shape if len(shape) == 3 else (1, *shape)
            model: nn.Module = CNN(
                (c, h, w),
                n_out,
                s["channels"],
                acts,
                kernel_size=s["kernel_size"],
                pool=s["pool"],
                conv_dropout=s["conv_dropout"],
                hidden=s["hidden"],
                dropouts=s["dropout"],
                norm=s["norm"],
                groups=s["groups"],
                global_pool=s["global_pool"],
                spec=s,
            )
        else:
            model = MLP(
                math.prod(shape),
                n_out,
                s.get("hidden", []),
                acts,
                s.get("dropout", []),
                input_dropout=s["input_dropout"],
                norm=s.get("norm"),
                groups=s.get("groups", 8),
                spec=s,
            )
        initialize(model, s["init"], s["bias_init"], path=f"{path}.init")
    return model
