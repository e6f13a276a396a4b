"""The standard data sets, read from their official file formats.

Each ``load_*`` function returns ``{"train": ImageDataset, "test": ImageDataset}``.
"""

from __future__ import annotations

import gzip
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import ImageDataset
from .download import RemoteFile, fetch, locate, search_roots

# --------------------------------------------------------------------------- digits


def load_digits_bundled(**_) -> dict[str, ImageDataset]:
    """scikit-learn's 8x8 handwritten digits (1,797 images), split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    full = ImageDataset(images, d.target, [str(i) for i in range(10)], "digits")
    train, test = full.split(0.25, seed=0)
    return {"train": train, "test": test}


# --------------------------------------------------------------------------- MNIST-style IDX

MNIST_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    RemoteFile("train-labels-idx1-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    RemoteFile("t10k-images-idx3-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
]
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", _FASHION_URL + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    RemoteFile("train-labels-idx1-ubyte.gz", _FASHION_URL + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION_URL + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION_URL + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed): magic, dims, then big-endian data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = bytearray(f.read())  # writable, so torch.from_numpy can share it without a warning
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", ndim, 4).astype(int)
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({body.size} bytes for shape {tuple(dims)})")
    return body.reshape(dims)


def _load_idx_set(subdir, files, class_names, name, data_dir=None, download=True):
    folder = fetch(subdir, files, data_dir, download)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        out[split] = ImageDataset(x, y, class_names, name)
    return out


def load_mnist(data_dir=None, download=True, **_):
    return _load_idx_set("mnist", MNIST_FILES, [str(i) for i in range(10)], "mnist", data_dir, download)


def load_fashion_mnist(data_dir=None, download=True, **_):
    return _load_idx_set("fashion-mnist", FASHION_FILES, FASHION_CLASSES, "fashion-mnist", data_dir, download)


# --------------------------------------------------------------------------- CIFAR-10

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
CIFAR_PY = [RemoteFile(f"data_batch_{i}", None, m) for i, m in enumerate(
    ["c99cafc152244af753f735de768cd75f", "d4bba439e000b95fd0a9bffe97cbabec",
     "54ebc095f3ab1f0389bbae665268c751", "634d18415352ddfa80567beed471001a",
     "482c414d41f54cd18b22e5b47cb7c3cb"], start=1)] + [
    RemoteFile("test_batch", None, "40351d587109b95175f43aff81a1287e")]
CIFAR_BIN = [RemoteFile(f"data_batch_{i}.bin", None, None) for i in range(1, 6)] + [
    RemoteFile("test_batch.bin", None, None)]
CIFAR_TAR = RemoteFile("cifar-10-python.tar.gz",
                       "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "c58f30108f718f92721af3b95e74349a")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Reads the official CIFAR python batches, refusing any class but numpy arrays."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"CIFAR batch refers to {module}.{name}; only numpy arrays are allowed")
        return super().find_class(module, name)


def read_cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        try:
            d = _ArrayOnlyUnpickler(f, encoding="bytes").load()
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(d[b"labels"], np.int64)


def read_cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, np.uint8)
    if raw.size % 3073:
        raise DataError(f"{path}: size {raw.size} is not a whole number of 3,073-byte records")
    rec = raw.reshape(-1, 3073)
    x = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), rec[:, 0].astype(np.int64)


def _cifar_from(folder: Path, names: list[str], reader) -> dict[str, ImageDataset]:
    out = {}
    for split, files in (("train", names[:5]), ("test", names[5:])):
        parts = [reader(folder / n) for n in files]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        out[split] = ImageDataset(x, y, list(CIFAR_CLASSES), "cifar10")
    return out


def _safe_extract(tar_path: Path, dest: Path) -> None:
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")


def load_cifar10(data_dir=None, download=True, **opts):
    """CIFAR-10 from the python batches, the binary batches, or a JPEG copy in class folders."""
    folder = locate("cifar-10-batches-py", CIFAR_PY, data_dir)
    if folder is not None:
        return _cifar_from(folder, [f.name for f in CIFAR_PY], read_cifar_python_batch)
    folder = locate("cifar-10-batches-bin", CIFAR_BIN, data_dir)
    if folder is not None:
        return _cifar_from(folder, [f.name for f in CIFAR_BIN], read_cifar_binary_batch)
    for root in search_roots(data_dir):
        if (root / "cifar10-jpeg" / "train").is_dir():
            from .folder import load_folder_splits

            out = load_folder_splits(root / "cifar10-jpeg", **opts)
            for ds in out.values():
                ds.name = "cifar10"
            return out
    archive = fetch("", [CIFAR_TAR], data_dir, download)
    _safe_extract(archive / CIFAR_TAR.name, archive)
    folder = locate("cifar-10-batches-py", CIFAR_PY, data_dir)
    if folder is None:
        raise DataError(f"{archive / CIFAR_TAR.name}: archive did not hold cifar-10-batches-py/")
    return _cifar_from(folder, [f.name for f in CIFAR_PY], read_cifar_python_batch)


# --------------------------------------------------------------------------- cat vs non-cat

# No official download and no published checksum exist for these files.
CATVNONCAT_FILES = [
    RemoteFile("train_catvnoncat.h5", None, None),
    RemoteFile("test_catvnoncat.h5", None, None),
]


def load_catvnoncat(data_dir=None, download=True, **_):
    """The deeplearning.ai cat vs non-cat set: 209 train and 50 test 64x64 RGB images."""
    import h5py

    folder = fetch("catvnoncat", CATVNONCAT_FILES, data_dir, download=False)
    out = {}
    for split in ("train", "test"):
        with h5py.File(folder / f"{split}_catvnoncat.h5", "r") as f:
            x = np.asarray(f[f"{split}_set_x"], np.uint8)
            y = np.asarray(f[f"{split}_set_y"], np.int64)
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in f["list_classes"][()]]
        out[split] = ImageDataset(x, y, names, "catvnoncat")
    return out
