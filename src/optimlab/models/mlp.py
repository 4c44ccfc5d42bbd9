"""A multilayer perceptron: ``Flatten → [Linear → norm → activation → Dropout] × L → Linear``.

Each hidden block is Linear, then the normalization (if any; before the activation, as in the
BatchNorm paper), then the activation, then dropout (after the activation, as in the notes). The
output layer is a bare Linear: it returns logits / raw values (see ``optimlab.models.tasks``).
Inputs of any shape (N, ...) are flattened to (N, in_features) first.

Dropout is torch's *inverted* dropout: in training each unit is zeroed with probability p and
the survivors are scaled by 1/(1 − p), so the expected activation is unchanged and evaluation
(``model.eval()``) needs no rescaling.

Build one with :func:`optimlab.models.build_model`, which validates the spec; the classes take
already-validated values.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from optimlab.models.activations import _module
from optimlab.models.init import ACTIVATION_ATTR

ActSpec = tuple[str, dict[str, Any]]
NORMS = ("batch", "layer", "group")


def norm_layer(kind: str, width: int, groups: int, spatial: bool) -> nn.Module:
    """The normalization for ``width`` features (or channels when ``spatial``):
    batch → BatchNorm1d / BatchNorm2d; layer → LayerNorm (GroupNorm(1, C) for images: one
    mean and variance per sample over C×H×W); group → GroupNorm(groups, width)."""
    if kind == "batch":
        return nn.BatchNorm2d(width) if spatial else nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if spatial else nn.LayerNorm(width)
    if kind == "group":
        return nn.GroupNorm(groups, width)
    raise AssertionError(kind)  # pragma: no cover - validated by the spec


def dense_layers(
    in_features: int,
    hidden: Sequence[int],
    activations: Sequence[ActSpec],
    dropouts: Sequence[float],
    norm: str | None,
    groups: int,
) -> list[tuple[str, nn.Module]]:
    """Named hidden blocks ``linear{i}, norm{i}, act{i}, drop{i}`` (norm/drop only when asked).
    Each Linear is tagged with the activation that follows it, for the initializers."""
    layers: list[tuple[str, nn.Module]] = []
    width = in_features
    for i, (h, act, p) in enumerate(zip(hidden, activations, dropouts, strict=True)):
        linear = nn.Linear(width, h)
        setattr(linear, ACTIVATION_ATTR, act)
        layers.append((f"linear{i}", linear))
        if norm is not None:
            layers.append((f"norm{i}", norm_layer(norm, h, groups, spatial=False)))
        layers.append((f"act{i}", _module(*act)))
        if p > 0:
            layers.append((f"drop{i}", nn.Dropout(p)))
        width = h
    return layers


def output_layer(width: int, n_outputs: int) -> nn.Linear:
    """The bare output Linear (no activation: logits)."""
    out = nn.Linear(width, n_outputs)
    setattr(out, ACTIVATION_ATTR, ("identity", {}))
    return out


class MLP(nn.Sequential):
    """Fully connected network; ``spec`` holds the normalized spec it was built from."""

    def __init__(
        self,
        in_features: int,
        n_outputs: int,
        hidden: Sequence[int],
        activations: Sequence[ActSpec],
        dropouts: Sequence[float],
        *,
        input_dropout: float = 0.0,
        norm: str | None = None,
        groups: int = 8,
        spec: dict[str, Any] | None = None,
    ) -> None:
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        if input_dropout > 0:
            layers.append(("input_drop", nn.Dropout(input_dropout)))
        layers += dense_layers(in_features, hidden, activations, dropouts, norm, groups)
        width = hidden[-1] if hidden else in_features
        layers.append(("output", output_layer(width, n_outputs)))
        super().__init__(OrderedDict(layers))
        self.in_features = in_features
        self.n_outputs = n_outputs
        self.spec = dict(spec or {})

    def __getitem__(self, idx: int | slice) -> nn.Module:
        """A layer, or a plain ``nn.Sequential`` of a slice (``net[:-1]``: all but the output)."""
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)
