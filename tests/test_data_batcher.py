"""The device-resident Batcher: batch counts, coverage, reproducible shuffling, DataLoaders."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from optimlab import data
from optimlab.data import Batcher, as_batches, batches_per_epoch


def ids_batcher(n=150, **kwargs):
    """X row i holds the value i, so batches reveal which samples they contain."""
    X = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    return Batcher(X, torch.arange(n), **kwargs)


def order(batcher, e):
    return torch.cat([yb for _, yb in batcher.epoch(e)])


@pytest.mark.parametrize(("batch_size", "expected"), [(1, 1024), (32, 32), (1024, 1)])
def test_course_batch_sizes_on_cat_vs_dog(batch_size, expected):
    ds = data.load("cat_vs_dog", n=1024, seed=0)
    b = Batcher(ds.X, ds.y, batch_size, seed=0)
    assert len(b) == expected == batches_per_epoch(1024, batch_size, False)
    batches = list(b.epoch(0))
    assert len(batches) == expected
    assert all(xb.shape == (batch_size, 1000) and yb.shape == (batch_size,) for xb, yb in batches)


def test_full_batch_is_one_batch_of_everything():
    b = ids_batcher(150, batch_size=None)
    (xb, yb), = list(b.epoch(3))
    assert len(b) == 1 and torch.equal(yb, torch.arange(150)) and xb.shape == (150, 3)


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_sample_once_per_epoch(drop_last):
    b = ids_batcher(150, batch_size=32, drop_last=drop_last, seed=5)
    for e in range(3):
        sizes = [len(yb) for _, yb in b.epoch(e)]
        seen = order(b, e)
        if drop_last:
            assert sizes == [32] * 4 and len(b) == 4
            assert len(set(seen.tolist())) == 128  # no repeats; 22 dropped this epoch
        else:
            assert sizes == [32, 32, 32, 32, 22] and len(b) == 5
            assert torch.equal(seen.sort().values, torch.arange(150))
        for xb, yb in b.epoch(e):
            assert torch.equal(xb[:, 0].long(), yb)  # rows stay paired with labels


def test_shuffling_is_reproducible_per_seed_and_epoch():
    a, again, other = (ids_batcher(batch_size=16, seed=s) for s in (1, 1, 2))
    assert not torch.equal(order(a, 0), order(a, 1))  # differs between epochs
    assert torch.equal(order(a, 7), order(again, 7))  # same seed + epoch → same order
    assert torch.equal(order(a, 7), order(a, 7))  # replayable without state
    assert not torch.equal(order(a, 0), order(other, 0))  # seeds differ
    assert not torch.equal(order(a, 0), torch.arange(150))


def test_plain_iteration_advances_epochs_and_resumes():
    b = ids_batcher(batch_size=50, seed=0)
    first = torch.cat([yb for _, yb in b])
    second = torch.cat([yb for _, yb in b])
    assert torch.equal(first, order(b, 0)) and torch.equal(second, order(b, 1))
    resumed = ids_batcher(batch_size=50, seed=0)
    resumed.set_epoch(1)
    assert torch.equal(torch.cat([yb for _, yb in resumed]), second)


def test_no_shuffle_gives_views_in_order():
    b = ids_batcher(10, batch_size=4, shuffle=False)
    assert [yb.tolist() for _, yb in b] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    xb, _ = next(iter(b.epoch(0)))
    assert xb.data_ptr() == b.X.data_ptr()


def test_batch_size_errors():
    with pytest.raises(ValueError, match="batch_size=200 is larger than the 150 training samples "
                                         "and drop_last=True would leave no batch; lower it or "
                                         "set drop_last=False"):
        ids_batcher(150, batch_size=200, drop_last=True)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            ids_batcher(150, batch_size=bad)
    b = ids_batcher(150, batch_size=200)  # without drop_last: one batch of all 150
    assert len(b) == 1 and len(next(iter(b))[0]) == 150
    with pytest.raises(ValueError, match="150 samples but y has 149"):
        Batcher(torch.zeros(150, 2), torch.zeros(149), 10)


def test_batches_per_epoch():
    assert batches_per_epoch(1024, 1, False) == 1024
    assert batches_per_epoch(150, 32, False) == 5 and batches_per_epoch(150, 32, True) == 4
    assert batches_per_epoch(150, None, True) == 1 and batches_per_epoch(0, 8, False) == 0


def test_device_argument_moves_tensors():
    b = Batcher(torch.zeros(4, 2), torch.zeros(4), 2, device="cpu")
    assert b.device.type == "cpu" and all(xb.device.type == "cpu" for xb, _ in b)


def test_as_batches_accepts_datasets_pairs_batchers_and_dataloaders():
    ds = data.load("iris")
    assert isinstance(as_batches(ds, 32), Batcher) and len(as_batches(ds, 32)) == 5
    assert isinstance(as_batches((ds.X, ds.y), None), Batcher)
    b = Batcher(ds.X, ds.y, 10)
    assert as_batches(b) is b
    loader = DataLoader(TensorDataset(ds.X, ds.y), batch_size=50, shuffle=False)
    assert as_batches(loader) is loader
    moved = as_batches(loader, device="cpu")
    assert len(moved) == 3 and sum(len(yb) for _, yb in moved) == 150
    with pytest.raises(ValueError, match="makes its own batches"):
        as_batches(loader, 32)
    with pytest.raises(ValueError, match="cannot make batches"):
        as_batches(42)
