"""The names ``load_dataset`` understands, and where each one's files are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DataError
from . import builtin
from .dataset import ImageDataset
from .download import locate, search_roots
from .folder import load_folder_splits
from .synthetic import load_synthetic


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    loader: Callable[..., dict[str, ImageDataset]]
    where: Callable[[object], str]  # data_dir -> "bundled" / a path / "not on disk"


def _files_at(subdir, files):
    def where(data_dir):
        found = locate(subdir, files, data_dir)
        return str(found) if found else "not on disk (downloads on first use)" if files[0].url else "not on disk"
    return where


def _cifar_where(data_dir):
    for subdir, files in (("cifar-10-batches-py", builtin.CIFAR_PY), ("cifar-10-batches-bin", builtin.CIFAR_BIN)):
        for root in search_roots(data_dir):
            if all((root / subdir / f.name).is_file() for f in files):
                return str(root / subdir)
    for root in search_roots(data_dir):
        if (root / "cifar10-jpeg" / "train").is_dir():
            return str(root / "cifar10-jpeg") + " (JPEG copy)"
    return "not on disk (downloads on first use)"


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("digits", "8x8 handwritten digits, 1,797 images, bundled with scikit-learn",
                builtin.load_digits_bundled, lambda _: "bundled"),
    DatasetInfo("mnist", "28x28 handwritten digits, 60,000 train + 10,000 test",
                builtin.load_mnist, _files_at("mnist", builtin.MNIST_FILES)),
    DatasetInfo("fashion-mnist", "28x28 clothing, 10 classes, 60,000 train + 10,000 test",
                builtin.load_fashion_mnist, _files_at("fashion-mnist", builtin.FASHION_FILES)),
    DatasetInfo("cifar10", "32x32 colour photos, 10 classes, 50,000 train + 10,000 test",
                builtin.load_cifar10, _cifar_where),
    DatasetInfo("catvnoncat", "64x64 colour photos, cat or not, 209 train + 50 test (deeplearning.ai)",
                builtin.load_catvnoncat, _files_at("catvnoncat", builtin.CATVNONCAT_FILES)),
    DatasetInfo("synthetic", "16x16 images whose bright square sits left or right (shows LR weights)",
                load_synthetic, lambda _: "generated"),
]}


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_splits(name_or_path: str | Path, *, data_dir=None, download: bool = True, size=None,
                strict: bool = False, seed: int = 0, cache: bool = True) -> dict[str, ImageDataset]:
    """Load ``{"train": ImageDataset, "test": ImageDataset}`` for a dataset name or folder path.

    ``cache=False`` decodes an image folder afresh and writes no decode cache (``--no-cache``).
    """
    name = str(name_or_path)
    if name in DATASETS:
        if size is not None and name != "cifar10":
            raise DataError(f"--size applies to image folders only, not to the {name} data set")
        return DATASETS[name].loader(data_dir=data_dir, download=download, size=size, strict=strict,
                                     cache=cache)
    path = Path(name).expanduser()
    if path.exists() or "/" in name or "\\" in name or name.startswith("."):
        return load_folder_splits(path, size=size, strict=strict, seed=seed, cache=cache)
    raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)} or a folder path")


def load_dataset(name_or_path: str | Path, split: str = "train", **options) -> ImageDataset:
    """Load one split of a data set or image folder as an :class:`ImageDataset`.

    Parameters
    ----------
    name_or_path : str or Path
        One of ``list_datasets()`` or a folder with one sub-folder per class.
    split : {"train", "test", "all"}
    **options
        ``data_dir``, ``download``, ``size`` (folders), ``strict`` (folders), ``seed``,
        ``cache`` (folders: ``False`` decodes afresh, without the decode cache).

    Examples
    --------
    >>> import seethrough as st
    >>> st.load_dataset("digits")
    ImageDataset(name='digits', n=1347, shape=8x8x1, classes=10)
    """
    if split not in ("train", "test", "all"):
        raise DataError(f"split must be 'train', 'test' or 'all', got {split!r}")
    parts = load_splits(name_or_path, **options)
    if split != "all":
        return parts[split]
    import numpy as np

    a, b = parts["train"], parts["test"]
    return ImageDataset(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]),
                        a.class_names, a.name)
