"""The folder decode cache: same arrays as a fresh decode, memory-mapped, rebuilt on change."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import write_image_folder
from seethrough.data import SkippedImageWarning
from seethrough.data.cache import cache_root
from seethrough.data.folder import load_folder_splits
from seethrough.data.images import load_image
from seethrough.errors import DataError


def _entries():
    root = cache_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].images, b[k].images)
        np.testing.assert_array_equal(a[k].labels, b[k].labels)
        assert a[k].class_names == b[k].class_names
        assert a[k].info["files"] == b[k].info["files"]


def test_second_load_is_memory_mapped_and_equals_a_fresh_decode(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=8)
    fresh = load_folder_splits(folder, cache=False)
    first = load_folder_splits(folder)
    assert len(_entries()) == 1
    second = load_folder_splits(folder)
    _same(fresh, first)
    _same(fresh, second)
    assert isinstance(second["train"].images, np.memmap)
    # every image equals the one-file decoding rule
    for path, img in zip(second["test"].info["files"], second["test"].images):
        np.testing.assert_array_equal(img, load_image(path, second["test"].image_shape))


def test_parallel_decode_of_many_files_matches_the_rule(tmp_path):
    folder = write_image_folder(tmp_path / "many", n_per_class=140, size=(6, 7))  # >= 256: process pool
    parts = load_folder_splits(folder, cache=False)
    for ds in parts.values():
        for path, img in zip(ds.info["files"], ds.images):
            np.testing.assert_array_equal(img, load_image(path, ds.image_shape))


def test_changed_file_rebuilds_and_drops_the_stale_entry(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=8)
    before = load_folder_splits(folder, seed=0)
    old = _entries()
    target = folder / "cats" / "0.png"
    Image.fromarray(np.full((10, 12, 3), 7, np.uint8)).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = load_folder_splits(folder, seed=0)
    new = _entries()
    assert len(new) == 1 and new != old
    _same(after, load_folder_splits(folder, seed=0, cache=False))
    i = [k for k in after if str(target) in after[k].info["files"]][0]
    j = after[i].info["files"].index(str(target))
    assert (after[i].images[j] == 7).all()
    b = before[i].images[before[i].info["files"].index(str(target))]
    assert not (b == 7).all()  # the cached copy of the old file was not reused


def test_options_are_part_of_the_key(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=8)
    a = load_folder_splits(folder)
    b = load_folder_splits(folder, size=5)
    assert a["train"].image_shape == (10, 12, 3) and b["train"].image_shape == (5, 5, 3)


def test_skipped_files_warn_again_on_cached_loads_and_strict_still_raises(tmp_path):
    folder = write_image_folder(tmp_path / "photos", n_per_class=8)
    (folder / "dogs" / "broken.png").write_bytes(b"not an image")
    for _ in range(2):  # first load decodes, second reads the cache
        with pytest.warns(SkippedImageWarning, match="broken.png"):
            parts = load_folder_splits(folder)
        assert sum(len(p) for p in parts.values()) == 16
    assert len(_entries()) == 1
    with pytest.raises(DataError, match="broken.png.*--strict"):
        load_folder_splits(folder, strict=True)


def test_a_failed_write_leaves_no_entry(tmp_path, monkeypatch):
    folder = write_image_folder(tmp_path / "photos", n_per_class=8)

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_folder_splits(folder)
    assert any("could not write the decode cache" in str(w.message) for w in caught)
    assert len(parts["train"]) + len(parts["test"]) == 16
    assert not cache_root().exists() or not any(cache_root().iterdir())
