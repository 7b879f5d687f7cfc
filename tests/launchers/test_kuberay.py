"""launchers/kuberay.yaml and the image it runs (launchers/Dockerfile): the RayCluster CRD fields the
launcher relies on, written out literally (ray.io/v1 RayClusterSpec: rayVersion, enableInTreeAutoscaling,
autoscalerOptions, headGroupSpec, workerGroupSpecs with min/max replicas, pod templates), Ray's version
equal to the pin, and GPU groups that fit the runs sweep/plan/resources.py asks for. The probes' endpoint is
exercised on a real head in test_submit.py."""

from __future__ import annotations

import re

import pytest
import ray
import yaml
from conftest import LAUNCHERS, pinned_ray_version

from sweep.plan.resources import Node, cpus_for_share

MANIFEST = LAUNCHERS / "kuberay.yaml"
DOCKERFILE = LAUNCHERS / "Dockerfile"


@pytest.fixture(scope="module")
def cluster() -> dict:
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert len(documents) == 1
    return documents[0]


def containers(cluster: dict) -> list[dict]:
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def cpu_count(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_a_raycluster_of_the_pinned_ray_with_in_tree_autoscaling(cluster):
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    assert spec["rayVersion"] == pinned_ray_version() == ray.__version__
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    assert spec["autoscalerOptions"]["upscalingMode"] in ("Default", "Aggressive", "Conservative")


def test_the_head_holds_no_cpus_and_serves_the_dashboard(cluster):
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    (container,) = head["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in container["ports"]} >= {6379, 8265, 10001}
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_gpu_groups_scale_from_zero_with_gpu_limits_and_tolerations(cluster):
    groups = cluster["spec"]["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"]
        assert 0 == group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"]  # the autoscaler may add pods
        assert "rayStartParams" in group
        pod = group["template"]["spec"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        (container,) = pod["containers"]
        resources = container["resources"]
        assert int(resources["limits"]["nvidia.com/gpu"]) >= 1
        assert resources["requests"] == resources["limits"]  # Ray announces what the pod is guaranteed


@pytest.mark.parametrize("share", [1 / 8, 1 / 4, 1 / 2, 1.0])
def test_runs_of_every_gpu_share_pack_whole_gpus_in_every_group(cluster, share):
    nodes = {g["groupName"]: Node(cpus=cpu_count(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]),
                                  gpus=float(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]))
             for g in cluster["spec"]["workerGroupSpecs"]}
    cpus = cpus_for_share(share, list(nodes.values()))
    for name, node in nodes.items():
        runs = int(node.gpus / share)
        assert runs * cpus <= node.cpus, f"{name}: {runs} runs of {share:g} GPU x {cpus:g} CPUs > {node.cpus:g} CPUs"


def test_every_pod_runs_the_image_with_probes_and_s3_credentials(cluster):
    images = {c["image"] for c in containers(cluster)}
    assert len(images) == 1
    for container in containers(cluster):
        assert container["workingDir"] == "/app"
        assert {"secretRef": {"name": "scaling-sweep-s3"}} in container["envFrom"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/api/healthz", "port": 52365}


def test_the_image_installs_the_cuda_torch_and_puts_the_venv_on_path():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-", text, flags=re.MULTILINE)
    assert "ARG TORCH=torch==2.13.0" in text
    assert 'pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$TORCH"' in text
    assert "torch.version.cuda" in text  # the build fails on a CPU-only torch
    assert 'make setup TORCH="$TORCH"' in text
    assert "pip install --no-cache-dir -e '.[cluster]'" in text  # ray[default] of the pinned version
    assert "ENV PATH=/app/.venv/bin:$PATH" in text  # KubeRay's `ray start` and the autoscaler's `ray`
    assert "SWEEP_PYTHON=/app/.venv/bin/python" in text
    ignored = (LAUNCHERS / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "results", ".git"} <= set(ignored)
    # the Makefile's CPU wheel and the image's torch are the same version
    makefile_torch = re.search(r"torch==([\d.]+)\)", (LAUNCHERS.parent / "Makefile").read_text()).group(1)
    assert f"torch=={makefile_torch}" in text
