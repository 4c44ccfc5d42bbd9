"""One optimizer for S models stacked along a new leading dimension (seeds trained together).

When S models of one architecture train together, each of their tensors becomes one stacked
tensor of shape (S, …) and one optimizer steps them all. A chain of *elementwise* pieces (every
named optimizer: SGD, momentum, Adam, RMSprop, Nadam, Lion, decay, …) computes on each entry
from that entry's gradient and state and the step's numbers alone, so stepping the stacked
tensor is stepping each model — provided the numbers of the step are the same for every model:
the learning rate (the seeds of one configuration share their schedule and step count) and the
step count (no seed skips a step). What is not elementwise is refused here (:func:`problem`) or
made per model:

* the decay mask: ``decay_mask="auto"`` decays tensors of two or more dimensions; a stacked
  bias has two, a seed's one — :class:`PerSeedMask` reads the mask on one seed's slice;
* global-norm clipping and the gradient norm the Trainer records are per seed (the Trainer side:
  ``optimlab.train.stacked``); a ``clip_by_global_norm`` or ``skip_nonfinite`` piece inside the
  chain, a piece with its own randomness (``add_noise``) and pieces without a declared fused form
  are refused, and the seeds then train one at a time.

The optimizer state is kept stacked too; :func:`stack_states` builds it from S per-model
optimizers (a resumed run) and :func:`seed_state_dict` gives one seed's share in the format of
that seed's own optimizer, so a checkpoint of a seed trained together is the checkpoint of the
same seed trained alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.optim.alias import available, create
from optimlab.optim.optimizer import ChainOptimizer
from optimlab.optim.regularize import Mask, masked

__all__ = ["PerSeedMask", "problem", "seed_state_dict", "stack_states", "stacked_like"]


class PerSeedMask:
    """A weight-decay mask for stacked tensors: ``mask`` read on one seed's slice ``p[0]``."""

    def __init__(self, mask: Mask) -> None:
        self.mask = mask

    def __call__(self, p: Tensor) -> bool:
        return masked(self.mask, p[0])

    def __repr__(self) -> str:
        return f"PerSeedMask({self.mask!r})"


def problem(opt: Any) -> str | None:
    """Why ``opt`` cannot step S stacked models with each model's own semantics (None: it can).
    """
    if not isinstance(opt, ChainOptimizer):
        return (f"the optimizer is a {type(opt).__name__}, not one of optimlab's named "
                "optimizers")
    if opt.name not in available():
        return "the optimizer is a custom chain (from_chain), not a named optimizer"
    if len(opt.param_groups) != 1:
        return f"the optimizer has {len(opt.param_groups)} parameter groups (one is stacked)"
    for piece in opt.chain(0).pieces:
        if piece.fusion not in ("elementwise", "scale") or \
                getattr(piece, "skips_nonfinite", False) or \
                getattr(piece, "needs_param_ids", False):
            return (f"its chain holds {type(piece).__name__}, which is not computed entry by "
                    "entry")
    return None


def stacked_like(opt: ChainOptimizer, params: Sequence[Tensor]) -> ChainOptimizer:
    """The optimizer ``opt`` is (same name and hyperparameters, as they stand now) over the
    stacked tensors ``params``, with the decay mask read per seed and fused steps chosen by one
    seed's sizes (so a seed steps the same way however many are stacked). Check
    :func:`problem` first."""
    group = opt.param_groups[0]
    names = set(available()[opt.name]["defaults"]) | {"lr"}
    hyper = {k: v for k, v in group.items() if k in names}
    if "decay_mask" in hyper:
        hyper["decay_mask"] = PerSeedMask(hyper["decay_mask"])
    out = create(opt.name, list(params), fused=opt.fused, **hyper)
    out.copies = len(params[0]) if params else 1  # fused or not as one seed alone
    return out


def _per_entry(value: Any, shape: torch.Size) -> bool:
    """Whether a state value holds one number per entry of a tensor of ``shape`` (moments,
    sums) rather than one for the whole tensor (the step count, Nadam's μ product)."""
    return isinstance(value, Tensor) and value.shape == shape


def stack_states(opts: Sequence[ChainOptimizer], stacked: ChainOptimizer) -> None:
    """Give ``stacked`` the state of the S optimizers ``opts`` (seed s at index s): tensors
    shaped like a parameter are stacked; step counts and other scalars must agree (the seeds
    are at the same step) and are kept once. Nothing to do when no optimizer has state yet."""
    mine = [p for g in stacked.param_groups for p in g["params"]]
    theirs = [[p for g in o.param_groups for p in g["params"]] for o in opts]
    for j, p in enumerate(mine):
        entries = [o.state.get(ps[j], {}) for o, ps in zip(opts, theirs, strict=True)]
        if not any(entries):
            continue
        if not all(e.keys() == entries[0].keys() for e in entries):
            raise ValueError("the seeds' optimizer states differ in kind (one has stepped, "
                             "another not); they cannot be stacked")
        state: dict[str, Any] = {}
        for key in entries[0]:
            values = [e[key] for e in entries]
            if _per_entry(values[0], p.shape[1:]):
                state[key] = torch.stack([v.to(p.device, p.dtype) for v in values])
                continue
            first = values[0]
            same = all(torch.equal(first, v) if isinstance(first, Tensor) else first == v
                       for v in values[1:])
            if not same:
                raise ValueError(f"the seeds' optimizer states disagree on {key!r} "
                                 f"({values[0]!r} and others); seeds trained together must be "
                                 "at the same step")
            state[key] = first.clone() if isinstance(first, Tensor) else first
        stacked.state[p] = state
    stacked.skipped_steps = opts[0].skipped_steps


def seed_state_dict(stacked: ChainOptimizer, slot: int, like: ChainOptimizer) -> dict[str, Any]:
    """Seed ``slot``'s share of ``stacked`` as the ``state_dict`` of its own optimizer ``like``
    (same parameters one seed at a time): per-entry tensors sliced (copies, not views of the
    stack), shared scalars as they are, the group's hyperparameters with the seed's own decay
    mask. ``like.load_state_dict`` takes it."""
    out = stacked.state_dict()
    params = [p for g in stacked.param_groups for p in g["params"]]
    out["state"] = {j: {k: (v[slot].clone() if _per_entry(v, params[j].shape) else
                            v.clone() if isinstance(v, Tensor) else v)
                        for k, v in entry.items()}
                    for j, entry in out["state"].items()}
    own = like.param_groups
    out["param_groups"] = [{**g, **({"decay_mask": own[i]["decay_mask"]}
                                     if "decay_mask" in g else {})}
                           for i, g in enumerate(out["param_groups"])]
    return out
