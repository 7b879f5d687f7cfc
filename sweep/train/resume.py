"""Where a run's training starts: its seeded initial model and optimizer, or a checkpoint loaded into them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from sweep.messages import first_line
from sweep.plan.spec import RunSpec
from sweep.train.checkpoint import CheckpointIO, CheckpointRejected, first_usable
from sweep.train.model import GPT
from sweep.train.steps import optimizer_for


class BranchStartMissing(RuntimeError):
    """A WSD branch found no usable checkpoint of its trunk at its branch step. Never retried. It trains from
    step 0 only when the driver's store says so (first_step=0: its trunk is done without that checkpoint,
    sweep.store.runs.BranchCheckpoints.trains_prefix), never because a checkpoint it expected was unusable."""


@dataclass
class Start:
    """The state a run's training starts from: after `step` optimizer steps, with their curve rows."""

    model: GPT
    optimizer: torch.optim.Optimizer
    curves: list[dict[str, Any]]
    step: int
    rejected: str | None  # why a checkpoint found at the start was not used


def fresh(spec: RunSpec, device: str) -> tuple[GPT, torch.optim.Optimizer]:
    """The run's initial model (seeded) and its AdamW optimizer."""
    torch.manual_seed(spec.seed)
    model = GPT(spec.model).to(device)
    return model, optimizer_for(model, spec.train)


def _load(model: GPT, optimizer: torch.optim.Optimizer, state: dict[str, Any],
          n_steps: int) -> tuple[list[dict[str, Any]], int]:
    """Load an unpacked checkpoint into model and optimizer: (curves, step). Raises CheckpointRejected."""
    if state["step"] >= n_steps:
        raise CheckpointRejected(f"step {state['step']} is not before the run's last step {n_steps}")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointRejected(f"does not fit this run's model ({type(exc).__name__}: "
                                 f"{first_line(exc)[:200]})") from exc
    return state["curves"], state["step"]


def start(spec: RunSpec, device: str, checkpoints: CheckpointIO, first_step: int) -> Start:
    """Resume from the first usable checkpoint, else start afresh. A checkpoint that cannot be used is recorded
    (`rejected`) and the run restarts from step 0, unless it may not start before `first_step` (a WSD branch at
    its branch step): then BranchStartMissing."""
    model, optimizer = fresh(spec, device)
    curves: list[dict[str, Any]] = []
    step, rejected = 0, None
    try:
        state = first_usable(checkpoints.candidates())
        if state is not None:
            curves, step = _load(model, optimizer, state, spec.train.n_steps)
    except CheckpointRejected as exc:
        rejected = str(exc)
        if not first_step:  # a branch does not restart: BranchStartMissing below says why
            warnings.warn(f"checkpoint rejected, the run restarts from step 0: {rejected}", stacklevel=3)
        model, optimizer = fresh(spec, device)  # loading may have half-filled the first pair
    if step < first_step:
        why = f": {rejected}" if rejected else ""
        raise BranchStartMissing(f"this branch starts at step {first_step} from its trunk {spec.trunk_run_id}'s "
                                 f"checkpoint checkpoint/branch-{first_step}.pt, which was not usable{why}; "
                                 "delete that file: once the trunk is done the branch trains its first steps itself")
    return Start(model, optimizer, curves, step, rejected)
