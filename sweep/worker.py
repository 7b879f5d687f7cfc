"""What a Ray worker runs for one run: `worker_entry`, kept in a module of its own so that a worker
imports only what a run needs (the runner, the store, the sinks), not the driver's display.

Workers are reused across runs (the scheduler submits with max_calls=0), so torch, W&B and CUDA
start-up are paid once per worker process.
"""

from __future__ import annotations

from typing import Any

from sweep.progress import HubSink
from sweep.run_id import run_id
from sweep.runner import execute
from sweep.spec import RunSpec
from sweep.store import DONE, Store
from sweep.tracking import FanOut, WandbSink


def worker_entry(spec_dict: dict[str, Any], results_dir: str, sweep_name: str, device: str, threads: int,
                 wandb: dict[str, Any], hub, code_version: str | None, gpu_share: float = 0.0) -> dict[str, Any]:
    """One run, end to end, on the resources Ray gave this task. Returns the run's (small) runs-table row."""
    import ray
    import torch

    torch.set_num_threads(threads)
    spec = RunSpec.from_dict(spec_dict)
    rid = run_id(spec)
    run_dir = Store(results_dir, sweep_name).run_dir(rid)
    if run_dir.is_finished():  # another driver finished it meanwhile
        table = run_dir.read_table("run.parquet")
        return table.to_pylist()[0] if table is not None else {"run_id": rid, "status": DONE}
    wandb_sink = WandbSink(run_id=rid, config=spec.to_dict(), **wandb)
    try:
        held = ray.get_runtime_context().get_assigned_resources()  # what Ray gave it, into status.json
        return execute(spec, run_dir, device=device, sink=FanOut(wandb_sink, HubSink(hub, rid)),
                       code_version=code_version, gpu_share=gpu_share,
                       attempt_info={"resources": {k: held[k] for k in sorted(held)}})
    finally:
        wandb_sink.close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
