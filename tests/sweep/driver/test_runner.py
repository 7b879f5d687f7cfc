import dataclasses

import polars as pl
import pytest
import torch

from sweep.driver.runner import execute
from sweep.plan.grid import expand
from sweep.plan.run_id import run_id
from sweep.store.runs import Store
from sweep.store.schemas import CURVES, EVALS, RUNS, SAMPLES
from sweep.tasks.metrics import METRICS


@pytest.fixture
def spec(compose_cfg):
    torch.set_num_threads(1)
    cfg = compose_cfg("grid=tiny", "tasks.n_eval=32")
    return min(expand(cfg), key=lambda s: s.model.n_layer)


def test_execute_writes_every_table_and_commits_done(tmp_path, spec):
    run = Store(str(tmp_path), "s").run_dir(run_id(spec))
    row = execute(spec, run, device="cpu", code_version="test")
    assert row["status"] == "done" and row["final_val_loss"] > 0
    assert (row["role"], row["schedule"], row["trunk_run_id"]) == ("independent", "cosine", None)
    assert row["flops_spent"] == row["flops"]  # an independent run computes all of its FLOPs itself
    for name, schema in (("curves", CURVES), ("evals", EVALS), ("samples", SAMPLES), ("run", RUNS)):
        table = run.read_table(f"{name}.parquet")
        assert table.schema.equals(schema, check_metadata=True), name
    evals = pl.read_parquet(run.file("evals.parquet"))
    per_task = {t: set(g["metric"]) for (t,), g in evals.group_by("task")}
    arithmetic = {m.name for m in METRICS} - {"mc_accuracy", "mc_brier"}
    text = arithmetic - {"relative_error"}  # answers that are not numbers get no numeric error
    assert per_task == {"heldout": {"val_loss"}, "language": text, "add_2d": arithmetic, "compose_3": text}
    assert evals.filter(pl.col("task") == "heldout")["value"].item() == pytest.approx(row["final_val_loss"])
    assert set(evals["metric_kind"]) == {"discontinuous", "continuous"}
    lower = set(evals.filter(~pl.col("higher_is_better"))["metric"])
    assert lower == {"val_loss", "task_loss", "token_brier", "relative_error"}
    assert evals.filter(pl.col("metric") == "exact_match")["chance"].null_count() == 0
    samples = pl.read_parquet(run.file("samples.parquet"))
    assert samples.group_by("task").len()["len"].max() <= 32
    assert (samples["run_id"] == run_id(spec)).all()
    status = run.status()
    assert status["state"] == "done" and len(status["attempts"]) == 1
    assert run.read_json("config.json")["code_version"] == "test"
    assert not run.exists("checkpoint/latest.pt")


def test_a_failing_run_is_committed_failed_with_its_traceback(tmp_path, spec):
    # The language task's prompts do not fit a 16-token context: evaluation raises.
    bad = dataclasses.replace(spec, model=dataclasses.replace(spec.model, seq_len=16))
    run = Store(str(tmp_path), "s").run_dir(run_id(bad))
    row = execute(bad, run, device="cpu")
    assert row["status"] == "failed"
    assert "exceeds the model's seq_len=16" in run.status()["error"]
    assert "Traceback" in run.status()["error"]
    assert run.read_table("run.parquet").to_pylist()[0]["status"] == "failed"
    assert not run.exists("evals.parquet")


def test_a_diverging_run_is_committed_diverged_with_its_curve(tmp_path, spec):
    bad = dataclasses.replace(spec, train=dataclasses.replace(spec.train, diverge_loss=0.5))
    run = Store(str(tmp_path), "s").run_dir(run_id(bad))
    row = execute(bad, run, device="cpu")
    assert row["status"] == "diverged" and run.is_finished()
    assert run.read_table("curves.parquet").num_rows >= 1


def test_a_planted_checkpoint_in_the_run_directory_is_refused_and_recorded(tmp_path, spec):
    from tests.sweep.train.test_checkpoint import planted_checkpoint

    marker = tmp_path / "pwned"
    run = Store(str(tmp_path), "s").run_dir(run_id(spec))
    run.write_bytes("checkpoint/latest.pt", planted_checkpoint(str(marker)))
    with pytest.warns(UserWarning, match="checkpoint rejected"):
        row = execute(spec, run, device="cpu")
    assert row["status"] == "done" and not marker.exists()
    attempt = run.status()["attempts"][-1]
    assert attempt["resumed_from_step"] == 0 and "not a safe" in attempt["checkpoint_rejected"]


def test_a_branch_without_its_trunk_checkpoint_fails_saying_so(tmp_path, compose_cfg):
    cfg = compose_cfg("grid=tiny", "tasks.n_eval=16", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]",
                      "grid.n_tokens=[2e4,3e4]", "train.schedule=wsd", "grid.branches=true")
    branch = next(s for s in expand(cfg) if s.role == "branch")
    run = Store(str(tmp_path), "s").run_dir(run_id(branch))
    row = execute(branch, run, device="cpu")
    assert row["status"] == "failed" and f"checkpoint/branch-{branch.branch_step}.pt" in row["error"]
    assert row["flops_spent"] < row["flops"] and row["branch_step"] == branch.branch_step
    assert run.status()["state"] == "failed"
