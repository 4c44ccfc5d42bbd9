"""optimlab.data — datasets, splits and the device-resident mini-batch ``Batcher``.

>>> from optimlab import data
>>> ds = data.load("cat_vs_dog", n=1024, seed=0)          # the course's 1024 × 1000 problem
>>> split, scaler = data.standardize(data.holdout(ds, seed=0))
>>> batches = data.Batcher(split.train.X, split.train.y, batch_size=32, seed=0)
>>> for xb, yb in batches.epoch(0): ...                     # any epoch, replayable from (seed, e)

``available()`` lists every name ``load`` accepts; ``load_csv``, ``load_npz``, ``load_mnist``,
``load_fashion_mnist`` and ``load_cifar10`` read local files; ``as_batches`` turns a Dataset,
an ``(X, y)`` pair, a Batcher or a ``DataLoader`` into what the Trainer iterates.
"""

from optimlab.data.batcher import (
    Batcher,
    DeviceLoader,
    as_batches,
    batches_per_epoch,
    epoch_seed,
    n_batches,
)
from optimlab.data.bundled import load_bundled
from optimlab.data.catalog import available, load
from optimlab.data.dataset import Dataset, Task, encode_labels, infer_task
from optimlab.data.files import load_csv, load_npz
from optimlab.data.images import (
    SafeUnpickler,
    UnsafePickleError,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    read_cifar_batch,
    read_idx,
)
from optimlab.data.splits import Split, holdout, kfold, standardize, time_split
from optimlab.data.synthetic import blobs, cat_vs_dog, ill_conditioned, linear, moons, spirals

__all__ = [
    "Batcher", "Dataset", "DeviceLoader", "SafeUnpickler", "Split", "Task", "UnsafePickleError",
    "as_batches", "available", "batches_per_epoch", "blobs", "cat_vs_dog", "encode_labels",
    "epoch_seed", "holdout", "ill_conditioned", "infer_task", "kfold", "linear", "load",
    "load_bundled", "load_cifar10", "load_csv", "load_fashion_mnist", "load_mnist", "load_npz",
    "moons", "n_batches", "read_cifar_batch", "read_idx", "spirals", "standardize",
    "time_split",
]
