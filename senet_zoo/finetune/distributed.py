"""Process-group setup for ``torchrun`` and the few collectives the trainer needs.

One code path for every case: a single process is a world of size 1 and every collective is a no-op.
Under ``torchrun`` (``WORLD_SIZE`` > 1) the group uses NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .._log import get_logger

__all__ = ["DistInfo", "pick_device", "setup", "cpu_plan", "all_reduce_sum", "barrier", "teardown"]

_logger = get_logger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # True when setup() created the process group (and teardown() ends it)

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0


def pick_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → this rank's GPU if CUDA is available, else the CPU; a CUDA device becomes the current one."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        dev = torch.device("cuda", local_rank if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment, if any; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        _logger.info("rank %d/%d joined the %s process group on %s", rank, world_size, backend, dev)
        return DistInfo(rank, world_size, local_rank, dev, owns_group=True)
    return DistInfo(rank, world_size, local_rank, dev)


def _core_share() -> int:
    """The cores this process may use: those it is allowed to run on, divided among the processes that
    ``torchrun`` starts on this node (``LOCAL_WORLD_SIZE``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has CPU affinity
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def cpu_plan(device: torch.device, threads: int | None = None, workers: int | None = None) -> tuple[int, int]:
    """Torch threads and data-loading workers for this process that never oversubscribe its cores.

    Threads + workers fit this process's share of the cores (:func:`_core_share`). On a CPU the model
    needs the cores, so workers start only from 4 cores per process (one per 4 cores, at most 8); on a
    GPU the loaders need them (all cores but one, at most 8). Explicit values win; ``OMP_NUM_THREADS``,
    when set, is the default thread count.
    """
    share = _core_share()
    if workers is None:
        wanted = share - 1 if device.type == "cuda" else share // 4
        workers = max(0, min(8, wanted, share - (threads or 1)))
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else max(1, share - workers)
    return threads, workers


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over all processes; returned unchanged in a single process."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    """Wait for every process (a no-op in a single process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
