"""Chaos on one machine, with real processes: two drivers at once, a planted checkpoint, a damaged
finished run, a worker killed mid-run. Each test adds a row to the chaos summary printed at the end
of the session (tests/conftest.py): runs lost, duplicate rows, steps recomputed, time to recover."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

SUMMARY: list[dict] = []  # printed by tests/conftest.py's pytest_terminal_summary

GRID = ("grid=tiny", "grid.models=[{n_layer: 1, d_model: 32},{n_layer: 2, d_model: 32},{n_layer: 1, d_model: 64}]",
        "grid.n_tokens=[3e4,6e4]", "logger=none", "analysis=false", "tasks.n_eval=16")


def cli(*args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def statuses(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name.removeprefix("run_id="): json.loads(p.read_text())
            for p in sweep_dir.glob("runs/run_id=*/status.json")}


def duplicate_rows(sweep_dir: Path) -> int:
    curves = pl.read_parquet(sweep_dir / "runs" / "*" / "curves.parquet")
    evals = pl.read_parquet(sweep_dir / "runs" / "*" / "evals.parquet")
    return (curves.height - curves.unique(["run_id", "step"]).height
            + evals.height - evals.unique(["run_id", "task", "metric"]).height)


def test_two_drivers_on_one_sweep_train_every_run_exactly_once(tmp_path):
    args = (*GRID, f"results_dir={tmp_path}", "cluster.num_cpus=1")
    t0 = time.monotonic()
    first, second = cli(*args, cwd=tmp_path), cli(*args, cwd=tmp_path)
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    seconds = time.monotonic() - t0
    assert first.returncode == 0 and second.returncode == 0, outs
    sweep_dir = tmp_path / "tiny"
    found = statuses(sweep_dir)
    assert len(found) == 6 and all(s["state"] == "done" for s in found.values())
    trained = {rid: len(s["attempts"]) for rid, s in found.items()}
    assert set(trained.values()) == {1}, trained  # nobody trained a run twice
    assert duplicate_rows(sweep_dir) == 0
    assert any("waiting for it" in out or "finished by another driver" in out for out in outs), outs
    SUMMARY.append({"case": "two drivers, one sweep (6 runs)", "runs lost": 0, "duplicate rows": 0,
                    "steps recomputed": 0, "seconds": seconds,
                    "note": f"attempts per run: {sorted(trained.values())}"})


def test_a_planted_checkpoint_is_never_run(tmp_path):
    from sweep.cli import compose
    from sweep.plan.grid import expand
    from sweep.plan.run_id import run_id
    from tests.sweep.train.test_checkpoint import planted_checkpoint

    args = (*GRID, f"results_dir={tmp_path}", "grid.n_tokens=[3e4]", "grid.models=[{n_layer: 1, d_model: 32}]")
    specs = expand(compose(list(args)))
    marker = tmp_path / "pwned"
    for spec in specs:  # someone with write access to the results planted an exploit in every run
        path = tmp_path / "tiny" / "runs" / f"run_id={run_id(spec)}" / "checkpoint" / "latest.pt"
        path.parent.mkdir(parents=True)
        path.write_bytes(planted_checkpoint(str(marker)))
    t0 = time.monotonic()
    proc = cli(*args, cwd=tmp_path)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert not marker.exists()
    found = statuses(tmp_path / "tiny")
    assert all(s["state"] == "done" for s in found.values()) and len(found) == len(specs)
    assert all("not a safe" in s["attempts"][-1]["checkpoint_rejected"] for s in found.values())
    assert all(s["attempts"][-1]["resumed_from_step"] == 0 for s in found.values())
    SUMMARY.append({"case": f"planted checkpoint in {len(specs)} runs", "runs lost": 0, "duplicate rows": 0,
                    "steps recomputed": 0, "seconds": time.monotonic() - t0,
                    "note": "exploit never ran; every run restarted from step 0"})


def test_a_truncated_table_of_a_finished_run_is_redone(tmp_path):
    args = (*GRID, f"results_dir={tmp_path}", "grid.n_tokens=[3e4]")
    proc = cli(*args, cwd=tmp_path)
    assert proc.communicate(timeout=600)[0] and proc.returncode == 0
    sweep_dir = tmp_path / "tiny"
    victim = sorted(statuses(sweep_dir))[0]
    evals = sweep_dir / "runs" / f"run_id={victim}" / "evals.parquet"
    evals.write_bytes(evals.read_bytes()[: evals.stat().st_size // 2])
    t0 = time.monotonic()
    proc = cli(*args, cwd=tmp_path)
    out = proc.communicate(timeout=600)[0]
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, out
    assert f"{victim} was done but evals.parquet has" in out and "redoing it" in out
    assert "2 already finished, 1 to train" in out
    found = statuses(sweep_dir)
    assert found[victim]["state"] == "done" and len(found[victim]["attempts"]) == 2
    assert all(len(s["attempts"]) == 1 for rid, s in found.items() if rid != victim)
    assert duplicate_rows(sweep_dir) == 0
    SUMMARY.append({"case": "truncated evals.parquet of a done run", "runs lost": 0, "duplicate rows": 0,
                    "steps recomputed": "the one run", "seconds": seconds, "note": "found by checksum, redone"})


@pytest.mark.slow  # tests/sweep/driver/test_scheduler.py kills a worker in the default suite
def test_a_worker_killed_mid_run_costs_at_most_one_checkpoint_interval(tmp_path):
    args = ("grid=tiny", "grid.models=[{n_layer: 2, d_model: 64}]", "grid.n_tokens=[1e6]", "logger=none",
            "analysis=false", "tasks.n_eval=16", "train.checkpoint_every_seconds=1", f"results_dir={tmp_path}",
            "cluster.max_retries=1")
    proc = cli(*args, cwd=tmp_path)
    sweep_dir = tmp_path / "tiny"
    killed = {}

    def killer():
        deadline = time.time() + 300
        while time.time() < deadline:
            for rid, status in statuses(sweep_dir).items():
                info = sweep_dir / "runs" / f"run_id={rid}" / "checkpoint" / "latest.json"
                if status["state"] == "running" and info.exists() and json.loads(info.read_text())["step"] >= 20:
                    time.sleep(0.5)  # mid-interval
                    killed.update(rid=rid, wall=time.time(), pid=status["attempts"][-1]["pid"])
                    os.kill(killed["pid"], signal.SIGKILL)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    out = proc.communicate(timeout=900)[0]
    thread.join()
    assert proc.returncode == 0, out
    status = statuses(sweep_dir)[killed["rid"]]
    assert status["state"] == "done" and len(status["attempts"]) == 2
    resumed = status["attempts"][-1]["resumed_from_step"]
    assert resumed >= 20
    run = pl.read_parquet(sweep_dir / "runs" / f"run_id={killed['rid']}" / "run.parquet").row(0, named=True)
    steps_per_second = run["tokens_per_second"] / (run["batch_size"] * run["seq_len"])
    assert duplicate_rows(sweep_dir) == 0
    from datetime import datetime

    ended = datetime.fromisoformat(status["attempts"][-1]["ended"]).timestamp()
    SUMMARY.append({"case": "worker SIGKILLed mid-run", "runs lost": 0, "duplicate rows": 0,
                    "steps recomputed": f"<= {steps_per_second * 1.0:.0f} (1 s interval)",
                    "seconds": ended - killed["wall"],
                    "note": f"resumed from step {resumed} of {run['n_steps']}; seconds = kill to done"})


