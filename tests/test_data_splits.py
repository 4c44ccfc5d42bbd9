"""Holdout (stratified), time split, k-fold and train-only standardization."""

import numpy as np
import pytest
import torch

from optimlab import data


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "spirals", "breast_cancer"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_holdout_keeps_class_proportions(name, seed):
    ds = data.load(name)
    split = data.holdout(ds, seed=seed)
    full = torch.bincount(ds.y, minlength=ds.n_classes).double()
    sizes = [len(p) for p in split]
    assert sizes[1] == sizes[2] == round(0.1 * len(ds)) and sum(sizes) == len(ds)
    for part in split:
        counts = torch.bincount(part.y, minlength=ds.n_classes).double()
        expected = full * len(part) / len(ds)
        assert float((counts - expected).abs().max()) < 1.0  # within one sample per class


def test_holdout_is_a_partition_and_seeded():
    ds = data.load("moons")
    row_id = torch.arange(len(ds), dtype=torch.float32).unsqueeze(1)
    tagged = data.Dataset(torch.cat([row_id, ds.X], dim=1), ds.y, "binary", 2)
    a = data.holdout(tagged, seed=3)
    b = data.holdout(tagged, seed=3)
    c = data.holdout(tagged, seed=4)
    ids = torch.cat([p.X[:, 0] for p in a]).long().sort().values
    assert torch.equal(ids, torch.arange(len(ds)))
    assert torch.equal(a.val.X, b.val.X) and not torch.equal(a.val.X, c.val.X)


def test_holdout_regression_zero_parts_and_errors():
    ds = data.load("linear")
    split = data.holdout(ds, val=0.2, test=0.0)
    assert split.test is None and len(split.val) == 200 and len(split.train) == 800
    with pytest.raises(ValueError, match="stratify=True needs class labels"):
        data.holdout(ds, stratify=True)
    with pytest.raises(ValueError, match="leaves nothing to train on"):
        data.holdout(ds, val=0.5, test=0.5)
    with pytest.raises(ValueError, match="val="):
        data.holdout(ds, val=-0.1)


def test_time_split_keeps_order():
    X = torch.arange(50, dtype=torch.float32).reshape(50, 1)
    ds = data.Dataset(X, X[:, 0] * 2, "regression")
    split = data.time_split(ds, val=0.2, test=0.1)
    assert [len(p) for p in split] == [35, 10, 5]
    order = torch.cat([p.X[:, 0] for p in split])
    assert torch.equal(order, X[:, 0])


@pytest.mark.parametrize("stratified", [None, False])
def test_kfold_partitions_the_data(stratified):
    ds = data.load("wine")
    vals = []
    folds = list(data.kfold(ds, k=5, seed=0, stratified=stratified))
    assert len(folds) == 5
    key = ds.X[:, 0] * 1000 + ds.X[:, 1]  # rows of wine are distinct in these two columns
    for train, val in folds:
        assert len(train) + len(val) == len(ds)
        tr = set((train.X[:, 0] * 1000 + train.X[:, 1]).tolist())
        va = (val.X[:, 0] * 1000 + val.X[:, 1]).tolist()
        assert not tr & set(va)
        vals.extend(va)
    assert sorted(vals) == sorted(key.tolist())
    with pytest.raises(ValueError, match="k="):
        list(data.kfold(ds, k=1))


def test_kfold_stratified_balances_classes():
    ds = data.load("iris")
    for _, val in data.kfold(ds, k=5, seed=1):
        assert torch.bincount(val.y).tolist() == [10, 10, 10]


def test_standardize_uses_train_statistics_only():
    ds = data.load("wine")
    split, scaler = data.standardize(data.holdout(ds, seed=0))
    assert torch.allclose(split.train.X.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(split.train.X.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert float(split.val.X.mean(0).abs().max()) > 1e-3  # not refitted on val
    raw = data.holdout(ds, seed=0)
    assert torch.allclose(scaler["mean"], raw.train.X.mean(0), atol=1e-3)
    expected_val = (raw.val.X - scaler["mean"]) / scaler["std"]
    assert torch.allclose(split.val.X, expected_val, atol=1e-4)
    assert torch.equal(split.val.y, raw.val.y)


def test_standardize_constant_features_and_images():
    X = torch.randn(40, 2, 3, 3)
    X[:, 1] = 5.0  # constant channel
    ds = data.Dataset(X, torch.zeros(40, dtype=torch.int64), "multiclass", 1)
    split, info = data.standardize(data.holdout(ds, stratify=False))
    for part in split:
        assert part.X.shape[1:] == (2, 3, 3) and torch.isfinite(part.X).all()
    assert torch.equal(split.train.X[:, 1], torch.zeros(len(split.train), 3, 3))
    assert info["std"].shape == (2, 3, 3)
    np.testing.assert_allclose(info["std"][1].numpy(), 1.0)
