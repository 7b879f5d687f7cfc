"""The cluster checks: per-run needs against the nodes, GPU detection without Ray, the nodes a dry run plans for."""

import os

from sweep.config.schema import ClusterConfig
from sweep.driver.cluster import check_resources, local_gpu_count, planned_nodes
from sweep.plan.resources import Node, RunResources


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


def test_cluster_addresses_name_the_endpoint_they_connect_to():
    from sweep.driver.cluster import head_endpoint

    assert head_endpoint("auto") is None
    assert head_endpoint("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert head_endpoint("ray://head.example:10001") == ("head.example", 10001)
    assert head_endpoint("ray://head") == ("head", 10001)  # Ray client's default port
    assert head_endpoint("head") == ("head", 6379)  # the GCS's default port
    assert head_endpoint("[::1]:6380") == ("::1", 6380)


def test_an_address_nothing_listens_at_is_found_in_seconds_and_a_listening_one_passes():
    import socket
    import time

    from sweep.driver.cluster import probe_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe_address(f"127.0.0.1:{port}") is None
    started = time.perf_counter()
    problem = probe_address(f"127.0.0.1:{port}", timeout=2.0)  # closed again
    assert problem.startswith(f"cluster.address: nothing answers at 127.0.0.1:{port}")
    assert time.perf_counter() - started < 2.5
    assert probe_address(None).startswith("cluster.address: cluster=ray needs an address")
    assert probe_address("auto") is None  # Ray finds (or refuses) a local cluster at once


def test_joining_an_unreachable_cluster_is_a_cluster_error_naming_the_address(monkeypatch):
    import time

    import pytest
    import ray

    from sweep.driver.cluster import ClusterError, connect

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh driver (tests may share a Ray)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called for an unreachable address"))
    started = time.perf_counter()
    with pytest.raises(ClusterError, match=r"^cluster.address: nothing answers at 127.0.0.1:1 "):
        with connect(ClusterConfig(kind="ray", address="127.0.0.1:1")):
            raise AssertionError("never joined")
    assert time.perf_counter() - started < 10  # ray.init alone waits minutes here


def test_a_local_cluster_is_checked_before_ray_starts(compose_cfg, monkeypatch):
    import sys

    import pytest

    from sweep.driver.cluster import ClusterError, ready
    from sweep.plan.grid import expand

    specs = expand(compose_cfg("grid=tiny"))
    starts = []
    monkeypatch.setitem(sys.modules, "ray", type(sys)("ray"))  # any use of Ray would fail here
    sys.modules["ray"].init = lambda *a, **k: starts.append(a)
    with pytest.raises(ClusterError, match="cluster.cpus_per_run=4096 but the largest node has"):
        with ready(ClusterConfig(cpus_per_run=4096), specs):
            raise AssertionError("the block ran")
    with ready(ClusterConfig(num_cpus=2), specs):  # fits: the block runs, Ray is left to the scheduler
        pass
    with ready(ClusterConfig(cpus_per_run=4096), []):  # nothing to train: nothing to check
        pass
    assert starts == []


def test_gpu_shares_on_a_machine_without_cuda_are_refused_for_a_local_cluster(compose_cfg, monkeypatch):
    import sweep.driver.cluster
    from sweep.plan.grid import expand

    specs = expand(compose_cfg("grid=tiny"))
    monkeypatch.setattr(sweep.driver.cluster, "cuda_usable", lambda: False)
    nodes = [Node(cpus=2, gpus=1)]
    problems = sweep.driver.cluster.launch_problems(ClusterConfig(num_gpus=1), specs, nodes)
    assert problems and problems[0].startswith("cluster.num_gpus=1 gives runs a GPU share")
    assert sweep.driver.cluster.launch_problems(ClusterConfig(num_gpus=1, device="cpu"), specs, nodes) == []
    monkeypatch.setattr(sweep.driver.cluster, "cuda_usable", lambda: True)
    assert sweep.driver.cluster.launch_problems(ClusterConfig(num_gpus=1), specs, nodes) == []


def test_an_autoscaling_cluster_with_a_head_without_cpus_is_not_refused(compose_cfg, tmp_path):
    """A real Ray head with 0 CPUs and no worker (what launchers/ray-cluster.yaml and kuberay.yaml start):
    refused when nothing says nodes can be added; accepted, with GPU shares planned for the GPU node types,
    when ray up's cluster YAML is there or when the autoscaler reports its node groups to Ray."""
    from pathlib import Path

    import pytest
    import ray
    from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, GCS_AUTOSCALER_STATE_NAMESPACE
    from ray.cluster_utils import Cluster
    from ray.core.generated import autoscaler_pb2
    from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_put

    from sweep.driver.cluster import ClusterError, autoscaler_nodes, cluster_nodes, ready, yaml_node_types
    from sweep.plan.grid import expand
    from sweep.plan.resources import run_resources

    yaml_path = str(Path(__file__).resolve().parents[3] / "launchers" / "ray-cluster.yaml")
    assert yaml_node_types(yaml_path) == [Node(cpus=16, gpus=1), Node(cpus=48, gpus=4)]  # the head: not added
    assert yaml_node_types(str(tmp_path / "absent.yaml")) == [] and yaml_node_types(None) == []

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0})
    try:
        address = cluster.address
        specs = expand(compose_cfg("grid=tiny", "cluster=ray", f"cluster.address={address}",
                                   f"results_dir={tmp_path}"))
        plain = ClusterConfig(kind="ray", address=address, autoscaler_config=None)
        with pytest.raises(ClusterError, match="the largest node has 0 CPUs"):
            with ready(plain, specs):
                raise AssertionError("the block ran")
        scaling = ClusterConfig(kind="ray", address=address, autoscaler_config=yaml_path)
        with ready(scaling, specs):
            nodes = cluster_nodes(scaling)
            assert nodes == [Node(cpus=0, gpus=0), Node(cpus=16, gpus=1), Node(cpus=48, gpus=4)]
            assert all(run_resources(s, scaling, nodes).num_gpus > 0 for s in specs)  # planned for GPU nodes
            # KubeRay / autoscaler v2: node groups reported to Ray's GCS come first
            reported = autoscaler_pb2.ClusterConfig(node_group_configs=[
                autoscaler_pb2.NodeGroupConfig(name="cpu", resources={"CPU": 8}, max_count=4),
                autoscaler_pb2.NodeGroupConfig(name="off", resources={"CPU": 64}, max_count=0)])
            _internal_kv_put(GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, reported.SerializeToString(),
                             namespace=GCS_AUTOSCALER_STATE_NAMESPACE)
            try:
                assert autoscaler_nodes(yaml_path) == [Node(cpus=8, gpus=0)]
            finally:
                _internal_kv_del(GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, namespace=GCS_AUTOSCALER_STATE_NAMESPACE)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
