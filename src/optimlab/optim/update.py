"""The update that flows through a chain of transforms, kept lazy.

An :class:`Update` stands for the per-tensor value

    u = coef · p + scale · num / den          (den optional)

where ``scale`` and ``coef`` are Python floats, one per tensor. Scalar factors (bias correction,
``−lr``, a clipping factor, decoupled weight decay) and one division (an RMS denominator) are
folded into these fields instead of being written out, so a chain such as Adam's performs the
same memory passes as torch's hand-fused foreach code: the division and the scalars land in the
single ``addcdiv_`` that writes the parameters. A transform that needs the actual values calls
:meth:`Update.value`, which writes them out once.

All operations are ``torch._foreach_*`` calls over lists of tensors that share a device and dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def runs(values: Sequence[float]) -> list[tuple[float, list[int] | None]]:
    """Group tensor positions by equal scalar; ``None`` as positions means "all of them".

    foreach kernels take one scalar for ``add_(…, alpha=)``, so positions that share a scalar are
    sent together. In practice every tensor of a group shares one step count, so this is one run.
    """
    first = values[0]
    if all(v == first for v in values):
        return [(first, None)]
    out: dict[float, list[int]] = {}
    for i, v in enumerate(values):
        out.setdefault(v, []).append(i)
    return list(out.items())


def pick(tensors: list[Tensor], idx: list[int] | None) -> list[Tensor]:
    """The tensors at positions ``idx`` (all of them when ``idx`` is None)."""
    return tensors if idx is None else [tensors[i] for i in idx]


class Update:
    """Lazy per-tensor update ``u = coef·p + scale·num/den + extra_scale·extra``.

    (See the module docstring.) The optional second term lets Nesterov's ``g + μ·v`` reach the
    parameters as two in-place adds instead of a freshly allocated sum.

    ``owned[i]`` says whether ``num[i]`` is private scratch memory that may be changed in place
    (gradients and optimizer state are not). ``grad`` is the gradient as the first moment
    transform saw it: second-moment statistics (RMS, Adagrad, AMSGrad) are taken of it, so that
    ``chain(ewa(β₁), scale_by_rms(β₂))`` is Adam, with the moments of the same gradient.
    """

    __slots__ = ("coef", "den", "extra", "extra_scale", "grad", "num", "owned", "scale")

    def __init__(self, num: list[Tensor], owned: bool = False) -> None:
        n = len(num)
        self.num: list[Tensor] = list(num)
        self.den: list[Tensor] | None = None
        self.scale: list[float] = [1.0] * n
        #: None until a parameter term is added (the common case costs nothing)
        self.coef: list[float] | None = None
        self.owned: list[bool] = [owned] * n
        self.grad: list[Tensor] | None = None
        #: a second term added outside the division, or None
        self.extra: list[Tensor] | None = None
        self.extra_scale: list[float] = []

    def __len__(self) -> int:
        return len(self.num)

    @property
    def has_param_term(self) -> bool:
        """Whether a ``coef · p`` term is pending."""
        return self.coef is not None and any(self.coef)

    @property
    def is_plain(self) -> bool:
        """``u = scale · num``: no division, parameter term or extra term pending."""
        return self.den is None and self.extra is None and not self.has_param_term

    def add_term(self, tensors: list[Tensor], scales: Sequence[float],
                 params: list[Tensor]) -> Update:
        """``u ← u + scale · tensors``, kept apart until the final write (read-only tensors)."""
        if self.extra is not None:
            self.value(params)
        self.extra, self.extra_scale = list(tensors), list(scales)
        return self

    # -- cheap changes: no pass over memory -------------------------------------------------
    def mul(self, factor: float | Sequence[float]) -> Update:
        """``u ← factor · u`` (per tensor when ``factor`` is a sequence); folds into the scalars."""
        if isinstance(factor, int | float):
            self.scale = [s * factor for s in self.scale]
            if self.coef is not None:
                self.coef = [c * factor for c in self.coef]
            if self.extra is not None:
                self.extra_scale = [s * factor for s in self.extra_scale]
            return self
        self.scale = [s * f for s, f in zip(self.scale, factor, strict=True)]
        if self.coef is not None:
            self.coef = [c * f for c, f in zip(self.coef, factor, strict=True)]
        if self.extra is not None:
            self.extra_scale = [s * f for s, f in zip(self.extra_scale, factor, strict=True)]
        return self

    def add_param_term(self, coefs: Sequence[float]) -> Update:
        """``u ← u + coef · p``: decayed weights, folded into the final parameter write."""
        base = self.coef if self.coef is not None else [0.0] * len(self)
        self.coef = [c + a for c, a in zip(base, coefs, strict=True)]
        return self

    def divide(self, den: list[Tensor], params: list[Tensor]) -> Update:
        """``u ← u / den``; deferred to the final write unless a division is already pending."""
        if not self.is_plain:
            self.value(params)
        self.den = den
        return self

    # -- writing values out --------------------------------------------------------------------
    def value(self, params: list[Tensor]) -> list[Tensor]:
        """Write the update out (one pass per pending step) and return it; then ``u = num``.

        Tensors that are not ours (gradients, optimizer state) are never written: the first
        step that changes them allocates new ones, as torch's foreach optimizers do.
        """
        has_scale = any(s != 1.0 for s in self.scale)
        has_coef = self.has_param_term
        if self.den is None and not has_scale and not has_coef and self.extra is None:
            return self.num
        num, owned, n = self.num, self.owned, len(self.num)
        if self.den is not None:
            if all(owned):
                torch._foreach_div_(num, self.den)
            else:
                num, owned = list(torch._foreach_div(num, self.den)), [True] * n
            self.den = None
        if has_scale:
            if all(owned):
                torch._foreach_mul_(num, self.scale)
            else:
                num, owned = list(torch._foreach_mul(num, self.scale)), [True] * n
        for c, idx in runs(self.coef) if self.coef is not None else ():
            if not c:
                continue
            positions = range(n) if idx is None else idx
            if all(owned[i] for i in positions):
                torch._foreach_add_(pick(num, idx), pick(params, idx), alpha=c)
            else:
                fresh = torch._foreach_add(pick(num, idx), pick(params, idx), alpha=c)
                for i, t in zip(positions, fresh, strict=True):
                    num[i], owned[i] = t, True
        if self.extra is not None:
            for e, idx in runs(self.extra_scale):
                positions = range(n) if idx is None else idx
                if all(owned[i] for i in positions):
                    torch._foreach_add_(pick(num, idx), pick(self.extra, idx), alpha=e)
                else:
                    fresh = torch._foreach_add(pick(num, idx), pick(self.extra, idx), alpha=e)
                    for i, t in zip(positions, fresh, strict=True):
                        num[i], owned[i] = t, True
            self.extra, self.extra_scale = None, []
        self.num, self.owned = num, owned
        self.scale, self.coef = [1.0] * n, None
        return self.num

    def owned_value(self, params: list[Tensor]) -> list[Tensor]:
        """Like :meth:`value`, but the tensors returned may be changed in place."""
        num = self.value(params)
        if not all(self.owned):
            self.num = [t if o else t.clone() for t, o in zip(num, self.owned, strict=True)]
            self.owned = [True] * len(num)
        return self.num

    def gradient(self, params: list[Tensor]) -> list[Tensor]:
        """The gradient that moment statistics are taken of (fixed by the first one to ask)."""
        if self.grad is None:
            self.grad = self.value(params)
            self.owned = [False] * len(self)  # shared with ``grad`` from now on
        return self.grad

    def replace(self, num: list[Tensor], owned: bool = False) -> Update:
        """Make ``u = num`` (for example the new momentum buffer), keeping ``grad``."""
        n = len(num)
        self.num, self.den = list(num), None
        self.scale, self.coef, self.owned = [1.0] * n, None, [owned] * n
        self.extra, self.extra_scale = None, []
        return self

    # -- accumulating into optimizer state -----------------------------------------------------
    def accumulate_into(self, buf: list[Tensor], decay: float, weight: Sequence[float],
                        params: list[Tensor]) -> None:
        """``buf ← decay · buf + weight · u`` in at most two passes (one ``lerp_`` for an EWA)."""
        if self.has_param_term or self.extra is not None:
            self.value(params)
        ws = [w * s for w, s in zip(weight, self.scale, strict=True)]
        if self.den is not None:
            if decay != 1.0:
                torch._foreach_mul_(buf, decay)
            torch._foreach_addcdiv_(buf, self.num, self.den, ws)
            return
        groups = runs(ws)
        if len(groups) == 1 and groups[0][0] == 1.0 - decay:
            torch._foreach_lerp_(buf, self.num, groups[0][0])
            return
        if decay != 1.0:
            torch._foreach_mul_(buf, decay)
        for w, idx in groups:
            torch._foreach_add_(pick(buf, idx), pick(self.num, idx), alpha=w)

    # -- the final write ---------------------------------------------------------------------------
    def apply(self, params: list[Tensor]) -> None:
        """``p ← p + u``: one pass for the parameter term (if any), one for the rest."""
        for c, idx in runs(self.coef) if self.coef is not None else ():
            if c:
                torch._foreach_mul_(pick(params, idx), 1.0 + c)
        if self.den is not None:
            torch._foreach_addcdiv_(params, self.num, self.den, self.scale)
        else:
            for s, idx in runs(self.scale):
                if s:
                    torch._foreach_add_(pick(params, idx), pick(self.num, idx), alpha=s)
        if self.extra is not None:
            for e, idx in runs(self.extra_scale):
                if e:
                    torch._foreach_add_(pick(params, idx), pick(self.extra, idx), alpha=e)
