"""A run on several GPUs: Ray Train starts one process per GPU, the trainer runs data parallel in them.

Used for runs given a whole number of GPUs above one (cluster.gpus_per_run=2, 4, ...): `run_data_parallel`
is called by the run's worker (sweep.driver.worker.RunWorker, which itself holds no GPU) and blocks until
the run ends. Every rank calls sweep.train.loop.train(), which splits each global batch over the ranks
(sweep.train.distributed), so the run's numbers and run_id are those of the same run on one GPU.
Rank 0 does everything else: status, checkpoints, evaluation, tables, W&B; the others only train,
resuming from the same checkpoint. A rank that fails takes the group down (Ray Train stops the
others) and the run is recorded failed by rank 0 or, failing that, here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from sweep.plan.spec import RunSpec
from sweep.store.runs import FAILED, FINISHED, INTERRUPTED, CheckpointFile, Store, checkpoints_for


class _ReadOnly:
    """A CheckpointIO that loads the run's checkpoint and never writes (ranks other than 0)."""

    def __init__(self, checkpoints: CheckpointFile):  # or a BranchCheckpoints
        self.checkpoints = checkpoints

    def candidates(self) -> tuple[Callable[[], bytes | None], ...]:
        return self.checkpoints.candidates()

    def save(self, payload: bytes, step: int) -> None:
        pass

    def save_branch_point(self, payload: bytes, step: int) -> None:
        pass


def _rank_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs."""
    import ray.train
    import ray.train.torch
    import torch

    from sweep.driver.progress import HubSink
    from sweep.driver.runner import execute
    from sweep.store.tracking import FanOut, WandbSink
    from sweep.train.loop import Diverged, Interrupted, train

    torch.set_num_threads(config["threads"])
    spec = RunSpec.from_dict(config["spec"])
    run_dir = Store(config["results_dir"], config["sweep_name"]).run_dir(config["run_id"])
    device = str(ray.train.torch.get_device()) if config["use_gpu"] else "cpu"
    rank = ray.train.get_context().get_world_rank()
    if rank:
        try:
            train(spec, device=device, checkpoints=_ReadOnly(checkpoints_for(spec, run_dir)), stop=lambda: False)
        except (Diverged, Interrupted):  # rank 0 records what happened
            pass
        return
    wandb_sink = WandbSink(run_id=config["run_id"], config=spec.to_dict(), **config["wandb"])
    hub_sink = HubSink(config["hub"], config["run_id"]) if config["hub"] is not None else None
    try:
        row = execute(spec, run_dir, device=device, sink=FanOut(wandb_sink, hub_sink),
                      code_version=config["code_version"], gpu_share=1.0,
                      stop=hub_sink.should_stop if hub_sink else None,
                      attempt_info={"data_parallel_ranks": ray.train.get_context().get_world_size()})
    finally:
        wandb_sink.close()
    if row["status"] == FAILED:  # take the other ranks down instead of leaving them in a collective
        raise RuntimeError(row.get("error") or "run failed")


def run_data_parallel(spec: RunSpec, results_dir: str, sweep_name: str, run_id: str, *, ranks: int, use_gpu: bool,
                      cpus_per_rank: float, wandb: dict[str, Any], hub=None, code_version: str | None = None
                      ) -> dict[str, Any]:
    """Train and evaluate `spec` on `ranks` processes (one GPU each with use_gpu). Returns its row."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from sweep.driver.runner import commit_failure, run_row

    resources = {"CPU": cpus_per_rank, **({"GPU": 1} if use_gpu else {})}
    config = {"spec": spec.to_dict(), "results_dir": results_dir, "sweep_name": sweep_name, "run_id": run_id,
              "use_gpu": use_gpu, "threads": max(1, int(cpus_per_rank)), "wandb": wandb, "hub": hub,
              "code_version": code_version}
    run_dir = Store(results_dir, sweep_name).run_dir(run_id)
    with tempfile.TemporaryDirectory(prefix="sweep-train-") as storage:
        trainer = TorchTrainer(_rank_loop, train_loop_config=config,
                               scaling_config=ScalingConfig(num_workers=ranks, use_gpu=use_gpu,
                                                            resources_per_worker=resources),
                               run_config=RunConfig(storage_path=storage, name=run_id))
        try:
            trainer.fit()
        except Exception as exc:  # a rank failed; rank 0 may already have recorded why
            if run_dir.state() != FAILED:
                return commit_failure(run_dir, spec, run_id, FAILED, f"data-parallel training failed: {exc}")
    status = run_dir.status() or {}
    if status.get("state") == INTERRUPTED:
        return run_row(spec, run_id, INTERRUPTED, len(status["attempts"]), error=status.get("error"))
    table = run_dir.read_table("run.parquet")
    if table is None or status.get("state") not in (*FINISHED, FAILED):
        return commit_failure(run_dir, spec, run_id, FAILED, "data-parallel training ended without a result")
    return table.to_pylist()[0]
