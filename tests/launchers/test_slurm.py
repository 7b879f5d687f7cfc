"""launchers/slurm.sbatch (and wait_for_nodes.py) run against a stand-in Slurm on this machine: `srun` and
`scontrol show hostnames` are small scripts on PATH, the SLURM_* variables are set as sbatch sets them,
and the two "nodes" are this machine inside a loopback-only namespace. A real Ray head and worker start
from the project's venv, a real tiny sweep trains on them, and the script shuts them down."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

import pytest
from conftest import LAUNCHERS, ROOT, VENV_BIN

pytestmark = pytest.mark.cluster

SBATCH = LAUNCHERS / "slurm.sbatch"

FAKE_SRUN = r"""#!/bin/bash
# Stand-in srun: records its arguments, then runs the command here (every node is this machine).
printf '%s\n' "$*" >> "$FAKE_SLURM_LOG"
while (($#)); do
  case $1 in
    -w | -N | -n | -c) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"""

FAKE_SCONTROL = r"""#!/bin/bash
# Stand-in scontrol: only `scontrol show hostnames LIST`, LIST comma-separated.
[[ $1 == show && $2 == hostnames ]] || { echo "stand-in scontrol: unsupported: $*" >&2; exit 1; }
tr ',' '\n' <<< "$3"
"""


def slurm_env(tmp_path: Path, job_id: int, cpus: int, nodes: str = "localhost,localhost") -> dict[str, str]:
    """The stand-in's PATH and what sbatch would set, for a job of len(nodes) nodes with `cpus` CPUs each."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    # Ray's socket paths must stay under 107 characters: a short directory, not pytest's tmp_path.
    ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SLURM_LOG": str(tmp_path / "srun.log"),
        "SLURM_SUBMIT_DIR": str(ROOT),
        "SLURM_JOB_ID": str(job_id),
        "SLURM_JOB_NODELIST": nodes,
        "SLURM_CPUS_PER_TASK": str(cpus),
        "RAY_TMPDIR": ray_tmp,
        "SWEEP_RAY_WAIT_SECONDS": "180",
        "WANDB_MODE": "offline",
    }


def srun_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "srun.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_tiny_sweep_on_a_two_node_cluster_started_by_the_script(tmp_path, loopback_namespace):
    job_id = 4107
    port = 20000 + job_id % 1000 * 10  # the script's per-job GCS port
    results = tmp_path / "results"
    env = slurm_env(tmp_path, job_id, cpus=1)
    args = ["grid=tiny", f"results_dir={results}", "logger=none", "analysis=false"]
    out = tmp_path / "sbatch.log"
    script = f"""
bash {SBATCH} {shlex.join(args)} > {out} 2>&1 &
job=$!
until grep -q '^slurm.sbatch: Ray at' {out}; do kill -0 $job 2>/dev/null || break; sleep 0.2; done
# A client without this job's token is turned away while the sweep runs.
RAY_AUTH_MODE=disabled {VENV_BIN}/ray status --address 127.0.0.1:{port} > {tmp_path}/tokenless.log 2>&1
echo $? > {tmp_path}/tokenless.rc
wait $job
echo $? > {tmp_path}/sbatch.rc
pgrep -f '[r]aylet|[g]cs_server' > {tmp_path}/left.pids || true
"""
    done = loopback_namespace(script, env=env, timeout=420)
    log = out.read_text() if out.exists() else ""
    assert (tmp_path / "sbatch.rc").read_text().strip() == "0", log[-6000:] + done.stderr[-2000:]

    # Waited for the nodes (no sleep): the head, then both.
    assert f"wait_for_nodes: 1 node(s) up at 127.0.0.1:{port}" in log
    assert f"wait_for_nodes: 2 node(s) up at 127.0.0.1:{port}" in log
    # Every srun passes --cpus-per-task (Slurm >= 22.05 does not inherit it); Ray announces that many.
    calls = srun_calls(tmp_path)
    assert calls and all("--cpus-per-task=" in call for call in calls), calls
    ray_starts = [call for call in calls if " start --block " in call]
    assert len(ray_starts) == 2, calls
    head, worker = ray_starts
    assert "--cpus-per-task=1 " in head and "--num-cpus=1 " in head
    assert f"--head --node-ip-address=127.0.0.1 --port={port} " in head
    assert f"--address=127.0.0.1:{port}" in worker and "--cpus-per-task=1 " in worker
    # results_dir was checked from every node before Ray started.
    assert any(f".slurm-{job_id}" in call for call in calls[: calls.index(head)])

    # The sweep ran on the cluster: both runs done, under the absolute results_dir.
    statuses = [json.loads(p.read_text()) for p in (results / "tiny" / "runs").glob("*/status.json")]
    assert [s["state"] for s in statuses] == ["done", "done"], statuses
    # The job's token kept a token-less client out.
    assert (tmp_path / "tokenless.rc").read_text().strip() != "0"
    assert "Authentication" in (tmp_path / "tokenless.log").read_text()
    # Shut down cleanly by the script itself: every Ray process ended before it returned.
    assert "slurm.sbatch: stopping Ray on 2 node(s)" in log
    assert (tmp_path / "left.pids").read_text().split() == []


def test_a_relative_results_dir_is_refused_before_ray_starts(tmp_path, loopback_namespace):
    env = slurm_env(tmp_path, 4108, cpus=1)
    done = loopback_namespace(f"bash {SBATCH} grid=tiny results_dir=results", env=env, timeout=120)
    assert done.returncode == 1
    assert "results_dir=results is relative: give an absolute path on shared storage" in done.stderr
    assert not [call for call in srun_calls(tmp_path) if " start " in call]


def test_a_step_given_fewer_cores_than_ray_would_announce_stops_the_job_at_once(tmp_path, loopback_namespace):
    too_many = len(os.sched_getaffinity(0)) + 1
    env = slurm_env(tmp_path, 4109, cpus=too_many)
    done = loopback_namespace(f"bash {SBATCH} grid=tiny results_dir={tmp_path}/results", env=env, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"this srun step has {too_many - 1} CPUs, Ray would announce {too_many}" in done.stderr
    # wait_for_nodes saw the step end: no waiting out its timeout.
    assert "wait_for_nodes: the Ray step(s)" in done.stderr
