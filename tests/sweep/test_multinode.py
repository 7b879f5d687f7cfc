"""A sweep on a real multi-node Ray cluster on this machine (a head and two worker nodes on loopback):
runs spread over the nodes; a worker node lost mid-run costs only the work since its last checkpoint."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    cluster.shutdown()


def sweep_cli(address: str, results: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep", "grid=tiny", "cluster=ray", f"cluster.address={address}",
                             "cluster.cpus_per_run=1", "cluster.gpus_per_run=0", "logger=none", "analysis=false",
                             "tasks.n_eval=16", f"results_dir={results}", *overrides],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def statuses(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name.removeprefix("run_id="): json.loads(p.read_text())
            for p in sweep_dir.glob("runs/run_id=*/status.json")}


def node_of(pid: int, raylets: dict[int, object]) -> object | None:
    """The worker node whose raylet is an ancestor of process `pid`."""
    while pid > 1:
        if pid in raylets:
            return raylets[pid]
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None
    return None


def test_runs_spread_over_the_nodes_and_a_lost_node_costs_one_checkpoint_interval(cluster, tmp_path):
    ray_cluster, workers = cluster
    raylets = {node.all_processes["raylet"][0].process.pid: node for node in workers}
    results = tmp_path / "shared"  # one filesystem for every node: the stand-in for shared storage
    proc = sweep_cli(ray_cluster.address, results, "grid.models=[{n_layer: 2, d_model: 64},{n_layer: 2, d_model: 32}]",
                     "grid.n_tokens=[1e6]", "train.checkpoint_every_seconds=1", "cluster.max_retries=1")
    sweep_dir = results / "tiny"
    killed = {}
    deadline = time.time() + 300
    while not killed and proc.poll() is None and time.time() < deadline:  # Ray's node API wants the main thread
        running = {rid: s for rid, s in statuses(sweep_dir).items() if s["state"] == "running"}
        hosts = {node_of(s["attempts"][-1]["pid"], raylets) for s in running.values()}
        for rid, status in running.items():
            info = sweep_dir / "runs" / f"run_id={rid}" / "checkpoint" / "latest.json"
            if len(hosts) == 2 and info.exists() and json.loads(info.read_text())["step"] >= 20:
                node = node_of(status["attempts"][-1]["pid"], raylets)
                time.sleep(0.5)  # mid checkpoint interval
                killed.update(rid=rid, wall=time.time(), step=json.loads(info.read_text())["step"])
                ray_cluster.remove_node(node, allow_graceful=False)
                ray_cluster.add_node(num_cpus=1)  # a replacement joins, as an autoscaler would
                break
        time.sleep(0.05)
    out = proc.communicate(timeout=900)[0]
    tail = "\n".join(line for line in out.splitlines() if "state-dump" not in line)[-3000:]
    assert proc.returncode == 0, tail
    assert killed, "both runs never trained on two nodes at once"
    found = statuses(sweep_dir)
    assert all(s["state"] == "done" for s in found.values()) and len(found) == 2
    victim = found[killed["rid"]]
    assert len(victim["attempts"]) == 2 and victim["attempts"][0]["pid"] != victim["attempts"][1]["pid"]
    resumed = victim["attempts"][-1]["resumed_from_step"]
    assert resumed >= killed["step"]  # at most one checkpoint interval of steps recomputed
    run = pl.read_parquet(sweep_dir / "runs" / f"run_id={killed['rid']}" / "run.parquet").row(0, named=True)
    steps_per_second = run["tokens_per_second"] / (run["batch_size"] * run["seq_len"])
    from datetime import datetime

    recovered = datetime.fromisoformat(victim["attempts"][-1]["ended"]).timestamp() - killed["wall"]
    from tests.sweep.test_chaos import SUMMARY

    SUMMARY.append({"case": "worker node lost mid-run (3-node cluster)", "runs lost": 0, "duplicate rows": 0,
                    "steps recomputed": f"<= {steps_per_second:.0f} (1 s interval)", "seconds": recovered,
                    "note": f"resumed from step {resumed} of {run['n_steps']} on another node; seconds = kill to done"})
    os.environ.pop("RAY_ADDRESS", None)


HUB_DRIVER = """
import json, sys
import ray
from ray.util.state import list_actors
from sweep.driver.progress import start_hub
ray.init(address=sys.argv[1], log_to_driver=False)
hubs = [start_hub() for _ in range(6)]  # unpinned, 6 zero-CPU actors all on one node by chance: 1 in 243
ray.get([hub.report.remote("r", 1) for hub in hubs])
print(json.dumps({"driver": ray.get_runtime_context().get_node_id(),
                  "hubs": sorted({a.node_id for a in list_actors(filters=[("class_name", "=", "ProgressHub")])})}),
      flush=True)
sys.stdin.readline()  # meanwhile the test removes every worker node
print(json.dumps(ray.get(hubs[0].snapshot.remote(), timeout=30)), flush=True)
"""


def test_the_progress_hub_lives_on_the_drivers_node_and_outlives_every_worker_node(cluster, tmp_path):
    """The sweep's progress actor needs no CPU, so Ray may put it anywhere; on a worker node that is
    later lost it took the whole sweep down with it (ActorUnavailableError in the driver). The driver is
    a process of its own, as the sweep's is (this test process may hold a Ray of its own)."""
    ray_cluster, workers = cluster
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", HUB_DRIVER, ray_cluster.address], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            lines = iter(proc.stdout.readline, "")  # Ray may print its own lines first
            placed = next((json.loads(line) for line in lines if line.startswith("{")), None)
            assert placed, (tmp_path / "driver.log").read_text()[-3000:]
            assert placed["driver"] == ray_cluster.head_node.node_id  # Ray attaches a driver to the head
            assert placed["hubs"] == [placed["driver"]]
            for node in workers:
                ray_cluster.remove_node(node, allow_graceful=False)
            out, _ = proc.communicate("go\n", timeout=120)
        finally:
            proc.kill()
    log_tail = (tmp_path / "driver.log").read_text()[-3000:]
    assert out.strip(), log_tail
    answer = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    assert answer == [[{"r": 1}, ["r"]]], out + log_tail
