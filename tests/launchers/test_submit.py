"""launchers/submit.sh: the command it builds (--dry-run), and a real job on a real Ray head with its
dashboard and job server, started from the project's venv in a loopback-only namespace."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest
from conftest import LAUNCHERS, ROOT, VENV_BIN

SUBMIT = LAUNCHERS / "submit.sh"


def dry_run(*args: str) -> list[str]:
    """The argv submit.sh would run (it prints it shell-quoted)."""
    done = subprocess.run([str(SUBMIT), "--dry-run", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return shlex.split(done.stdout)


def test_the_job_uploads_the_checkout_without_its_venv_and_runs_the_clusters_python():
    argv = dry_run("--address", "http://127.0.0.1:8265", "grid=tiny")
    assert argv[:3] == [f"{VENV_BIN}/ray", "job", "submit"]  # this checkout's venv (ray[default])
    options = dict(zip(argv[3:argv.index("--"):2], argv[4:argv.index("--"):2]))
    assert options["--address"] == "http://127.0.0.1:8265"
    assert options["--working-dir"] == str(ROOT)
    runtime_env = json.loads(options["--runtime-env-json"])
    assert {".venv", ".git", "results"} <= set(runtime_env["excludes"])
    assert "env_vars" not in runtime_env
    # The entrypoint: sh runs the project's python on the head (SWEEP_PYTHON, which the launchers export
    # before `ray start`) with the overrides as its arguments.
    entrypoint = argv[argv.index("--") + 1:]
    assert entrypoint[:2] == ["sh", "-c"]
    assert entrypoint[2].startswith('exec "${SWEEP_PYTHON:?')
    assert entrypoint[2].endswith('" -m sweep cluster=ray cluster.address=auto "$@"')
    assert entrypoint[3:] == ["submit.sh", "grid=tiny"]


def test_overrides_pass_through_as_typed_and_the_python_can_be_named():
    argv = dry_run("--address=http://h:8265", "--python", "/opt/p y/bin/python", "--no-wait",
                   "grid.seeds=[0,1]", "name=it's")
    assert argv[argv.index("--") + 5:] == ["grid.seeds=[0,1]", "name=it's"]
    runtime_env = json.loads(argv[argv.index("--runtime-env-json") + 1])
    assert runtime_env["env_vars"] == {"SWEEP_PYTHON": "/opt/p y/bin/python"}
    assert argv[argv.index("--") - 1] == "--no-wait"


def test_an_address_is_required():
    done = subprocess.run([str(SUBMIT), "grid=tiny"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.cluster
def test_a_job_on_a_real_head_runs_the_projects_python_with_the_overrides(tmp_path, loopback_namespace):
    """Also the health endpoint launchers/kuberay.yaml's probes use: the dashboard agent's /api/healthz."""
    port, dashboard = 6379, 8265
    script = f"""
SWEEP_PYTHON={VENV_BIN}/python {VENV_BIN}/ray start --head --block --port={port} --dashboard-port={dashboard} \
  --num-cpus=2 --temp-dir=/tmp/ray > {tmp_path}/head.log 2>&1 &
head=$!
{VENV_BIN}/python {LAUNCHERS}/wait_for_nodes.py 127.0.0.1:{port} 1 --timeout 180 --pid $head || exit 3
for _ in $(seq 120); do
  {VENV_BIN}/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:{dashboard}/api/gcs_healthz')" \
    2>/dev/null && break
  sleep 1
done
{VENV_BIN}/python -c "
import urllib.request as u
print(u.urlopen('http://127.0.0.1:52365/api/healthz', timeout=10).read().decode())" > {tmp_path}/healthz.txt
{SUBMIT} --address http://127.0.0.1:{dashboard} grid=tiny 'grid.seeds=[0,1]' dry_run=true results_dir={tmp_path}/results
rc=$?
kill -TERM $head; wait $head
exit $rc
"""
    done = loopback_namespace(script, env={"RAY_AUTH_MODE": "disabled"}, timeout=420)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "Job 'raysubmit_" in out and "succeeded" in out
    # The overrides arrived as typed: two seeds -> 4 runs; the driver ran the cluster's python.
    assert "sweep tiny: 4 runs in the grid" in out
    assert "dry run: nothing launched" in out
    health = (tmp_path / "healthz.txt").read_text()
    assert "raylet: success" in health and "gcs: success" in health
