"""Data-parallel training of one run on several devices (torch.distributed), when a launcher set it up.

The trainer stays a single-device program; when a process group is initialised (Ray Train's
TorchTrainer does it for runs given more than one GPU; a test does it with gloo on CPUs), every rank
trains on its slice of each global batch (rows rank, rank + world, ...), gradients are averaged by
DistributedDataParallel, and the global batch, learning rate and schedule are the run's own: the run's
numbers do not depend on how many devices trained it (up to the order of float additions). Rank 0
alone writes checkpoints, logs and results.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch import nn


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Loss(nn.Module):
    """A model's training loss as a module's forward, so DistributedDataParallel (which prepares its
    gradient reduction in forward) can wrap it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.loss(x, y)


def wrap(model: nn.Module, device: str) -> nn.Module:
    """The module the loop calls: Loss(model), inside DDP when there are several ranks."""
    loss = Loss(model)
    if rank_and_world()[1] == 1:
        return loss
    ids = [torch.device(device).index or 0] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(loss, device_ids=ids)


def no_sync(module: nn.Module, last_micro_batch: bool):
    """Skip DDP's gradient reduction on all but the last micro-batch of a step."""
    if isinstance(module, nn.parallel.DistributedDataParallel) and not last_micro_batch:
        return module.no_sync()
    return nullcontext()


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over the ranks (itself on one rank)."""
    world = rank_and_world()[1]
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value


def any_rank(flag: bool) -> bool:
    """Whether `flag` holds on any rank (every rank gets the same answer)."""
    world = rank_and_world()[1]
    if world == 1:
        return bool(flag)
    value = torch.tensor([float(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
