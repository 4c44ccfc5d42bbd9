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

from __future__ import annotations

from optimlab._lazy import lazy_names

#: public name → the module that defines it. Imported on first use (PEP 562), so that listing
#: the datasets (``optimlab datasets``, spec validation) loads neither torch nor scikit-learn.
_HOME = {
    **dict.fromkeys(["Batcher", "DeviceLoader", "as_batches", "batches_per_epoch", "epoch_seed",
                     "n_batches"], "batcher"),
    "load_bundled": "bundled",
    **dict.fromkeys(["available", "load"], "catalog"),
    **dict.fromkeys(["Dataset", "Task", "encode_labels", "infer_task"], "dataset"),
    **dict.fromkeys(["load_csv", "load_npz"], "files"),
    **dict.fromkeys(["SafeUnpickler", "UnsafePickleError", "load_cifar10", "load_fashion_mnist",
                     "load_mnist", "read_cifar_batch", "read_idx"], "images"),
    **dict.fromkeys(["Split", "holdout", "kfold", "standardize", "time_split"], "splits"),
    **dict.fromkeys(["blobs", "cat_vs_dog", "ill_conditioned", "linear", "moons", "spirals"],
                    "synthetic"),
}

__all__ = sorted(_HOME)


__getattr__ = lazy_names(__name__, {name: f"optimlab.data.{home}" for name, home in _HOME.items()})


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
