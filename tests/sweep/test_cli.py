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
