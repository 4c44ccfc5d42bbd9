"""Transforms and chains: the contract every optimizer in optimlab is built from.

A transform is configuration plus two operations:

* ``init(p)`` makes its state for one parameter (named tensors or floats), and
* ``update(u, ctx)`` turns the incoming :class:`~optimlab.optim.update.Update` (a list of
  per-tensor updates, lazily scaled) into the outgoing one, updating its state in place.

``chain(a, b, c)`` runs them in order. The final update is *added* to the parameters, so the
learning-rate transform multiplies by ``−lr``. Every piece works on whole lists of tensors of one
device and dtype at a time (``torch._foreach_*``), which keeps a chain a straight sequence of
list operations.

A piece may also say how a *fused* step runs it (:mod:`optimlab.optim.fused`): ``fused`` is its
formula again, written for one tensor at a time on a :class:`Lane`, with this step's numbers
(learning rate, β, bias corrections…) read from ``scalars`` rather than baked in, so that one
compiled kernel serves every value of the hyperparameters. The two forms are tested against
each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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


class Lane:
    """One tensor's values inside a fused step: the parameter ``p`` and the update ``u`` as it
    flows through the chain (tensor expressions, traced by the compiler)."""

    def __init__(self, p: Tensor, u: Tensor) -> None:
        self.p, self.u = p, u
        self.grad: Tensor | None = None

    def gradient(self) -> Tensor:
        """The gradient that moment statistics are taken of (fixed by the first one to ask),
        as :meth:`Update.gradient`."""
        if self.grad is None:
            self.grad = self.u
        return self.grad


class Slots:
    """This piece's numbers for the step: ``s[i]`` is a 0-d tensor read from the kernel's
    scalar input, so new values need no new kernel."""

    def __init__(self, values: Tensor, offset: int) -> None:
        self.values, self.offset = values, offset

    def __getitem__(self, i: int) -> Tensor:
        return self.values[self.offset + i]


#: ``"elementwise"``: ``fused`` runs the piece inside the compiled kernel; ``"scale"``: the
#: same, and its eager ``update`` only rescales (so it may precede a reduction);
#: ``"reduction"``: it needs the whole group first (kept eager, only at a chain's start);
#: ``None``: no fused form, the chain runs eagerly
Fusion = Literal["elementwise", "scale", "reduction"] | None


class Transform:
    """One small piece of an optimizer. Subclasses set ``state_names`` and implement the two
    operations; the formula they compute belongs in their docstring."""

    state_names: ClassVar[tuple[str, ...]] = ()
    fusion: ClassVar[Fusion] = None
    #: keys under which this piece's state is stored, set by :class:`Chain` (unique in a chain)
    keys: dict[str, str]

    def __init__(self) -> None:
        self.keys = {n: n for n in self.state_names}

    def init(self, p: Tensor) -> dict[str, Any]:
        """State for one parameter, under this piece's local names."""
        return {}

    def update(self, u: Update, ctx: Context) -> Update:
        raise NotImplementedError

    # the fused form (see the module docstring) ------------------------------------------------
    def structure(self) -> tuple[Any, ...]:
        """The discrete choices that change this piece's fused code (never its numbers)."""
        return ()

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        """This step's numbers for :meth:`fused`, one row per tensor of ``ctx``. Pieces with
        host-side state (Nadam's μ product) advance it here, as ``update`` would."""
        return [()] * len(ctx.params)

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        """The formula on one tensor: read ``lane.u``, set it, update ``state`` in place. A
        static method, so that nothing but ``structure`` and ``s`` can reach the kernel."""
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


class ScaleTransform(Transform):
    """A piece that multiplies each tensor's update by a number of the step and the group:
    update_i = f_i · update_i. It folds into the chain's final scalar (``fusion = "scale"``);
    subclasses give :meth:`factors`."""

    fusion: ClassVar[Fusion] = "scale"

    def factors(self, ctx: Context) -> list[float]:
        """f_i for each of ``ctx.params``."""
        raise NotImplementedError

    def update(self, u: Update, ctx: Context) -> Update:
        return u.mul(self.factors(ctx))

    def scalars(self, ctx: Context) -> list[Sequence[float]]:
        return [(f,) for f in self.factors(ctx)]

    @staticmethod
    def fused(structure: tuple[Any, ...], lane: Lane, s: Slots,
              state: dict[str, Tensor]) -> None:
        lane.u = lane.u * s[0]


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
        #: the torch fused kernel that computes exactly this chain ("adam", "adamw", "sgd",
        #: "adagrad") with its hyperparameters but lr, set by the named optimizers that build
        #: it; fused steps use it
        self.torch_equivalent: tuple[str, dict[str, Any]] | None = None


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
