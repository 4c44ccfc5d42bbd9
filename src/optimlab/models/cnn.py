"""A small convolutional network for images shaped (C, H, W) — 1×8×8 digits, 1×28×28 MNIST,
3×32×32 CIFAR:

``[Conv2d(k, same padding) → norm → activation → pool 2×2 → Dropout2d] × B``
``→ (global average pool) → Flatten → [Linear → norm → activation → Dropout] × L → Linear``

A 2×2 pool halves H and W (floor); it is skipped once a side is below 2, so three blocks on
8×8 digits still work. Inputs may also arrive flattened, (N, C·H·W), or without the channel
axis, (N, H, W) when C = 1: they are reshaped to (N, C, H, W).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from optimlab.models.activations import _module
from optimlab.models.init import ACTIVATION_ATTR
from optimlab.models.mlp import ActSpec, dense_layers, norm_layer, output_layer

POOLS = ("max", "avg", "none")


class CNN(nn.Module):
    """``features`` (convolution blocks) then ``head`` (dense layers and the output Linear)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_outputs: int,
        channels: Sequence[int],
        activations: Sequence[ActSpec],
        *,
        kernel_size: int = 3,
        pool: str = "max",
        conv_dropout: float = 0.0,
        hidden: Sequence[int] = (),
        dropouts: Sequence[float] = (),
        norm: str | None = None,
        groups: int = 8,
        global_pool: bool = False,
        spec: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        self.in_shape = (c, h, w)
        self.n_outputs = n_outputs
        self.spec = dict(spec or {})
        feats: list[tuple[str, nn.Module]] = []
        for i, ch in enumerate(channels):
            conv = nn.Conv2d(c, ch, kernel_size, padding=kernel_size // 2)
            setattr(conv, ACTIVATION_ATTR, activations[i])
            feats.append((f"conv{i}", conv))
            # output side: H + 2·⌊k/2⌋ − k + 1 (= H for odd k)
            h = h + 2 * (kernel_size // 2) - kernel_size + 1
            w = w + 2 * (kernel_size // 2) - kernel_size + 1
            if norm is not None:
                feats.append((f"norm{i}", norm_layer(norm, ch, groups, spatial=True)))
            feats.append((f"act{i}", _module(*activations[i])))
            if pool != "none" and h >= 2 and w >= 2:
                feats.append((f"pool{i}", nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)))
                h, w = h // 2, w // 2
            if conv_dropout > 0:
                feats.append((f"drop{i}", nn.Dropout2d(conv_dropout)))
            c = ch
        if global_pool:
            feats.append(("global_pool", nn.AdaptiveAvgPool2d(1)))
            h = w = 1
        feats.append(("flatten", nn.Flatten()))
        self.features = nn.Sequential(OrderedDict(feats))
        width = c * h * w
        head = dense_layers(width, hidden, activations[len(channels) :], dropouts, norm, groups)
        head.append(("output", output_layer(hidden[-1] if hidden else width, n_outputs)))
        self.head = nn.Sequential(OrderedDict(head))

    def forward(self, x: Tensor) -> Tensor:
        c, h, w = self.in_shape
        if x.ndim == 2 or (x.ndim == 3 and c == 1):
            x = x.reshape(x.shape[0], c, h, w)
        return self.head(self.features(x))
