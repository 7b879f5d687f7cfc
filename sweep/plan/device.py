"""Which kind of device a sweep's runs train on, and so the precision its run ids hash: decided once, at plan time.

Every run of a sweep trains on one kind of device (sweep.plan.resources: a run holds a GPU share exactly when
cluster.gpus_per_run > 0, or, left to auto, when the cluster has GPUs), so train.precision=auto becomes one value
for the whole sweep (sweep.train.execution.resolve_precision: bf16 on a GPU or an AMX CPU, else fp32). It is
resolved here, before any run is named, because a CPU fp32 run and a GPU bf16 run of the same point compute
different numbers and must not share an id.

CPU runs take the AMX of the machine that plans them (this one): a worker of another CPU trains in the planned
precision all the same (bf16 emulated where it lacks AMX: slower, the same arithmetic), so one sweep never mixes
precisions along its grid. A cluster that mixes CPU kinds, or a laptop planning for one, sets train.precision.
"""

from __future__ import annotations

import dataclasses

from sweep.config.schema import ClusterConfig, SweepConfig


def local_gpus() -> int:
    """GPUs torch can use on this machine (CUDA_VISIBLE_DEVICES respected; 0 without a CUDA build)."""
    import torch

    return torch.cuda.device_count()


def sweep_device(cluster: ClusterConfig, cluster_gpus: float | None = None) -> str:
    """'cuda' or 'cpu': where every run of the sweep trains. `cluster_gpus`: the GPUs of the cluster's nodes, when
    the caller has read them from Ray (cluster=ray, sweep/cli.py); None: cluster.num_gpus where given
    (cluster=local), else this machine's."""
    if cluster.device != "auto":
        return cluster.device
    if cluster.gpus_per_run is not None:
        return "cuda" if cluster.gpus_per_run > 0 else "cpu"
    if cluster_gpus is None:
        given = cluster.num_gpus if cluster.kind == "local" else None
        cluster_gpus = given if given is not None else local_gpus()
    return "cuda" if cluster_gpus > 0 else "cpu"


def device_settled(cluster: ClusterConfig) -> bool:
    """Whether sweep_device needs no look at a Ray cluster: cluster=local, or the config fixes the device."""
    return cluster.kind == "local" or cluster.device != "auto" or cluster.gpus_per_run is not None


def with_precision(cfg: SweepConfig, cluster_gpus: float | None = None) -> SweepConfig:
    """`cfg` with train.precision resolved for its device (unchanged when it is fp32 or bf16 already)."""
    if cfg.train.precision != "auto":
        return cfg
    from sweep.train.execution import resolve_precision  # torch: imported only when there is something to resolve

    precision = resolve_precision("auto", sweep_device(cfg.cluster, cluster_gpus))
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
