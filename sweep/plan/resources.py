"""What one run asks the cluster for: its share of a GPU and its CPUs, chosen from the run's size.

Pure functions of the run's spec, the cluster config and the cluster's nodes; no Ray here (the
scheduler reads the nodes from Ray and passes them in, the dry run passes the planned ones). Whether a
run fits on a node, and how many at once, is decided here once (`runs_fitting`), for the driver's
worker count, the pre-launch check and the dry run's cost alike.

The GPU share rule (`gpu_share`), and why:

* A run keeps a GPU busy in proportion to the work of one optimizer step,
  F = tokens per step x training FLOPs per token (sweep.train.flops): below a certain size the GPU
  finishes each step faster than Python can issue the next one, and waits.
* `full_gpu_flops_per_step` is the work per step at which one run alone fills a GPU. Default
  1.4e13 FLOPs, measured on an H200: a 124M model (12 x 768, vocab 50304) at 16 x 1024 =
  16K tokens per step reaches 42.1% MFU alone, within 3 points of nanoGPT on the same machine, while
  a 30M model at 32K tokens per step (6.8e12 FLOPs) reaches 34.8%. A smaller GPU fills with less
  work: lower the figure in proportion to its peak (A100: about 4.4e12).
* A run with less work is packed: its share is the smallest power-of-two fraction 1/k that is at
  least F / full_gpu_flops_per_step, so k runs of its size together bring about one full run's work
  per step, never more than `max_runs_per_gpu` on a GPU (default 8: Ray's GPU memory is split k
  ways too). Packing pays because a small run's throughput hardly drops when others share the GPU:
  4 copies of a 3 x 128 model (`grid=emergence` g3) on one H200 trained 983K tokens/s together
  against 235K tokens/s alone (4.2x).
* Runs with F at or above the figure get a whole GPU.

A share given by the user (`cluster.gpus_per_run`) applies to every run unchanged; on a cluster
without GPUs the automatic share is 0.

CPUs (`cpus_for_share`): a CPU run takes one core (runs go in parallel, one per core); a GPU run
takes its share of a GPU node's cores, floor(node CPUs / node GPUs x share), at least 1, so a
packed GPU's runs fit on its node together and each has cores for its data loading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sweep.config.schema import ClusterConfig
from sweep.plan.spec import RunSpec
from sweep.train.flops import train_flops_per_token


@dataclass(frozen=True)
class Node:
    """One machine of the cluster: how many CPUs and GPUs Ray may give out on it."""

    cpus: float
    gpus: float


@dataclass(frozen=True)
class RunResources:
    """What one run holds while it trains: Ray's num_cpus and num_gpus for its task."""

    num_cpus: float
    num_gpus: float

    @property
    def threads(self) -> int:
        """torch threads for the run: one per whole CPU it holds."""
        return max(1, int(self.num_cpus))

    @property
    def ranks(self) -> int:
        """Processes the run trains in: one per GPU when it holds more than one (data parallel)."""
        return int(self.num_gpus) if self.num_gpus > 1 else 1


def flops_per_step(spec: RunSpec) -> float:
    """Training FLOPs of one optimizer step: batch x seq_len tokens x training FLOPs per token."""
    return float(spec.train.batch_size * spec.model.seq_len * train_flops_per_token(spec.model))


def gpu_share(flops_per_step_: float, max_runs_per_gpu: int = 8, full_gpu_flops_per_step: float = 1.4e13) -> float:
    """The fraction of one GPU a run of this much work per step should hold (the rule in the module doc).

    1.0 from `full_gpu_flops_per_step` up; below, the smallest power-of-two fraction >= the ratio,
    floored at 1 / max_runs_per_gpu.
    """
    floor = 1.0 / max_runs_per_gpu
    ratio = flops_per_step_ / full_gpu_flops_per_step
    if ratio >= 1.0:
        return 1.0
    if ratio <= floor:
        return floor
    return max(floor, 2.0 ** math.ceil(math.log2(ratio)))


def has_gpus(nodes: Sequence[Node]) -> bool:
    return any(node.gpus > 0 for node in nodes)


def cpus_for_share(share: float, nodes: Sequence[Node]) -> float:
    """A GPU run's CPUs: its share of the CPUs per GPU of the GPU nodes (the leanest node decides), >= 1."""
    per_gpu = min((node.cpus / node.gpus for node in nodes if node.gpus > 0), default=1.0)
    return float(max(1, math.floor(per_gpu * share + 1e-9)))


def run_resources(spec: RunSpec, cluster: ClusterConfig, nodes: Sequence[Node]) -> RunResources:
    """num_gpus and num_cpus of one run: the user's numbers where given, else the automatic rule."""
    if cluster.gpus_per_run is not None:
        share = float(cluster.gpus_per_run)
    elif has_gpus(nodes):
        share = gpu_share(flops_per_step(spec), cluster.max_runs_per_gpu, cluster.full_gpu_flops_per_step)
    else:
        share = 0.0
    if cluster.cpus_per_run is not None:
        cpus = float(cluster.cpus_per_run)
    else:
        cpus = cpus_for_share(share, nodes) if share > 0 else 1.0
    return RunResources(num_cpus=cpus, num_gpus=share)


def idle_gpus(node: Node) -> list[float]:
    """The free room of each GPU of an idle node: 1.0 per whole GPU."""
    return [1.0] * int(node.gpus)


def runs_fitting(need: RunResources, free_cpus: float, free_gpus: Sequence[float]) -> int:
    """How many runs of `need` fit at once in `free_cpus` CPUs and GPUs with the free room `free_gpus` (one
    entry per GPU, 1.0 for an idle one). Ray's rule: a share of at most one GPU sits within one GPU, so
    several shares pack on a GPU only as far as its room goes; a run of several GPUs takes whole idle ones."""
    eps = 1e-9
    by_cpu = math.floor(free_cpus / need.num_cpus + eps) if need.num_cpus > 0 else _UNBOUNDED
    if need.num_gpus <= 0:
        by_gpu = _UNBOUNDED
    elif need.num_gpus <= 1:
        by_gpu = sum(math.floor(room / need.num_gpus + eps) for room in free_gpus)
    else:
        by_gpu = sum(room >= 1 - eps for room in free_gpus) // math.ceil(need.num_gpus - eps)
    return min(by_cpu, by_gpu)


_UNBOUNDED = 10**6  # runs that take none of a resource: that resource does not limit them


def fits(need: RunResources, free_cpus: float, free_gpus: Sequence[float]) -> bool:
    """Whether one run of `need` fits in the free room (runs_fitting)."""
    return runs_fitting(need, free_cpus, free_gpus) >= 1


def runs_at_once(need: RunResources, nodes: Sequence[Node]) -> int:
    """How many runs of `need` idle `nodes` hold at once; a data-parallel run (several GPUs) counts as its
    ranks, one GPU and their share of the run's CPUs each, spread over the nodes."""
    rank = RunResources(num_cpus=need.num_cpus / need.ranks, num_gpus=need.num_gpus / need.ranks)
    return sum(runs_fitting(rank, node.cpus, idle_gpus(node)) for node in nodes) // need.ranks


def placeable(need: RunResources, nodes: Sequence[Node]) -> bool:
    """Whether the idle nodes can hold the run at all: on one node, or, for a data-parallel run, its ranks
    spread over the nodes."""
    return runs_at_once(need, nodes) >= 1


def share_text(share: float) -> str:
    """0.125 -> '1/8', 1.0 -> '1', 2.0 -> '2'."""
    if 0 < share < 1 and abs(1 / share - round(1 / share)) < 1e-9:
        return f"1/{round(1 / share)}"
    return f"{share:g}"


def run_device(requested: str, resources: RunResources) -> str:
    """The device string handed to the run: `auto` stays auto only for a run holding a GPU share (the
    worker then insists on CUDA, sweep.train.hardware.resolve_device); a run holding none trains on CPU."""
    if requested != "auto":
        return requested
    return "auto" if resources.num_gpus > 0 else "cpu"
