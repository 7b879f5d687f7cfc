"""Getting a Ray cluster: start one inside this process (cluster=local) or join one (cluster=ray)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sweep.config import ClusterConfig

log = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster cannot run this sweep as configured (raised before any run is launched)."""


@contextmanager
def connect(cfg: ClusterConfig) -> Iterator[None]:
    """Connect for the duration of the block; shut down only what this block started."""
    import ray

    if ray.is_initialized():
        yield
        return
    common = dict(runtime_env=dict(cfg.runtime_env) or None, log_to_driver=cfg.log_to_driver,
                  logging_level=logging.WARNING, configure_logging=True)
    if cfg.kind == "local":
        ray.init(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, include_dashboard=False, **common)
    else:
        ray.init(address=cfg.address, **common)
    try:
        yield
    finally:
        ray.shutdown()


def check_resources(cfg: ClusterConfig) -> list[str]:
    """Problems that would leave runs pending forever on the connected cluster."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    max_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    problems = []
    if cfg.cpus_per_run > max_cpus:
        problems.append(f"cluster.cpus_per_run={cfg.cpus_per_run} but the largest node has {max_cpus:g} CPUs")
    if cfg.gpus_per_run > max_gpus:
        problems.append(f"cluster.gpus_per_run={cfg.gpus_per_run} but the largest node has {max_gpus:g} GPUs "
                        "(set cluster.gpus_per_run=0 to train on CPU)")
    return problems
