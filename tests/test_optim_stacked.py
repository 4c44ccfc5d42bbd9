"""One optimizer over S stacked copies of a model's tensors steps each copy as its own optimizer
would (the seeds trained together, ``optimlab.optim.stacked``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optimlab.optim import available, create
from optimlab.optim.stacked import (
    PerSeedMask,
    problem,
    seed_state_dict,
    stack_states,
    stacked_like,
)


@pytest.mark.parametrize("name", sorted(available()))
def test_a_stacked_optimizer_steps_each_seed_as_its_own(name) -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (5,)]
    seeds = [[torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_()
              for s in shapes] for _ in range(3)]
    kw: dict[str, Any] = {"lr": 0.05}
    if "weight_decay" in available()[name]["defaults"]:
        kw["weight_decay"] = 0.3  # decays the (5, 3) weight only: the mask is read per seed
    own = [create(name, ps, **kw) for ps in seeds]
    stacked = [torch.stack([ps[j].detach() for ps in seeds]).requires_grad_()
               for j in range(len(shapes))]
    assert problem(own[0]) is None
    together = stacked_like(own[0], stacked)
    assert isinstance(together.param_groups[0].get("decay_mask", PerSeedMask("auto")),
                      PerSeedMask)
    for step in range(6):
        grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
                 for _ in seeds]
        for opt, ps, gs in zip(own, seeds, grads, strict=True):
            for p, g in zip(ps, gs, strict=True):
                p.grad = g
            opt.step()
        for j, p in enumerate(stacked):
            p.grad = torch.stack([gs[j] for gs in grads])
        together.step()
        if step == 2:  # one seed's share becomes its own optimizer's state, and back
            again = [create(name, ps, **kw) for ps in seeds]
            for s, opt in enumerate(again):
                opt.load_state_dict(seed_state_dict(together, s, opt))
            together = stacked_like(own[0], stacked)
            stack_states(again, together)
    for s, ps in enumerate(seeds):
        for j, p in enumerate(ps):
            assert torch.allclose(stacked[j][s], p, rtol=1e-12, atol=1e-12), (name, s, j)


def test_what_cannot_step_stacked_tensors_says_why() -> None:
    from optimlab.optim import from_chain
    from optimlab.optim import transforms as T

    w, b = torch.zeros(3, 2, requires_grad=True), torch.zeros(3, requires_grad=True)
    assert "SGD" in problem(torch.optim.SGD([w], lr=0.1))
    assert "custom chain" in problem(from_chain([w], T.chain(T.clip_by_global_norm(1.0),
                                                             T.scale_by_lr())))
    groups = create("adam", [{"params": [w]}, {"params": [b], "lr": 0.1}])
    assert "2 parameter groups" in problem(groups)
    assert problem(create("lion", [w, b])) is None
