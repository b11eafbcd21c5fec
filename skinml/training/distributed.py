"""Multi-process training through ``torchrun`` (DDP): environment, samplers, collectives.

``torchrun --nproc-per-node N skinml-train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK;
we pick NCCL on CUDA and gloo on CPU, so the same code runs a 2-process CPU
test and a multi-node GPU job.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistEnv:
    """Join the process group when launched by torchrun; a no-op for a single process."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistEnv(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def shutdown_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.is_distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Send a picklable object from rank 0 to every rank."""
    if not env.is_distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(value: float, env: DistEnv) -> float:
    """Average a scalar over ranks (for logging the training loss)."""
    if not env.is_distributed:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / env.world_size


class EpochSampler:
    """Per-epoch index order, optionally class-weighted, sharded across DDP ranks.

    PyTorch's ``WeightedRandomSampler`` does not shard and ``DistributedSampler``
    does not weight; this does both, and derives the order from ``(seed, epoch)``
    alone so that a resumed run replays the interrupted epoch identically.
    """

    def __init__(
        self,
        n: int,
        *,
        weights: np.ndarray | None = None,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n = n
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.per_rank = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:
            p = self.weights / self.weights.sum()
            return rng.choice(self.n, size=self.per_rank * self.world_size, replace=True, p=p)
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        pad = self.per_rank * self.world_size - self.n
        return np.concatenate([order, order[:pad]]) if pad else order

    def __iter__(self) -> Iterator[int]:
        order = self._global_order()
        return iter(order[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank
