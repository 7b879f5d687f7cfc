"""Execute one run end to end: train, evaluate, write its tables, commit its status.

`execute` is what a Ray worker calls, but it needs no Ray: tests and notebooks call it directly.
Outcomes:
  * done / diverged: committed; never rerun;
  * a transient error (TRANSIENT_ERRORS): the attempt is recorded and the error re-raised, so the
    scheduler's narrow retry policy can try again from the last checkpoint;
  * any other error: committed as failed with its traceback (no retry: it would fail the same way).
"""

from __future__ import annotations

import os
import platform
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any

from sweep.plan.run_id import run_id as compute_run_id
from sweep.plan.spec import RunSpec
from sweep.store.runs import DIVERGED, DONE, FAILED, INTERRUPTED, RunDir, checkpoints_for
from sweep.store.schemas import CURVES, EVALS, RUNS, SAMPLES, to_table
from sweep.tasks.metrics import VAL_LOSS, aggregate, chance_levels, complete_sample
from sweep.tasks.mixture import eval_problems, mixture_for
from sweep.train.flops import flops_6nd, n_nonembed_params, n_params, train_flops

if TYPE_CHECKING:
    from sweep.train.loop import TrainResult

# Errors worth another attempt: the network or object store hiccupped. Never config or math errors.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, BrokenPipeError)


def spent_flops(spec: RunSpec, first_step: int | None = None) -> float:
    """Training FLOPs this run computes itself: every step of an independent run or a trunk; a WSD
    branch only its cooldown (the steps before its branch step are its trunk's, spent once for all
    branches), or every step when it trained its trunk's stable phase itself (first_step=0,
    BranchCheckpoints.trains_prefix). `flops` in the runs table is what an independent run to the same
    tokens costs.

    The one WSD rule applied here is the run-time one of who pays for a trunk's stable phase: the steps from
    `first_step` (spec.tokens_from), as the store's checkpoints decided it (sweep.store.runs.BranchCheckpoints
    .first_step). Which budgets share a trunk, its plan and the branch steps are plan-time rules, in
    sweep/plan/branches.py."""
    return float(train_flops(spec.model, spec.tokens_from(first_step)))


def schedule_name(spec: RunSpec) -> str:
    """How the point was trained, for the report: 'cosine', 'wsd-branch 1-sqrt 20%' ..."""
    plan = spec.train
    if plan.cooldown_steps is None:
        return plan.schedule
    kind = {"branch": "wsd-branch", "trunk": "wsd-trunk"}.get(spec.role, "wsd")
    return f"{kind} {plan.cooldown_shape} {plan.cooldown_steps}/{plan.n_steps}"


def run_row(spec: RunSpec, rid: str, status: str, attempts: int, **values: Any) -> dict[str, Any]:
    """The run's row of the `runs` table (also written for failed runs, with what is known)."""
    shape = spec.model
    return {
        "run_id": rid, "label": spec.label, "status": status, "seed": spec.seed,
        "n_layer": shape.n_layer, "d_model": shape.d_model, "n_head": shape.n_head, "seq_len": shape.seq_len,
        "n_params": n_params(shape), "n_nonembed_params": n_nonembed_params(shape),
        "n_tokens_budget": spec.n_tokens_budget, "n_tokens": spec.train.n_tokens,
        "flops": float(train_flops(shape, spec.train.n_tokens)),
        "flops_6nd": float(flops_6nd(shape, spec.train.n_tokens)),
        "flops_spent": spent_flops(spec), "schedule": schedule_name(spec), "role": spec.role,
        "trunk_run_id": spec.trunk_run_id, "branch_step": spec.branch_step,
        "cooldown_steps": spec.train.cooldown_steps,
        "batch_size": spec.train.batch_size, "n_steps": spec.train.n_steps, "lr": spec.train.lr,
        "recipe": spec.train.recipe,
        "attempts": attempts, **values,
    }


def commit_failure(run_dir: RunDir, spec: RunSpec, rid: str, state: str, error: str,
                   curves: list[dict[str, Any]] | None = None, **values: Any) -> dict[str, Any]:
    """Record a run that ended without results (failed or diverged): run.parquet, then status.json."""
    attempts = run_dir.attempts() or 1
    files = {}
    if curves:
        files["curves.parquet"] = run_dir.write_table("curves.parquet",
                                                      to_table([{"run_id": rid, **r} for r in curves], CURVES))
    row = run_row(spec, rid, state, attempts, error=error, **values)
    files["run.parquet"] = run_dir.write_table("run.parquet", to_table([row], RUNS))
    run_dir.end_attempt(rid, state, error=error, files=files)
    return row


def evaluate_all(spec: RunSpec, model, device: str, rid: str,
                 final_val_loss: float | None = None) -> tuple[list[dict], list[dict]]:
    """Sample rows and eval rows for every task of the suite, plus the held-out loss of the mixture."""
    from sweep.train.evaluate import evaluate_problems

    mixture = mixture_for(spec.tasks, spec.data)
    shape = spec.model
    common = {"run_id": rid, "seed": spec.seed, "n_params": n_params(shape),
              "n_nonembed_params": n_nonembed_params(shape), "n_tokens": spec.train.n_tokens,
              "flops": float(train_flops(shape, spec.train.n_tokens))}
    samples, evals = [], []
    if final_val_loss is not None:
        evals.append({**common, "task": "heldout", **VAL_LOSS.columns(), "value": final_val_loss})
    for task in mixture.tasks:
        problems = eval_problems(task, spec.n_eval, spec.data.seed, spec.data.heldout_fraction)
        rows = evaluate_problems(model, task.name, problems, mixture.tokenizer, device,
                                 task.generator.max_target_chars, batch_size=spec.eval_batch_size)
        rows = [complete_sample(row, p.answer_in) for row, p in zip(rows, problems)]
        samples.extend({"run_id": rid, **r} for r in rows)
        chance = chance_levels(task.generator.chance(), mixture.tokenizer.vocab_size)
        evals.extend({**common, "task": task.name, **agg} for agg in aggregate(rows, chance))
    return samples, evals


def execute(spec: RunSpec, run_dir: RunDir, *, device: str = "auto", sink=None,
            code_version: str | None = None, gpu_share: float | None = None,
            attempt_info: dict[str, Any] | None = None, stop=None) -> dict[str, Any]:
    """Train and evaluate one run, writing everything into `run_dir`. Returns the run's row.

    `gpu_share` is the fraction of the GPU the scheduler gave this run (Ray's num_gpus): the
    trainer keeps its memory within that share of the device (gradient accumulation if needed), and
    with device="auto" a run holding a share fails clearly when it finds no CUDA. None (a direct
    call, no scheduler): the whole device if there is one. `attempt_info` goes into status.json's
    record of this attempt (the scheduler records the resources Ray gave the run). `stop` (polled by
    the trainer): when it returns True the run checkpoints and ends `interrupted`, to resume later.
    """
    import torch

    from sweep.train.hardware import resolve_device
    from sweep.train.loop import train

    rid = compute_run_id(spec)
    t_start = time.perf_counter()
    run_dir.write_json("config.json", {"run_id": rid, "code_version": code_version, "spec": spec.to_dict()})
    host = {"host": socket.gethostname(), "pid": os.getpid(), "python": platform.python_version(),
            "torch": torch.__version__, "gpu_share": gpu_share, **(attempt_info or {})}
    try:
        device = resolve_device(device, gpu_share)
    except RuntimeError as exc:  # e.g. a GPU share but no CUDA: recorded with its reason, never retried
        run_dir.begin_attempt(rid, {**host, "device": device})
        return commit_failure(run_dir, spec, rid, FAILED, str(exc), wall_seconds=time.perf_counter() - t_start,
                              device=device)
    status = run_dir.begin_attempt(rid, {**host, "device": device})
    attempts = len(status["attempts"])
    checkpoints = checkpoints_for(spec, run_dir)
    first_step = checkpoints.first_step()  # a WSD branch: its branch step, or 0 when it trains the prefix too
    try:
        result = train(spec, device=device, sink=sink, checkpoints=checkpoints,
                       memory_fraction=min(gpu_share, 1.0) if gpu_share else 1.0, stop=stop, first_step=first_step)
        t_eval = time.perf_counter()
        samples, evals = evaluate_all(spec, result.model, device, rid, result.final_val_loss)
        eval_seconds = time.perf_counter() - t_eval
    except TRANSIENT_ERRORS as exc:
        run_dir.end_attempt(rid, "retrying", error=f"{type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        return ended_early(exc, run_dir, spec, rid, attempts, device, time.perf_counter() - t_start)

    files = {"curves.parquet": run_dir.write_table("curves.parquet",
                                                   to_table([{"run_id": rid, **r} for r in result.curves], CURVES)),
             "evals.parquet": run_dir.write_table("evals.parquet", to_table(evals, EVALS)),
             "samples.parquet": run_dir.write_table("samples.parquet", to_table(samples, SAMPLES))}
    row = run_row(spec, rid, DONE, attempts, **trained_values(result, device, gpu_share),
                  eval_seconds=eval_seconds, wall_seconds=time.perf_counter() - t_start,
                  flops_spent=spent_flops(spec, first_step))
    files["run.parquet"] = run_dir.write_table("run.parquet", to_table([row], RUNS))
    run_dir.end_attempt(rid, DONE, files=files, resumed_from_step=result.resumed_from_step,
                        checkpoint_rejected=result.checkpoint_rejected)
    checkpoints.clear()
    return row


def ended_early(exc: Exception, run_dir: RunDir, spec: RunSpec, rid: str, attempts: int, device: str,
                wall_seconds: float) -> dict[str, Any]:
    """The row of a run whose training or evaluation raised (called while `exc` is handled): interrupted (it
    resumes from its checkpoint on the next run), diverged, or failed, never retried: a WSD branch without its
    start with the reason, anything else with its traceback."""
    from sweep.train.loop import Diverged, Interrupted
    from sweep.train.resume import BranchStartMissing

    if isinstance(exc, Interrupted):
        run_dir.end_attempt(rid, INTERRUPTED, checkpoint_step=exc.step)
        return run_row(spec, rid, INTERRUPTED, attempts, wall_seconds=wall_seconds, device=device,
                       error=f"interrupted at step {exc.step} of {spec.train.n_steps}; resumes there on the next run")
    if isinstance(exc, Diverged):
        return commit_failure(run_dir, spec, rid, DIVERGED, str(exc), curves=exc.curves, wall_seconds=wall_seconds,
                              device=device)
    error = str(exc) if isinstance(exc, BranchStartMissing) else traceback.format_exc(limit=20)
    return commit_failure(run_dir, spec, rid, FAILED, error, wall_seconds=wall_seconds, device=device)


def trained_values(result: TrainResult, device: str, gpu_share: float | None) -> dict[str, Any]:
    """What a finished training tells the run's row: losses, speed, and how it ran on its device."""
    from sweep.train.hardware import device_name

    return {"final_train_loss": result.final_train_loss, "final_val_loss": result.final_val_loss,
            "train_seconds": result.train_seconds, "tokens_per_second": result.tokens_per_second, "mfu": result.mfu,
            "device": device, "gpu_type": device_name(device) if device != "cpu" else None,
            "startup_seconds": result.first_log_seconds, "micro_batch_size": result.micro_batch_size,
            "compiled": result.compiled, "precision": result.precision, "data_workers": result.data_workers,
            "gpu_share": gpu_share if device != "cpu" else 0.0}
