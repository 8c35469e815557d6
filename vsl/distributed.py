"""Data-parallel training over several processes, as launched by ``torchrun``.

Under ``torchrun --nproc_per_node N`` every process joins one process group (gloo on CPU, nccl
on CUDA, one GPU per local rank) and trains a replica of the model wrapped in
``torch.nn.parallel.DistributedDataParallel``, which averages the gradients of each step across
processes. The training sentences are sharded by position (rank r holds sentences r, r + N, ...),
each rank draws batches of ``batch_size // N`` from its own shard, and a VSL model's per-token
prior stores cover that rank's shard only: each prior lives in exactly one process. Rank 0
scores dev and broadcasts the scores, so the best-model and early-stopping decisions agree on
every rank; rank 0 alone writes files.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from vsl.errors import VslError

T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: positions rank, rank + world, ..."""
        return list(items[self.rank::self.world])

    def local_batch_size(self, batch_size: int) -> int:
        """Each rank's batch so that the ranks together draw about ``batch_size`` per step."""
        return max(1, batch_size // self.world)

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (a collective call)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (a collective call)."""
        if not self.distributed:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()

    def min(self, value: int) -> int:
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(total, op=dist.ReduceOp.MIN)
        return int(total.item())

    def replica_spread(self, module: nn.Module) -> float:
        """The largest difference of any parameter between the ranks' replicas (a collective
        call): 0 when data-parallel training kept them in step, as it must."""
        if not self.distributed:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
        high, low = flat.clone(), flat.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float((high - low).max())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def from_main(self, compute: Callable[[], T]) -> T:
        """``compute()`` run on rank 0 and its (JSON-like) result given to every rank."""
        if not self.distributed:
            return compute()
        box = [compute() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE_PROCESS = Cluster()


def join(device: str = "cpu") -> Cluster:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); otherwise the
    single-process cluster. On CUDA each process takes the GPU of its local rank."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VslError(f"--device {device} was asked for, but no GPU is visible")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Cluster(device=device)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Cluster(dist.get_rank(), dist.get_world_size(), device)


@contextmanager
def process_group(device: str = "cpu") -> Iterator[Cluster]:
    """This process's :class:`Cluster` for the body of a ``with`` block, the group left after it.

    When the body ends normally every rank waits for the others before the group is torn down:
    a rank that tore its connections down while rank 0 was still writing results could abort
    the whole gloo job. After an error no rank waits (the others may never arrive)."""
    cluster = join(device)
    try:
        yield cluster
        cluster.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


class _Loss(nn.Module):
    """``forward(batch)`` = ``objective.loss(batch)``, the call DistributedDataParallel wraps."""

    def __init__(self, objective: nn.Module):
        super().__init__()
        self.objective = objective

    def forward(self, batch):
        return self.objective.loss(batch)


def loss_function(objective: nn.Module, cluster: Cluster):
    """``objective.loss`` alone, or through DistributedDataParallel so that its gradients are
    averaged over the ranks (replicas start from rank 0's weights)."""
    if not cluster.distributed:
        return objective.loss
    device_ids = [torch.device(cluster.device).index] if cluster.device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(_Loss(objective), device_ids=device_ids)
