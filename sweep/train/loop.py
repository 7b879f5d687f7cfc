"""The training loop of one run on one device: `train(spec, ...) -> TrainResult`.

Callable from a test, a notebook or a Ray worker alike: torch only, no Ray, no Hydra. Metrics go to
a sink (anything with `log(row)`), checkpoints to a CheckpointIO; the caller decides where both go.
Where the run starts is sweep.train.resume's; what a step does, sweep.train.steps'; this module runs the
steps in order and, at log points, records curves, validates, detects divergence and checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from sweep.plan.spec import RunSpec
from sweep.tasks.mixture import Mixture, mixture_for
from sweep.train.batches import batch_stream, data_workers
from sweep.train.checkpoint import CheckpointIO, NoCheckpoints, pack
from sweep.train.distributed import any_rank, mean, rank_and_world
from sweep.train.execution import Execution, execution
from sweep.train.flops import train_flops_per_token
from sweep.train.hardware import peak_flops
from sweep.train.model import GPT
from sweep.train.resume import Start, start
from sweep.train.steps import Steps


class Diverged(RuntimeError):
    """Training loss became NaN/inf or exceeded the divergence limit. Never retried."""

    def __init__(self, message: str, curves: list[dict[str, Any]]):
        super().__init__(message)
        self.curves = curves


class Interrupted(RuntimeError):
    """Training stopped because the driver asked (Ctrl-C): a checkpoint of `step` was written first."""

    def __init__(self, step: int, curves: list[dict[str, Any]]):
        super().__init__(f"interrupted at step {step}; checkpoint written")
        self.step, self.curves = step, curves


class Sink(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...


class NullSink:
    def log(self, row: dict[str, Any]) -> None:
        pass


VAL_CHUNK_CPU = 32  # held-out rows per forward pass of a validation loss on a CPU


@dataclass(frozen=True)
class TrainResult:
    model: GPT
    curves: list[dict[str, Any]]
    final_train_loss: float
    final_val_loss: float
    train_seconds: float  # wall time of the training steps in this attempt
    tokens_per_second: float  # over this attempt's steps
    mfu: float | None  # model FLOPs utilisation against the device's bf16 peak; None on CPU
    resumed_from_step: int
    checkpoint_rejected: str | None  # why a checkpoint found at the start was not used
    micro_batch_size: int  # rows per forward pass on this rank
    accumulation_steps: int  # micro-batches per optimizer step on this rank
    compiled: bool
    precision: str  # "bf16" or "fp32", as resolved on the device (sweep.train.execution)
    data_workers: int  # processes building batches ahead of the step
    first_log_seconds: float | None  # from entering train() to the first log point: start-up, compile, first steps
    world_size: int  # data-parallel ranks


@torch.no_grad()
def validation_loss(model: GPT, rows: torch.Tensor, micro_batch_size: int, autocast, n_total: int) -> float:
    """Mean loss over this rank's held-out rows, evaluated in micro-batches and weighted by their sizes, then
    over the ranks' rows (n_total of them in all)."""
    model.eval()
    total = torch.zeros((), device=rows.device)
    for chunk in rows.split(micro_batch_size):
        with autocast():
            total += model.loss(chunk[:, :-1], chunk[:, 1:]).float() * len(chunk)
    model.train()
    return mean(total).item() * rank_and_world()[1] / n_total


def train(spec: RunSpec, device: str = "cpu", sink: Sink | None = None,
          checkpoints: CheckpointIO | None = None, mixture: Mixture | None = None,
          memory_fraction: float = 1.0, stop: Callable[[], bool] | None = None,
          first_step: int | None = None) -> TrainResult:
    """Train one run. `memory_fraction`: the share of the device this run may fill (a packed GPU).
    `stop`, polled at log points: when it says so, checkpoint and raise Interrupted. `first_step`: the
    earliest step the run may start at (None: spec.first_step, a WSD branch's branch step; 0 for a branch
    that trains its trunk's stable phase itself)."""
    t_enter = time.perf_counter()
    sink = sink or NullSink()
    checkpoints = checkpoints or NoCheckpoints()
    mixture = mixture or mixture_for(spec.tasks, spec.data)
    plan, shape = spec.train, spec.model
    how = execution(spec, device)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    begin = start(spec, device, checkpoints, spec.first_step if first_step is None else first_step)
    if not rank_and_world()[0]:
        for row in begin.curves:  # the resumed run's history, for sinks that start afresh (an offline W&B run)
            sink.log(row)
    steps = Steps(spec, begin.model, begin.optimizer, device, how, memory_fraction)
    loop = _Loop(spec, begin, steps, device, mixture, sink, checkpoints, stop, t_enter)
    workers = data_workers(plan.data_workers, device, torch.get_num_threads())
    loop.run(batch_stream(mixture, spec.seed, plan.batch_size, shape.seq_len, begin.step, plan.n_steps, device,
                          workers))
    return loop.result(how, workers)


class _Loop:
    """The steps of one run on this rank from where it starts to its last, with what happens at log points."""

    def __init__(self, spec: RunSpec, begin: Start, steps: Steps, device: str, mixture: Mixture, sink: Sink,
                 checkpoints: CheckpointIO, stop: Callable[[], bool] | None, t_enter: float):
        plan, shape = spec.train, spec.model
        self.plan, self.steps, self.sink, self.checkpoints, self.stop = plan, steps, sink, checkpoints, stop
        self.model, self.optimizer, self.curves = begin.model, begin.optimizer, begin.curves
        self.start_step, self.rejected, self.completed = begin.step, begin.rejected, begin.step
        self.rank, self.world = steps.rank, steps.world
        # The same held-out rows for every run of the sweep, whatever its batch: runs are compared on one text.
        self.val_rows = torch.from_numpy(mixture.batch(spec.data.seed, 0, plan.val_sequences, shape.seq_len,
                                                       "heldout"))[self.rank::self.world].to(device)
        # No gradients to hold: on a CPU, evaluate at least VAL_CHUNK_CPU rows at a time (a batch-2 run would make
        # 128 calls of 2 rows); on a GPU the training micro-batch, which is known to fit.
        self.val_chunk = steps.micro if device.startswith("cuda") else max(steps.micro, VAL_CHUNK_CPU)
        self.tokens_per_step = plan.batch_size * shape.seq_len
        self.flops_per_token = train_flops_per_token(shape)
        self.peak = peak_flops(device)
        self.branch_points = set(spec.branch_points)
        self.train_loss = self.val_loss = float("nan")
        self.t_enter, self.first_log_seconds, self.steps_since_log = t_enter, None, 0
        self.t_start = self.t_log = self.t_ckpt = self.seconds = 0.0

    def save(self, step: int, branch_point: bool = False) -> None:
        """The state after `step` optimizer steps, from rank 0: the rolling checkpoint; with `branch_point`, a WSD
        trunk's durable checkpoint that a branch starts from, written only at a branch step."""
        if self.rank or (branch_point and step not in self.branch_points):
            return
        payload = pack({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "curves": self.curves, "step": step})
        if branch_point:
            self.checkpoints.save_branch_point(payload, step)
        else:
            self.checkpoints.save(payload, step)

    def run(self, batches: Iterable[torch.Tensor]) -> None:
        """Every step left; Ctrl-C (KeyboardInterrupt) keeps the work done so far in a checkpoint."""
        plan = self.plan
        self.save(self.start_step, branch_point=True)  # resumed exactly at a branch step (e.g. interrupted there)
        self.model.train()
        self.t_start = self.t_log = self.t_ckpt = time.perf_counter()
        try:
            for step, rows in zip(range(self.start_step, plan.n_steps), batches):
                lr = self.steps.take(step, rows)
                self.completed = step + 1
                self.steps_since_log += 1
                last = step == plan.n_steps - 1
                is_val = (step + 1) % plan.val_every_steps == 0 or last
                if (step + 1) % plan.log_every_steps == 0 or is_val:
                    self.log_point(step + 1, lr, is_val, last)
                self.save(self.completed, branch_point=True)  # after the step's curve row, so the branch inherits it
        except KeyboardInterrupt:
            if self.completed > self.start_step:
                self.save(self.completed)
            raise Interrupted(self.completed, self.curves) from None
        self.seconds = time.perf_counter() - self.t_start

    def record(self, row: dict[str, Any]) -> None:
        self.curves.append(row)
        if not self.rank:
            self.sink.log(row)

    def log_point(self, done: int, lr: float, is_val: bool, last: bool) -> None:
        """After `done` steps: the curve row (with the validation loss at a validation point); then divergence,
        the driver's stop (every rank takes part, at every log point) and a timed checkpoint."""
        plan = self.plan
        self.train_loss = self.steps.mean_loss()
        diverged = not math.isfinite(self.train_loss) or self.train_loss > plan.diverge_loss
        now = time.perf_counter()
        if self.first_log_seconds is None:
            self.first_log_seconds = now - self.t_enter
        tok_per_s = self.steps_since_log * self.tokens_per_step / max(now - self.t_log, 1e-9)
        row = {"step": done, "tokens": done * self.tokens_per_step,
               "flops": done * self.tokens_per_step * self.flops_per_token, "train_loss": self.train_loss,
               "val_loss": None, "lr": lr, "tok_per_s": tok_per_s}
        if diverged:
            self.record(row)
            raise Diverged(f"train loss {self.train_loss:.4g} at step {done} (limit {plan.diverge_loss})", self.curves)
        if is_val:
            self.val_loss = validation_loss(self.model, self.val_rows, self.val_chunk, self.steps.autocast,
                                            plan.val_sequences)
            row["val_loss"] = self.val_loss
        self.record(row)
        self.t_log, self.steps_since_log = time.perf_counter(), 0
        if not last and any_rank(self.stop is not None and self.stop()):
            self.save(done)
            raise Interrupted(done, self.curves)
        if not last and now - self.t_ckpt >= plan.checkpoint_every_seconds:
            self.save(done)
            self.t_ckpt = time.perf_counter()

    def result(self, how: Execution, workers: int) -> TrainResult:
        trained_tokens = (self.plan.n_steps - self.start_step) * self.tokens_per_step
        tokens_per_second = trained_tokens / max(self.seconds, 1e-9)
        mfu = tokens_per_second * self.flops_per_token / (self.peak * self.world) if self.peak else None  # all ranks
        return TrainResult(model=self.model, curves=self.curves, final_train_loss=self.train_loss,
                           final_val_loss=self.val_loss, train_seconds=self.seconds,
                           tokens_per_second=tokens_per_second, mfu=mfu, resumed_from_step=self.start_step,
                           checkpoint_rejected=self.rejected, micro_batch_size=self.steps.micro,
                           accumulation_steps=self.steps.accumulation, compiled=how.compiled,
                           precision=how.precision, data_workers=workers, first_log_seconds=self.first_log_seconds,
                           world_size=self.world)
