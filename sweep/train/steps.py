"""One optimizer step of a run: AdamW over its parameter groups, the scheduled lr, micro-batches, clipping.

`Steps.take(step, rows)` is the whole of what the loop does to the model at a step: it sets the learning
rate of `step`, splits this rank's rows of the global batch into equal micro-batches (gradient accumulation:
the mean of their means, DDP reducing only on the last), clips and steps the optimizer. The training loss
is summed on the device and read only at log points (`mean_loss`), so no step waits for the host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from sweep.plan.spec import RunSpec, TrainPlan
from sweep.train.compiled import compile_loss
from sweep.train.distributed import mean, no_sync, rank_and_world, wrap
from sweep.train.execution import Execution
from sweep.train.hardware import memory_bytes
from sweep.train.memory import micro_batch_size
from sweep.train.model import GPT
from sweep.train.schedule import lr_at


def param_groups(model: GPT, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (incl. embeddings), not gains: nanoGPT's configure_optimizers rule."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def optimizer_for(model: GPT, plan: TrainPlan) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(model, plan.weight_decay), lr=plan.lr, betas=(plan.beta1, plan.beta2),
                             fused=True)


def micro_batch_for(spec: RunSpec, device: str, dtype: torch.dtype, memory_fraction: float) -> int:
    """Rows per forward pass: the plan's micro_batch_size, else as many of the batch as fit in
    `memory_fraction` of the device (sweep.train.memory)."""
    plan = spec.train
    if plan.micro_batch_size is not None:
        return plan.micro_batch_size
    budget = memory_bytes(device) * memory_fraction
    return micro_batch_size(spec.model, plan.batch_size, torch.finfo(dtype).bits // 8, budget)


def autocast_for(device: str, dtype: torch.dtype) -> Callable[[], AbstractContextManager]:
    """A fresh autocast context to `dtype` on each call (none in fp32)."""
    def autocast() -> AbstractContextManager:
        if dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)
    return autocast


class Steps:
    """The optimizer steps of one run on this rank: its micro-batch, its (maybe compiled, maybe DDP) loss."""

    def __init__(self, spec: RunSpec, model: GPT, optimizer: torch.optim.Optimizer, device: str, how: Execution,
                 memory_fraction: float):
        plan, shape = spec.train, spec.model
        self.plan, self.model, self.optimizer = plan, model, optimizer
        self.rank, self.world = rank_and_world()
        if plan.batch_size % self.world:
            raise ValueError(f"batch_size={plan.batch_size} does not split over {self.world} data-parallel ranks")
        local_batch = plan.batch_size // self.world  # this rank's rows of every global batch: rank, rank + world, ...
        local = dataclasses.replace(spec, train=dataclasses.replace(plan, batch_size=local_batch))
        self.micro = micro_batch_for(local, device, how.dtype, memory_fraction)
        self.accumulation = local_batch // self.micro
        self.net = wrap(model, device)
        self.loss_fn = (compile_loss(self.net, key=(shape, self.micro, how.dtype, device, self.world))
                        if how.compiled else self.net)
        self.autocast = autocast_for(device, how.dtype)
        self.loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync between log points
        self.loss_count = 0

    def lr(self, step: int) -> float:
        plan = self.plan
        return lr_at(step, n_steps=plan.n_steps, warmup_steps=plan.warmup_steps, peak_lr=plan.lr,
                     final_fraction=plan.final_lr_fraction, schedule=plan.schedule,
                     n_cooldown=plan.cooldown_steps, cooldown_shape=plan.cooldown_shape)

    def take(self, step: int, rows: torch.Tensor) -> float:
        """Optimizer step `step` on the global batch `rows`: returns the learning rate it applied."""
        lr = self.lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        chunks = rows[self.rank::self.world].split(self.micro)  # equal micro-batches: the mean of their means
        for i, chunk in enumerate(chunks):
            with no_sync(self.net, last_micro_batch=i == len(chunks) - 1):
                with self.autocast():
                    loss = self.loss_fn(chunk[:, :-1], chunk[:, 1:])
                (loss / self.accumulation).backward()
            self.loss_sum += loss.detach() / self.accumulation
        if self.plan.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.plan.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_count += 1
        return lr

    def mean_loss(self) -> float:
        """The training loss averaged over the steps since the last call and over the ranks (a host sync)."""
        loss = (mean(self.loss_sum) / self.loss_count).item()
        self.loss_sum.zero_()
        self.loss_count = 0
        return loss
