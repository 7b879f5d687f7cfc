"""The training loop of one run on one device: `train(spec, ...) -> TrainResult`.

Callable from a test, a notebook or a Ray worker alike: torch only, no Ray, no Hydra. Metrics go to
a sink (anything with `log(row)`), checkpoints to a CheckpointIO; the caller decides where both go.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from sweep.messages import first_line
from sweep.plan.spec import RunSpec
from sweep.tasks.mixture import Mixture, mixture_for
from sweep.train.batches import batch_stream, data_workers
from sweep.train.checkpoint import CheckpointIO, CheckpointRejected, NoCheckpoints, pack, unpack
from sweep.train.compiled import compile_loss
from sweep.train.distributed import any_rank, mean, no_sync, rank_and_world, wrap
from sweep.train.execution import execution
from sweep.train.flops import train_flops_per_token
from sweep.train.hardware import memory_bytes, peak_flops
from sweep.train.memory import micro_batch_size
from sweep.train.model import GPT
from sweep.train.schedule import lr_at


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


class BranchStartMissing(RuntimeError):
    """A WSD branch found no usable checkpoint of its trunk at its branch step. Never retried. It trains from
    step 0 only when the driver's store says so (first_step=0: its trunk is done without that checkpoint,
    sweep.store.runs.BranchCheckpoints.trains_prefix), never because a checkpoint it expected was unusable."""


class Sink(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...


class NullSink:
    def log(self, row: dict[str, Any]) -> None:
        pass


VAL_CHUNK_CPU = 32  # held-out rows per forward pass of a validation loss on a CPU


@dataclass
class TrainResult:
    model: GPT
    curves: list[dict[str, Any]]
    final_train_loss: float
    final_val_loss: float
    train_seconds: float  # wall time of the training steps in this attempt
    tokens_per_second: float  # over this attempt's steps
    mfu: float | None  # model FLOPs utilisation against the device's bf16 peak; None on CPU
    resumed_from_step: int
    checkpoint_rejected: str | None = None  # why a checkpoint found at the start was not used
    extra: dict[str, Any] = field(default_factory=dict)


def _param_groups(model: GPT, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (incl. embeddings), not gains: nanoGPT's configure_optimizers rule."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _fresh(spec: RunSpec, device: str) -> tuple[GPT, torch.optim.Optimizer]:
    """The run's initial model (seeded) and its AdamW optimizer."""
    plan = spec.train
    torch.manual_seed(spec.seed)
    model = GPT(spec.model).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, plan.weight_decay), lr=plan.lr,
                                  betas=(plan.beta1, plan.beta2), fused=True)
    return model, optimizer


def _resume(model: GPT, optimizer: torch.optim.Optimizer, payload: bytes,
            n_steps: int) -> tuple[list[dict[str, Any]], int]:
    """Load a checkpoint into model and optimizer: (curves, step). Raises CheckpointRejected."""
    state = unpack(payload)
    if state["step"] >= n_steps:
        raise CheckpointRejected(f"step {state['step']} is not before the run's last step {n_steps}")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointRejected(f"does not fit this run's model ({type(exc).__name__}: "
                                 f"{first_line(exc)[:200]})") from exc
    return state["curves"], state["step"]


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


def _micro_batch_size(spec: RunSpec, device: str, dtype: torch.dtype, memory_fraction: float) -> int:
    plan = spec.train
    if plan.micro_batch_size is not None:
        return plan.micro_batch_size
    budget = memory_bytes(device) * memory_fraction
    return micro_batch_size(spec.model, plan.batch_size, torch.finfo(dtype).bits // 8, budget)


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
    dtype = how.dtype
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    rank, world = rank_and_world()
    model, optimizer = _fresh(spec, device)
    first_step = spec.first_step if first_step is None else first_step
    curves: list[dict[str, Any]] = []
    start_step, rejected = 0, None
    payload = checkpoints.load()
    if payload is not None:
        try:
            curves, start_step = _resume(model, optimizer, payload, plan.n_steps)
        except CheckpointRejected as exc:
            rejected = str(exc)
            if not first_step:  # a branch does not restart: BranchStartMissing below says why
                warnings.warn(f"checkpoint rejected, the run restarts from step 0: {rejected}", stacklevel=2)
            model, optimizer = _fresh(spec, device)  # loading may have half-filled the first pair

    if start_step < first_step:
        why = f": {rejected}" if rejected else ""
        raise BranchStartMissing(f"this branch starts at step {first_step} from its trunk {spec.trunk_run_id}'s "
                                 f"checkpoint checkpoint/branch-{first_step}.pt, which was not usable{why}; "
                                 "delete that file: once the trunk is done the branch trains its first steps itself")

    if not rank:
        for row in curves:  # the resumed run's history, for sinks that start afresh (an offline W&B run)
            sink.log(row)

    def autocast():
        if dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)

    if plan.batch_size % world:
        raise ValueError(f"batch_size={plan.batch_size} does not split over {world} data-parallel ranks")
    local_batch = plan.batch_size // world  # this rank's rows of every global batch: rank, rank + world, ...
    micro = _micro_batch_size(dataclasses.replace(spec, train=dataclasses.replace(plan, batch_size=local_batch)),
                              device, dtype, memory_fraction)
    accumulation = local_batch // micro
    compiled = how.compiled
    net = wrap(model, device)
    loss_fn = compile_loss(net, key=(shape, micro, dtype, device, world)) if compiled else net
    # The same held-out rows for every run of the sweep, whatever its batch: runs are compared on one text.
    val_rows = torch.from_numpy(mixture.batch(spec.data.seed, 0, plan.val_sequences, shape.seq_len, "heldout")
                                )[rank::world].to(device)
    # No gradients to hold: on a CPU, evaluate at least VAL_CHUNK_CPU rows at a time (a batch-2 run would make
    # 128 calls of 2 rows); on a GPU the training micro-batch, which is known to fit.
    val_chunk = micro if device.startswith("cuda") else max(micro, VAL_CHUNK_CPU)
    workers = data_workers(plan.data_workers, device, torch.get_num_threads())
    batches = batch_stream(mixture, spec.seed, plan.batch_size, shape.seq_len, start_step, plan.n_steps,
                           device, workers)
    tokens_per_step = plan.batch_size * shape.seq_len
    flops_per_token = train_flops_per_token(shape)
    peak = peak_flops(device)

    def save_checkpoint(step: int) -> None:
        if rank:
            return
        checkpoints.save(pack({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "curves": curves, "step": step}), step)

    branch_points = set(spec.branch_points)

    def save_branch_point(step: int) -> None:
        """A WSD trunk at a branch step: a durable checkpoint its branch starts from."""
        if rank or step not in branch_points:
            return
        checkpoints.save_branch_point(pack({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                            "curves": curves, "step": step}), step)

    save_branch_point(start_step)  # resumed exactly at a branch step (e.g. interrupted there): keep it now

    model.train()
    loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync between log points
    loss_count = 0
    train_loss = val_loss = float("nan")
    t_start = t_log = t_ckpt = time.perf_counter()
    first_log_seconds = None  # from entering train(): start-up, compilation and the first steps
    steps_since_log = 0
    completed = start_step  # optimizer steps taken, for a checkpoint on Ctrl-C
    try:
        for step, rows in zip(range(start_step, plan.n_steps), batches):
            lr = lr_at(step, n_steps=plan.n_steps, warmup_steps=plan.warmup_steps, peak_lr=plan.lr,
                       final_fraction=plan.final_lr_fraction, schedule=plan.schedule,
                       n_cooldown=plan.cooldown_steps, cooldown_shape=plan.cooldown_shape)
            for group in optimizer.param_groups:
                group["lr"] = lr
            chunks = rows[rank::world].split(micro)  # gradient accumulation: equal micro-batches, mean of means
            for i, chunk in enumerate(chunks):
                with no_sync(net, last_micro_batch=i == len(chunks) - 1):
                    with autocast():
                        loss = loss_fn(chunk[:, :-1], chunk[:, 1:])
                    (loss / accumulation).backward()
                loss_sum += loss.detach() / accumulation
            if plan.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), plan.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            completed = step + 1
            loss_count += 1
            steps_since_log += 1
            last = step == plan.n_steps - 1

            is_val = (step + 1) % plan.val_every_steps == 0 or last
            if (step + 1) % plan.log_every_steps == 0 or is_val:
                train_loss = (mean(loss_sum) / loss_count).item()
                loss_sum.zero_()
                loss_count = 0
                diverged = not math.isfinite(train_loss) or train_loss > plan.diverge_loss
                now = time.perf_counter()
                if first_log_seconds is None:
                    first_log_seconds = now - t_enter
                tok_per_s = steps_since_log * tokens_per_step / max(now - t_log, 1e-9)
                row = {"step": step + 1, "tokens": (step + 1) * tokens_per_step,
                       "flops": (step + 1) * tokens_per_step * flops_per_token, "train_loss": train_loss,
                       "val_loss": None, "lr": lr, "tok_per_s": tok_per_s}
                if diverged:
                    curves.append(row)
                    if not rank:
                        sink.log(row)
                    raise Diverged(f"train loss {train_loss:.4g} at step {step + 1} (limit {plan.diverge_loss})",
                                   curves)
                if is_val:
                    val_loss = validation_loss(model, val_rows, val_chunk, autocast, plan.val_sequences)
                    row["val_loss"] = val_loss
                curves.append(row)
                if not rank:
                    sink.log(row)
                t_log, steps_since_log = time.perf_counter(), 0
                if not last and any_rank(stop is not None and stop()):  # every rank takes part, every log point
                    save_checkpoint(step + 1)
                    raise Interrupted(step + 1, curves)
                if not last and now - t_ckpt >= plan.checkpoint_every_seconds:
                    save_checkpoint(step + 1)
                    t_ckpt = time.perf_counter()
            save_branch_point(completed)  # after the step's curve row, so the branch inherits it
    except KeyboardInterrupt:  # Ctrl-C in a notebook or a terminal: keep the work done so far
        if completed > start_step:
            save_checkpoint(completed)
        raise Interrupted(completed, curves) from None

    seconds = time.perf_counter() - t_start
    trained_tokens = (plan.n_steps - start_step) * tokens_per_step
    tokens_per_second = trained_tokens / max(seconds, 1e-9)
    mfu = tokens_per_second * flops_per_token / (peak * world) if peak else None  # tokens of all ranks
    return TrainResult(model=model, curves=curves, final_train_loss=train_loss, final_val_loss=val_loss,
                       train_seconds=seconds, tokens_per_second=tokens_per_second, mfu=mfu,
                       resumed_from_step=start_step, checkpoint_rejected=rejected,
                       extra={"micro_batch_size": micro, "accumulation_steps": accumulation, "compiled": compiled,
                              "precision": how.precision, "data_workers": workers,
                              "first_log_seconds": first_log_seconds,
                              "world_size": world})
