"""Fixtures shared by the test modules: the digits split and a small MLP factory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from optimlab.data import holdout, load, standardize
from optimlab.data.splits import Split


@pytest.fixture(scope="session")
def digits_split() -> Split:
    """scikit-learn's digits, 80/10/10 stratified holdout (seed 0), standardized on train."""
    split, _ = standardize(holdout(load("digits"), seed=0))
    return split


def make_mlp(inputs: int = 64, hidden: int = 32, outputs: int = 10, *, dropout: float = 0.0,
             bn: bool = False, seed: int = 0) -> torch.nn.Sequential:
    """Linear → [BatchNorm1d] → ReLU → [Dropout] → Linear, initialized from ``seed``."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = [torch.nn.Linear(inputs, hidden)]
    if bn:
        layers.append(torch.nn.BatchNorm1d(hidden))
    layers.append(torch.nn.ReLU())
    if dropout:
        layers.append(torch.nn.Dropout(dropout))
    layers.append(torch.nn.Linear(hidden, outputs))
    return torch.nn.Sequential(*layers)


@pytest.fixture
def mlp() -> Callable[..., torch.nn.Sequential]:
    """The MLP factory :func:`make_mlp` (``mlp(hidden=16, bn=True)``, …)."""
    return make_mlp


@pytest.fixture(scope="session")
def ray_cluster():  # type: ignore[no-untyped-def]
    """A local Ray cluster of 2 CPUs (no dashboard), started once for the test process and
    shared by the Ray tests; skipped without Ray (pip install -e ".[ray]")."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e \".[ray]\", "
                                            "or .[dev] as ./run-tests does)")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


SMALL_SEARCH = """
name = "{name}"
[data]
dataset = "iris"
val = 0.3
[train]
model = {{ type = "mlp", hidden = [8] }}
epochs = {epochs}
batch_size = 16
optimizer = "sgd"
[search]
lr = {{ low = 0.001, high = 0.3, log = true }}
batch_size = [8, 16, 32]
[tune]
trials = {trials}
sampler = "tpe"
startup = 2
confirm = 0
"""


@pytest.fixture
def small_search() -> Callable[..., str]:
    """A small TPE search on iris as TOML: ``small_search(epochs, trials, name="k")``."""

    def text(epochs: int, trials: int, name: str = "k") -> str:
        return SMALL_SEARCH.format(epochs=epochs, trials=trials, name=name)

    return text

