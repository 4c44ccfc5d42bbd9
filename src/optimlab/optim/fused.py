"""Fused steps: a chain's whole update as one compiled pass over each tensor.

The eager chain (``Update`` and ``torch._foreach_*``) makes one pass over memory per operation:
Adam reads and writes its buffers several times and allocates temporaries. A fused step runs
the chain's formula once per element instead: each piece's :meth:`~Transform.fused` form is
traced on one tensor by ``torch.compile`` (Inductor), which emits a single loop that reads p, g
and the state and writes p and the state — no temporaries, no hand-written C++ or CUDA. One
kernel serves every tensor size (dynamic shapes) and every value of the hyperparameters: the
numbers of a step (−lr, β, bias corrections…) reach it as a small tensor of scalars, so a
schedule driving ``lr`` never recompiles. A chain is compiled once per process per structure,
dtype and device; Inductor keeps the generated code on disk (``TORCHINDUCTOR_CACHE_DIR``, by
default a ``torchinductor_<user>`` folder in the temporary directory), so a second process skips
code generation and the C++ build. The first compile of each kernel prints its cost, once.

Where a named optimizer's chain is exactly one of torch's algorithms with a fused kernel for the
device (Adam, AdamW, AMSGrad, SGD with heavy-ball momentum or Nesterov, Adagrad on CPU), the
step calls torch's kernel instead (``torch._fused_adam_`` …): one call per group, no compile.
Every other chain — RMSprop, Nadam, Adamax, Lion, the Keras and course forms, your own chains of
the built-in pieces — is compiled.

Which tensors take the kernel (``fused`` of the optimizer):

* ``False``, or the environment variable ``OPTIMLAB_FUSED=0``: none; the eager chain.
* ``True``: every tensor that can (float32/float64, contiguous, at least 2 elements, on CPU or
  CUDA), whatever its size.
* ``None`` (the default, "where it pays"): where the chain is torch's algorithm and torch has
  a kernel, every tensor — torch's kernel costs no compile and is one call where the eager
  chain makes several, so it is faster at every size (Adam on the lab's digits MLP: 86 → 47 µs
  a step), except for SGD without momentum, whose eager step is one ``_foreach_add_``: there,
  tensors of at least :data:`MIN_NUMEL` (65,536) elements. Where the step must be compiled:
  tensors of at least :data:`MIN_NUMEL` elements, and only when together they hold at least
  :data:`MIN_TOTAL` (4M) elements of the group. Measured on a 2-core CPU: below ~10⁴ elements
  a tensor is cheaper eagerly (a compiled call costs tens of microseconds on the host); a
  compiled RMSprop step saves about 1 ms per million parameters per step, against a first
  compile of ~20 s (~6 s in a later process, from the disk cache), so a group of 4M parameters
  earns it back within a few thousand steps. The lab's and the Trainer's small models (tensors
  of thousands of elements) never take a compiled step.

Tensors that do not take the kernel run the eager chain in the same step. A chain is fusable
when every piece has a fused form (``fusion`` set); pieces that need the whole group first
(``clip_by_global_norm``) are computed eagerly at the chain's start and the rest is fused. A
chain with ``add_noise`` or a piece of your own without a fused form runs eagerly. Where
compiling is impossible (no C++ compiler, an unsupported dtype or device), the step falls back to
the eager chain with one warning.
"""

from __future__ import annotations

import os
import sys
import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optimlab.optim.base import Chain, Context, Lane, Slots, Transform
from optimlab.optim.update import Update

#: with ``fused=None``: a tensor takes the fused step when it has at least this many elements …
MIN_NUMEL = 1 << 16
#: … and, where the step must be compiled, such tensors hold at least this many elements of the
#: group together (a compile costs seconds; see the module docstring)
MIN_TOTAL = 1 << 22
#: tensors per call of a kernel (calls cost tens of microseconds on the host; compiling more
#: slots costs more seconds once)
SLOTS = 8
_DUMMY = 1 << 16
DTYPES = (torch.float32, torch.float64)
DEVICES = ("cpu", "cuda")
#: the environment variable that turns fused steps off (``OPTIMLAB_FUSED=0``)
ENV = "OPTIMLAB_FUSED"


@dataclass(frozen=True)
class Plan:
    """How a chain runs fused: the pieces computed eagerly first (reductions, and the rescaling
    before them), the pieces inside the kernel, and the kernel's identity."""

    prefix: tuple[Transform, ...]
    body: tuple[Transform, ...]
    key: tuple[Any, ...]


_NOT_FUSABLE = Plan((), (), ("not fusable",))


def plan_of(chain: Chain) -> Plan | None:
    """The chain's :class:`Plan`, or None when some piece has no fused form (cached on it)."""
    cached = getattr(chain, "_fused_plan", None)
    if cached is None:
        cached = _make_plan(chain.pieces)
        chain._fused_plan = cached  # type: ignore[attr-defined]
    return None if cached is _NOT_FUSABLE else cached


def _make_plan(pieces: Sequence[Transform]) -> Plan:
    kinds = [p.fusion for p in pieces]
    cut = max((i + 1 for i, k in enumerate(kinds) if k == "reduction"), default=0)
    prefix, body = tuple(pieces[:cut]), tuple(pieces[cut:])
    if any(k not in ("scale", "reduction") for k in kinds[:cut]):
        return _NOT_FUSABLE  # a reduction after a piece that changes values: not supported
    if any(k not in ("elementwise", "scale") for k in kinds[cut:]):
        return _NOT_FUSABLE
    key = (bool(prefix), *(
        (type(p).__module__, type(p).__qualname__, p.structure(), tuple(p.keys.items()))
        for p in body))
    return Plan(prefix, body, key)


def kernel_name(chain: Chain) -> str:
    """Which kernel a fused step of ``chain`` uses: torch's own, a compiled one, or none."""
    if chain.torch_equivalent is not None:
        return f"torch {chain.torch_equivalent[0]}"
    return "compiled" if plan_of(chain) is not None else "eager only"


def enabled(fused: bool | None) -> bool:
    """Whether fused steps may run at all: not asked off, not inside another compiled graph."""
    if fused is False or os.environ.get(ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not torch.compiler.is_compiling()


# -- kernels ------------------------------------------------------------------------------------
#: (plan key, state keys, widths, dtype, device type, slots) → compiled kernel, or None if it
#: failed
_KERNELS: dict[tuple[Any, ...], Callable[..., None] | None] = {}
_WARNED: set[str] = set()
#: plan key → the number of scalars each piece of the body passes
_WIDTHS: dict[tuple[Any, ...], list[int]] = {}
_PADDING: dict[tuple[Any, ...], list[Tensor]] = {}


def _warn_once(reason: str, message: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        warnings.warn(f"{message}; running the eager chain instead (pass fused=False or set "
                      f"{ENV}=0 to choose it and silence this)", RuntimeWarning, stacklevel=4)


def _kernel_function(body: Sequence[Transform], widths: Sequence[int],
                     state_index: Sequence[dict[str, int]], scaled: bool, n_states: int,
                     serial: int) -> Callable[..., None]:
    """The step for :data:`SLOTS` tensors: ``kernel(s, p₀, g₀, *states₀, p₁, g₁, …)`` updates
    each p and its states in place, tensor j reading its numbers from row ``s[j]``.

    It closes over the pieces' static ``fused`` functions, their structure and their slot
    offsets only — never over a piece's numbers. Each kernel gets its own code object, so that
    torch's per-function cache of compiled graphs never mixes two chains.
    """
    offset = 1 if scaled else 0
    steps = []
    for piece, width, names in zip(body, widths, state_index, strict=True):
        steps.append((type(piece).fused, piece.structure(), offset, tuple(names.items())))
        offset += width
    steps_t, stride = tuple(steps), 2 + n_states

    def kernel(s: Tensor, *tensors: Tensor) -> None:
        for j in range(len(tensors) // stride):
            p, g, states = tensors[stride * j], tensors[stride * j + 1], \
                tensors[stride * j + 2:stride * (j + 1)]
            row = s[j]
            lane = Lane(p, g * row[0] if scaled else g)
            for fused, structure, start, names in steps_t:
                fused(structure, lane, Slots(row, start),
                      {local: states[i] for local, i in names})
            p.add_(lane.u)

    code = kernel.__code__.replace(co_name=f"optimlab_fused_step_{serial}")
    return types.FunctionType(code, kernel.__globals__, code.co_name, None, kernel.__closure__)


def _compile(key: tuple[Any, ...], body: Sequence[Transform], widths: Sequence[int],
             state_index: Sequence[dict[str, int]], scaled: bool, n_states: int,
             dtype: torch.dtype, device: torch.device,
             name: str) -> Callable[..., None] | None:
    """Compile the kernel on throwaway tensors, so that a failure touches no real state.

    Each slot's throwaway tensors get their own large size: the compiled code then takes any
    sizes in any slots without recompiling (equal sizes at compile time would tie the slots
    together, and small ones would tell Inductor not to spread the loop over threads).
    """
    fn = _kernel_function(body, widths, state_index, scaled, n_states, len(_KERNELS))
    start = time.perf_counter()
    try:
        compiled = torch.compile(fn, dynamic=True, fullgraph=True)
        k = (1 if scaled else 0) + sum(widths)
        dummies = [torch.zeros(_DUMMY + j, dtype=dtype, device=device)
                   for j in range(SLOTS) for _ in range(2 + n_states)]
        compiled(_scalar_tensor([(0.5,) * k] * SLOTS, dtype, device), *dummies)
    except Exception as error:  # any failure to compile means: run the eager chain
        _KERNELS[key] = None
        _warn_once(f"compile:{dtype}:{device.type}",
                   f"optimlab could not compile the fused {name} step ({type(error).__name__}: "
                   f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})")
        return None
    seconds = time.perf_counter() - start
    print(f"optimlab: compiled the fused {name} step ({str(dtype).removeprefix('torch.')}, "
          f"{device.type}) in {seconds:.1f} s, once per process; torch keeps the kernel in its "
          f"disk cache", file=sys.stderr)
    _KERNELS[key] = compiled
    return compiled


def _scalar_tensor(rows: Sequence[Sequence[float]], dtype: torch.dtype,
                   device: torch.device) -> Tensor:
    values = torch.tensor(rows, dtype=dtype, device=device)
    torch._dynamo.mark_static(values)  # one size per kernel: never a shape to generalize
    return values


def _padding(dtype: torch.dtype, device: torch.device, n_states: int) -> list[Tensor]:
    """Throwaway tensors for the empty slots of the last call (2 elements each)."""
    key = (dtype, device, n_states, SLOTS)
    pad = _PADDING.get(key)
    if pad is None:
        pad = _PADDING[key] = [torch.zeros(2, dtype=dtype, device=device)
                               for _ in range(SLOTS * (2 + n_states))]
    return pad


# -- one step -----------------------------------------------------------------------------------
def _subcontext(ctx: Context, idx: Sequence[int]) -> Context:
    return Context(params=[ctx.params[i] for i in idx], steps=[ctx.steps[i] for i in idx],
                   lr=ctx.lr, group=ctx.group, states=[ctx.states[i] for i in idx],
                   param_ids=[ctx.param_ids[i] for i in idx] if ctx.param_ids else [])


def _eligible(p: Tensor, g: Tensor, state: dict[str, Any], keys: Sequence[str]) -> bool:
    """Whether one tensor can take a fused step: contiguous parameter, gradient and state,
    two elements or more (written as a loop: it runs for every tensor at every step)."""
    if not (p.is_contiguous() and g.is_contiguous()) or p.numel() < 2:
        return False
    for k in keys:  # noqa: SIM110 (a generator in all() costs more, per tensor per step)
        if not state[k].is_contiguous():
            return False
    return True


def step(chain: Chain, ctx: Context, grads: list[Tensor], fused: bool | None,
         name: str, copies: int = 1) -> bool:
    """Run one step of ``chain`` on the tensors of ``ctx`` (one device and dtype), fused where
    ``fused`` says; return False, having changed nothing, when the whole bucket should run the
    eager chain instead. ``copies``: each tensor stacks that many models' tensors, and
    ``fused=None`` chooses by one model's sizes."""
    n = len(ctx.params)
    if fused is None:  # where it pays: cheap checks first, before anything else
        kernel = _has_torch_kernel(chain, ctx.params[0].device)
        if kernel and _pays_at_any_size(chain):
            candidates = list(range(n))
        else:
            sizes = [p.numel() // copies for p in ctx.params]
            candidates = [i for i in range(n) if sizes[i] >= MIN_NUMEL]
            if not candidates or (sum(sizes[i] for i in candidates) < MIN_TOTAL
                                  and not kernel):
                return False
    else:
        candidates = list(range(n))
    if not enabled(fused):
        return False
    plan = plan_of(chain)
    if plan is None:
        if fused:
            kinds = ", ".join(type(p).__name__ for p in chain.pieces)
            _warn_once(f"chain:{kinds}", f"the chain of {name} has a piece without a "
                       f"fused form ({kinds})")
        return False
    first, state0 = ctx.params[0], ctx.states[0]
    keys = [key for piece in plan.body for key in piece.keys.values()
            if isinstance(state0.get(key), Tensor)]
    params, states = ctx.params, ctx.states
    candidates = [i for i in candidates if _eligible(params[i], grads[i], states[i], keys)]
    if not candidates:
        return False
    dtype, device = first.dtype, first.device
    if dtype not in DTYPES or device.type not in DEVICES:
        _warn_once(f"kind:{dtype}:{device.type}",
                   f"optimlab has no fused step for {dtype} tensors on {device.type}")
        return False

    same = chain.torch_equivalent
    if same is not None and _has_torch_kernel(chain, device):
        torch_step(same[0], same[1], ctx, grads, candidates)
        taken = set(candidates)
        rest = [i for i in range(len(ctx.params)) if i not in taken]
        if rest:
            ectx = _subcontext(ctx, rest)
            chain.update(Update([grads[i] for i in rest]), ectx).apply(ectx.params)
        return True

    fctx = _subcontext(ctx, candidates)
    widths = _WIDTHS.get(plan.key)
    if widths is None:
        widths = _WIDTHS[plan.key] = _widths(plan.body, fctx)
    state_index = [{local: keys.index(key) for local, key in piece.keys.items() if key in keys}
                   for piece in plan.body]
    kernel_key = (plan.key, tuple(keys), tuple(widths), dtype, device.type, SLOTS)
    if kernel_key in _KERNELS:
        kernel = _KERNELS[kernel_key]
    else:
        kernel = _compile(kernel_key, plan.body, widths, state_index, bool(plan.prefix),
                          len(keys), dtype, device, name)
    if kernel is None:
        return False

    # the reductions of the whole bucket (eagerly, lazily scaled: no pass but the norm's own)
    u = Update(grads)
    for piece in plan.prefix:
        u = piece.update(u, ctx)
    scales = u.scale

    rows_by_piece = [piece.scalars(fctx) for piece in plan.body]
    rows = [tuple(v for piece_rows in rows_by_piece for v in piece_rows[j])
            for j in range(len(candidates))]
    if plan.prefix:
        rows = [(scales[i], *row) for i, row in zip(candidates, rows, strict=True)]
    n_states = len(keys)
    uniform = _scalar_tensor([rows[0]] * SLOTS, dtype, device) \
        if all(r == rows[0] for r in rows) else None
    for start in range(0, len(candidates), SLOTS):
        chunk = candidates[start:start + SLOTS]
        args: list[Tensor] = []
        for i in chunk:
            st = ctx.states[i]
            # flat views; the parameter's detached, so that the kernel sees what it was
            # compiled for (a tensor that does not require grad) and never recompiles
            args += [ctx.params[i].detach().view(-1), grads[i].view(-1),
                     *(st[k].view(-1) for k in keys)]
        values = uniform
        if len(chunk) < SLOTS:
            args += _padding(dtype, device, n_states)[len(args):]
        if values is None:
            own = rows[start:start + SLOTS]
            values = _scalar_tensor(own + [own[0]] * (SLOTS - len(own)), dtype, device)
        kernel(values, *args)

    taken = set(candidates)
    rest = [i for i in range(len(ctx.params)) if i not in taken]
    if rest:
        ectx = _subcontext(ctx, rest)
        eager = Update([grads[i] for i in rest])
        eager.scale = [scales[i] for i in rest]
        for piece in plan.body:
            eager = piece.update(eager, ectx)
        eager.apply(ectx.params)
    return True


# -- torch's own fused kernels, for the chains that are exactly torch's algorithms --------------
#: (kernel, device type) pairs that torch has
TORCH = {("adam", "cpu"), ("adamw", "cpu"), ("sgd", "cpu"), ("adagrad", "cpu"),
         ("adam", "cuda"), ("adamw", "cuda"), ("sgd", "cuda")}


def _has_torch_kernel(chain: Chain, device: torch.device) -> bool:
    same = chain.torch_equivalent
    return same is not None and (same[0], device.type) in TORCH


def _pays_at_any_size(chain: Chain) -> bool:
    """Whether torch's kernel for the chain (where torch has one) beats the eager chain at
    every size: it costs no compile and is one call for the group where the eager chain is
    several ``_foreach`` calls. Measured on the lab's digits MLP (4 tensors, 9.6k parameters,
    1 thread, µs per step, eager → torch's kernel, ``benchmarks/optim_step.py --small``): Adam
    86 → 47, AdamW 98 → 47, AMSGrad 92 → 48, momentum 44 → 34, Nesterov 52 → 33, Adagrad
    56 → 42 (and about as much again for 8 copies stacked) — all but SGD without momentum,
    whose eager step is a single ``_foreach_add_`` (24 → 31), and which keeps the size rule."""
    same = chain.torch_equivalent
    return same is not None and not (same[0] == "sgd" and not same[1].get("momentum"))


def torch_step(kernel: str, g: dict[str, Any], ctx: Context, grads: list[Tensor],
               idx: Sequence[int]) -> None:
    """Step the tensors ``idx`` with torch's fused kernel for the named optimizer's chain.

    The chain's state is torch's state under other names (ewa = exp_avg, sq_avg = exp_avg_sq,
    trace = momentum_buffer, sum = sum); the decay mask splits the call in two (λ and 0), and
    torch's first momentum step (buffer = gradient) in two more where step counts differ.
    """
    from optimlab.optim.regularize import masked

    lr = ctx.lr
    wd, mask = g["weight_decay"], g["decay_mask"]
    parts: dict[tuple[float, int], list[int]] = {}
    counts = {ctx.steps[i] for i in idx}
    if not wd and len(counts) == 1:  # the usual case: one call
        parts[(0.0, counts.pop())] = list(idx)
    for i in idx if not parts else ():
        rate = wd if wd and masked(mask, ctx.params[i]) else 0.0
        parts.setdefault((rate, ctx.steps[i]), []).append(i)
    device = ctx.params[idx[0]].device
    for (rate, t), part in parts.items():
        params = [ctx.params[i] for i in part]
        gs = [grads[i] for i in part]
        st = [ctx.states[i] for i in part]
        if kernel == "sgd":
            buffers = [s["trace"] for s in st] if g["momentum"] else []
            torch._fused_sgd_(params, gs, buffers, weight_decay=rate, momentum=g["momentum"],
                              lr=lr, dampening=g["dampening"], nesterov=g["nesterov"],
                              maximize=False, is_first_step=t == 1, grad_scale=None,
                              found_inf=None)
            continue
        steps = [torch.tensor(float(t), dtype=torch.float32, device=device)] * len(part)
        if kernel == "adagrad":
            torch._fused_adagrad_(params, gs, [s["sum"] for s in st], steps, lr=lr,
                                  lr_decay=g["lr_decay"], weight_decay=rate, eps=g["eps"],
                                  maximize=False, grad_scale=None, found_inf=None)
            continue
        amsgrad = "max_sq_avg" in st[0]
        fused_adam = torch._fused_adam_ if kernel == "adam" else torch._fused_adamw_
        b1, b2 = g["betas"]
        fused_adam(params, gs, [s["ewa"] for s in st], [s["sq_avg"] for s in st],
                   [s["max_sq_avg"] for s in st] if amsgrad else [], steps, amsgrad=amsgrad,
                   lr=lr, beta1=b1, beta2=b2, weight_decay=rate, eps=g["eps"], maximize=False,
                   grad_scale=None, found_inf=None)


def _widths(body: Sequence[Transform], ctx: Context) -> list[int]:
    """How many scalars each piece passes, read from one row computed on a scratch copy of the
    first tensor's host-side state: computing real rows would advance host state (Nadam's μ
    product) before we know that the kernel compiles."""
    scratch = Context(params=ctx.params[:1], steps=ctx.steps[:1], lr=ctx.lr, group=ctx.group,
                      states=[dict(ctx.states[0])], param_ids=ctx.param_ids[:1])
    return [len(piece.scalars(scratch)[0]) for piece in body]
