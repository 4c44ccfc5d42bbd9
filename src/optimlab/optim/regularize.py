"""Weight penalties inside the optimizer: weight decay (coupled or decoupled) and L1.

Both take a *mask* choosing the tensors they act on. ``"auto"`` (the default) skips tensors with
fewer than two dimensions — biases and the weights of normalization layers — which is what decay
is meant for (a bias does not overfit; shrinking a norm's scale fights the normalization).
``"all"`` acts on every tensor, as torch.optim does. A callable ``mask(p) -> bool`` decides per
tensor when a chain is built by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab._checks import check_choice, check_number
from optimlab.optim.base import Context, Lane, Slots, Transform
from optimlab.optim.update import Update

Mask = str | Callable[[Tensor], bool]
MASKS = ("auto", "all")


def check_mask(mask: Any) -> None:
    """A mask is "auto", "all" or a callable."""
    if not callable(mask):
        check_choice("decay_mask", mask, MASKS)


def masked(mask: Mask, p: Tensor) -> bool:
    """Whether ``mask`` selects tensor ``p``."""
    if mask == "all":
        return True
    if mask == "auto":
        return p.dim() >= 2
    return bool(mask(p))  # type: ignore[operator]


class DecayWeights(Transform):
    """Weight decay:  update = update + λ · w   (on the tensors the mask selects).

    Where it stands in a chain decides what it is. *Before* an adaptive denominator it is
    coupled L2 regularization, the gradient of λ/2·‖w‖² (torch's ``weight_decay`` in SGD, Adam,
    RMSprop, …). *After* it, it is decoupled weight decay (Loshchilov & Hutter): after
    ``scale_by_lr`` the step becomes w ← (1 − α·λ)·w − α·update, which is AdamW. It costs no
    extra pass when nothing reads the update in between: the term is folded into the final write.

    ``scale_by_lr=True`` adds −α·λ·w instead (α the group's learning rate), for a chain whose
    update is already a step (momentum with the learning rate inside the velocity).
    """

    def __init__(self, rate: float, mask: Mask = "auto", scale_by_lr: bool = False) -> None:
        check_number("weight_decay", rate, low=0.0)
        check_mask(mask)
        super().__init__()
        self.rate, self.mask, self.scale_by_lr = rate, mask, scale_by_lr

    def coefficients(self, ctx: Context) -> list[float]:
        """The per-tensor factor of w that this piece adds (0 where the mask says no)."""
        rate = -ctx.lr * self.rate if self.scale_by_lr else self.rate
        return [rate if masked(self.mask, p) else 0.0 for p in ctx.params]

    fusion = "elementwise"

    def update(self, u: Update, ctx: Context) -> Update:
        if not self.rate:
            return u
        return u.add_param_term(self.coefficients(ctx))

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(c,) for c in self.coefficients(ctx)]

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.u = lane.u + lane.p * s[0]


class L1Proximal(Transform):
    """L1 regularization as a proximal step, so that weights reach exactly zero.

        w⁺ = w + update                      (the step without the penalty)
        w_new = sign(w⁺) · max(|w⁺| − α·λ, 0)   (soft thresholding by α·λ)

    A subgradient step (adding λ·sign(w)) makes weights hop around zero forever; the proximal
    step lands on zero and stays there while |gradient| < λ. Place it after ``scale_by_lr``:
    α is that piece's learning rate (``lr``, or the group's lr when None).
    """

    def __init__(self, rate: float, mask: Mask = "auto", lr: float | None = None) -> None:
        check_number("l1", rate, low=0.0)
        check_mask(mask)
        if lr is not None:
            check_number("lr", lr, low=0.0)
        super().__init__()
        self.rate, self.mask, self.lr = rate, mask, lr

    fusion = "elementwise"

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        threshold = (ctx.lr if self.lr is None else self.lr) * self.rate
        return [(threshold, 1.0 if self.rate and masked(self.mask, p) else 0.0)
                for p in ctx.params]

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        target = lane.p + lane.u
        shrunk = target.sign() * (target.abs() - s[0]).clamp_min(0.0)
        lane.u = torch.where(s[1] > 0, shrunk - lane.p, lane.u)

    def update(self, u: Update, ctx: Context) -> Update:
        if not self.rate:
            return u
        threshold = (ctx.lr if self.lr is None else self.lr) * self.rate
        step = u.owned_value(ctx.params)
        for p, d in zip(ctx.params, step, strict=True):
            if not masked(self.mask, p):
                continue
            target = p + d
            shrunk = target.sign() * (target.abs() - threshold).clamp_min(0.0)
            torch.sub(shrunk, p, out=d)
        return u


def decay_weights(rate: float, mask: Mask = "auto", scale_by_lr: bool = False) -> DecayWeights:
    """Add ``rate · w`` to the update (coupled before a preconditioner, decoupled after).
    See :class:`DecayWeights`."""
    return DecayWeights(rate, mask, scale_by_lr)


def l1_proximal(rate: float, mask: Mask = "auto", lr: float | None = None) -> L1Proximal:
    """Soft-threshold the weights by ``lr · rate`` after the step. See :class:`L1Proximal`."""
    return L1Proximal(rate, mask, lr)
