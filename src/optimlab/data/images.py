"""Image datasets from a local folder: MNIST, Fashion-MNIST (IDX files) and CIFAR-10 (python
pickle batches).

Images come back as ``float32`` in ``[0, 1]`` with shape ``[n, C, H, W]`` (``flatten=True``
gives ``[n, C·H·W]``); labels are ``int64`` ``0..9`` and ``info["classes"]`` names them.
Nothing is fetched unless ``download=True``; then the official URL is tried once with a short
timeout. Missing files raise ``FileNotFoundError`` naming the folder, the exact file names and
where to get them.

CIFAR batches are pickles, and unpickling can run arbitrary code. They are read with
``SafeUnpickler``, which rebuilds only numpy arrays and plain builtins and refuses every other
global (``UnsafePickleError``).
"""

from __future__ import annotations

import gzip
import importlib
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from optimlab._checks import check_choice
from optimlab.data.dataset import Dataset

DOWNLOAD_TIMEOUT_S = 10.0

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ------------------------------------------------------------------------- IDX (MNIST family)
def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (plain or gzip, detected from the content).

    Layout: two zero bytes, a type code (``0x08`` = uint8 …), the number of dimensions ``k``,
    ``k`` big-endian uint32 sizes, then the values in C order.
    """
    path = Path(path)
    with path.open("rb") as fh:
        magic = fh.read(2)
    opener: Any = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number {data[:4]!r}); "
                         "re-download it")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{str(path)!r} is truncated: header says {dims} values of {dtype} "
                         f"({expected} bytes) but it holds {len(body)} bytes; re-download it")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(folders: list[Path], base: str) -> Path | None:
    variants = [base, base + ".gz", base.replace("-idx", ".idx"),
                base.replace("-idx", ".idx") + ".gz"]
    for folder in folders:
        for v in variants:
            if (folder / v).is_file():
                return folder / v
    return None


def _load_idx_dataset(
    root: str | os.PathLike[str],
    split: str,
    download: bool,
    flatten: bool,
    *,
    name: str,
    subfolder: str,
    url: str,
    classes: list[str],
) -> Dataset:
    check_choice("split", split, ("train", "test"))
    root = Path(root)
    folders = [root, root / subfolder / "raw", root / subfolder]
    files = IDX_FILES[split]
    found = [_find_idx(folders, f) for f in files]
    failure = None
    if None in found and download:
        failure = _download_files(url, [f + ".gz" for f in files], root)
        found = [_find_idx(folders, f) for f in files]
    if None in found:
        raise FileNotFoundError(_missing_message(
            name, split, folders, [f"{f} (or {f}.gz)" for f in files], url, failure,
            f"load_{name.lower().replace('-', '_')}(root, download=True)"))
    images = read_idx(found[0])  # type: ignore[arg-type]
    labels = read_idx(found[1])  # type: ignore[arg-type]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{name} files in {str(found[0].parent)!r} do not match: images {images.shape}, "  # type: ignore[union-attr]
            f"labels {labels.shape}; expected [n, H, W] images and [n] labels — re-download them"
        )
    X = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if flatten:
        X = X.reshape(len(X), -1)
    y = torch.from_numpy(labels.astype(np.int64))
    info = {"classes": list(classes), "split": split, "folder": str(found[0].parent)}  # type: ignore[union-attr]
    return Dataset(X, y, "multiclass", len(classes), f"{name.lower()}-{split}", None, info)


def load_mnist(
    root: str | os.PathLike[str],
    split: str = "train",
    download: bool = False,
    flatten: bool = False,
) -> Dataset:
    """MNIST handwritten digits: ``[60000|10000, 1, 28, 28]`` in ``[0, 1]``, 10 classes.

    Looks in ``root`` and ``root/MNIST/raw`` (torchvision's layout) for
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (``split="train"``) or
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (``split="test"``), each plain or
    ``.gz``.
    """
    return _load_idx_dataset(root, split, download, flatten, name="MNIST", subfolder="MNIST",
                             url=MNIST_URL, classes=MNIST_CLASSES)


def load_fashion_mnist(
    root: str | os.PathLike[str],
    split: str = "train",
    download: bool = False,
    flatten: bool = False,
) -> Dataset:
    """Fashion-MNIST clothing images: same files, layout and shapes as ``load_mnist``.

    Looks in ``root`` and ``root/FashionMNIST/raw``.
    """
    return _load_idx_dataset(root, split, download, flatten, name="Fashion-MNIST",
                             subfolder="FashionMNIST", url=FASHION_MNIST_URL,
                             classes=FASHION_MNIST_CLASSES)


# ------------------------------------------------------------------------- CIFAR-10 pickles
class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global that ``SafeUnpickler`` does not allow."""


_SAFE_BUILTINS = frozenset({"set", "frozenset", "bytearray", "bytes", "complex", "dict",
                            "float", "int", "list", "str", "tuple", "bool", "slice"})
_SAFE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
})


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, dtypes and plain builtins, and nothing else.

    ``find_class`` allows only ``_SAFE_GLOBALS`` and the builtin types in ``_SAFE_BUILTINS``;
    any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen`` …) raises
    ``UnsafePickleError`` before it is imported.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return super().find_class("builtins", name)
        if (module, name) in _SAFE_GLOBALS:
            if module.startswith("numpy.core") and _has_module("numpy._core"):
                module = "numpy._core" + module[len("numpy.core"):]  # avoid numpy 2's warning
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to unpickle global '{module}.{name}': CIFAR batches hold only numpy "
            "arrays, lists and dicts, so this file is corrupt or not a CIFAR batch "
            "(it could run code) — do not load it; re-download the dataset"
        )


def _has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def safe_unpickle(fh: BinaryIO) -> Any:
    """Load one pickle from ``fh`` with ``SafeUnpickler`` (Python 2 strings kept as bytes)."""
    return SafeUnpickler(fh, encoding="bytes").load()


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch: ``(images uint8 [n, 3, 32, 32], labels int64 [n])``.

    A batch is a pickled dict with ``data`` (``[n, 3072]`` uint8, the 1024 red, then green,
    then blue values of each 32×32 image, row by row) and ``labels`` (n ints).
    """
    path = Path(path)
    with path.open("rb") as fh:
        batch = safe_unpickle(fh)
    if not isinstance(batch, dict):
        raise ValueError(f"{str(path)!r} does not hold a dict; it is not a CIFAR batch")
    got = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in batch.items()}
    if "data" not in got or "labels" not in got:
        raise ValueError(f"{str(path)!r} lacks 'data'/'labels' (keys: {sorted(got)}); "
                         "it is not a CIFAR-10 batch")
    data = np.asarray(got["data"], dtype=np.uint8)
    labels = np.asarray(got["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"{str(path)!r} has data {data.shape} and {len(labels)} labels; "
                         "expected [n, 3072] and n labels — re-download it")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(
    root: str | os.PathLike[str],
    split: str = "train",
    download: bool = False,
    flatten: bool = False,
) -> Dataset:
    """CIFAR-10 colour images: ``[50000|10000, 3, 32, 32]`` in ``[0, 1]``, 10 classes.

    Reads ``data_batch_1`` … ``data_batch_5`` (``split="train"``) or ``test_batch``
    (``split="test"``) from ``root/cifar-10-batches-py/`` (or from ``root`` itself), the
    folder inside the official ``cifar-10-python.tar.gz``.
    """
    check_choice("split", split, ("train", "test"))
    root = Path(root)
    folders = [root / CIFAR10_FOLDER, root]
    files = CIFAR10_FILES[split]

    def locate() -> Path | None:
        for folder in folders:
            if all((folder / f).is_file() for f in files):
                return folder
        return None

    folder = locate()
    failure = None
    if folder is None and download:
        failure = _download_cifar(root)
        folder = locate()
    if folder is None:
        raise FileNotFoundError(_missing_message(
            "CIFAR-10", split, folders, list(files), CIFAR10_URL, failure,
            "load_cifar10(root, download=True)", archive=True))
    parts = [read_cifar_batch(folder / f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    X = torch.from_numpy(images).to(torch.float32).div_(255.0)
    if flatten:
        X = X.reshape(len(X), -1)
    info = {"classes": list(CIFAR10_CLASSES), "split": split, "folder": str(folder)}
    return Dataset(X, torch.from_numpy(labels), "multiclass", 10, f"cifar10-{split}", None, info)


# ------------------------------------------------------------------------- downloads
def _fetch(url: str, dest: Path, timeout: float) -> None:
    """Download ``url`` to ``dest`` atomically (a partial file never takes the final name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(response, out)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _download_files(base_url: str, names: list[str], folder: Path) -> str | None:
    """Fetch each missing file; return a description of the first failure, or None."""
    for file in names:
        if (folder / file).is_file():
            continue
        try:
            _fetch(base_url + file, folder / file, DOWNLOAD_TIMEOUT_S)
        except (urllib.error.URLError, OSError, ValueError) as err:
            return f"downloading {base_url + file} failed ({err})"
    return None


def _download_cifar(root: Path) -> str | None:
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file():
        failure = _download_files(CIFAR10_URL.rsplit("/", 1)[0] + "/", [archive.name], root)
        if failure:
            return failure
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and m.name.startswith(CIFAR10_FOLDER + "/")
                       and ".." not in m.name.split("/")]
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError) as err:
        return f"extracting {archive} failed ({err})"
    return None


def _missing_message(
    name: str,
    split: str,
    folders: list[Path],
    files: list[str],
    url: str,
    failure: str | None,
    call: str,
    archive: bool = False,
) -> str:
    where = ", ".join(repr(str(f)) for f in folders)
    source = (f"download and unpack {url} into {str(folders[-1])!r}" if archive
              else f"download them from {url}")
    tail = (f"the download was tried and failed: {failure}; {source} by hand" if failure
            else f"{source}, or call {call}")
    return (f"{name} {split} files not found: looked in {where} for "
            f"{', '.join(files)}; {tail}")
