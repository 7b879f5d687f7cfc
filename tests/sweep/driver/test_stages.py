"""sweep/driver/stages.py through the command line: a sweep that calibrates its recipe first trains the calibration
runs as ordinary runs, fits the laws, writes them down, trains its grid with them, and a rerun redoes nothing."""

import json
import subprocess
import sys

import polars as pl
import pytest

from sweep.driver.stages import CALIBRATION_FILE, plan_stages
from sweep.plan.recipe import DEEPSEEK, batch_and_lr
from sweep.store.runs import Store
from sweep.train.flops import train_flops

CALIBRATE = ("grid=tiny", "recipe.source=calibrate", "recipe.sizes=1", "train.min_batch_size=1",
             "recipe.lr_factors=[0.5,1,2]", "logger=none", "analysis=false")


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def _runs(sweep_dir) -> pl.DataFrame:
    return pl.read_parquet(f"{sweep_dir}/runs/*/run.parquet")


def test_a_calibrated_sweep_trains_its_calibration_then_its_grid_and_a_rerun_redoes_nothing(tmp_path):
    results = tmp_path / "res"
    dry = run_cli(*CALIBRATE, "dry_run=true", f"results_dir={results}", cwd=tmp_path)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "9 runs in the recipe's calibration" in dry.stdout and "provisional" in dry.stdout
    assert not results.exists()

    first = run_cli(*CALIBRATE, f"results_dir={results}", cwd=tmp_path)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    sweep_dir = results / "tiny"
    calibration = json.loads((sweep_dir / CALIBRATION_FILE).read_text())
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert calibration["source"] == "calibrated" and len(calibration["run_ids"]) == 9
    assert manifest["calibration_run_ids"] == calibration["run_ids"] and manifest["recipe_source"] == "calibrate"
    assert len(manifest["run_ids"]) == 2 and not set(manifest["run_ids"]) & set(calibration["run_ids"])
    kept = sweep_dir / "grids" / manifest["grid_id"]  # the grid's own manifest and calibration, kept
    assert json.loads((kept / "sweep.json").read_text()) == manifest
    assert json.loads((kept / CALIBRATION_FILE).read_text()) == calibration
    runs = _runs(sweep_dir)
    assert sorted(runs["recipe"].to_list()) == ["calibrated"] * 2 + ["calibration"] * 9
    assert set(runs.filter(pl.col("recipe") == "calibrated")["run_id"]) == set(manifest["run_ids"])

    # the grid's batch and lr are the fitted laws' at each run's compute
    stages = plan_stages(_cfg(tmp_path, results), Store(str(results), "tiny"))
    assert stages.fitted is not None and not stages.provisional
    for spec in stages.grid:
        flops = float(train_flops(spec.model, spec.n_tokens_budget))
        assert (spec.train.batch_size, pytest.approx(spec.train.lr)) == batch_and_lr(
            stages.recipe, flops, spec.model.seq_len, 4096)
    assert stages.recipe.batch_tokens.coefficient != DEEPSEEK.batch_tokens.coefficient

    again = run_cli(*CALIBRATE, f"results_dir={results}", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 already finished, 0 to train" in again.stdout and "nothing to train" in again.stdout
    assert "calibrated at this sweep's scale" in again.stdout and _runs(sweep_dir).height == 11
    dry_after = run_cli(*CALIBRATE, "dry_run=true", f"results_dir={results}", cwd=tmp_path)
    assert "provisional" not in dry_after.stdout and "calibrated at this sweep's scale" in dry_after.stdout
    assert all(rid in dry_after.stdout for rid in manifest["run_ids"])


def _cfg(tmp_path, results):
    from sweep.cli import compose

    return compose([*CALIBRATE, f"results_dir={results}"])


def test_the_published_laws_need_no_calibration(compose_cfg):
    stages = plan_stages(compose_cfg("recipe.source=deepseek"), None)
    assert stages.source == "deepseek" and stages.calibration == [] and not stages.provisional
    assert all(s.train.recipe == "deepseek" for s in stages.grid)
    given = plan_stages(compose_cfg("train.batch_size=8", "train.lr=1e-3"), None)
    assert given.source == "deepseek" and given.calibration == [] and "both given" in given.why
    auto = plan_stages(compose_cfg(), None)
    assert auto.source == "calibrate" and auto.provisional and len(auto.calibration) == 27
    assert any("outside the published laws' fitted range" in line for line in auto.describe())
