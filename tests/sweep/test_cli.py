"""The command line: bad configs fail before anything starts, with one clear message; dry runs launch nothing."""

import subprocess
import sys

import pytest


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("override, key", [
    ("grid.models=[{n_layer: -2, d_model: 64}]", "grid.models[0].n_layer"),
    ("grid.models=[{n_layer: 2, d_model: 64, n_head: 3}]", "grid.models[0].n_head"),
    ("tasks.suite=[{name: t, kind: sorting, args: {}}]", "unknown task kind 'sorting'"),
    ("grid.n_tokens=[0]", "grid.n_tokens[0]"),
    ("grid=huge", "grid/huge"),
    ("train.batch_size=many", "train.batch_size"),
    ("train.learning_rate=1", "learning_rate"),
])
def test_bad_config_fails_early_with_clear_message(tmp_path, override, key):
    result = run_cli(override, f"results_dir={tmp_path}/res", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert key in output
    assert "Traceback" not in output
    assert "error:" in output
    assert not (tmp_path / "res").exists()  # nothing launched, nothing written


def test_unknown_group_option_lists_the_available_ones(tmp_path):
    result = run_cli("grid=huge", cwd=tmp_path)
    assert "default" in result.stdout and "tiny" in result.stdout


def test_dry_run_prints_the_plan_and_launches_nothing(tmp_path):
    result = run_cli("grid=tiny", "dry_run=true", f"results_dir={tmp_path}/res", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run" in result.stdout and result.stdout.count("pending") == 2
    assert not (tmp_path / "res").exists()


def test_help_lists_groups(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for group in ("grid", "model", "train", "data", "tasks", "cluster", "logger"):
        assert group in result.stdout


def test_dry_run_states_the_gpu_hours_of_the_grid_for_the_gpus_it_plans_for(tmp_path):
    result = run_cli("grid=emergence", "dry_run=true", "cluster.num_gpus=1", f"results_dir={tmp_path}/res",
                     cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # the grid's 7 runs, after the 27 that calibrate its recipe (its compute lies below the published laws' range)
    assert "GPU-h" in out and "est. MFU" in out and out.count("pending") == 7 + 27
    assert "planned for a node of" in out and "and 1 GPUs" in out
    assert "x (1 CPU, 1/8 GPU)" in out  # the small runs are packed eight to the GPU
    assert "estimated cost of the 7 run(s) to train: " in out and "GPU-hours" in out and "on 1 GPU" in out
    assert ("estimate from built-in figures measured on an H200" in out
            or "GPU measurements in bench/results" in out)
    assert not (tmp_path / "res").exists()


def test_dry_run_on_cpus_estimates_core_hours_from_finished_runs_or_says_it_cannot(tmp_path):
    from sweep.store.runs import Store
    from sweep.store.schemas import RUNS, to_table

    args = ("grid=tiny", "dry_run=true", f"results_dir={tmp_path}/res")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0 and "no estimate of the cost: no finished CPU runs" in result.stdout
    store = Store(f"{tmp_path}/res", "tiny")  # a run of another grid, finished in this results directory
    store.run_dir("other").write_table("run.parquet", to_table([{
        "run_id": "other", "status": "done", "n_params": 30_000, "flops": 1e10, "n_tokens": 40_000,
        "wall_seconds": 10.0, "tokens_per_second": 8000.0, "device": "cpu"}], RUNS))
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "estimated cost of the 2 run(s) to train: " in result.stdout and "CPU core-hours" in result.stdout
    assert "the wall time per FLOP of 1 finished CPU run(s)" in result.stdout


def test_a_misspelt_key_hides_no_other_problem(tmp_path):
    """The key that does not exist is named with the bad values of the rest, in one pass."""
    result = run_cli("train.lrr=3e-3", "grid.n_tokens=[1e6,nan]", "results_dir=/proc/sweep-ro",
                     "train.schedule=cosin", "train.batch_size=many", cwd=tmp_path)
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stdout + result.stderr
    for key in ("train.lrr: not a config key of train; did you mean train.lr?", "train.batch_size",
                "grid.n_tokens[1]: must be a finite number", "train.schedule: 'cosin' is not one of",
                "results_dir: cannot create /proc/sweep-ro"):
        assert sum(key in line for line in errors) == 1, (key, errors)
    assert len(errors) == 5 and "5 problems in the sweep config" in result.stdout


def test_an_unreachable_cluster_is_reported_with_the_config_problems(tmp_path):
    result = run_cli("grid=tiny", "cluster=ray", "cluster.address=127.0.0.1:1", "results_dir=res", cwd=tmp_path)
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stdout + result.stderr
    assert errors[0].startswith("error: results_dir: 'res' is relative") and len(errors) == 2, errors
    assert "nothing answers at 127.0.0.1:1" in errors[1] and "`ray start --head`" in errors[1]
    assert "cluster=local" in errors[1]
