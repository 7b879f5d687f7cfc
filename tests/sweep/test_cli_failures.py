"""Exit status 1 through the real command line, and the narrow retry policy, on a real local Ray.

Faults are injected without touching the project's code: tests/sweep/fault_injection/sitecustomize.py is
put on PYTHONPATH, so the driver and every Ray worker wrap the trainer's `train` (and the analysis's
`analyze_sweep`) to raise what a plan file says, once or every time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

HOOKS = Path(__file__).resolve().parent / "fault_injection"


def sweep_cli(tmp_path: Path, plan: dict, *args: str) -> subprocess.CompletedProcess:
    plan_file = tmp_path / "faults.json"
    plan_file.write_text(json.dumps({"dir": str(tmp_path), **plan}))
    env = {**os.environ, "SWEEP_TEST_FAULTS": str(plan_file),
           "PYTHONPATH": os.pathsep.join(p for p in (str(HOOKS), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "sweep", "grid=tiny", "logger=none", "tasks.n_eval=16",
                           "cluster.num_cpus=2", f"results_dir={tmp_path}/res", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=400)


def _status(sweep_dir: Path, label: str) -> dict:
    for path in sweep_dir.glob("runs/run_id=*/config.json"):
        if json.loads(path.read_text())["spec"]["label"] == label:
            return json.loads((path.parent / "status.json").read_text())
    raise AssertionError(f"no run labelled {label}")


def test_a_failing_run_exits_1_a_transient_error_is_retried_and_a_failing_analysis_exits_1(tmp_path):
    # 1. t1 hits a transient error once (retried, then done); t2 fails in its own code (recorded, not retried).
    first = sweep_cli(tmp_path, {"transient": "t1", "fail": "t2", "fail_once": True}, "analysis=false")
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "1 run(s) failed" in out and "Traceback" not in out  # the traceback is in the run's status.json
    sweep_dir = tmp_path / "res" / "tiny"
    assert (tmp_path / "transient-t1").exists() and (tmp_path / "fail-t2").exists()  # both faults were injected

    retried = _status(sweep_dir, "t1")
    assert retried["state"] == "done" and [a["state"] for a in retried["attempts"]] == ["retrying", "done"]
    assert retried["attempts"][0]["error"] == "ConnectionError: injected: the object store hiccupped"

    failed = _status(sweep_dir, "t2")
    assert failed["state"] == "failed" and len(failed["attempts"]) == 1  # a run's own error is never retried
    assert "ValueError: injected: a bug in this run's own code" in failed["error"]
    assert "Traceback" in failed["error"]  # recorded with its traceback
    runs = pl.read_parquet(sweep_dir / "runs" / "*" / "run.parquet").sort("label")
    assert runs["status"].to_list() == ["done", "failed"] and runs["attempts"].to_list() == [2, 1]
    assert len(list(sweep_dir.glob("runs/run_id=*/evals.parquet"))) == 1  # only the finished run evaluated

    # 2. The rerun trains only the failed run (it succeeds now); the analysis then fails: exit status 1 again.
    second = sweep_cli(tmp_path, {"fail": "t2", "fail_once": True, "analysis_fails": True})
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    assert "1 already finished, 1 to train" in out
    assert "analysis failed: RuntimeError: injected: the analysis broke" in out
    assert f"rerun it with: python -m analysis {sweep_dir}" in out
    assert _status(sweep_dir, "t2")["state"] == "done" and len(_status(sweep_dir, "t2")["attempts"]) == 2
    assert len(_status(sweep_dir, "t1")["attempts"]) == 2  # finished: not touched again
