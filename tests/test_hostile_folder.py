"""Hostile image folders: every odd file is named and skipped, the loader never crashes or hangs,
skipped files have no say in the data set's shape, and the decode cache sees every edit."""

from __future__ import annotations

import io
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import write_image_folder
from seethrough.data import load_splits
from seethrough.data.cache import cache_root
from seethrough.data.folder import load_folder_splits
from seethrough.data.walk import walk
from seethrough.errors import DataError, SkippedImageWarning


def _load(folder, **kw):
    """(splits, skip messages) of a load."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_folder_splits(folder, **kw)
    return parts, [str(w.message) for w in caught if w.category is SkippedImageWarning]


def _n(parts):
    return sum(len(p) for p in parts.values())


def _files(parts):
    return sorted(f for p in parts.values() for f in p.info["files"])


def _entries():
    root = cache_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_a_file_name_that_is_not_utf8_is_named_and_skipped(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    bad = os.fsencode(folder / "cats") + b"/caf\xe9.png"
    with open(bad, "wb") as f:
        Image.new("RGB", (10, 12)).save(f, "PNG")
    for _ in range(2):  # decode, then the cached load
        parts, skipped = _load(folder)
        assert _n(parts) == 8
        assert any("caf\\xe9.png" in m and "not valid UTF-8" in m for m in skipped), skipped


def test_a_class_folder_whose_name_is_not_utf8_is_named_and_left_out(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    shutil.copytree(folder / "cats", os.fsdecode(os.fsencode(folder) + b"/\xff\xfe"))
    parts, skipped = _load(folder, cache=False)
    assert parts["train"].class_names == ["cats", "dogs"]
    assert any("\\xff\\xfe" in m for m in skipped)


def test_symlink_loops_and_links_to_one_folder_twice_are_named_not_followed(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    os.symlink(folder / "cats", folder / "cats" / "again")  # a loop
    os.symlink(folder, folder / "dogs" / "up")  # back to the root above the class folder
    os.symlink("self", folder / "dogs" / "self")  # a link to itself (ELOOP)
    os.symlink("nowhere", folder / "dogs" / "broken")
    parts, skipped = _load(folder)
    assert _n(parts) == 8
    text = " ".join(skipped)
    assert "again: a symbolic link loop" in text and "up: a symbolic link loop" in text
    assert "self: a symbolic link loop" in text and "broken: a broken symbolic link" in text


def test_a_deep_folder_is_walked_without_recursion(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    deep = str(folder / "cats")
    for _ in range(300):
        deep += "/d"
        os.mkdir(deep)
    Image.new("RGB", (10, 12), (200, 0, 0)).save(os.path.join(deep, "x.png"))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # shallower than the folder: a recursive walk would fail
    try:
        listing = walk(folder)
    finally:
        sys.setrecursionlimit(limit)
    assert len(listing.files) == 9 and listing.problems == []
    parts, _ = _load(folder)
    assert _n(parts) == 9


def test_a_fifo_in_a_class_folder_is_named_and_does_not_hang(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    os.mkfifo(folder / "cats" / "pipe.png")
    parts, skipped = _load(folder)
    assert _n(parts) == 8
    assert any("pipe.png: a FIFO, not a regular file" in m for m in skipped)


def test_hidden_folders_are_neither_trained_on_nor_part_of_the_key(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    (folder / "cats" / ".thumbs").mkdir()
    Image.new("RGB", (10, 12)).save(folder / "cats" / ".thumbs" / "0.png")
    (folder / "dogs" / ".DS_Store").write_bytes(b"\0\1junk")
    parts, skipped = _load(folder)
    assert _n(parts) == 8 and skipped == []
    assert not any("/." in f for f in _files(parts))
    before = _entries()
    Image.new("RGB", (10, 12), (9, 9, 9)).save(folder / "cats" / ".thumbs" / "1.png")  # ignored by both
    _load(folder)
    assert _entries() == before


def test_skipped_files_have_no_say_in_the_size_and_mode(tmp_path):
    """32 good 16x16 grayscale images and 45 64x64 RGB files whose header reads but whose pixels do not."""
    folder = write_image_folder(tmp_path / "photos", n_per_class=16, size=(16, 16), mode="L")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    for i in range(45):
        (folder / ("cats", "dogs")[i % 2] / f"bad{i}.png").write_bytes(truncated)
    parts, skipped = _load(folder, cache=False)
    assert parts["train"].image_shape == (16, 16, 1)
    assert _n(parts) == 32 and len(skipped) == 45
    fresh = parts
    parts, skipped = _load(folder)  # through the cache: same data, same warnings
    assert parts["train"].image_shape == (16, 16, 1) and len(skipped) == 45
    np.testing.assert_array_equal(parts["train"].images, fresh["train"].images)


def test_the_cache_notices_an_edit_that_keeps_size_and_mtime(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    target = folder / "cats" / "0.png"
    pixels = np.full((10, 12, 3), 30, np.uint8)
    Image.fromarray(pixels).save(target, compress_level=0)  # stored, not deflated: an edit keeps the length
    _load(folder)
    st = target.stat()
    pixels[0, 0] = 250
    Image.fromarray(pixels).save(target, compress_level=0)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    after, _ = _load(folder)
    i = [k for k in after if str(target) in after[k].info["files"]][0]
    j = after[i].info["files"].index(str(target))
    assert after[i].images[j][0, 0].tolist() == [250, 250, 250]


def test_no_cache_reads_and_writes_no_cache(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    parts = load_splits(str(folder), cache=False)
    assert _n(parts) == 8 and _entries() == []
    assert not isinstance(parts["train"].images, np.memmap)


@pytest.mark.parametrize("size", ["30000", "0", "abc", "10x0", "3x4x5"])
def test_a_size_that_cannot_be_decoded_is_one_line(tmp_path, size):
    folder = write_image_folder(tmp_path / "photos", n_per_class=2)
    with pytest.raises(DataError, match="--size") as err:
        load_folder_splits(folder, size=size)
    assert "\n" not in str(err.value)


def test_decoded_data_larger_than_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    from seethrough.data import folder as folder_module

    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    monkeypatch.setattr(folder_module, "memory_bytes", lambda: 10_000)
    monkeypatch.setattr(folder_module, "_decode", lambda *a: pytest.fail("decoded anyway"))
    with pytest.raises(DataError, match=r"8 images of 100x100x3 need .* GiB decoded.*smaller --size"):
        load_folder_splits(folder, size=100, cache=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_named_and_skipped(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=4)
    (folder / "cats" / "0.png").chmod(0)
    parts, skipped = _load(folder, cache=False)
    assert _n(parts) == 7 and any("0.png" in m for m in skipped)


def test_the_digest_of_a_large_file_is_of_samples_at_its_start_middle_and_end(tmp_path):
    from seethrough.data.cache import FULL_HASH_BYTES, file_digest

    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, FULL_HASH_BYTES * 3, np.uint8).tobytes())
    path.write_bytes(data)
    first = file_digest(path, len(data))
    for at in (0, len(data) // 2 + 5, len(data) - 1):  # inside the samples: noticed
        changed = bytearray(data)
        changed[at] ^= 1
        path.write_bytes(changed)
        assert file_digest(path, len(data)) != first
    changed = bytearray(data)
    changed[len(data) // 4] ^= 1  # between the samples: the documented blind spot
    path.write_bytes(changed)
    assert file_digest(path, len(data)) == first
