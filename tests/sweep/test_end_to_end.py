"""The user's path: `python -m sweep` on a real local Ray, W&B offline, analysis at the end; Ctrl-C safe."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def cli(*args, cwd, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "sweep", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}, **kw)


def test_sweep_cli_trains_logs_offline_and_reports(tmp_path):
    env = {"WANDB_API_KEY": "", "WANDB_MODE": ""}  # no key: offline, decided once
    proc = cli("grid=tiny", f"results_dir={tmp_path}", "tasks.n_eval=16", cwd=tmp_path, env=env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "W&B: offline" in out
    sweep_dir = tmp_path / "tiny"
    assert len(list((sweep_dir / "runs").glob("run_id=*/status.json"))) == 2
    offline_runs = list((sweep_dir / "wandb" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    for name in ("report.html", "report.md", "fits.parquet", "plots/loss_vs_compute.png"):
        assert (sweep_dir / "analysis" / name).exists(), name

    proc = cli("grid=tiny", f"results_dir={tmp_path}", "tasks.n_eval=16", cwd=tmp_path, env=env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "nothing to train" in out and "Ray up" not in out
    assert "analysis up to date" in out and "analysis written" not in out  # same runs: not analysed again


def test_a_second_grid_under_the_same_name_keeps_the_first_grids_analysis(tmp_path):
    """Runs are shared, each grid keeps its manifest and analysis, <name>/ shows the latest; going back to the first
    grid with other cluster settings trains nothing and redoes no analysis."""
    base = ("grid=tiny", f"results_dir={tmp_path}", "tasks.n_eval=16", "logger=none")
    sweep_dir, first_out = tmp_path / "tiny", cli(*base, cwd=tmp_path).communicate(timeout=300)[0]
    first = json.loads((sweep_dir / "sweep.json").read_text())
    assert "analysis written" in first_out, first_out
    proc = cli(*base, "grid.n_tokens=[2e4,3e4]", cwd=tmp_path)  # another budget: a second grid
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "2 already finished, 2 to train" in out, out
    second = json.loads((sweep_dir / "sweep.json").read_text())
    assert first["grid_id"] != second["grid_id"] and set(first["run_ids"]) < set(second["run_ids"])
    reports = {grid["grid_id"]: sweep_dir / "grids" / grid["grid_id"] / "analysis" / "report.md"
               for grid in (first, second)}
    for grid in (first, second):
        assert json.loads((sweep_dir / "grids" / grid["grid_id"] / "sweep.json").read_text()) == grid
        assert all(rid in reports[grid["grid_id"]].read_text() for rid in grid["run_ids"])
    added = set(second["run_ids"]) - set(first["run_ids"])
    assert not any(rid in reports[first["grid_id"]].read_text() for rid in added)
    assert (sweep_dir / "analysis" / "report.md").read_text() == reports[second["grid_id"]].read_text()
    made = {gid: report.stat().st_mtime_ns for gid, report in reports.items()}

    proc = cli(*base, "cluster.num_cpus=1", "cluster.max_retries=3", cwd=tmp_path)  # the first grid again
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "nothing to train" in out and "Ray up" not in out, out
    assert "analysis up to date" in out and "analysis written" not in out, out
    assert {gid: report.stat().st_mtime_ns for gid, report in reports.items()} == made  # neither redone
    assert json.loads((sweep_dir / "sweep.json").read_text())["grid_id"] == first["grid_id"]
    assert (sweep_dir / "analysis" / "report.md").read_text() == reports[first["grid_id"]].read_text()
    assert len(list((sweep_dir / "runs").glob("run_id=*/status.json"))) == 4  # shared by both grids


def _states(sweep_dir: Path) -> list[str]:
    return [json.loads(p.read_text())["state"] for p in sweep_dir.glob("runs/run_id=*/status.json")]


def test_ctrl_c_keeps_finished_runs_and_rerun_completes_the_rest(tmp_path):
    args = ("grid=tiny", "grid.models=[{n_layer: 1, d_model: 32},{n_layer: 2, d_model: 32},{n_layer: 3, d_model: 32}]",
            "grid.n_tokens=[2e4,4e5]", "cluster.num_cpus=1", "logger=none", "analysis=false",
            f"results_dir={tmp_path}", "tasks.n_eval=16")
    proc = cli(*args, cwd=tmp_path, start_new_session=True)
    sweep_dir = tmp_path / "tiny"
    deadline = time.time() + 240
    # Ctrl-C once a run is done and the next one is in flight (between two runs there is none to checkpoint)
    while time.time() < deadline and not ("done" in _states(sweep_dir) and "running" in _states(sweep_dir)):
        time.sleep(0.2)
    assert "done" in _states(sweep_dir) and "running" in _states(sweep_dir)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground process group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    statuses = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("runs/run_id=*/status.json")}
    finished = {name for name, status in statuses.items() if status["state"] == "done"}
    assert 1 <= len(finished) < 6
    # No run is left claiming to be running: the one in flight checkpointed and says interrupted.
    stopped = {name: status for name, status in statuses.items() if status["state"] != "done"}
    assert stopped and all(status["state"] == "interrupted" for status in stopped.values()), stopped
    info = {name: sweep_dir / "runs" / name / "checkpoint" / "latest.json" for name in stopped}
    steps = {name: json.loads(path.read_text())["step"] for name, path in info.items() if path.exists()}
    assert steps and all(step > 0 for step in steps.values()), steps  # (a run stopped before its first step has none)
    assert "interrupted" in out and "resume from their checkpoints" in out

    proc = cli(*args, cwd=tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"{len(finished)} already finished, {6 - len(finished)} to train" in out
    for name, step in steps.items():  # the rerun says where each run picks up, and picks up there
        note = next((line for line in out.splitlines() if line.startswith(name.removeprefix("run_id=") + " (")), "")
        assert "(interrupted earlier;" in note and note.endswith(f"resumes at step {step}"), out
        status = json.loads((sweep_dir / "runs" / name / "status.json").read_text())
        assert status["attempts"][-1]["resumed_from_step"] == step
    assert _states(sweep_dir).count("done") == 6
    for name in finished:  # finished runs were not touched again
        status = json.loads((sweep_dir / "runs" / name / "status.json").read_text())
        assert len(status["attempts"]) == 1
