"""Data parallel training (``Trainer(strategy="ddp")``) on the CPU with gloo, launched by
torchrun from the test: 2 processes reproduce one process's weights (same seed, same global
batch, uneven shards included) with optimlab's Adam; every rank holds the same history; only
rank 0 writes; a checkpoint written under DDP resumes in one process and the other way round.

NCCL (CUDA) is the same code with another backend and device; it needs GPUs, so it is not run
here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from optimlab.data import holdout, load, standardize
from optimlab.data.batcher import Batcher, shard_bounds
from optimlab.train import Trainer
from optimlab.train.callbacks import Callback, CSVLogger, ModelCheckpoint
from optimlab.train.distributed import rank_seed

BATCH = 64  # 1437 training rows: 22 batches of 64 (32 + 32) and one of 29 (15 + 14)


def digits() -> tuple:
    split, _ = standardize(holdout(load("digits"), seed=0))
    return split.train, split.val


def trainer(**kwargs: object) -> Trainer:
    return Trainer({"type": "mlp", "hidden": [32]}, optimizer="adam", lr=3e-3,
                   metrics=["accuracy"], seed=7, progress=False, **kwargs)  # type: ignore[arg-type]


SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from test_train_distributed import BATCH, digits, trainer
    from optimlab.train.callbacks import Callback, CSVLogger, ModelCheckpoint

    torch.set_num_threads(1)
    out = sys.argv[2]
    rank = int(os.environ["RANK"])
    train, val = digits()


    class Mark(Callback):  # a writer: says which ranks ran it
        main_only = True

        def on_epoch_close(self, state):
            with open(f"{out}/wrote-rank{rank}", "a") as fh:
                fh.write(f"{state.epoch}\\n")


    # A: 2 epochs under DDP with a checkpoint and a logger, then on to 4 from that checkpoint
    first = trainer(strategy="ddp", callbacks=[ModelCheckpoint(f"{out}/ddp-ckpt"),
                                                CSVLogger(f"{out}/ddp-log.csv"), Mark()])
    first.fit(train, val, epochs=2, batch_size=BATCH)
    again = trainer(strategy="ddp", callbacks=[ModelCheckpoint(f"{out}/ddp-ckpt-2"),
                                                CSVLogger(f"{out}/ddp-log-2.csv"), Mark()])
    history = again.fit(train, val, epochs=4, batch_size=BATCH,
                        resume=f"{out}/ddp-ckpt/last.pt")
    torch.save(again.model.state_dict(), f"{out}/a-rank{rank}.pt")
    with open(f"{out}/history-rank{rank}.json", "w") as fh:
        json.dump({"epochs": [{k: v for k, v in e.items() if k != "time"}
                              for e in history.epochs], "steps": history.steps}, fh)
    scores = again.evaluate(val)

    # B: a single-process checkpoint (2 epochs) continued to 4 under DDP
    other = trainer(strategy="ddp", callbacks=[ModelCheckpoint(f"{out}/from-one-2")])
    other.fit(train, val, epochs=4, batch_size=BATCH, resume=f"{out}/one-ckpt/last.pt")
    torch.save(other.model.state_dict(), f"{out}/b-rank{rank}.pt")
    if rank == 0:
        with open(f"{out}/scores.json", "w") as fh:
            json.dump(scores, fh)
""")


def close(a: dict, b: dict) -> bool:
    return all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


def test_two_processes_reproduce_one_and_checkpoints_move_between_them(tmp_path) -> None:
    torch.set_num_threads(1)
    train, val = digits()
    one = trainer()
    reference = one.fit(train, val, epochs=4, batch_size=BATCH)
    half = trainer(callbacks=[ModelCheckpoint(tmp_path / "one-ckpt")])
    half.fit(train, val, epochs=2, batch_size=BATCH)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", str(script), str(Path(__file__).parent),
                          str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    weights = one.model.state_dict()
    a0, a1 = (torch.load(tmp_path / f"a-rank{r}.pt") for r in (0, 1))
    b0, b1 = (torch.load(tmp_path / f"b-rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a0[k], a1[k]) and torch.equal(b0[k], b1[k]) for k in a0)  # in step
    assert close(a0, weights) and close(b0, weights)  # 2 processes = 1, to float rounding
    assert not close(weights, half.model.state_dict())  # (2 more epochs do move the weights)

    # every rank holds the same history: the global batches' losses and metrics
    h0, h1 = (json.loads((tmp_path / f"history-rank{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1
    for mine, ref in zip(h0["epochs"], reference.epochs, strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert mine[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-5), key
    assert h0["steps"]["loss"] == pytest.approx(reference.steps["loss"], rel=1e-4, abs=1e-6)
    assert h0["steps"]["grad_norm"] == pytest.approx(reference.steps["grad_norm"], rel=1e-3)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["accuracy"] == pytest.approx(one.evaluate(val)["accuracy"], abs=1e-9)

    # only rank 0 ran the writers
    assert (tmp_path / "wrote-rank0").read_text().split() == ["0", "1", "2", "3"]
    assert not (tmp_path / "wrote-rank1").exists()
    assert [line.split(",")[0] for line in
            (tmp_path / "ddp-log.csv").read_text().splitlines()] == ["epoch", "0", "1"]

    # the DDP checkpoint (epoch 2) resumes in one process and ends where one process ends
    mark = type("Mark", (Callback,), {})()  # in the place of the script's writer, same name
    resumed = trainer(callbacks=[ModelCheckpoint(tmp_path / "one-more"),
                                 CSVLogger(tmp_path / "one-more.csv"), mark])
    resumed.fit(train, val, epochs=4, batch_size=BATCH,
                resume=tmp_path / "ddp-ckpt" / "last.pt")
    assert close(resumed.model.state_dict(), weights)
    assert [e["epoch"] for e in resumed.history.epochs] == [0, 1, 2, 3]


def test_shards_of_every_global_batch_cover_it_in_order() -> None:
    X = torch.arange(23.0)[:, None]
    y = torch.arange(23)
    for world in (2, 3):
        one = Batcher(X, y, 8, seed=5)
        parts = [Batcher(X, y, 8, seed=5, rank=r, world_size=world) for r in range(world)]
        for epoch in range(3):
            together = [torch.cat(batch) for batch in zip(
                *[[yb for _, yb in p.epoch(epoch)] for p in parts], strict=True)]
            assert [t.tolist() for t in together] == [yb.tolist() for _, yb in
                                                       one.epoch(epoch)]
    assert [shard_bounds(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [len(t) for t in torch.tensor_split(torch.arange(7), 3)] == [3, 2, 2]
    with pytest.raises(ValueError, match=r"last batch of an epoch \(7 of 23 rows\) has fewer "
                                         r"rows than the 8 processes"):
        Batcher(X, y, 8, rank=0, world_size=8)
    assert rank_seed(0, 1, 0) != rank_seed(0, 1, 1) != rank_seed(0, 2, 1)


def test_ddp_outside_torchrun_says_how_to_launch(monkeypatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    train, val = digits()
    with pytest.raises(ValueError, match="torchrun --nproc-per-node 2"):
        trainer(strategy="ddp").fit(train, val, epochs=1)
    with pytest.raises(ValueError, match="strategy"):
        trainer(strategy="horovod")


LEAVING = textwrap.dedent("""
    import os, sys
    from optimlab.train import Trainer
    from optimlab.train.callbacks import Callback
    from optimlab.data import load

    class Fail(Callback):  # rank 1 fails while rank 0 goes on into the next epoch's collectives
        def on_epoch_end(self, state):
            if sys.argv[1] == "raise" and os.environ["RANK"] == "1":
                raise RuntimeError("rank 1 fails in training")

    Trainer({"type": "mlp", "hidden": [8]}, seed=0, strategy="ddp", progress=False,
            callbacks=[Fail()]).fit(load("iris"), epochs=3, batch_size=16)
""")


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_ranks_leave_the_group_together_or_fail_fast(tmp_path, how: str) -> None:
    """At exit every rank waits for the others before it leaves the group (one that left
    first made another abort in gloo's threads); a rank that raised does not wait, and the run
    fails at once with its error instead of hanging."""
    script = tmp_path / "leave.py"
    script.write_text(LEAVING)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", str(script), how],
                         capture_output=True, text=True, env=env, timeout=300)
    if how == "exit":
        assert run.returncode == 0, run.stderr[-3000:]
        assert "terminate called" not in run.stderr
    else:
        assert run.returncode != 0
        assert "rank 1 fails in training" in run.stderr
        assert time.perf_counter() - start < 45  # not the 60 s of a barrier at exit
