"""launchers/ray-cluster.yaml: valid for Ray's own autoscaler schema and config checks, node types whose
CPUs and GPUs fit the runs sweep/plan/resources.py asks for, and the project's venv used on every node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from conftest import LAUNCHERS, VENV_BIN

from sweep.config.schema import ClusterConfig
from sweep.plan.resources import Node, RunResources, cpus_for_share, placeable

CONFIG = LAUNCHERS / "ray-cluster.yaml"
REMOTE = "~/scaling-sweep"  # where file_mounts puts the checkout (ssh_user ubuntu)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def worker_nodes(config: dict) -> dict[str, Node]:
    types = config["available_node_types"]
    return {name: Node(cpus=float(t["resources"]["CPU"]), gpus=float(t["resources"]["GPU"]))
            for name, t in types.items() if name != config["head_node_type"]}


def test_valid_for_rays_schema_and_rays_own_config_checks(config):
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))  # fills Ray's AWS defaults, then Ray's checks (no AWS call)


def test_the_head_trains_nothing_and_the_gpu_nodes_scale_from_zero(config):
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}
    workers = {name: t for name, t in types.items() if name != config["head_node_type"]}
    assert workers and all(t["min_workers"] == 0 < t["max_workers"] for t in workers.values())
    assert sum(t["max_workers"] for t in workers.values()) <= config["max_workers"]
    # Every type declares what it offers (the driver can read it from the cluster's config).
    assert all(t["resources"]["GPU"] > 0 and t["resources"]["CPU"] > 0 for t in workers.values())


@pytest.mark.parametrize("share", [1 / 8, 1 / 4, 1 / 2, 1.0])
def test_runs_of_every_gpu_share_pack_whole_gpus_on_every_node_type(config, share):
    nodes = worker_nodes(config)
    cpus = cpus_for_share(share, list(nodes.values()))  # the sweep's rule: the leanest type decides
    for name, node in nodes.items():
        runs = int(node.gpus / share)
        assert runs * cpus <= node.cpus, f"{name}: {runs} runs of {share:g} GPU x {cpus:g} CPUs > {node.cpus:g} CPUs"
    assert cpus_for_share(1 / ClusterConfig().max_runs_per_gpu, list(nodes.values())) == 1.0


def test_a_data_parallel_run_fills_the_largest_node(config):
    nodes = list(worker_nodes(config).values())
    largest = max(nodes, key=lambda n: n.gpus)
    need = RunResources(num_cpus=cpus_for_share(1.0, nodes) * largest.gpus, num_gpus=largest.gpus)
    assert placeable(need, [largest])


def test_every_node_runs_the_projects_venv_built_there(config):
    assert config["file_mounts"] == {"/home/ubuntu/scaling-sweep": "."}
    assert ".venv" in config["rsync_exclude"] and ".gitignore" in config["rsync_filter"]
    setup = " && ".join(config["setup_commands"])
    assert f"cd {REMOTE} && make setup TORCH='torch==" in setup and "-e '.[cluster]'" in setup
    assert any("-e '.[aws]'" in c for c in config["head_setup_commands"])  # boto3 for the autoscaler
    assert any("torch.cuda.is_available()" in c for c in config["worker_setup_commands"])
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = config[key]
        assert commands[0] == f"{REMOTE}/.venv/bin/ray stop"
        assert f"{REMOTE}/.venv/bin/ray start " in commands[1]
        assert "SWEEP_PYTHON=$HOME/scaling-sweep/.venv/bin/python" in commands[1]
        # every `ray start`/`ray stop` by the venv's path, never a `ray` from PATH
        calls = [m.group(1) for c in commands for m in re.finditer(r"(\S*)ray (?:start|stop)\b", c)]
        assert calls == [f"{REMOTE}/.venv/bin/"] * 2, commands
    assert "--head" in config["head_start_ray_commands"][1]
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in config["head_start_ray_commands"][1]
    assert '--address="$RAY_HEAD_IP:6379"' in config["worker_start_ray_commands"][1]


def test_gpu_workers_get_an_instance_profile_for_s3_results(config):
    types = config["available_node_types"]
    for name, node_type in types.items():
        if name != config["head_node_type"]:
            assert node_type["node_config"]["IamInstanceProfile"] == {"Name": "scaling-sweep-worker"}


@pytest.mark.slow
@pytest.mark.cluster
def test_a_zero_cpu_head_scales_up_for_a_runs_resources(config, tmp_path, loopback_namespace):
    """Ray's real autoscaler, with this file's node types behind Ray's fake (local) node provider: from a head
    with no CPUs and no worker, a run-shaped request (the smallest GPU share and its CPUs) gets a node."""
    nodes = worker_nodes(config)
    types = {name: {**config["available_node_types"][name], "node_config": {}, "max_workers": 1}
             for name in nodes}
    head = config["available_node_types"][config["head_node_type"]]
    fake = {
        "cluster_name": "fake", "max_workers": 2, "upscaling_speed": 1.0, "idle_timeout_minutes": 1,
        "provider": {"type": "fake_multinode", "gcs_address": "127.0.0.1:6379",
                     "disable_launch_config_check": True, "disable_node_updaters": True, "use_node_id_as_ip": True},
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {"ray.head.default": {"resources": head["resources"], "node_config": {},
                                                      "max_workers": 0}, **types},
        "head_node_type": "ray.head.default",
        **{key: [] for key in ("cluster_synced_files", "rsync_exclude", "rsync_filter", "initialization_commands",
                               "setup_commands", "head_setup_commands", "worker_setup_commands",
                               "head_start_ray_commands", "worker_start_ray_commands")},
        "file_mounts": {}, "file_mounts_sync_continuously": False,
    }
    (tmp_path / "fake.yaml").write_text(yaml.safe_dump(fake))
    share = 1 / ClusterConfig().max_runs_per_gpu
    cpus = cpus_for_share(share, list(nodes.values()))
    (tmp_path / "run.py").write_text(f"""
import ray
ray.init(address="127.0.0.1:6379", logging_level="ERROR", log_to_driver=False)

@ray.remote(num_cpus={cpus}, num_gpus={share})
def where():
    node = ray.get_runtime_context().get_node_id()
    return next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node)

resources = ray.get(where.remote(), timeout=240)
print("RAN ON", resources.get("CPU"), resources.get("GPU"))
""")
    bin_dir = VENV_BIN
    script = f"""
RAY_FAKE_CLUSTER=1 AUTOSCALER_UPDATE_INTERVAL_S=1 {bin_dir}/ray start --head --block --port=6379 --num-cpus=0 \
  --num-gpus=0 --include-dashboard=false --temp-dir=/tmp/ray --autoscaling-config={tmp_path}/fake.yaml &
head=$!
{bin_dir}/python {LAUNCHERS}/wait_for_nodes.py 127.0.0.1:6379 1 --timeout 180 --pid $head || exit 3
{bin_dir}/python {tmp_path}/run.py
"""
    done = loopback_namespace(script, env={"RAY_AUTH_MODE": "disabled"}, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    ran_on = done.stdout.split("RAN ON", 1)[1].split()
    assert (float(ran_on[0]), float(ran_on[1])) in {(n.cpus, n.gpus) for n in nodes.values()}
