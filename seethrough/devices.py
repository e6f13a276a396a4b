"""Where and in what precision a network runs: the device (cpu, cuda, auto) and bf16 mixed precision.

Device: ``resolve_device("auto")`` is the GPU when there is one, else the CPU.

Mixed precision: run the convolutions and matrix products in bfloat16 where the hardware does it natively.

``--precision bf16`` trains under :func:`torch.autocast`: convs and linear layers take bfloat16
inputs and weights (8 bits of mantissa instead of 23) and accumulate in float32; the weights, the
optimizer state and the loss stay float32. On a CPU with AMX or AVX512-BF16 this runs the
matrix arithmetic several times faster (``benchmarks/matmul_peak.py`` measures the two peaks);
on a CPU without them bfloat16 is emulated and slower, which is why ``auto`` only picks it where
it is native.
"""

from __future__ import annotations

import contextlib

import torch

from .config import PRECISIONS
from .errors import SeethroughError


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device ``device`` ("cpu", "cuda", "cuda:N" or "auto") names; SeethroughError if it is not here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SeethroughError(f"--device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeethroughError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bfloat16 matrix arithmetic in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return False


def check_precision(precision: str) -> str:
    """``precision`` itself, or SeethroughError naming the choices."""
    if precision not in PRECISIONS:
        raise SeethroughError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16": what ``precision`` ("fp32", "bf16" or "auto") means on ``device``."""
    if check_precision(precision) == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """A context that runs the forward pass in ``precision`` ("fp32": nothing changes)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
