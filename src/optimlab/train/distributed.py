"""Data parallel training: one model on N processes, each on its shard of every global batch.

``Trainer(..., strategy="ddp")`` under ``torchrun --nproc-per-node N script.py``: every process
(rank r of N) builds the same model from the same seed, draws the same permutation of the rows
each epoch, and takes its contiguous part of every global batch of B rows — the first B mod N
ranks one row more (``torch.tensor_split``) — so the global order is that of one process for
the same seed. DistributedDataParallel averages the gradients across ranks during backward.

The mean gradient of the global batch, exactly: rank r's loss is the mean ℓ̄_r over its n_r
rows, scaled before backward by n_r·N/B, so that after DDP's average

    (1/N) Σ_r ℓ̄_r · n_r·N/B  =  (1/B) Σ_rows ℓ  =  the one-process batch loss,

shards of unequal size included; a penalty (l1/l2, with m = B) is added on every rank unscaled
and so counted once. The recorded loss of a step is Σ_r ℓ̄_r·n_r / B (one all-reduce of two
numbers per micro-batch, which also makes every rank agree on a non-finite loss); an epoch's
training metrics are computed on the outputs of all ranks gathered, and evaluation splits the
rows among the ranks and gathers the outputs — so every rank holds the same history, and the
callbacks (early stopping, plateau) decide alike. Only rank 0 runs the callbacks that write
(``Callback.main_only``: checkpoints, loggers, the progress bar).

Random layers (dropout) draw per rank: under DDP each rank's generator is seeded at each epoch
from (seed, epoch, rank), so a resumed run continues exactly, but the masks are not those of
one process. Batch norm normalizes each rank's shard with its own statistics (DDP keeps rank 0's
running statistics); with dropout or batch norm, N processes do not reproduce one.

Backends: ``gloo`` on the CPU, ``nccl`` on CUDA (each rank on ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from optimlab.data.batcher import shard_bounds

__all__ = ["LAUNCH", "Distributed", "rank_seed", "setup", "shard_bounds"]

LAUNCH = ("strategy='ddp' runs one process per rank: launch the script with `torchrun "
          "--nproc-per-node 2 script.py` (or call torch.distributed.init_process_group "
          "first)")


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The generator seed of ``rank`` in ``epoch`` under DDP: 63 well-mixed bits of
    ``SeedSequence([seed, epoch, rank])``."""
    a, b = np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(
        2, dtype=np.uint32)
    return (int(a) << 31) ^ int(b)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the process group."""

    rank: int
    world_size: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float] | torch.Tensor) -> torch.Tensor:
        """The element-wise sum over the ranks (a float64 tensor on this rank's device)."""
        t = torch.as_tensor(values, dtype=torch.float64, device=self.device).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of ``t``, concatenated in rank order (ranks may hold different
        numbers of rows). Floating rows travel as float32."""
        if t.is_floating_point():
            t = t.float()
        t = t.contiguous()
        count = torch.tensor([len(t)], dtype=torch.int64, device=self.device)
        counts = [torch.zeros_like(count) for _ in range(self.world_size)]
        dist.all_gather(counts, count)
        sizes = [int(c.item()) for c in counts]
        longest = max(sizes)
        padded = torch.cat([t, t.new_zeros((longest - len(t), *t.shape[1:]))]) \
            if len(t) < longest else t
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (rank 0's weights broadcast to all ranks)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def _leave() -> None:
    """Leave the process group that :func:`setup` joined (at the process's exit), all ranks
    together: a rank that tears its connections down while another is still on its way out
    aborts that one in gloo's threads. After an uncaught exception there is no waiting for the
    others (they may never come: torchrun stops them)."""
    if not dist.is_initialized():
        return
    if getattr(sys, "last_value", None) is None:
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=60))
            else:
                dist.barrier()
        except Exception:  # a rank already gone (torchrun reports it): leave anyway
            pass
    dist.destroy_process_group()


def setup(device: torch.device) -> Distributed:
    """Join the process group that torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), or the one already initialized; on CUDA
    the device becomes ``cuda:LOCAL_RANK``. A clear ``ValueError`` when there is none."""
    if not dist.is_available():
        raise ValueError("strategy='ddp' needs torch.distributed, which this build of torch "
                         "lacks")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", device.index or 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                   if k not in os.environ]
        if missing:
            raise ValueError(f"{LAUNCH}; {', '.join(missing)} not set here")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)  # joined here, left here: a process that exits with the
        # group still up aborts in gloo's threads ("terminate called without an active
        # exception"), and torchrun reports the run as failed
    backend = str(dist.get_backend())
    if device.type == "cuda" and backend != "nccl":
        raise ValueError(f"the process group uses {backend!r}; on CUDA use 'nccl'")
    if device.type != "cuda" and backend == "nccl":
        raise ValueError("the process group uses 'nccl', which needs device='cuda'; on the "
                         "CPU use 'gloo'")
    return Distributed(dist.get_rank(), dist.get_world_size(), backend, device)
