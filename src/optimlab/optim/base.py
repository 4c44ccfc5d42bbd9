"""Transforms and chains: the contract every optimizer in optimlab is built from.

A transform is configuration plus two operations:

* ``init(p)`` makes its state for one parameter (named tensors or floats), and
* ``update(u, ctx)`` turns the incoming :class:`~optimlab.optim.update.Update` (a list of
  per-tensor updates, lazily scaled) into the outgoing one, updating its state in place.

``chain(a, b, c)`` runs them in order. The final update is *added* to the parameters, so the
learning-rate transform multiplies by ``−lr``. Every piece works on whole lists of tensors of one
device and dtype at a time (``torch._foreach_*``), which keeps a chain a straight sequence of
list operations: one pass of elementwise math that a compiler can later fuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from optimlab.optim.update import Update


@dataclass
class Context:
    """What a transform may read besides the update: the parameters, the step and the group.

    ``steps[i]`` counts this step (1 on the first update of that tensor). ``states[i]`` is the
    optimizer's state dict for ``params[i]``; transforms reach their part through
    :meth:`Transform.state`. ``param_ids[i]`` is the tensor's position in the optimizer, which
    seeds per-tensor randomness reproducibly.
    """

    params: list[Tensor]
    steps: list[int]
    lr: float
    group: Mapping[str, Any]
    states: list[dict[str, Any]]
    param_ids: list[int] = field(default_factory=list)


class Transform:
    """One small piece of an optimizer. Subclasses set ``state_names`` and implement the two
    operations; the formula they compute belongs in their docstring."""

    state_names: ClassVar[tuple[str, ...]] = ()
    #: keys under which this piece's state is stored, set by :class:`Chain` (unique in a chain)
    keys: dict[str, str]

    def __init__(self) -> None:
        self.keys = {n: n for n in self.state_names}

    def init(self, p: Tensor) -> dict[str, Any]:
        """State for one parameter, under this piece's local names."""
        return {}

    def update(self, u: Update, ctx: Context) -> Update:
        raise NotImplementedError

    # helpers for subclasses ---------------------------------------------------------------
    def state(self, ctx: Context, name: str) -> list[Any]:
        """This piece's state ``name`` for every tensor of the context, as a list."""
        key = self.keys[name]
        return [st[key] for st in ctx.states]

    def set_state(self, ctx: Context, name: str, values: list[Any]) -> None:
        """Store per-tensor scalars (tensors are updated in place and need no setting)."""
        key = self.keys[name]
        for st, v in zip(ctx.states, values, strict=True):
            st[key] = v

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "keys")
        return f"{type(self).__name__}({fields})"


class Chain(Transform):
    """Transforms applied one after another; itself a transform, so chains nest."""

    def __init__(self, *pieces: Transform) -> None:
        flat: list[Transform] = []
        for piece in pieces:
            if not isinstance(piece, Transform):
                raise TypeError(
                    f"chain() takes transforms such as ewa(0.9) or scale_by_lr(); got {piece!r}"
                )
            flat.extend(piece.pieces if isinstance(piece, Chain) else [piece])
        self.pieces = flat
        self.keys = {}
        seen: set[str] = set()
        for piece in flat:
            for local in piece.state_names:
                key, k = local, 2
                while key in seen or key == "step":
                    key, k = f"{local}_{k}", k + 1
                piece.keys[local] = key
                seen.add(key)
        #: whether a piece reads ``Context.param_ids`` (they are computed only then)
        self.needs_param_ids = any(getattr(p, "needs_param_ids", False) for p in flat)
        #: whether the chain asks for steps with NaN/Inf gradients to be skipped
        self.skips_nonfinite = any(getattr(p, "skips_nonfinite", False) for p in flat)


    def init(self, p: Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for piece in self.pieces:
            local = piece.init(p)
            out.update({piece.keys[name]: value for name, value in local.items()})
        return out

    def update(self, u: Update, ctx: Context) -> Update:
        for piece in self.pieces:
            u = piece.update(u, ctx)
        return u

    def __repr__(self) -> str:
        return "chain(" + ", ".join(repr(p) for p in self.pieces) + ")"


def chain(*pieces: Transform) -> Chain:
    """Compose transforms: ``chain(clip_by_global_norm(1.0), ewa(0.9), scale_by_lr())``."""
    return Chain(*pieces)
