"""Distributed data parallel training under ``torchrun``: the process group and each rank's part.

``torchrun`` starts one process per GPU (or per CPU worker) and tells each its place
through the environment: ``WORLD_SIZE`` processes in all, this one ``RANK``, and
``LOCAL_RANK`` on its machine. :func:`process_group` reads those, starts the process group
(NCCL on CUDA, Gloo on the CPU) and yields a :class:`Ranks` that the training loop
asks for this rank's part of a batch, for sums over all ranks, and for the
DistributedDataParallel wrapper. Without ``WORLD_SIZE > 1`` it returns the one-process
``Ranks`` whose methods change nothing, so a plain run takes the same code path.

The data is split, not the batch size: every rank draws the same shuffled order from
the seeded generator and takes its rows of each global batch, so the number of steps,
the learning-rate schedule and (after DDP averages the gradients) each update are the
ones a single process makes on the whole batch.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import SeethroughError

def world_size() -> int:
    """Processes in the run: ``$WORLD_SIZE`` (set by torchrun), 1 without it."""
    return _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's place among them: ``$RANK``, 0 without it. Rank 0 alone writes files."""
    return _env_int("RANK", 0)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SeethroughError(f"${name} must be an integer (torchrun sets it), got {value!r}") from None


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        """True when more than one process trains."""
        return self.world > 1

    def part(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of ``batch`` (contiguous; sizes differ by at most one, and may be 0)."""
        return batch.tensor_split(self.world)[self.rank] if self.active else batch

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` in DistributedDataParallel, which averages the ranks' gradients; ``net`` itself in one process."""
        if not self.active:
            return net
        from torch.nn.parallel import DistributedDataParallel

        # a conv with one input channel gets gradient strides that differ from DDP's bucket
        # only on that size-1 dimension; DDP copies such a gradient and warns, needlessly
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def all_sum(self, *values):
        """Each of ``values`` (Python numbers) summed over all ranks, with its type kept."""
        if not self.active:
            return values
        totals = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)  # counts stay exact in float64 below 2**53
        return tuple(type(v)(t) for v, t in zip(values, totals.tolist()))

    def evaluate(self, evaluate, model, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """``evaluate(model, x, y)`` -> (mean loss, accuracy), with each rank evaluating its part of x."""
        if not self.active:
            return evaluate(model, x, y)
        rows = torch.arange(len(x), device=x.device)
        mine = self.part(rows)
        loss, acc = evaluate(model, x[mine], y[mine])
        loss_sum, correct, n = self.all_sum(loss * len(mine), acc * len(mine), len(mine))
        return loss_sum / max(1, n), round(correct) / max(1, n)


@contextlib.contextmanager
def process_group(device: torch.device):
    """``with process_group(device) as ranks:`` this process's :class:`Ranks` for the duration of a training.

    Under torchrun (``WORLD_SIZE > 1``) the process group is started first: NCCL with each rank
    on ``cuda:LOCAL_RANK``, or Gloo on the CPU. On leaving normally the ranks wait for each
    other (so that every rank returns only once rank 0 has written the run folder); a group
    started here is ended on leaving, normally or not. A group that already exists is used as
    it is and left running. In one process this yields the one-process ``Ranks``.
    """
    world = world_size()
    if world <= 1:
        yield Ranks(device=device)
        return
    if not dist.is_available():
        raise SeethroughError(f"$WORLD_SIZE is {world} but this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        local = _env_int("LOCAL_RANK", 0)
        if local >= torch.cuda.device_count():
            raise SeethroughError(f"$LOCAL_RANK is {local} but this machine has {torch.cuda.device_count()} "
                                  "GPUs; start at most that many processes per node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")  # reads MASTER_ADDR/PORT, RANK
    try:
        yield Ranks(rank=dist.get_rank(), world=dist.get_world_size(), device=device)
        if created:
            dist.barrier()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
