"""Weight penalties to add to the loss (the notes' L1 / L2 regularization), as tensors with
gradients:  ``loss = data_loss + l2_penalty(model, lam, m=batch_size)``.

==============  =============================================  ==============================
penalty         value                                          gradient per weight
==============  =============================================  ==============================
l1_penalty      λ·Σ|w|                                          λ·sign(w)  (constant pull)
l2_penalty      λ/(2m)·Σ_l ‖W_l‖²_F   (λ/2·Σ‖W‖² if m is None)  (λ/m)·w   (proportional)
elastic_net     λ·[ρ·Σ|w| + (1 − ρ)/(2m)·Σ‖W‖²]                 both, mixed by ρ = l1_ratio
==============  =============================================  ==============================

``l2_penalty`` is the course's coupled form J = (1/m)·Σ L + λ/(2m)·Σ‖W‖² (m: examples in the
batch); its gradient (λ/m)·w is what ``weight_decay = λ/m`` adds to the gradient in a coupled
optimizer (``optimlab.optim``'s ``decay_weights`` before the adaptive scaling). The other note
writes the L2 term as λ·Σw²: that is ``l2_penalty(model, 2·λ)``.

Which tensors: :func:`penalized_parameters` — the weights of Linear and Conv layers (every
parameter with two or more dimensions that is not part of a normalization layer). Biases and
the γ, β of BatchNorm / LayerNorm / GroupNorm are left out by default — a bias does not
overfit, and shrinking a norm's scale fights the normalization — which is the same set that
``optimlab.optim``'s ``decay_mask="auto"`` (tensors with ndim ≥ 2) decays for every model
:func:`~optimlab.models.build_model` makes. Pass ``include_bias`` / ``include_norm`` to add them.
Each penalty also takes an explicit iterable of tensors instead of a model.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from optimlab._checks import check_number

#: Normalization layers whose parameters are excluded by default.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
)
if hasattr(nn, "RMSNorm"):
    NORM_LAYERS = (*NORM_LAYERS, nn.RMSNorm)

Params = nn.Module | Iterable[Tensor]


def penalized_parameters(
    model: nn.Module, include_bias: bool = False, include_norm: bool = False
) -> list[Tensor]:
    """The tensors a penalty acts on: weights with ndim ≥ 2 outside normalization layers (the
    weights of Linear / Conv layers); plus biases if ``include_bias``, plus every parameter of
    normalization layers if ``include_norm``. Other 1-d parameters (e.g. PReLU's slope) are
    left out. Shared parameters appear once."""
    out: list[Tensor] = []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_LAYERS)
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            if is_norm:
                take = include_norm
            elif pname == "bias":
                take = include_bias
            else:
                take = p.dim() >= 2
            if take:
                seen.add(id(p))
                out.append(p)
    return out


def _tensors(params: Params, include_bias: bool, include_norm: bool) -> list[Tensor]:
    if isinstance(params, nn.Module):
        return penalized_parameters(params, include_bias, include_norm)
    return list(params)


def _zero(ts: list[Tensor]) -> Tensor:
    return torch.zeros((), device=ts[0].device if ts else None)


def _sum_abs(ts: list[Tensor]) -> Tensor:
    return torch.stack([p.abs().sum() for p in ts]).sum() if ts else _zero(ts)


def _sum_sq(ts: list[Tensor]) -> Tensor:
    return torch.stack([p.square().sum() for p in ts]).sum() if ts else _zero(ts)


def _check_m(m: int | None) -> None:
    if m is not None:
        check_number("m", m, low=1, integer=True)


def l1_penalty(
    model: Params, lam: float, *, include_bias: bool = False, include_norm: bool = False
) -> Tensor:
    """λ·Σ|w| over the penalized tensors (the notes' Lasso term; drives weights to exactly 0)."""
    check_number("lam", lam, low=0)
    return lam * _sum_abs(_tensors(model, include_bias, include_norm))


def l2_penalty(
    model: Params,
    lam: float,
    m: int | None = None,
    *,
    include_bias: bool = False,
    include_norm: bool = False,
) -> Tensor:
    """λ/(2m)·Σ_l ‖W_l‖²_F, or λ/2·Σ‖W‖² when ``m`` (the batch size) is None — the notes'
    coupled L2 (Ridge) term; its gradient is (λ/m)·w."""
    check_number("lam", lam, low=0)
    _check_m(m)
    scale = lam / (2 * (m if m is not None else 1))
    return scale * _sum_sq(_tensors(model, include_bias, include_norm))


def elastic_net(
    model: Params,
    lam: float,
    l1_ratio: float,
    m: int | None = None,
    *,
    include_bias: bool = False,
    include_norm: bool = False,
) -> Tensor:
    """λ·[ρ·Σ|w| + (1 − ρ)/(2m)·Σ‖W‖²] with ρ = ``l1_ratio`` in [0, 1]:
    ``l1_penalty(model, ρλ) + l2_penalty(model, (1 − ρ)λ, m)`` (ρ = 1: Lasso, ρ = 0: Ridge)."""
    check_number("lam", lam, low=0)
    check_number("l1_ratio", l1_ratio, low=0, high=1)
    _check_m(m)
    ts = _tensors(model, include_bias, include_norm)
    scale = (1 - l1_ratio) * lam / (2 * (m if m is not None else 1))
    return l1_ratio * lam * _sum_abs(ts) + scale * _sum_sq(ts)
