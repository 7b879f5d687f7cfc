"""Getting a Ray cluster: start one inside this process (cluster=local) or join one (cluster=ray)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sweep.config import ClusterConfig
from sweep.resources import Node, RunResources

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


def live_nodes() -> list[Node]:
    """The alive nodes of the connected Ray cluster."""
    import ray

    return [Node(cpus=n["Resources"].get("CPU", 0.0), gpus=n["Resources"].get("GPU", 0.0))
            for n in ray.nodes() if n.get("Alive")]


def local_gpu_count() -> int:
    """GPUs Ray would find on this machine, without starting it (or importing torch): the entries of
    CUDA_VISIBLE_DEVICES when it is set, else the GPUs `nvidia-smi -L` lists, else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "NoDevFiles"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def planned_nodes(cfg: ClusterConfig) -> list[Node]:
    """The nodes a sweep would run on, for planning without launching (dry run).

    cluster=local: this machine (cluster.num_cpus / cluster.num_gpus where given, so a laptop can plan
    for a GPU node with cluster.num_gpus=1); cluster=ray: the nodes of the running cluster, joined
    briefly. Raises ClusterError when that cluster cannot be reached.
    """
    if cfg.kind == "local":
        return [Node(cpus=float(cfg.num_cpus if cfg.num_cpus is not None else os.cpu_count() or 1),
                     gpus=float(cfg.num_gpus if cfg.num_gpus is not None else local_gpu_count()))]
    try:
        with connect(cfg):
            return live_nodes()
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach cluster.address={cfg.address!r} to plan for its nodes: {exc}") from exc


def placeable(need: RunResources, nodes: Sequence[Node]) -> bool:
    """Whether the nodes can hold the run: on one node, or, for a data-parallel run (several GPUs),
    its ranks (one GPU and their share of the CPUs each) spread over the nodes."""
    if need.ranks == 1:
        return any(n.cpus >= need.num_cpus and n.gpus >= need.num_gpus for n in nodes)
    cpus = need.num_cpus / need.ranks
    slots = sum(min(int(n.gpus), int(n.cpus // cpus) if cpus else 10**6) for n in nodes)
    return slots >= need.ranks


def check_resources(cfg: ClusterConfig, needs: Sequence[RunResources], nodes: Sequence[Node]) -> list[str]:
    """Problems that would leave runs pending forever: a run whose CPUs and GPUs no single node has."""
    max_cpus = max((n.cpus for n in nodes), default=0.0)
    max_gpus = max((n.gpus for n in nodes), default=0.0)
    problems = []
    if cfg.device == "cuda" and max_gpus == 0:
        problems.append("cluster.device=cuda but the cluster has no GPU (set cluster.device=auto or cpu)")
    unplaceable = [r for r in needs if not placeable(r, nodes)]
    if not unplaceable:
        return problems
    spread = [r for r in unplaceable if r.ranks > 1]
    if spread:
        need = max(spread, key=lambda r: r.ranks)
        total = sum(int(n.gpus) for n in nodes)
        problems.append(f"cluster.gpus_per_run={need.num_gpus:g} trains a run data parallel on {need.ranks} GPUs "
                        f"({need.num_cpus / need.ranks:g} CPUs each), but the cluster has {total} GPUs for it")
        return problems
    cpus = max(r.num_cpus for r in unplaceable)
    gpus = max(r.num_gpus for r in unplaceable)
    found = len(problems)
    if cpus > max_cpus:
        given = f"{cpus:g}" if cfg.cpus_per_run is not None else f"null (auto: {cpus:g} for the largest run)"
        problems.append(f"cluster.cpus_per_run={given} but the largest node has {max_cpus:g} CPUs")
    if gpus > max_gpus:
        given = f"{gpus:g}" if cfg.gpus_per_run is not None else f"null (auto: {gpus:g} for the largest run)"
        problems.append(f"cluster.gpus_per_run={given} but the largest node has {max_gpus:g} GPUs "
                        "(set cluster.gpus_per_run=0 to train on CPU)")
    if len(problems) == found:  # each fits some node, but not both on the same one
        listing = ", ".join(f"{n.cpus:g} CPUs/{n.gpus:g} GPUs" for n in nodes)
        problems.append(f"no node has both {cpus:g} CPUs and {gpus:g} GPUs for a run (cluster.cpus_per_run, "
                        f"cluster.gpus_per_run); the nodes have {listing}")
    return problems
