"""What ``Trainer.fit`` and ``evaluate`` accept as data, turned into one :class:`Dataset`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.data.dataset import Dataset

Data = Dataset | tuple[Any, Any] | Iterable[tuple[Tensor, Tensor]]


def as_dataset(data: Data, label: str) -> Dataset:
    """Accept a Dataset, a pair ``(X, y)`` of tensors/arrays, or an iterable of batches."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return Dataset.from_arrays(data[0], data[1], name=label)
    if isinstance(data, Iterable):
        xs, ys = [], []
        for batch in data:
            if not (isinstance(batch, list | tuple) and len(batch) == 2):
                raise ValueError(f"{label}: batches must be (x, y) pairs; got {type(batch)}")
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError(f"{label}: the iterable gave no batches")
        return Dataset.from_arrays(torch.cat(xs), torch.cat(ys), name=label)
    raise ValueError(f"{label}: expected an optimlab Dataset, an (X, y) pair or an iterable of "
                     f"(x, y) batches; got {type(data).__name__}")
