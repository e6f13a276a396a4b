"""keep_freed_memory: freed blocks are reused without page faults (glibc only; ``ru_minflt`` counts them)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    if sys.argv[1] == "keep":
        from seethrough.allocator import keep_freed_memory
        assert keep_freed_memory() and keep_freed_memory()   # a second call is harmless
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def one_pass():                                           # like a forward pass: blocks written, then freed
        blocks = [np.ones(n) for n in (5 << 20, 3 << 20, 1 << 20, 300_000, 5 << 20)]   # 40 .. 2.4 MB
        del blocks
    one_pass()
    before = faults()
    for _ in range(3):
        one_pass()
    print(faults() - before)
""")


def faults_of_later_passes(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_blocks_are_reused_without_page_faults():
    given_back = faults_of_later_passes("default")   # glibc returns the blocks; the next pass faults them in
    kept = faults_of_later_passes("keep")
    assert given_back >= 100 and kept < given_back / 10


def test_every_command_but_serve_keeps_freed_memory(monkeypatch, capsys):
    from seethrough.cli import main

    calls = []
    monkeypatch.setattr("seethrough.allocator.keep_freed_memory", lambda: calls.append(1) or True)
    assert main(["models"]) == 0 and calls == [1]
    assert main(["serve", "--help"]) == 0 and calls == [1]   # the server gives memory back instead
    capsys.readouterr()
