"""Seeds trained together: S Trainers of one configuration fit as one stacked model.

The seeds of one configuration differ only in their initial weights and batch order, so their
S models can train as one: every parameter stacked along a new leading dimension
(:class:`~optimlab.train.stacked_model.StackedModel`), one forward and backward pass for all S
— each seed on its own batch, cut from its own ``(seed, epoch)`` permutation as the Batcher
cuts it — and one optimizer step on the stacked tensors (:mod:`optimlab.optim.stacked`). The
loss of the step is the sum of the seeds' losses, so each seed's slice of the gradient is the
gradient of its own loss. Where the loop is not elementwise, it works per seed:

* the recorded gradient norm and global-norm clipping: ‖g_s‖₂ over seed s's slices, and
  g_s ← g_s · min(1, c/(‖g_s‖ + 10⁻⁶)), as ``torch.nn.utils.clip_grad_norm_`` for one model;
* a non-finite loss: that seed ends as ``diverged`` at that step (its loss gets no weight in the
  backward pass, its weights are the ones before the step) while the others go on;
* stopping (early stopping, a target with ``stop=True``, ``max_steps``): the seed's own
  callbacks decide, on its own :class:`State`; a seed that has stopped is *masked* — it stays
  in the stack, its gradient is zeroed and its slices are no longer read, its weights are the
  ones it stopped with;
* the learning rate: each seed's schedule at its step count, × its ``lr_factor`` or its
  ``lr_override`` (SWA, snapshot ensembles), computed per seed — and required to agree, since
  one step applies one rate (a callback that gives seeds different rates, ReduceLROnPlateau, is
  refused up front).

Each seed keeps its own Trainer, model, State, callbacks and History, exactly as if it had been
fit alone; the stacked weights are copied into each seed's model at every epoch end (before its
callbacks run, so early stopping, SWA, EMA and checkpoints see its weights) and back after them.
Its checkpoint is its own Trainer's ``state_dict``, so a run trained together resumes one seed at
a time and the other way round. Time: each epoch's wall time is shared out equally among the
seeds that trained in it (``time`` in the epoch records, ``State.elapsed``).

What cannot train together is said by :func:`together_problem` (and :class:`NotStackable`):
different architectures or settings, dropout, a torch or custom-chain optimizer, a torch LR
scheduler, mixed precision, ``on_nonfinite="skip"``, ReduceLROnPlateau.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler

from optimlab.data.batcher import Batcher
from optimlab.data.dataset import Dataset
from optimlab.models.losses import Loss
from optimlab.models.penalties import l1_penalty, l2_penalty, penalized_parameters
from optimlab.optim import stacked as stacked_optim
from optimlab.train import stacked_model
from optimlab.train.callbacks.averaging import EMA, SWA
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import ModelCheckpoint, read_checkpoint
from optimlab.train.callbacks.early_stopping import EarlyStopping
from optimlab.train.callbacks.monitor import GradientMonitor, TimeToTarget
from optimlab.train.callbacks.plateau import ReduceLROnPlateau
from optimlab.train.callbacks.snapshot import SnapshotEnsemble
from optimlab.train.history import History
from optimlab.train.metrics import compute_stacked
from optimlab.train.stacked_model import StackedModel
from optimlab.train.trainer import Trainer, _deterministic, _forked_rng, check_length

__all__ = ["NotStackable", "fit_together", "together_problem"]

#: callbacks whose per-step hooks read no weights (logs, the step, the learning rate, the
#: gradients the loop hands them); any other callback with a per-step hook gets the seed's
#: current weights in its model before each hook and its model copied back after
_STEP_HOOKS_WITHOUT_WEIGHTS: tuple[type[Callback], ...] = (
    TimeToTarget, SWA, GradientMonitor, EarlyStopping, ModelCheckpoint)
#: callbacks that read the weights in a per-step hook (EMA's average, a snapshot at the end
#: of a cycle) but never write them
_STEP_HOOKS_READING_WEIGHTS: tuple[type[Callback], ...] = (EMA, SnapshotEnsemble)
#: callbacks that give each seed its own learning rate
_PER_SEED_LR: tuple[type[Callback], ...] = (ReduceLROnPlateau,)
_STEP_HOOKS = ("on_step_start", "on_before_update", "on_step_end")


class NotStackable(ValueError):
    """These Trainers cannot train together; the message says why (train them one by one)."""


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def _per_seed(data: Any, n: int, label: str) -> list[Any]:
    """One dataset per Trainer: ``data`` for all, or a list of n."""
    if isinstance(data, list):
        if len(data) != n:
            raise ValueError(f"{label} is a list of {len(data)} datasets for {n} trainers; give "
                             "one dataset for all, or one per trainer")
        return list(data)
    return [data] * n


def _settings(t: Trainer) -> tuple[Any, ...]:
    """What must be equal for Trainers to train together (beyond model and optimizer)."""
    return (t.schedule_unit, t.clip_grad_norm, t.clip_grad_value, t.accumulate,
            sorted(t.penalty.items()), t.precision, t.on_nonfinite, t.track_grad_norm,
            t.deterministic, str(t.device), t.task, repr(t.loss_fn),
            [m.name for m in t.metrics], _samples(t.schedule), t.base_lrs)


def _samples(schedule: Any) -> Any:
    """A schedule seen at a few steps (a schedule is a pure function of the step)."""
    if schedule is None or isinstance(schedule, LRScheduler):
        return type(schedule).__name__
    return [float(schedule(t)) for t in (0, 1, 2, 10, 100, 1000, 10000)]


def together_problem(trainers: Sequence[Trainer], train: Any, val: Any = None) -> str | None:
    """Why ``trainers`` cannot fit together on this data (None when they can). Prepares each
    Trainer (builds its model and optimizer, checks the data, as ``fit`` would first)."""
    trainers = list(trainers)
    if not trainers:
        return "no trainers"
    if len({id(t) for t in trainers}) != len(trainers):
        return "the same Trainer is given twice"
    trains = _per_seed(train, len(trainers), "train")
    vals = _per_seed(val, len(trainers), "val")
    prepared = [t.prepare(a, b) for t, a, b in zip(trainers, trains, vals, strict=True)]
    first = trainers[0]
    if any(_settings(t) != _settings(first) for t in trainers[1:]):
        return "the Trainers' settings differ (loss, metrics, schedule, clipping, …)"
    if first.precision != "fp32":
        return f"precision={first.precision!r} (seeds train together in fp32 only)"
    if first.on_nonfinite != "stop":
        return "on_nonfinite='skip' (a skipped step would put the seeds at different steps)"
    if isinstance(first.schedule, LRScheduler):
        return "a torch LR scheduler drives the learning rate (it steps one optimizer)"
    for t in trainers:
        for cb in t.callbacks:
            if isinstance(cb, _PER_SEED_LR):
                return (f"{type(cb).__name__} gives each seed its own learning rate (one step "
                        "applies one rate to all)")
    why = stacked_model.problem([t.model for t in trainers])  # type: ignore[misc]
    if why is None:
        why = stacked_optim.problem(first.optimizer)
    if why is None:
        groups = [{k: v for k, v in t.optimizer.param_groups[0].items() if k != "params"}
                  for t in trainers]  # type: ignore[union-attr]
        if any(g != groups[0] for g in groups[1:]):
            return "the Trainers' optimizers differ in their hyperparameters"
    if why is not None:
        return why
    sets = [p[0] for p in prepared]
    if len({len(d) for d in sets}) != 1 or len({tuple(d.X.shape[1:]) for d in sets}) != 1:
        return "the seeds' training sets differ in size"
    return _probe(trainers, sets[0])


def _probe(trainers: list[Trainer], data: Dataset) -> str | None:
    """Run two rows through the stacked forward pass and loss and through each model: None when
    they agree, else why not (a model whose forward pass cannot be vectorized, a custom loss)."""
    import copy

    models = [copy.deepcopy(t.model) for t in trainers]
    x = data.X[:2].to(trainers[0].device)
    y = data.y[:2].to(trainers[0].device)
    try:
        stack = StackedModel(models)
        out = stack(x, shared=True)
        with torch.no_grad():
            loss = _loss_of(trainers[0])(out, y.expand(len(models), *y.shape))
            ref_out = torch.stack([m(x) for m in models])
            ref_loss = torch.stack([trainers[0].loss_fn(o, y) for o in ref_out])  # type: ignore[misc]
    except Exception as err:  # any failure here means: not this way
        return f"the model or loss cannot run stacked ({type(err).__name__}: {err})"
    scale = 1e-4 * (1.0 + float(ref_out.abs().max()))
    if not torch.allclose(out.detach(), ref_out, rtol=1e-4, atol=scale, equal_nan=True) or \
            not torch.allclose(loss, ref_loss, rtol=1e-4, atol=1e-5, equal_nan=True):
        return "the stacked forward pass does not reproduce each model's outputs"
    return None


def _loss_of(trainer: Trainer) -> Any:
    """The loss of S stacked batches: ``Loss.stacked``, or any other loss function vectorized
    by vmap."""
    fn = trainer.loss_fn
    if isinstance(fn, Loss):
        return fn.stacked
    return torch.func.vmap(fn)


@dataclass(eq=False)
class _Seed:
    """One seed's share of the run: its Trainer and State, its place in the stack (-1 when it
    does not train: it had ended before a resume) and what it collects during an epoch."""

    trainer: Trainer
    state: State
    train: Dataset
    val: Dataset | None
    batcher: Batcher
    slot: int = -1
    active: bool = False
    stopped_at: int = -1  # the update count when it stopped during the epoch
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    micro_loss: float = 0.0
    micro_batches: int = 0  # micro-batches whose outputs count toward its train metrics
    last_lr: float = math.nan
    step_hooks: dict[str, list[Callback]] = field(default_factory=dict)
    rng: Tensor | None = None  # the CPU RNG state of its own fit (for its checkpoints)
    weights_each_step: bool = False
    writes_each_step: bool = False

    @property
    def callbacks(self) -> list[Callback]:
        return self.trainer.callbacks


def fit_together(trainers: Sequence[Trainer], train: Any, val: Any = None, *,
                 epochs: int | None = None, max_steps: int | None = None,
                 batch_size: int | None = 32, shuffle: bool = True, drop_last: bool = False,
                 resume: Sequence[Any] | None = None, dense: bool = True) -> list[History]:
    """Fit ``trainers`` — one per seed of one configuration — together; return their
    histories, each equal to what ``trainer.fit`` would give alone (to float rounding).

    ``train``/``val``: one dataset for all, or a list with one per Trainer (a new split per
    seed). ``resume``: one checkpoint (path or state dict) or None per Trainer; the seeds still
    training must be at the same epoch. ``dense=False`` runs every model through vmap (see
    :mod:`optimlab.train.stacked_model`). Raises :class:`NotStackable` when they cannot train
    together (:func:`together_problem`). Afterwards each Trainer holds its own trained model
    and optimizer state, as after ``fit``. No progress bar is drawn (``progress`` is ignored).

    >>> trainers = [Trainer("mlp", optimizer="adam", seed=s) for s in range(8)]
    >>> histories = fit_together(trainers, split.train, split.val, epochs=20, batch_size=64)
    """
    check_length(epochs, max_steps)
    trainers = list(trainers)
    why = together_problem(trainers, train, val)
    if why is not None:
        raise NotStackable(f"these {len(trainers)} seeds cannot train together: {why}")
    if resume is not None and len(resume) != len(trainers):
        raise ValueError(f"resume has {len(resume)} entries for {len(trainers)} trainers")
    run = _Together(trainers, _per_seed(train, len(trainers), "train"),
                    _per_seed(val, len(trainers), "val"), batch_size, shuffle, drop_last, dense)
    return run.fit(epochs, max_steps, list(resume) if resume is not None else None)


class _Together:
    """The loop of :func:`fit_together` (its docstring and the module's say what it does)."""

    def __init__(self, trainers: list[Trainer], trains: list[Any], vals: list[Any],
                 batch_size: int | None, shuffle: bool, drop_last: bool, dense: bool) -> None:
        self.first = first = trainers[0]
        self.seeds: list[_Seed] = []
        for t, a, b in zip(trainers, trains, vals, strict=True):
            train_ds, val_ds = t.prepare(a, b)
            batcher = Batcher(train_ds.X, train_ds.y, batch_size, shuffle=shuffle,
                              drop_last=drop_last, seed=t.seed, device=t.device)
            self.seeds.append(_Seed(t, None, train_ds, val_ds, batcher))  # type: ignore[arg-type]
        self.device = first.device
        self.k = first.accumulate
        self.dense = dense
        self.loss = _loss_of(first)
        self.shared_train = all(s.train is self.seeds[0].train for s in self.seeds)
        self.shared_val = all(s.val is self.seeds[0].val for s in self.seeds)
        self.updates = 0  # optimizer steps of the stack so far (this fit)
        self.going: list[_Seed] = []
        self.model: StackedModel | None = None
        self.opt: Any = None
        self.val_same_size = False  # the seeds' own validation sets, of one size

    # -- set-up ----------------------------------------------------------------------------
    def fit(self, epochs: int | None, max_steps: int | None,
            resume: list[Any] | None) -> list[History]:
        first, seeds = self.first, self.seeds
        updates_per_epoch = max(1, len(seeds[0].batcher) // self.k)
        if epochs is None:
            epochs = math.ceil(max_steps / updates_per_epoch)  # type: ignore[operator]
        for s in seeds:
            t = s.trainer
            t.history = History()
            s.state = t.state = State(
                model=t.model, optimizer=t.optimizer, history=t.history,  # type: ignore[arg-type]
                max_epochs=epochs, max_steps=max_steps, steps_per_epoch=updates_per_epoch,
                train_data=s.train, val_data=s.val, scheduler=None, task=t.task,
                device=t.device, evaluate=t.evaluate, score=t.score,
                trainer_state_dict=t.state_dict)
            s.state.base_lrs = t.base_lrs
        with _forked_rng(self.device), _deterministic(first.deterministic):
            start = self._resume(resume)
            for s in seeds:
                for cb in s.callbacks:
                    cb.on_fit_start(s.state)
            self._stack()
            for epoch in range(start, epochs):
                if all(s.state.stop for s in seeds):
                    break
                self._epoch(epoch)
            for s in seeds:
                if s.state.history.status == "running":
                    s.state.history.status = "completed"
            for s in seeds:
                if s.slot >= 0:  # its own optimizer gets its state, as after fit
                    s.trainer.optimizer.load_state_dict(  # type: ignore[union-attr]
                        stacked_optim.seed_state_dict(self.opt, s.slot, s.trainer.optimizer))
                for cb in s.callbacks:
                    cb.on_fit_end(s.state)
        return [s.state.history for s in seeds]

    def _resume(self, resume: list[Any] | None) -> int:
        """Load each seed's checkpoint; return the epoch to go on from (the seeds still training
        must agree on it and on the step)."""
        if resume is None:
            return 0
        for s, ckpt in zip(self.seeds, resume, strict=True):
            if ckpt is None:
                continue
            data = ckpt if isinstance(ckpt, dict) else read_checkpoint(ckpt, self.device)
            s.trainer.load_state_dict(data)
            s.state.resumed = True
            history = s.state.history
            if history.status == "completed":
                history.status, history.reason = "running", ""
            elif history.status != "running":
                s.state.stop = True
        going = [s for s in self.seeds if not s.state.stop]
        positions = {(s.state.epoch if s.state.resumed else -1, s.state.step) for s in going}
        if len(positions) > 1:
            raise NotStackable("the seeds to resume are at different epochs or steps "
                               f"({sorted(positions)}); resume them one at a time")
        return positions.pop()[0] + 1 if positions else 0

    def _stack(self) -> None:
        """The stacked model and optimizer of the seeds that train; step hooks per seed."""
        going = [s for s in self.seeds if not s.state.stop]
        for slot, s in enumerate(going):
            s.slot = slot
            s.state.trainer_state_dict = (lambda s=s: self._state_dict(s))
            hooks = {h: [cb for cb in s.callbacks if _overrides(cb, h)] for h in _STEP_HOOKS}
            s.step_hooks = hooks
            hooked = {id(cb): cb for cbs in hooks.values() for cb in cbs}.values()
            s.weights_each_step = any(not isinstance(cb, _STEP_HOOKS_WITHOUT_WEIGHTS)
                                      for cb in hooked)
            s.writes_each_step = any(not isinstance(cb, _STEP_HOOKS_WITHOUT_WEIGHTS +
                                                    _STEP_HOOKS_READING_WEIGHTS)
                                     for cb in hooked)
        if not going:
            return
        self.going = going
        self.model = StackedModel([s.trainer.model for s in going],  # type: ignore[misc]
                                  dense=self.dense)
        self.opt = stacked_optim.stacked_like(going[0].trainer.optimizer,  # type: ignore[arg-type]
                                              self.model.params)
        stacked_optim.stack_states([s.trainer.optimizer for s in going],  # type: ignore[misc]
                                   self.opt)
        self.step = self.opt.step_function()
        vals = [s.val for s in going if s.val is not None]
        self.val_same_size = len(vals) == len(going) and \
            len({tuple(v.X.shape) for v in vals}) == 1
        pen = going[0].trainer.penalty
        self.penalized: list[int] = []
        if pen:
            chosen = {id(p) for p in penalized_parameters(going[0].trainer.model)}  # type: ignore[arg-type]
            self.penalized = [i for i, p in enumerate(going[0].trainer.model.parameters())  # type: ignore[union-attr]
                              if id(p) in chosen]

    def _state_dict(self, s: _Seed) -> dict[str, Any]:
        """Seed ``s``'s checkpoint: its own Trainer's ``state_dict`` once its optimizer holds
        its share of the stacked state (its model holds its weights at an epoch's end)."""
        t = s.trainer
        t.optimizer.load_state_dict(  # type: ignore[union-attr]
            stacked_optim.seed_state_dict(self.opt, s.slot, t.optimizer))
        if s.rng is None:  # the RNG state of its own fit, seeded and then unused (a generator:
            s.rng = torch.Generator().manual_seed(t.seed).get_state()  # torch.manual_seed
        outside = torch.get_rng_state()  # also queues the seeding of every CUDA device, ~3 ms)
        torch.set_rng_state(s.rng)
        try:
            return t.state_dict()
        finally:
            torch.set_rng_state(outside)

    # -- one epoch --------------------------------------------------------------------------
    def _batch(self, epoch: int, i: int, perms: Tensor | None) -> tuple[Tensor, Tensor, bool]:
        """Batch i of the epoch for every stack position: (x, y, shared). Each seed's rows are
        those its Batcher gives (its own permutation of the epoch)."""
        b0 = self.going[0].batcher
        size = b0.effective_batch_size
        rows = slice(i * size, (i + 1) * size)
        if perms is None:  # no shuffling, or one batch of all rows: the same rows for all
            if self.shared_train:
                return b0.X[rows], b0.y[rows], True
            return (torch.stack([s.batcher.X[rows] for s in self.going]),
                    torch.stack([s.batcher.y[rows] for s in self.going]), False)
        idx = perms[:, rows]
        n = len(self.going)
        if self.shared_train:
            flat = idx.reshape(-1)
            x = b0.X.index_select(0, flat)
            y = b0.y.index_select(0, flat)
            return x.view(n, -1, *x.shape[1:]), y.view(n, -1, *y.shape[1:]), False
        # each seed's own training set (a new split per seed): its rows, gathered per seed
        # (no stacked copy of S datasets)
        return (torch.stack([s.batcher.X.index_select(0, j) for s, j in zip(self.going, idx,
                                                                            strict=True)]),
                torch.stack([s.batcher.y.index_select(0, j) for s, j in zip(self.going, idx,
                                                                            strict=True)]),
                False)

    def _permutations(self, epoch: int) -> Tensor | None:
        b0 = self.going[0].batcher
        if not b0.shuffle or b0.n <= b0.effective_batch_size:
            return None
        return torch.stack([s.batcher.permutation(epoch) for s in self.going]).to(self.device)

    def _set_lr(self, t: int, live: list[_Seed]) -> None:
        """Each live seed's rate as its own Trainer would set it (schedule(t) × lr_factor, or
        lr_override); they must agree, and the stacked optimizer takes it."""
        sched = self.first.schedule
        rates = set()
        for s in live:
            st = s.state
            if st.lr_override is not None:
                first = st.lr_override
            elif sched is None:
                first = st.base_lrs[0]
            else:
                first = float(sched(t))
            rates.add(first * st.lr_factor)
        if len(rates) > 1:
            raise RuntimeError(f"seeds trained together asked for different learning rates "
                               f"at step {t} ({sorted(rates)}): a callback gives each seed its "
                               "own rate; train these seeds one at a time")
        lr = rates.pop()
        self.opt.param_groups[0]["lr"] = lr
        for s in live:
            s.trainer.optimizer.param_groups[0]["lr"] = lr  # type: ignore[union-attr]

    def _epoch(self, epoch: int) -> None:
        """The epoch's updates for the seeds still training, then each seed's record."""
        assert self.model is not None
        seeds = [s for s in self.going if not s.state.stop]
        started = time.perf_counter()
        for s in seeds:
            s.state.epoch = epoch
            s.active, s.stopped_at = True, -1
            s.losses, s.lrs, s.micro_loss, s.micro_batches = [], [], 0.0, 0
            for cb in s.callbacks:
                cb.on_epoch_start(s.state)
        self.model.train()
        by_step = self.first.schedule_unit == "step"
        if not by_step:
            self._set_lr(epoch, seeds)
        keep_outputs = bool(self.first.metrics)
        perms = self._permutations(epoch)
        outputs: list[Tensor] = []
        targets: list[Tensor] = []
        rows: list[int] = []
        norms: list[Tensor] = []
        k, micro = self.k, 0
        n = len(self.going)
        for i in range(len(self.going[0].batcher)):
            live = [s for s in seeds if s.active]
            if micro == 0:
                self._hooks(live, "on_step_start")
                if by_step or any(s.state.lr_override is not None for s in live):
                    self._set_lr(live[0].state.step, live)
            xb, yb, shared = self._batch(epoch, i, perms)
            if shared:
                yb = yb.expand(n, *yb.shape)
            out = self.model(xb, shared)
            loss = self.loss(out, yb)
            if self.penalized:
                loss = loss + self._penalty(yb.shape[1])
            values = loss.tolist()
            for s in live:
                if not math.isfinite(values[s.slot]):
                    self._diverged(s, values[s.slot])
            live = [s for s in live if s.active]
            if not live:
                break
            if len(live) == n:
                (loss.sum() / k if k > 1 else loss.sum()).backward()
            else:
                weight = torch.zeros(n, device=loss.device, dtype=loss.dtype)
                weight[[s.slot for s in live]] = 1.0 / k
                (loss * weight).sum().backward()
            micro += 1
            for s in live:
                s.micro_loss += values[s.slot]
                s.micro_batches += 1
            if keep_outputs:
                outputs.append(out.detach())
                targets.append(yb)
                rows.append(int(yb.shape[1]))
            if micro < k:
                continue
            micro = 0
            norm = self._update(live)
            self.updates += 1
            lr = float(self.opt.param_groups[0]["lr"])
            if norm is not None:
                norms.append(norm)
            norm_values = norm.tolist() if norm is not None and \
                any(s.step_hooks["on_step_end"] for s in live) else None
            if any(s.weights_each_step for s in live):
                self.model.store([s.trainer.model for s in live if s.weights_each_step],  # type: ignore[misc]
                                 [s.slot for s in live if s.weights_each_step])
            for s in live:
                st = s.state
                st.step += 1
                s.losses.append(s.micro_loss / k)
                s.lrs.append(lr)
                s.micro_loss = 0.0
                if s.step_hooks["on_step_end"]:
                    st.logs = {"loss": s.losses[-1], "lr": lr,
                               "grad_norm": norm_values[s.slot] if norm_values is not None
                               else math.nan}
                    for cb in s.step_hooks["on_step_end"]:
                        cb.on_step_end(st)
                if (st.max_steps is not None and st.step >= st.max_steps) or st.stop:
                    if not st.stop:
                        st.stop = True
                        st.history.reason = f"reached max_steps={st.max_steps}"
                    self._stop(s, lr)
            self._write_back([s for s in live if s.active and s.writes_each_step])
            if not any(s.active for s in seeds):
                break
        for p in self.model.params:
            p.grad = None  # micro-batches left over (fewer than k): dropped, as alone
        self._close(epoch, seeds, started, outputs, targets, rows, norms)

    def _hooks(self, live: list[_Seed], hook: str) -> None:
        for s in live:
            for cb in s.step_hooks[hook]:
                getattr(cb, hook)(s.state)
        self._write_back([s for s in live if s.writes_each_step and s.step_hooks[hook]])

    def _write_back(self, seeds: list[_Seed]) -> None:
        """Copy the models of seeds whose callbacks may have changed them into the stack."""
        if seeds:
            assert self.model is not None
            self.model.load([s.trainer.model for s in seeds],  # type: ignore[misc]
                            [s.slot for s in seeds])

    def _penalty(self, batch: int) -> Tensor:
        """Each seed's coupled penalty (l1, l2 of the notes, ``models.penalties``) on its
        slices of the penalized tensors: a tensor of S values."""
        assert self.model is not None
        pen = self.first.penalty
        ws = [self.model.params[i] for i in self.penalized]

        def one(*w: Tensor) -> Tensor:
            total = torch.zeros((), device=w[0].device, dtype=w[0].dtype)
            if pen.get("l1"):
                total = total + l1_penalty(w, pen["l1"])
            if pen.get("l2"):
                total = total + l2_penalty(w, pen["l2"], batch)
            return total

        return torch.func.vmap(one)(*ws)

    def _diverged(self, s: _Seed, value: float) -> None:
        """A non-finite loss: the seed ends as diverged at this step, with the weights it had
        before it (its loss gets no weight in this step's backward pass)."""
        assert self.model is not None
        st = s.state
        st.request_stop(f"the loss became {value} at step {st.step + 1}", status="diverged")
        st.history.stop_step = st.step + 1
        self._stop(s, float(self.opt.param_groups[0]["lr"]))

    def _stop(self, s: _Seed, lr: float) -> None:
        """The seed leaves the step: its weights go to its model; it is masked from now on."""
        assert self.model is not None
        self.model.store([s.trainer.model], [s.slot])  # type: ignore[list-item]
        s.active, s.stopped_at, s.last_lr = False, self.updates, lr

    def _update(self, live: list[_Seed]) -> Tensor | None:
        """One update from the stacked gradients: masked seeds' slices zeroed; per-seed norms
        ‖g_s‖ (returned when recorded, before clipping); callbacks see each seed's gradients;
        per-seed global-norm clipping, elementwise value clipping; the step."""
        assert self.model is not None
        params, n, first = self.model.params, len(self.going), self.first
        grads = [p.grad for p in params]
        if len(live) < n:
            alive = {s.slot for s in live}
            masked = torch.tensor([j for j in range(n) if j not in alive], device=self.device)
            for g in grads:
                if g is not None:
                    g.index_fill_(0, masked, 0.0)
        norm = None
        if first.track_grad_norm or first.clip_grad_norm is not None:
            norm = self._norms(grads)
        hooked = [s for s in live if s.step_hooks["on_before_update"]]
        for s in hooked:
            model_params = list(s.trainer.model.parameters())  # type: ignore[union-attr]
            for p, g in zip(model_params, self.model.grads(s.slot), strict=True):
                p.grad = g
            for cb in s.step_hooks["on_before_update"]:
                cb.on_before_update(s.state)
            for p in model_params:
                p.grad = None
        self._write_back([s for s in hooked if s.writes_each_step])
        if first.clip_grad_norm is not None:
            current = self._norms(grads) if hooked else norm
            assert current is not None
            coef = (first.clip_grad_norm / (current + 1e-6)).clamp(max=1.0)
            for g in grads:
                if g is not None:
                    g.mul_(coef.view(n, *[1] * (g.ndim - 1)))
        if first.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(params, first.clip_grad_value)
        self.step()
        for p in params:
            p.grad = None
        return norm if first.track_grad_norm else None

    def _norms(self, grads: list[Tensor | None]) -> Tensor:
        """‖g_s‖₂ over seed s's slices of every gradient: S values."""
        n = len(self.going)
        per = [torch.linalg.vector_norm(g.reshape(n, -1), dim=1) for g in grads if g is not None]
        return torch.linalg.vector_norm(torch.stack(per), dim=0)

    # -- the end of an epoch ----------------------------------------------------------------
    def _close(self, epoch: int, seeds: list[_Seed], started: float, outputs: list[Tensor],
               targets: list[Tensor], rows: list[int], norms: list[Tensor]) -> None:
        """Each seed's step and epoch records (train metrics, validation), then its callbacks'
        epoch end, with its weights in its model."""
        assert self.model is not None
        columns = torch.stack(norms).float().T.tolist() if norms else None
        outs = torch.cat(outputs, dim=1) if outputs else None
        ys = torch.cat(targets, dim=1) if targets else None
        scored = self._validate([s for s in seeds if s.val is not None and
                                 s.state.history.status != "diverged"])
        trained = self._train_metrics(seeds, outs, ys, rows)
        lr = float(self.opt.param_groups[0]["lr"])
        records = []
        for s in seeds:
            st, history = s.state, s.state.history
            count = len(s.losses)
            if count:
                first = st.step - count + 1
                steps = history.steps
                steps["step"].extend(range(first, first + count))
                steps["epoch"].extend([epoch] * count)
                steps["loss"].extend(s.losses)
                steps["lr"].extend(s.lrs)
                steps["grad_norm"].extend(columns[s.slot][:count] if columns is not None
                                          else [math.nan] * count)
            record: dict[str, float] = {"epoch": float(epoch)}
            if s.losses:
                record["train_loss"] = math.fsum(s.losses) / len(s.losses)
            if s.slot in trained:
                record.update({f"train_{k}": v for k, v in trained[s.slot].items()})
            if s.slot in scored:
                record.update({f"val_{k}": v for k, v in scored[s.slot].items()})
            record["lr"] = s.last_lr if not s.active else lr
            records.append(record)
        share = (time.perf_counter() - started) / len(seeds)
        for s, record in zip(seeds, records, strict=True):
            record["time"] = share
            s.state.elapsed += share
            s.state.history.epochs.append(record)
            s.state.logs = dict(record)
        self.model.store([s.trainer.model for s in seeds if s.active],  # type: ignore[misc]
                         [s.slot for s in seeds if s.active])
        for s in seeds:
            if s.state.history.status == "diverged":
                continue
            for cb in s.callbacks:
                cb.on_epoch_end(s.state)
            for cb in s.callbacks:
                cb.on_epoch_close(s.state)
        self._write_back([s for s in seeds if not s.state.stop])

    def _train_metrics(self, seeds: list[_Seed], outs: Tensor | None, ys: Tensor | None,
                       rows: list[int]) -> dict[int, dict[str, float]]:
        """Each seed's metrics on the outputs of the epoch's batches it trained on, as its own
        fit computes them; the seeds that trained on as many rows, at once."""
        if outs is None or ys is None:
            return {}
        by_rows: dict[int, list[_Seed]] = {}
        for s in seeds:
            if s.micro_batches and s.state.history.status != "diverged":
                by_rows.setdefault(sum(rows[:s.micro_batches]), []).append(s)
        out: dict[int, dict[str, float]] = {}
        for used, group in by_rows.items():
            slots = [s.slot for s in group]
            values = compute_stacked(self.first.metrics, outs[slots, :used], ys[slots, :used],
                                     self.first.task)  # type: ignore[arg-type]
            out.update(zip(slots, values, strict=True))
        return out

    @torch.no_grad()
    def _validate(self, seeds: list[_Seed]) -> dict[int, dict[str, float]]:
        """Loss and metrics on each seed's validation data, as its ``evaluate`` gives them: one
        stacked forward pass for the seeds whose slices hold their weights, the Trainer's own
        ``evaluate`` for a seed that stopped before later updates moved its slices."""
        assert self.model is not None
        out: dict[int, dict[str, float]] = {}
        current = [s for s in seeds if s.active or s.stopped_at == self.updates]
        if not self.shared_val and not self.val_same_size:
            current = []  # validation sets of different sizes: one seed at a time
        for s in seeds:
            if s not in current:
                out[s.slot] = s.trainer.evaluate(s.val)  # type: ignore[arg-type]
        if not current:
            return out
        self.model.train(False)
        try:
            # outputs kept as [S, …, n] in memory (rows last, as the dense model makes them;
            # Loss.stacked's cross-entropy is fastest so), seen as [S, n, …]
            if self.shared_val:
                X = current[0].val.X  # type: ignore[union-attr]
                chunks = [self.model(X[i:i + 4096].to(self.device), True)
                          for i in range(0, len(X), 4096)]
            else:
                Xs = [s.val.X for s in self.going]  # type: ignore[union-attr]
                chunks = [self.model(torch.stack([X[i:i + 4096] for X in Xs]).to(self.device),
                                     False) for i in range(0, len(Xs[0]), 4096)]
            preds = torch.cat([c.movedim(1, -1) for c in chunks], dim=-1).float().movedim(-1, 1)
        finally:
            self.model.train(True)
        slots = [s.slot for s in current]
        if self.shared_val:
            ys = current[0].val.y.to(preds.device).expand(len(current), *current[0].val.y.shape)  # type: ignore[union-attr]
        else:
            ys = torch.stack([s.val.y for s in current]).to(preds.device)  # type: ignore[union-attr]
        out.update(zip(slots, self._score(preds[slots], ys), strict=True))
        return out

    def _score(self, preds: Tensor, ys: Tensor) -> list[dict[str, float]]:
        """``Trainer.score`` of S stacked outputs [S, n, …] against their targets: the loss of
        each and, where it is finite, its metrics — the losses and metrics of all S at once."""
        losses = self.loss(preds, ys).tolist()
        finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
        scored = [{"loss": v} for v in losses]
        if self.first.metrics and finite:
            values = compute_stacked(self.first.metrics, preds[finite], ys[finite],
                                     self.first.task)  # type: ignore[arg-type]
            for i, v in zip(finite, values, strict=True):
                scored[i].update(v)
        return scored
