"""Shared fixtures. Tests never touch the network; shared data sets are optional."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def loopback_works() -> bool:
    """Whether a TCP connection to 127.0.0.1 can be made here (a sandbox with its loopback down cannot).

    The two-process training tests and the browser tests talk over loopback; where it is down they
    are skipped (torch's rendezvous would otherwise retry for 30 minutes).
    """
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            with socket.create_connection(server.getsockname(), timeout=2):
                return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """../shared/datasets beside the checkout; the test is skipped when it is absent."""
    path = Path(os.environ.get("SEETHROUGH_SHARED_DATA", SHARED))
    if not path.is_dir():
        pytest.skip(f"shared data sets not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the data cache at an empty folder so tests never read or write the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("SEETHROUGH_DATA", raising=False)


@pytest.fixture
def tiny_images():
    """A tiny 3-class RGB data set, 12x12, where each class has a bright block in its own place."""
    from seethrough.data import ImageDataset

    rng = np.random.default_rng(0)
    n = 90
    labels = np.arange(n) % 3
    images = rng.integers(0, 50, size=(n, 12, 12, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 4 * c:4 * c + 4, :, :] = 220
    return ImageDataset(images, labels, ["top", "middle", "bottom"], "tiny")


def write_image_folder(root: Path, n_per_class: int = 6, classes=("cats", "dogs"), size=(10, 12),
                       mode: str = "RGB") -> Path:
    """Write a class-per-folder tree of small PNGs; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            a = rng.integers(0, 255, size=(size[0], size[1], 3), dtype=np.uint8)
            a[: size[0] // 2] = 40 + 150 * ci
            Image.fromarray(a).convert(mode).save(root / c / f"{i}.png")
    return root


def pytest_terminal_summary(terminalreporter):
    """How long each notebook took to execute (tests/test_notebooks.py), so CI shows it."""
    times = getattr(__import__("sys").modules.get("test_notebooks"), "TIMES", None)
    if times:
        terminalreporter.section("notebook execution times")
        for name, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{name:<36} {seconds:6.1f} s")
        terminalreporter.write_line(f"{'total':<36} {sum(times.values()):6.1f} s")
