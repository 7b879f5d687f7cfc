"""The cluster checks: per-run needs against the nodes, GPU detection without Ray, the nodes a dry run plans for."""

import os

from sweep.cluster import check_resources, local_gpu_count, planned_nodes
from sweep.config import ClusterConfig
from sweep.resources import Node, RunResources


def test_runs_that_fit_a_node_pass():
    nodes = [Node(cpus=16, gpus=1)]
    needs = [RunResources(2, 1 / 8), RunResources(16, 1.0)]
    assert check_resources(ClusterConfig(), needs, nodes) == []


def test_the_largest_run_is_checked_against_the_largest_node_naming_the_key():
    nodes = [Node(cpus=4, gpus=1), Node(cpus=2, gpus=0)]
    problems = check_resources(ClusterConfig(gpus_per_run=1), [RunResources(1, 1.0)], [Node(cpus=4, gpus=0.5)])
    assert problems == ["cluster.gpus_per_run=1 but the largest node has 0.5 GPUs "
                        "(set cluster.gpus_per_run=0 to train on CPU)"]
    # several GPUs: a data-parallel run, checked against the GPUs of all nodes
    problems = check_resources(ClusterConfig(gpus_per_run=2), [RunResources(1, 2.0)], nodes)
    assert problems == ["cluster.gpus_per_run=2 trains a run data parallel on 2 GPUs (0.5 CPUs each), "
                        "but the cluster has 1 GPUs for it"]
    problems = check_resources(ClusterConfig(cpus_per_run=8), [RunResources(1, 0), RunResources(8, 0)], nodes)
    assert problems == ["cluster.cpus_per_run=8 but the largest node has 4 CPUs"]


def test_cpus_and_gpus_must_be_on_the_same_node():
    nodes = [Node(cpus=8, gpus=0), Node(cpus=1, gpus=1)]
    problems = check_resources(ClusterConfig(cpus_per_run=4, gpus_per_run=1), [RunResources(4, 1.0)], nodes)
    assert len(problems) == 1 and problems[0].startswith("no node has both 4 CPUs and 1 GPUs")


def test_device_cuda_on_a_cluster_without_gpus_is_refused():
    problems = check_resources(ClusterConfig(device="cuda"), [RunResources(1, 0)], [Node(cpus=2, gpus=0)])
    assert problems == ["cluster.device=cuda but the cluster has no GPU (set cluster.device=auto or cpu)"]


def test_gpus_are_counted_as_ray_would_without_starting_it(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,3")
    assert local_gpu_count() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local_gpu_count() == 0


def test_a_dry_run_on_this_machine_plans_for_it_or_for_the_gpus_it_is_told():
    assert planned_nodes(ClusterConfig(num_gpus=1)) == [Node(cpus=float(os.cpu_count()), gpus=1.0)]
    assert planned_nodes(ClusterConfig(num_cpus=64, num_gpus=8)) == [Node(cpus=64.0, gpus=8.0)]
