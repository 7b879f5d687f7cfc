"""What trains runs on the cluster: `RunWorker`, a long-lived Ray actor that trains one run after
another. Kept in a module of its own so that a worker imports only what a run needs (the runner, the
store, the sinks), not the driver's display.

An actor keeps the GPU share Ray gave it at creation for its whole life, so its CUDA context, the
memory torch caches and its compiled code (sweep.train.compiled) serve every run it trains. Tasks
cannot do that: a reused task worker keeps the CUDA devices of its first task while Ray hands the
next task another GPU (ray-project/ray#3245), which is why Ray does not reuse GPU task workers.
"""

from __future__ import annotations

import os
from typing import Any

from sweep.driver.progress import HubSink
from sweep.driver.runner import execute
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec
from sweep.store.lease import acquire, holder, live_lease
from sweep.store.runs import DONE, LEASED, RunDir, Store
from sweep.store.tracking import FanOut, WandbSink


def finished_row(run_dir: RunDir, rid: str) -> dict[str, Any]:
    table = run_dir.read_table("run.parquet")
    return table.to_pylist()[0] if table is not None else {"run_id": rid, "status": DONE}


class RunWorker:
    """Wrapped with ray.remote by the scheduler, with the run shape's num_cpus and num_gpus."""

    def __init__(self, threads: int, hub):
        import torch

        torch.set_num_threads(threads)
        self.hub = hub

    def pid(self) -> int:
        return os.getpid()

    def run(self, spec_dict: dict[str, Any], results_dir: str, sweep_name: str, device: str,
            wandb: dict[str, Any], code_version: str | None, gpu_share: float = 0.0,
            ranks: int = 1, cpus_per_rank: float = 1.0, owner: str = "", lease_seconds: float = 120.0
            ) -> dict[str, Any]:
        """One run, end to end, under the run's lease (sweep.store.lease: another driver's worker training it
        already -> status `leased`, nothing done). Returns the run's (small) runs-table row. With
        `ranks` > 1 the run trains data parallel on that many GPUs through Ray Train
        (sweep.driver.data_parallel); this worker then holds no GPU itself and waits for it."""
        spec = RunSpec.from_dict(spec_dict)
        rid = run_id(spec)
        run_dir = Store(results_dir, sweep_name).run_dir(rid)
        if run_dir.is_finished():  # another driver finished it meanwhile
            return finished_row(run_dir, rid)
        lease = acquire(run_dir, owner, lease_seconds)
        if lease is None:
            return {"run_id": rid, "status": LEASED, "error": f"being trained by {holder(live_lease(run_dir) or {})}"}
        with lease.renewing():
            if run_dir.is_finished():  # finished between the first check and the lease
                return finished_row(run_dir, rid)
            return self._train(spec, rid, run_dir, results_dir, sweep_name, device, wandb, code_version,
                               gpu_share, ranks, cpus_per_rank)

    def _train(self, spec, rid, run_dir, results_dir, sweep_name, device, wandb, code_version, gpu_share,
               ranks, cpus_per_rank) -> dict[str, Any]:
        import ray
        import torch

        if ranks > 1:
            from sweep.driver.data_parallel import run_data_parallel

            return run_data_parallel(spec, results_dir, sweep_name, rid, ranks=ranks, use_gpu=device != "cpu",
                                     cpus_per_rank=cpus_per_rank, wandb=wandb, hub=self.hub,
                                     code_version=code_version)
        wandb_sink = WandbSink(run_id=rid, config=spec.to_dict(), **wandb)
        hub_sink = HubSink(self.hub, rid)
        try:
            held = ray.get_runtime_context().get_assigned_resources()  # what Ray gave it, into status.json
            return execute(spec, run_dir, device=device, sink=FanOut(wandb_sink, hub_sink),
                           code_version=code_version, gpu_share=gpu_share, stop=hub_sink.should_stop,
                           attempt_info={"resources": {k: held[k] for k in sorted(held)}})
        finally:
            wandb_sink.close()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
