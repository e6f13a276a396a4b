"""The notebooks in notebooks/: stored without outputs, and each one runs from top to bottom.

Each is executed with nbclient in a fresh kernel, with small settings written into a cell placed
right after its cell tagged ``parameters`` (the values below). The time each took is printed in the
test run's summary. A notebook that needs ../shared/datasets is skipped when it is absent.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# notebook -> (parameter values for the test, needs ../shared/datasets)
SMALL = {
    "01-logistic-regression.ipynb": ({"epochs": 3}, False),
    "02-convolution-by-hand.ipynb": ({}, False),
    "03-cifar10-seed-cnn.ipynb": ({"epochs": 1, "train_limit": 1000, "test_limit": 200}, True),
    "04-cat-vs-non-cat.ipynb": ({"iterations": 200, "cnn_epochs": 1}, True),
    "05-backprop-step.ipynb": ({}, False),
    "06-experiments.ipynb": ({"sizes": [20, 60], "seeds": 1, "steps": 20, "epochs": 2, "limit": 100, "jobs": 1}, False),
}
TIMES: dict[str, float] = {}  # printed by conftest.pytest_terminal_summary


def notebooks_in_git() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every notebook there
        return sorted(NOTEBOOKS.glob("*.ipynb"))
    return [ROOT / p for p in out]


def test_every_notebook_is_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat")

    paths = notebooks_in_git() or sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths, "no notebooks found"
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"{path.name}: outputs not stripped (run: python notebooks/strip_outputs.py)"


def test_every_notebook_has_small_settings_here():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


def inject(nb, values: dict):
    """Put ``values`` into a new cell right after the one tagged ``parameters``."""
    import nbformat

    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cell["id"] = "injected-parameters"
    nb.cells.insert(index + 1, cell)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path, monkeypatch, request):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    values, shared = SMALL[name]
    if shared:
        data_dir = request.getfixturevalue("shared_data_dir")  # skips when absent
        values = {**values, "data_dir": str(data_dir)}
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    inject(nb, values)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # decoded image folders (CIFAR-10's 60,000 JPEGs) are kept between test runs, beside pytest's own cache
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider: a fresh folder then
    monkeypatch.setenv("SEETHROUGH_CACHE", str(cache.mkdir("seethrough-decoded") if cache else tmp_path / "decoded"))
    # one thread per kernel: these small trainings gain nothing from more, and on a busy machine
    # threads waiting for each other make them many times slower
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    # the kernel talks over Unix sockets in tmp_path, not TCP: no network is needed, loopback included
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    try:
        NotebookClient(nb, km=kernel, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:  # a kernel manager passed in is not shut down by nbclient
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
    TIMES[name] = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("text/html" in o.get("data", {}) or "image/png" in o.get("data", {}) for o in shown), \
        f"{name}: nothing was drawn"
    if "epochs" in values:  # the training progress bar is one display, updated in place to its end
        bars = [o["data"]["text/html"] for o in shown if o.output_type == "display_data"
                and "width:100.0%" in o.get("data", {}).get("text/html", "")]
        assert any(f"epoch {values['epochs']}/{values['epochs']}" in b for b in bars), f"{name}: no progress bar"
