"""Data sources: every one becomes an ImageDataset; bad input gives one clear error."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import write_image_folder
from seethrough.data import ImageDataset, SkippedImageWarning, list_datasets, load_dataset, load_splits
from seethrough.data import builtin, download
from seethrough.errors import ChecksumError, DataError


def test_digits_is_bundled_and_split_deterministically():
    train, test = load_dataset("digits"), load_dataset("digits", "test")
    assert train.images.shape == (1347, 8, 8, 1) and train.images.dtype == np.uint8
    assert len(test) == 450 and train.n_classes == 10
    assert train.images.max() == 255
    again = load_dataset("digits")
    np.testing.assert_array_equal(train.labels, again.labels)
    assert len(load_dataset("digits", "all")) == 1797


def test_split_is_stratified_and_seeded(tiny_images):
    a1, b1 = tiny_images.split(0.2, seed=3)
    a2, b2 = tiny_images.split(0.2, seed=3)
    _, b3 = tiny_images.split(0.2, seed=4)
    np.testing.assert_array_equal(b1.labels, b2.labels)
    np.testing.assert_array_equal(b1.images, b2.images)
    assert not np.array_equal(b1.images, b3.images)
    assert list(np.bincount(b1.labels)) == [6, 6, 6]
    assert len(a1) + len(b1) == len(tiny_images)


def test_synthetic_regions_differ_by_class():
    d = load_dataset("synthetic")
    assert d.class_names == ["left", "right"]
    left = d.images[d.labels == 0, :, :8].mean()
    right = d.images[d.labels == 1, :, :8].mean()
    assert left > right + 20  # the bright square sits in the left half for class "left"


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(DataError, match="unknown dataset 'nope'.*digits.*mnist"):
        load_dataset("nope")
    assert set(list_datasets()) >= {"digits", "mnist", "fashion-mnist", "cifar10", "catvnoncat", "synthetic"}


# ----------------------------------------------------------------------------- folders


def test_folder_of_mixed_modes_and_sizes(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, n_per_class=5, size=(10, 12))
    rng = np.random.default_rng(0)
    # other modes and sizes Pillow reads: grayscale, RGBA, palette, CMYK, 16-bit, a bigger JPEG
    Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8), "L").save(root / "cats" / "gray.png")
    Image.fromarray(rng.integers(0, 255, (10, 12, 4), dtype=np.uint8), "RGBA").save(root / "cats" / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).convert("P").save(root / "dogs" / "pal.gif")
    Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).convert("CMYK").save(root / "dogs" / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65535, (10, 12), dtype=np.uint16)).save(root / "dogs" / "deep.png")
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(root / "dogs" / "big.jpg")
    parts = load_splits(root)
    train, test = parts["train"], parts["test"]
    assert train.image_shape == (10, 12, 3)  # the most common size, RGB since some are colour
    assert len(train) + len(test) == 16
    assert train.class_names == ["cats", "dogs"]
    assert load_splits(root, size="8x9")["train"].image_shape == (8, 9, 3)


def test_grayscale_folder_stays_one_channel(tmp_path):
    root = write_image_folder(tmp_path / "g", mode="L")
    assert load_dataset(root).image_shape == (10, 12, 1)


def test_presplit_folder(tmp_path):
    write_image_folder(tmp_path / "d" / "train", n_per_class=4)
    write_image_folder(tmp_path / "d" / "test", n_per_class=2)
    parts = load_splits(tmp_path / "d")
    assert len(parts["train"]) == 8 and len(parts["test"]) == 4


def test_bad_files_are_named_and_skipped(tmp_path):
    root = write_image_folder(tmp_path / "p", n_per_class=4)
    (root / "cats" / "empty.png").write_bytes(b"")
    (root / "cats" / "notes.txt").write_text("not an image")
    good = (root / "dogs" / "0.png").read_bytes()
    (root / "dogs" / "truncated.png").write_bytes(good[: len(good) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_splits(root)
    messages = " ".join(str(w.message) for w in caught if w.category is SkippedImageWarning)
    for name in ("empty.png", "notes.txt", "truncated.png"):
        assert name in messages
    assert len(parts["train"]) + len(parts["test"]) == 8
    with pytest.raises(DataError, match="empty.png|notes.txt|truncated.png"):
        load_splits(root, strict=True)


@pytest.mark.parametrize("layout, message", [
    ("missing", "no such folder"),
    ("empty", "empty folder"),
    ("one-class", "at least two"),
    ("file", "expected a folder"),
])
def test_bad_folders(tmp_path, layout, message):
    path = tmp_path / "data"
    if layout == "empty":
        path.mkdir()
    elif layout == "one-class":
        write_image_folder(path, classes=("only",))
    elif layout == "file":
        path.write_text("x")
    with pytest.raises(DataError, match=message):
        load_dataset(path)


# ----------------------------------------------------------------------------- official formats


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "x.gz", x)
    got = builtin.read_idx(tmp_path / "x.gz")
    np.testing.assert_array_equal(got, x)
    assert got.flags.writeable                      # torch.from_numpy shares it without a warning
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    with pytest.raises(DataError, match="truncated|IDX"):
        builtin.read_idx(tmp_path / "bad.gz")


def _cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def test_cifar_python_and_binary_formats(tmp_path, monkeypatch):
    py, binary = tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-batches-bin"
    py.mkdir()
    binary.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    expected = {}
    for i, name in enumerate(names):
        x, y = _cifar_arrays(4, i)
        expected[name] = (x, y)
        with open(py / name, "wb") as f:  # the official format: a pickled dict of numpy data
            pickle.dump({b"data": x.reshape(4, -1), b"labels": y.tolist()}, f, protocol=2)
        records = np.concatenate([y[:, None].astype(np.uint8), x.reshape(4, -1)], axis=1)
        records.tofile(binary / f"{name}.bin")
    monkeypatch.setattr(builtin, "CIFAR_PY", [download.RemoteFile(n, None, hashlib.md5((py / n).read_bytes()).hexdigest()) for n in names])
    from_py = builtin.load_cifar10(data_dir=tmp_path)
    assert from_py["train"].images.shape == (20, 32, 32, 3) and len(from_py["test"]) == 4
    np.testing.assert_array_equal(from_py["test"].images, expected["test_batch"][0].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(from_py["test"].labels, expected["test_batch"][1])
    for n in names:
        (py / n).unlink()
    from_bin = builtin.load_cifar10(data_dir=tmp_path)
    np.testing.assert_array_equal(from_bin["train"].images, from_py["train"].images)
    np.testing.assert_array_equal(from_bin["train"].labels, from_py["train"].labels)


def test_cifar_unpickler_refuses_other_objects(tmp_path):
    path = tmp_path / "evil"
    with open(path, "wb") as f:
        pickle.dump({b"data": ImageDataset}, f)
    with pytest.raises(DataError, match="only numpy arrays"):
        builtin.read_cifar_python_batch(path)


# ----------------------------------------------------------------------------- downloads


def test_download_checks_md5_and_writes_atomically(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello data")
    good = download.RemoteFile("f.bin", src.as_uri(), hashlib.md5(b"hello data").hexdigest())
    folder = download.fetch("set", [good], data_dir=tmp_path / "cache")
    assert (folder / "f.bin").read_bytes() == b"hello data"
    bad = download.RemoteFile("g.bin", src.as_uri(), "0" * 32)
    with pytest.raises(ChecksumError, match="checksum"):
        download.fetch("set", [bad], data_dir=tmp_path / "cache")
    assert not (folder / "g.bin").exists()  # never put in place


def test_local_file_with_wrong_checksum_is_moved_aside(tmp_path):
    (tmp_path / "mnist").mkdir()
    for f in builtin.MNIST_FILES:
        (tmp_path / "mnist" / f.name).write_bytes(b"corrupt")
    with pytest.raises(ChecksumError, match="checksum mismatch.*moved aside"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert (tmp_path / "mnist" / (builtin.MNIST_FILES[0].name + ".corrupt")).exists()


def test_missing_dataset_offline_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="not found in .*SEETHROUGH_DATA"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)


# ----------------------------------------------------------------------------- shared data sets


@pytest.mark.shared_data
@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("mnist", 60000, 10000, (28, 28, 1)),
    ("fashion-mnist", 60000, 10000, (28, 28, 1)),
    ("catvnoncat", 209, 50, (64, 64, 3)),
])
def test_shared_datasets(shared_data_dir, name, n_train, n_test, shape):
    parts = load_splits(name, data_dir=shared_data_dir, download=False)
    assert len(parts["train"]) == n_train and len(parts["test"]) == n_test
    assert parts["train"].image_shape == shape


@pytest.mark.shared_data
@pytest.mark.slow
def test_shared_cifar10_jpeg(shared_data_dir):
    parts = load_splits("cifar10", data_dir=shared_data_dir, download=False)
    assert len(parts["train"]) == 50000 and len(parts["test"]) == 10000
    assert parts["train"].class_names[0] == "airplane"
