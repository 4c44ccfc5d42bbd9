"""MNIST-family IDX and CIFAR-10 pickle loaders on tiny files the tests write; never downloads."""

import gzip
import os
import pickle
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from optimlab import data
from optimlab.data import images


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(folder, split, n, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    names = images.IDX_FILES[split]
    for name, arr in zip(names, (imgs, labels), strict=True):
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as fh:
                fh.write(idx_bytes(arr))
        else:
            (folder / name).write_bytes(idx_bytes(arr))
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_plain_and_gzip(tmp_path, gz):
    imgs, labels = write_idx(tmp_path, "test", 7, gz)
    ds = data.load_mnist(tmp_path, split="test")
    assert ds.X.shape == (7, 1, 28, 28) and ds.X.dtype == torch.float32
    assert torch.allclose(ds.X[:, 0] * 255, torch.tensor(imgs, dtype=torch.float32))
    assert ds.y.tolist() == labels.tolist() and ds.n_classes == 10 and ds.n_features == 784
    flat = data.load_mnist(tmp_path, split="test", flatten=True)
    assert flat.X.shape == (7, 784)


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", 5, gz=True)
    ds = data.load("fashion_mnist", root=tmp_path)
    assert len(ds) == 5 and ds.info["classes"][9] == "Ankle boot"


def test_missing_idx_files_named(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_mnist(tmp_path, split="train")
    msg = str(err.value)
    assert str(tmp_path) in msg and "train-images-idx3-ubyte" in msg
    assert "train-labels-idx1-ubyte" in msg and images.MNIST_URL in msg and "download=True" in msg


def test_download_failure_message(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match=r"failed.*no network in tests"):
        data.load_mnist(tmp_path, download=True)
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*test_batch.*failed"):
        data.load_cifar10(tmp_path, split="test", download=True)
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind


def write_cifar(folder, name, n, seed, bytes_keys=True):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    key = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    batch = {key("batch_label"): b"tiny", key("data"): pixels, key("labels"): labels,
             key("filenames"): [b"x.png"] * n}
    with open(folder / name, "wb") as fh:
        pickle.dump(batch, fh, protocol=2)
    return pixels, labels


def test_cifar10_train_and_test(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    parts = [write_cifar(folder, f"data_batch_{i}", 3, i) for i in range(1, 6)]
    _, test_labels = write_cifar(folder, "test_batch", 4, 9, bytes_keys=False)
    train = data.load_cifar10(tmp_path)
    assert train.X.shape == (15, 3, 32, 32)
    assert train.y.tolist() == [label for p in parts for label in p[1]]
    # channel-major layout: the first 1024 values are the red plane
    assert float(train.X[0, 0, 0, 1]) * 255 == pytest.approx(float(parts[0][0][0, 1]))
    assert float(train.X[0, 2, 31, 31]) * 255 == pytest.approx(float(parts[0][0][0, 3071]))
    test = data.load_cifar10(tmp_path, split="test", flatten=True)
    assert test.X.shape == (4, 3072) and test.y.tolist() == test_labels
    assert test.info["classes"][3] == "cat"


def test_cifar_missing_batches_named(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match=r"data_batch_1, .*data_batch_5.*cifar-10-python"):
        data.load_cifar10(tmp_path)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(data.UnsafePickleError, match=r"system"):
        data.read_cifar_batch(path)
    with pytest.raises(pickle.UnpicklingError):
        data.load_cifar10(tmp_path, split="test")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_reads_numpy_arrays(tmp_path, protocol):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps({"a": arr, "s": {1, 2}}, protocol=protocol))
    with open(path, "rb") as fh:
        got = images.safe_unpickle(fh)
    assert np.array_equal(got["a"], arr) and got["s"] == {1, 2}


def test_bad_idx_file(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load_mnist(tmp_path, split="test")
