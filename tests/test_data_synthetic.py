"""Bundled and synthetic datasets: the catalog, determinism per seed, and learnable signals."""

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from optimlab import data

IN_MEMORY = ["digits", "iris", "wine", "breast_cancer", "diabetes", "moons", "spirals", "blobs",
             "cat_vs_dog", "linear", "ill_conditioned"]


def test_available_lists_every_name_with_shape():
    cat = data.available()
    for name in [*IN_MEMORY, "mnist", "fashion_mnist", "cifar10", "csv", "npz"]:
        assert name in cat
        assert {"shape", "task", "n_classes", "description"} <= set(cat[name])
    assert cat["cat_vs_dog"]["shape"] == (1024, 1000)
    assert cat["mnist"]["shape"] == (60000, 1, 28, 28)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_load_matches_catalog(name):
    info = data.available()[name]
    ds = data.load(name)
    assert tuple(ds.X.shape) == info["shape"]
    assert ds.task == info["task"] and ds.n_classes == info["n_classes"]
    assert ds.name == name and ds.X.dtype == torch.float32


@pytest.mark.parametrize("name", ["moons", "spirals", "blobs", "cat_vs_dog", "linear",
                                  "ill_conditioned"])
def test_synthetic_is_deterministic_per_seed(name):
    a, b, c = data.load(name, seed=1), data.load(name, seed=1), data.load(name, seed=2)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    assert not torch.equal(a.X, c.X)


def test_unknown_name_and_argument():
    with pytest.raises(ValueError, match="did you mean 'moons'"):
        data.load("moon")
    with pytest.raises(ValueError, match="unknown arguments"):
        data.load("iris", seed=0)


def test_spirals_has_k_arms():
    ds = data.spirals(n=301, k=5, seed=0)
    assert ds.n_classes == 5 and torch.bincount(ds.y).tolist() == [61, 60, 60, 60, 60]


def test_cat_vs_dog_is_balanced_and_learnable():
    ds = data.cat_vs_dog(n=1024, seed=0)
    assert tuple(ds.X.shape) == (1024, 1000) and torch.bincount(ds.y).tolist() == [512, 512]
    split = data.holdout(ds, val=0.0, test=0.25, seed=0)
    Xtr, ytr = split.train.numpy()
    Xte, yte = split.test.numpy()
    acc = LogisticRegression(C=0.01, max_iter=500).fit(Xtr, ytr).score(Xte, yte)
    assert acc > 0.75  # chance is 0.5; Bayes accuracy ≈ 0.93
    assert ds.info["bayes_accuracy"] > acc - 0.05


def test_linear_exposes_true_weights():
    ds = data.linear(n=500, n_features=4, noise=0.01, seed=0)
    w_hat = torch.linalg.lstsq(ds.X, ds.y.unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(w_hat, ds.info["weights"], atol=1e-2)


def test_ill_conditioned_has_the_chosen_condition_number():
    ds = data.ill_conditioned(n=400, n_features=8, condition=1000.0, seed=0)
    s = torch.linalg.svdvals(ds.X.double())
    assert float(s[0] / s[-1]) == pytest.approx(1000.0, rel=1e-3)
    assert ds.info["hessian_condition"] == pytest.approx(1e6)
    # the true weights leave only the noise (0.01²); the weak directions hide w itself
    residual = ds.y - ds.X @ ds.info["weights"]
    assert float(residual.pow(2).mean()) == pytest.approx(1e-4, rel=0.3)


def test_bundled_classes_named():
    ds = data.load("iris")
    assert ds.info["classes"] == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names is not None and len(ds.feature_names) == 4
