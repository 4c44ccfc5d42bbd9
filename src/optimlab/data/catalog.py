"""One entry point for every dataset by name: ``load(name, **kwargs)`` and ``available()``."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from optimlab.data import files, images, synthetic
from optimlab.data.bundled import BUNDLED, load_bundled
from optimlab.data.dataset import Dataset

# name → (loader, shape with the default arguments (None: depends on the file), task,
#         n_classes, description, kind)
_Entry = tuple[Callable[..., Dataset], tuple[int, ...] | None, str | None, int | None, str, str]

_BUNDLED_SHAPES = {"digits": ((1797, 64), 10), "iris": ((150, 4), 3), "wine": ((178, 13), 3),
                   "breast_cancer": ((569, 30), 2), "diabetes": ((442, 10), None)}


def _bundled_entry(name: str) -> _Entry:
    shape, n_classes = _BUNDLED_SHAPES[name]
    _, task, description = BUNDLED[name]

    def loader() -> Dataset:
        return load_bundled(name)

    return loader, shape, task, n_classes, description, "bundled"


_CATALOG: dict[str, _Entry] = {name: _bundled_entry(name) for name in BUNDLED}
_CATALOG.update({
    "moons": (synthetic.moons, (1000, 2), "binary", 2,
              "two interleaving half circles with Gaussian noise", "synthetic"),
    "spirals": (synthetic.spirals, (1000, 2), "multiclass", 3,
                "k interleaved spiral arms (k=3 by default), one class per arm", "synthetic"),
    "blobs": (synthetic.blobs, (1000, 2), "multiclass", 3,
              "isotropic Gaussian clusters, one class per center", "synthetic"),
    "cat_vs_dog": (synthetic.cat_vs_dog, (1024, 1000), "binary", 2,
                   "the course's mini-batch example: 1024 samples × 1000 features, class means "
                   "±(separation/2)·w in a random informative subspace plus N(0, I) noise",
                   "synthetic"),
    "linear": (synthetic.linear, (1000, 10), "regression", None,
               "y = X·w + b + noise; true w in info['weights']", "synthetic"),
    "ill_conditioned": (synthetic.ill_conditioned, (1000, 10), "regression", None,
                        "linear regression whose design matrix has a chosen condition number "
                        "(a ravine for gradient descent)", "synthetic"),
    "mnist": (images.load_mnist, (60000, 1, 28, 28), "multiclass", 10,
              "handwritten digits from local IDX files; needs root=", "files"),
    "fashion_mnist": (images.load_fashion_mnist, (60000, 1, 28, 28), "multiclass", 10,
                      "clothing images from local IDX files; needs root=", "files"),
    "cifar10": (images.load_cifar10, (50000, 3, 32, 32), "multiclass", 10,
                "colour images from local python batches; needs root=", "files"),
    "csv": (files.load_csv, None, None, None,
            "a local CSV table; needs path= and target=", "files"),
    "npz": (files.load_npz, None, None, None,
            "a local numpy .npz archive with arrays X and y; needs path=", "files"),
})


def available() -> dict[str, dict[str, Any]]:
    """Every name ``load`` accepts → ``shape`` (with default arguments; images: the train
    split; ``None`` for tables read from a file), ``task``, ``n_classes``, ``description``,
    ``kind`` (``"bundled"``, ``"synthetic"`` or ``"files"``) and ``parameters`` (the keyword
    arguments ``load`` passes on, with their defaults)."""
    out: dict[str, dict[str, Any]] = {}
    for name, (loader, shape, task, n_classes, description, kind) in _CATALOG.items():
        params = {p.name: (None if p.default is inspect.Parameter.empty else p.default)
                  for p in inspect.signature(loader).parameters.values()}
        out[name] = {"shape": shape, "task": task, "n_classes": n_classes,
                     "description": description, "kind": kind, "parameters": params}
    return out


def load(name: str, **kwargs: Any) -> Dataset:
    """Load a dataset by name; ``kwargs`` go to its generator or loader.

    ``load("cat_vs_dog", n=1024, seed=3)``, ``load("digits")``,
    ``load("mnist", root="data/", split="test")``, ``load("csv", path="t.csv", target="label")``.
    See ``available()`` for the names and their parameters.
    """
    if name not in _CATALOG:
        close = difflib.get_close_matches(name, list(_CATALOG), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown dataset {name!r}; {hint}choose one of {sorted(_CATALOG)}")
    loader = _CATALOG[name][0]
    accepted = inspect.signature(loader).parameters
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"load({name!r}) got unknown arguments {unknown}; "
                         f"it accepts {list(accepted) or 'none'}")
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"load({name!r}): {err}; it needs {list(accepted)}") from err
    return loader(**kwargs)
