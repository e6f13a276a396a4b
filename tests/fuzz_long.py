"""The long fuzz run (``make fuzz FUZZ_SECONDS=600``): the targets of tests/fuzzing.py, round after round,
until the time is up; prints the inputs tried per target and every failure with the input that caused it.

    .venv/bin/python tests/fuzz_long.py --seconds 600

Not part of the test suite (its name does not start with ``test_``). Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fuzzing  # noqa: E402

ROUND = settings(max_examples=50, deadline=None, database=None, print_blob=True,
                 suppress_health_check=list(HealthCheck))

TARGETS = {  # name -> (check, strategies of its arguments)
    "folder": (fuzzing.check_folder, [fuzzing.folders()]),
    "image": (fuzzing.check_image_file,
              [fuzzing.image_files(), st.sampled_from([(8, 8, 1), (5, 7, 3), (1, 1, 3), (32, 32, 3)])]),
    "spec": (fuzzing.check_spec, [fuzzing.specs()]),
    "model.json": (fuzzing.check_model_json, [fuzzing.model_jsons()]),
    "predict": (fuzzing.check_predict_cli, [fuzzing.image_files()]),
}


def one_round(check, strategies) -> None:
    """Up to ROUND's examples of ``check``, with fresh random inputs (no example database)."""
    def run(*args):
        check(*args)
    run.__signature__ = __import__("inspect").signature(check)
    ROUND(given(*strategies)(run))()


def tried() -> str:
    """'N inputs (target n, of them r refused in one line; ...)'."""
    counts = fuzzing.COUNTS
    total = sum(v for k, v in counts.items() if not k.endswith(": refused"))
    parts = [f"{k} {v:,} ({counts.get(k + ': refused', 0):,} refused)" for k, v in sorted(counts.items())
             if not k.endswith(": refused")]
    return f"{total:,} inputs tried: " + ", ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    end = time.monotonic() + args.seconds
    failures: list[tuple[str, str, str]] = []
    rounds = 0
    while time.monotonic() < end:
        for name, (check, strategies) in TARGETS.items():
            if time.monotonic() >= end:
                break
            try:
                one_round(check, strategies)
            except KeyboardInterrupt:
                end = 0
                break
            except BaseException as exc:  # noqa: BLE001 (a failure found: record it and go on)
                notes = "\n".join(getattr(exc, "__notes__", []))
                failures.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                 notes))
                print(f"FAILURE in {name}: {failures[-1][1]}\n{notes}", flush=True)
        rounds += 1
        print(f"round {rounds}: {tried()}; {len(failures)} failures", flush=True)
    print(f"\nfuzzed for {args.seconds:.0f} s: {tried()}; {len(failures)} failures")
    for name, what, _ in failures:
        print(f"  {name}: {what}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
