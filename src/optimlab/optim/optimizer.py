"""The adapter that makes a chain of transforms a ``torch.optim.Optimizer``.

It provides what PyTorch code relies on: ``param_groups`` with per-group hyperparameters,
``zero_grad``, ``step(closure)``, ``state_dict``/``load_state_dict`` and ``lr`` that
``torch.optim.lr_scheduler`` schedulers can drive. Each step it builds the group's chain from the
group's current hyperparameters (cheap: a handful of small objects, cached while they are
unchanged), splits the group's tensors by device and dtype, and runs the chain on each list —
as one compiled pass per tensor where ``fused`` says so (:mod:`optimlab.optim.fused`), else
eagerly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim import optimizer as torch_optimizer

from optimlab._checks import check_number
from optimlab.optim import fused as fusion
from optimlab.optim.base import Chain, Context, Transform
from optimlab.optim.update import Update

Builder = Callable[[Mapping[str, Any]], Transform]


def undecorated(name: str) -> Callable[..., Any]:
    """``torch.optim.Optimizer.<name>`` without its ``torch._disable_dynamo`` wrapper.

    torch wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` so
    that dynamo never traces them; the wrapper's first call imports ``torch._dynamo`` (about a
    second at start-up), which building an optimizer or a plain training loop does not need.
    Inside a graph being compiled, the wrapped method is used, as torch intends.
    """
    wrapped = getattr(Optimizer, name)
    raw = getattr(wrapped, "__wrapped__", wrapped)

    def call(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return wrapped(self, *args, **kwargs)
        return raw(self, *args, **kwargs)

    return call


_add_param_group = undecorated("add_param_group")
_zero_grad = undecorated("zero_grad")
_state_dict = undecorated("state_dict")
_load_state_dict = undecorated("load_state_dict")


class ChainOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` that runs a chain of transforms on each parameter group.

    ``transform`` is either a fixed chain (the same pieces for every group; pieces such as
    ``scale_by_lr()`` still read the group's ``lr``) or a *builder*: a function from a group's
    hyperparameters to a chain, which gives every group its own values. ``check`` validates a
    group's hyperparameters when the group is added. ``fused``: None (default) compiles the
    step where it pays, True wherever it can, False never (:mod:`optimlab.optim.fused`).
    """

    def __init__(self, params: Iterable[Any], transform: Transform | Builder,
                 defaults: Mapping[str, Any] | None = None, *, name: str = "custom",
                 check: Callable[[Mapping[str, Any]], None] | None = None,
                 fused: bool | None = None) -> None:
        if isinstance(transform, Transform):
            fixed = transform if isinstance(transform, Chain) else Chain(transform)
            self._builder: Builder = lambda group: fixed
        elif callable(transform):
            self._builder = transform
        else:
            raise TypeError(f"transform must be a chain of transforms or a function of a "
                            f"parameter group returning one; got {transform!r}")
        self._check = check
        if fused not in (None, True, False):
            raise ValueError(f"fused={fused!r} is not allowed; choose None (where it pays), "
                             f"True or False")
        #: None: a compiled step where it pays; True: wherever it can; False: the eager chain
        self.fused = fused
        self._cache: dict[int, tuple[Any, Chain]] = {}
        self.name = name
        #: steps skipped because a gradient was NaN/Inf (with ``skip_nonfinite()`` in the chain)
        self.skipped_steps = 0
        #: how many models' tensors each parameter stacks (seeds trained together,
        #: :mod:`optimlab.optim.stacked`): ``fused=None`` then chooses by one model's sizes, so
        #: each model steps as it would alone, however many are stacked
        self.copies = 1
        defaults = dict(defaults or {})
        defaults.setdefault("lr", 1e-3)
        super().__init__(params, defaults)

    # -- groups ------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _add_param_group(self, param_group)
        group = self.param_groups[-1]
        check_number("lr", group["lr"], low=0.0)
        if self._check is not None:
            self._check(group)
        self._chain_for(group)  # builds (and so validates) the chain now, not at the first step
        for p in group["params"]:
            if p.is_complex():
                raise ValueError("complex parameters are not supported; use torch.view_as_real")

    def _chain_for(self, group: Mapping[str, Any]) -> Chain:
        """The group's chain, rebuilt only when a hyperparameter other than lr has changed
        (a scheduler cycling momentum or betas, say)."""
        cached = self._cache.get(id(group))
        if cached is not None:
            keys, values, chain = cached
            try:
                if len(keys) == len(group) - 2 and all(
                        group[k] == v for k, v in zip(keys, values, strict=True)):
                    return chain
            except (KeyError, RuntimeError):  # a key removed, or a tensor-valued entry
                pass
        built = self._builder(group)
        chain = built if isinstance(built, Chain) else Chain(built)
        keys = [k for k in group if k not in ("params", "lr")]
        self._cache[id(group)] = (keys, [group[k] for k in keys], chain)
        return chain

    def chain(self, group: int = 0) -> Chain:
        """The chain that steps parameter group ``group``, as its hyperparameters build it now."""
        return self._chain_for(self.param_groups[group])

    # -- the step ---------------------------------------------------------------------------
    def _grads_finite(self) -> bool:
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return True
        by_device: dict[torch.device, list[Tensor]] = {}
        for g in grads:
            by_device.setdefault(g.device, []).append(g)
        return all(bool(torch.stack(torch._foreach_norm(gs)).isfinite().all())
                   for gs in by_device.values())

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Apply one update to every parameter that has a gradient; return ``closure()``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        chains = [self._chain_for(group) for group in self.param_groups]
        if any(c.skips_nonfinite for c in chains) and not self._grads_finite():
            self.skipped_steps += 1
            return loss
        ids: dict[int, int] = {}
        if any(c.needs_param_ids for c in chains):
            every = (p for g in self.param_groups for p in g["params"])
            ids = {id(p): i for i, p in enumerate(every)}
        for group, chain in zip(self.param_groups, chains, strict=True):
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not with_grad:
                continue
            device, dtype = with_grad[0].device, with_grad[0].dtype
            if all(p.device == device and p.dtype is dtype for p in with_grad):
                buckets = [with_grad]  # the usual case: one device, one dtype
            else:
                by_kind: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
                for p in with_grad:
                    by_kind.setdefault((p.device, p.dtype), []).append(p)
                buckets = list(by_kind.values())
            for params in buckets:
                self._step_bucket(group, chain, params, ids)
        return loss

    #: ``step`` as written above: torch replaces the class's ``step`` with a wrapper at the
    #: first instance (see :meth:`step_function`)
    _unwrapped_step = step

    def step_function(self) -> Callable[[], Any]:
        """``step`` for a loop that calls it once per update: the update itself when nothing
        needs torch's wrapper around it, else ``self.step``.

        torch wraps every optimizer's ``step`` in a profiler range and step-hook dispatch, about
        10 µs a call — a tenth of a small model's whole training step. With no step hook
        registered (on this optimizer or globally), no subclass ``step`` and ``step`` not
        patched on this instance (a torch LR scheduler counts calls that way), the function
        returned makes the same update without it.
        """
        from_class = next(c for c in type(self).__mro__ if "step" in vars(c))
        hooks = (getattr(self, "_optimizer_step_pre_hooks", None),
                 getattr(self, "_optimizer_step_post_hooks", None),
                 getattr(torch_optimizer, "_global_optimizer_pre_hooks", None),
                 getattr(torch_optimizer, "_global_optimizer_post_hooks", None))
        if from_class is not ChainOptimizer or "step" in vars(self) or \
                any(h is None or len(h) for h in hooks):
            return self.step
        return functools.partial(ChainOptimizer._unwrapped_step, self)

    def _step_bucket(self, group: Mapping[str, Any], chain: Chain, params: list[Tensor],
                     ids: dict[int, int]) -> None:
        states = []
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state.update(chain.init(p))
                state["step"] = 0
            states.append(state)
        steps = [st["step"] + 1 for st in states]
        grads = [p.grad for p in params]
        if any(g.is_sparse for g in grads):  # type: ignore[union-attr]
            raise ValueError("sparse gradients are not supported; use a dense embedding")
        ctx = Context(params=params, steps=steps, lr=float(group["lr"]), group=group,
                      states=states,
                      param_ids=[ids.get(id(p), -1) for p in params] if ids else [])
        if self.fused is False or not fusion.step(chain, ctx, grads,  # type: ignore[arg-type]
                                                  self.fused, self.name, self.copies):
            update = chain.update(Update(grads), ctx)  # type: ignore[arg-type]
            update.apply(params)
        for st, t in zip(states, steps, strict=True):
            st["step"] = t

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grad(self, set_to_none)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = _state_dict(self)
        out["skipped_steps"] = self.skipped_steps
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.skipped_steps = int(state_dict.pop("skipped_steps", 0))
        _load_state_dict(self, state_dict)
        self._cache.clear()

    def __repr__(self) -> str:
        lines = [f"{self.name} ("]
        for i, group in enumerate(self.param_groups):
            hp = ", ".join(f"{k}={v!r}" for k, v in sorted(group.items()) if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {hp}")
        lines.append(")")
        return "\n".join(lines)


def from_chain(params: Iterable[Any], transform: Transform | Builder, *, lr: float = 1e-3,
               fused: bool | None = None, **hyperparameters: Any) -> ChainOptimizer:
    """An optimizer from your own chain (or from a function of a group returning a chain).

    >>> from optimlab.optim import transforms as T
    >>> opt = from_chain(model.parameters(),
    ...                  T.chain(T.clip_by_global_norm(1.0), T.ewa(0.9), T.scale_by_lr()),
    ...                  lr=0.1)
    """
    return ChainOptimizer(params, transform, {"lr": lr, **hyperparameters}, fused=fused)
