"""One entry point for every dataset by name: ``load(name, **kwargs)`` and ``available()``.

The catalog names each loader as ``"module:function"`` and reads its parameters from the
source (``ast``), so listing the datasets (``optimlab datasets``, spec validation) imports
neither torch nor scikit-learn; ``load`` imports the loader it calls.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from optimlab.data.bundled import BUNDLED, load_bundled


class _Entry(NamedTuple):
    loader: str                       # "optimlab.data.synthetic:moons"; "" for a bundled set
    shape: tuple[int, ...] | None     # with the default arguments (None: depends on the file)
    task: str | None
    n_classes: int | None
    description: str
    kind: str                         # "bundled", "synthetic" or "files"


_BUNDLED_SHAPES = {"digits": ((1797, 64), 10), "iris": ((150, 4), 3), "wine": ((178, 13), 3),
                   "breast_cancer": ((569, 30), 2), "diabetes": ((442, 10), None)}
_SYN, _FILES, _IMAGES = "optimlab.data.synthetic", "optimlab.data.files", "optimlab.data.images"

_CATALOG: dict[str, _Entry] = {
    name: _Entry("", _BUNDLED_SHAPES[name][0], task, _BUNDLED_SHAPES[name][1], description,
                 "bundled") for name, (_, task, description) in BUNDLED.items()}
_CATALOG.update({
    "moons": _Entry(f"{_SYN}:moons", (1000, 2), "binary", 2,
                    "two interleaving half circles with Gaussian noise", "synthetic"),
    "spirals": _Entry(f"{_SYN}:spirals", (1000, 2), "multiclass", 3,
                      "k interleaved spiral arms (k=3 by default), one class per arm",
                      "synthetic"),
    "blobs": _Entry(f"{_SYN}:blobs", (1000, 2), "multiclass", 3,
                    "isotropic Gaussian clusters, one class per center", "synthetic"),
    "cat_vs_dog": _Entry(f"{_SYN}:cat_vs_dog", (1024, 1000), "binary", 2,
                         "the course's mini-batch example: 1024 samples × 1000 features, class "
                         "means ±(separation/2)·w in a random informative subspace plus N(0, I) "
                         "noise", "synthetic"),
    "linear": _Entry(f"{_SYN}:linear", (1000, 10), "regression", None,
                     "y = X·w + b + noise; true w in info['weights']", "synthetic"),
    "ill_conditioned": _Entry(f"{_SYN}:ill_conditioned", (1000, 10), "regression", None,
                              "linear regression whose design matrix has a chosen condition "
                              "number (a ravine for gradient descent)", "synthetic"),
    "mnist": _Entry(f"{_IMAGES}:load_mnist", (60000, 1, 28, 28), "multiclass", 10,
                    "handwritten digits from local IDX files; needs root=", "files"),
    "fashion_mnist": _Entry(f"{_IMAGES}:load_fashion_mnist", (60000, 1, 28, 28), "multiclass",
                            10, "clothing images from local IDX files; needs root=", "files"),
    "cifar10": _Entry(f"{_IMAGES}:load_cifar10", (50000, 3, 32, 32), "multiclass", 10,
                      "colour images from local python batches; needs root=", "files"),
    "csv": _Entry(f"{_FILES}:load_csv", None, None, None,
                  "a local CSV table; needs path= and target=", "files"),
    "npz": _Entry(f"{_FILES}:load_npz", None, None, None,
                  "a local numpy .npz archive with arrays X and y; needs path=", "files"),
})


@functools.cache
def _parameters(loader: str) -> dict[str, Any]:
    """The keyword parameters of ``"module:function"`` with their defaults (None when it has
    none, or when the default is not a literal), read from the module's source."""
    if not loader:
        return {}
    module, _, function = loader.partition(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, loader
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    pairs = [*zip(positional, defaults, strict=True),
             *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    return {a.arg: _literal(d) for a, d in pairs}


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _function(loader: str) -> Callable[..., Any]:
    module, _, function = loader.partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def available() -> dict[str, dict[str, Any]]:
    """Every name ``load`` accepts → ``shape`` (with default arguments; images: the train
    split; ``None`` for tables read from a file), ``task``, ``n_classes``, ``description``,
    ``kind`` (``"bundled"``, ``"synthetic"`` or ``"files"``) and ``parameters`` (the keyword
    arguments ``load`` passes on, with their defaults)."""
    return {name: {"shape": e.shape, "task": e.task, "n_classes": e.n_classes,
                   "description": e.description, "kind": e.kind,
                   "parameters": dict(_parameters(e.loader))}
            for name, e in _CATALOG.items()}


def load(name: str, **kwargs: Any) -> Any:
    """Load a dataset by name (an :class:`~optimlab.data.dataset.Dataset`); ``kwargs`` go to its
    generator or loader.

    ``load("cat_vs_dog", n=1024, seed=3)``, ``load("digits")``,
    ``load("mnist", root="data/", split="test")``, ``load("csv", path="t.csv", target="label")``.
    See ``available()`` for the names and their parameters.
    """
    if name not in _CATALOG:
        close = difflib.get_close_matches(name, list(_CATALOG), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown dataset {name!r}; {hint}choose one of {sorted(_CATALOG)}")
    entry = _CATALOG[name]
    accepted = _parameters(entry.loader)
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"load({name!r}) got unknown arguments {unknown}; "
                         f"it accepts {list(accepted) or 'none'}")
    if not entry.loader:
        return load_bundled(name)
    loader = _function(entry.loader)
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"load({name!r}): {err}; it needs {list(accepted)}") from err
    return loader(**kwargs)
