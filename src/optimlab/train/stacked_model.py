"""S models of one architecture as one: their tensors stacked along a new leading dimension,
and a forward pass that runs all S, each on its own batch, at once.

Parameter ``name`` of the S models becomes one leaf tensor of shape (S, …) (``torch.stack``, as
``torch.func.stack_module_state`` does); so do the buffers (batch-norm statistics). The forward
pass takes inputs of shape (S, B, …) — or (B, …) when every model sees the same rows — and
returns (S, B, …). Two ways to compute it:

* ``dense``: an ``nn.Sequential`` of ``Flatten``, ``Linear`` and elementwise activations (the
  MLPs optimlab builds, without normalization or dropout) runs layer by layer, each Linear as one
  batched matrix product, ``out_s = x_s·W_sᵀ + b_s`` for all s in one ``baddbmm``;
* ``vmap``: any other model runs as ``torch.func.functional_call`` of the model with one
  seed's tensors, vectorized over the seeds by ``torch.func.vmap``.

Measured on a 2-core CPU (``benchmarks/seeds.py``): the dense path trains the digits MLP about
twice as fast as vmap, whose per-operation dispatch costs more than the small products
themselves; vmap stays the general path. Models that draw random numbers in their forward pass
(dropout) are refused by :func:`problem`: their masks, drawn for S models at once, would not be
the masks each model draws alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ELEMENTWISE", "StackedModel", "problem"]

#: parameter-free activations that act on each entry alone (any leading dimensions)
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.ReLU6, nn.Hardswish,
    nn.Hardsigmoid, nn.Tanhshrink, nn.LogSigmoid)
#: modules that draw random numbers in training mode
RANDOM: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.FeatureAlphaDropout, nn.RReLU)


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype, str]]:
    return [(n, tuple(t.shape), t.dtype, str(t.device))
            for n, t in [*model.named_parameters(), *model.named_buffers()]]


def problem(models: Sequence[nn.Module]) -> str | None:
    """Why ``models`` cannot be stacked into one (None when they can)."""
    first = models[0]
    if not list(first.parameters()):
        return "the model has no parameters"
    sig = _signature(first)
    for m in models[1:]:
        if type(m) is not type(first) or _signature(m) != sig:
            return "the seeds' models differ in their layers or shapes"
    if len(list(first.named_parameters(remove_duplicate=False))) != len(sig) - \
            len(list(first.named_buffers())):
        return "the model shares parameters between layers"
    if not all(p.requires_grad for p in first.parameters()):
        return "some of the model's parameters are frozen (requires_grad=False)"
    for module in first.modules():
        if isinstance(module, RANDOM) and (getattr(module, "p", 1.0) > 0):
            return (f"it draws random numbers in its forward pass ({type(module).__name__}): "
                    "masks drawn for all seeds at once are not those each seed draws alone")
    return None


Op = tuple[str, Any, Any]


def _dense_plan(model: nn.Module, names: list[str]) -> list[Op] | None:
    """The layers of a plain ``nn.Sequential`` MLP as operations on stacked tensors, or None
    when the model is anything else."""
    if not isinstance(model, nn.Sequential) or \
            type(model).forward is not nn.Sequential.forward:
        return None
    index = {n: i for i, n in enumerate(names)}
    ops: list[Op] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Flatten) and child.start_dim == 1 and child.end_dim == -1:
            ops.append(("flatten", None, None))
        elif type(child) is nn.Linear:
            ops.append(("linear", index[f"{name}.weight"], index.get(f"{name}.bias")))
        elif type(child) in ELEMENTWISE:
            ops.append(("act", child, None))
        else:
            return None
    return ops


class StackedModel:
    """S models of one architecture (see the module docstring): ``params`` and ``buffers`` are
    the stacked tensors, in the models' ``named_parameters`` / ``named_buffers`` order (the
    order their optimizers hold them in); ``model(x, shared)`` is the forward pass of all S.
    ``path`` says how it runs: "dense" or "vmap" (``dense=False`` forces vmap)."""

    def __init__(self, models: Sequence[nn.Module], *, dense: bool = True) -> None:
        first = models[0]
        self.size = len(models)
        self.names = [n for n, _ in first.named_parameters()]
        self.buffer_names = [n for n, _ in first.named_buffers()]
        with torch.no_grad():
            self.params = [torch.stack([p.detach() for p in ps]).requires_grad_()
                           for ps in zip(*(m.parameters() for m in models), strict=True)]
            self.buffers = [torch.stack([b.detach() for b in bs])
                            for bs in zip(*(m.buffers() for m in models), strict=True)]
        self.template = copy.deepcopy(first)
        self._plan = _dense_plan(first, self.names) if dense else None
        self._vmapped: dict[bool, Callable[..., Tensor]] = {}

    @property
    def path(self) -> str:
        return "dense" if self._plan is not None else "vmap"

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode (batch norm, …), as ``nn.Module.train``."""
        self.template.train(mode)

    def __call__(self, x: Tensor, shared: bool = False) -> Tensor:
        """Outputs (S, B, …) for inputs (S, B, …), or (B, …) seen by every model (``shared``).
        """
        if self._plan is not None:
            return self._dense(x, shared)
        fn = self._vmapped.get(shared)
        if fn is None:
            template = self.template

            def one(params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
                return torch.func.functional_call(template, (params, buffers), (x,))

            fn = self._vmapped[shared] = torch.func.vmap(one, in_dims=(0, 0, None if shared
                                                                      else 0))
        return fn(dict(zip(self.names, self.params, strict=True)),
                  dict(zip(self.buffer_names, self.buffers, strict=True)), x)

    def _dense(self, x: Tensor, shared: bool) -> Tensor:
        """h_s ← W_s·h_s + b_s for every s, one ``baddbmm`` per Linear, activations entry by
        entry. The rows run along the last dimension (features × rows per seed): then each
        product's gradient for W_s, ∂L/∂h_out · h_inᵀ, comes out in W's own layout and is kept
        as it is (rows first, it would be a transposed copy every step)."""
        assert self._plan is not None
        h, params, linear = x, self.params, False
        for kind, a, b in self._plan:
            if kind == "flatten":
                if not linear:
                    h = h.flatten(1 if shared else 2)
            elif kind == "act":
                h = a(h)
            else:
                if not linear:  # the inputs, rows first, seen as features × rows
                    h, linear = h.mT, True
                w = params[a]
                if shared:  # one product for all S: (S·out × in) · (in × rows), bias added in it
                    flat = w.reshape(-1, w.shape[-1])
                    h = (torch.addmm(params[b].reshape(-1, 1), flat, h) if b is not None
                         else flat @ h).view(*w.shape[:-1], -1)
                    shared = False
                elif b is not None:
                    h = torch.baddbmm(params[b].unsqueeze(2), w, h)
                else:
                    h = torch.bmm(w, h)
        if not linear:
            h = h.expand(self.size, *h.shape) if shared else h
            return h
        return h.mT

    @torch.no_grad()
    def store(self, models: Sequence[nn.Module], slots: Sequence[int]) -> None:
        """Copy the weights and buffers of stack positions ``slots`` into ``models``."""
        for model, slot in zip(models, slots, strict=True):
            mine = [*self.params, *self.buffers]
            torch._foreach_copy_([*model.parameters(), *model.buffers()],
                                 [t[slot] for t in mine])

    @torch.no_grad()
    def load(self, models: Sequence[nn.Module], slots: Sequence[int]) -> None:
        """Copy ``models``' weights and buffers into stack positions ``slots``."""
        for model, slot in zip(models, slots, strict=True):
            mine = [*self.params, *self.buffers]
            torch._foreach_copy_([t[slot] for t in mine],
                                 [*model.parameters(), *model.buffers()])

    def grads(self, slot: int) -> list[Tensor | None]:
        """Views of stack position ``slot``'s gradients (None where there is none)."""
        return [p.grad[slot] if p.grad is not None else None for p in self.params]
