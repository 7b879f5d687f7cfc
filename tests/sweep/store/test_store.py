import os

import polars as pl
import pyarrow as pa
import pytest

from sweep.store.runs import DONE, RUNNING, Store
from sweep.store.schemas import CURVES, EVALS, RUNS, SAMPLES, TABLE_SCHEMA_VERSION, to_table


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    run = Store(str(tmp_path), "s").run_dir("abc")
    run.write_json("config.json", {"a": 1})
    run.write_bytes("checkpoint/latest.pt", b"x" * 1000)
    run.write_table("curves.parquet", to_table([{"run_id": "abc", "step": 1}], CURVES))
    files = sorted(os.listdir(tmp_path / "s" / "runs" / "run_id=abc"))
    assert files == ["checkpoint", "config.json", "curves.parquet"]
    assert run.read_json("config.json") == {"a": 1}
    assert run.read_json("missing.json") is None


def test_status_lifecycle_records_attempts(tmp_path):
    run = Store(str(tmp_path), "s").run_dir("abc")
    assert run.state() is None and not run.is_finished()
    run.begin_attempt("abc", {"host": "h"})
    assert run.state() == RUNNING
    run.end_attempt("abc", "retrying", error="ConnectionError: x")
    run.begin_attempt("abc", {"host": "h"})
    run.end_attempt("abc", DONE)
    status = run.status()
    assert status["state"] == DONE and run.is_finished()
    assert [a["attempt"] for a in status["attempts"]] == [1, 2]
    assert status["attempts"][0]["error"].startswith("ConnectionError")


def test_tables_have_declared_schemas_and_version(tmp_path):
    for schema in (CURVES, EVALS, SAMPLES, RUNS):
        table = to_table([{"run_id": "r1"}], schema)
        assert table.schema.equals(schema, check_metadata=True)
        assert table.schema.metadata[b"schema_version"] == TABLE_SCHEMA_VERSION.encode()


def test_to_table_rejects_unknown_columns():
    with pytest.raises(KeyError, match="not in the schema"):
        to_table([{"run_id": "r", "surprise": 1}], CURVES)


def test_runs_are_scannable_as_one_table_with_hive_partitioning(tmp_path):
    store = Store(str(tmp_path), "s")
    for rid in ("r1", "r2"):
        store.run_dir(rid).write_table("evals.parquet", to_table(
            [{"run_id": rid, "task": "t", "metric": "exact_match", "value": 0.5}], EVALS))
    frame = pl.scan_parquet(f"{tmp_path}/s/runs/*/evals.parquet", hive_partitioning=True).collect()
    assert sorted(frame["run_id"].to_list()) == ["r1", "r2"]
    assert frame.schema["value"] == pl.Float64


def test_store_accepts_uris(tmp_path):
    store = Store(f"file://{tmp_path}", "s")
    store.run_dir("r").write_json("status.json", {"state": "done"})
    assert (tmp_path / "s" / "runs" / "run_id=r" / "status.json").exists()
    assert store.states(["r", "q"]) == {"r": "done", "q": None}
    assert isinstance(pa.fs.LocalFileSystem(), pa.fs.FileSystem)


def test_workers_get_results_dir_resolved_on_the_driver(tmp_path, monkeypatch):
    """A relative results_dir is made absolute where the driver runs (workers on other nodes, or with another
    working directory, would otherwise each write somewhere else)."""
    monkeypatch.chdir(tmp_path)
    assert Store("results", "s").base == str(tmp_path / "results")
    assert Store("results", "s").uri == str(tmp_path / "results" / "s")
    import inspect

    from sweep.driver import scheduler

    assert "store.base, cfg.name" in inspect.getsource(scheduler.worker_pool)  # what the actors are given


def test_a_branch_loads_its_own_checkpoint_else_its_trunks_branch_point(tmp_path):
    """The store hands back the bytes of both places, its own first; the trainer unpacks them
    (sweep.train.checkpoint.first_usable) and passes over its own when that does not unpack."""
    from sweep.store.runs import BranchCheckpoints, CheckpointFile
    from sweep.train.checkpoint import first_usable, pack

    store = Store(str(tmp_path), "s")
    trunk, branch = store.run_dir("trunk"), store.run_dir("branch")
    assert branch.sibling("trunk").path == trunk.path
    io = BranchCheckpoints(branch, trunk, 40)
    assert not io.ready() and [read() for read in io.candidates()] == [None, None]
    CheckpointFile(trunk).save_branch_point(pack({"model": {}, "optimizer": {}, "curves": [], "step": 40}), 40)
    assert io.ready() and first_usable(io.candidates())["step"] == 40
    io.save(pack({"model": {}, "optimizer": {}, "curves": [], "step": 45}), 45)
    assert first_usable(io.candidates())["step"] == 45  # its own, further on
    branch.write_bytes(CheckpointFile.NAME, b"cut sho")
    assert io.candidates()[0]() == b"cut sho"  # bytes, as written: the store does not judge them
    assert first_usable(io.candidates())["step"] == 40  # a broken own checkpoint: the cooldown starts from the trunk's
    io.clear()  # the branch is done: its rolling checkpoint goes, the trunk's branch point stays
    assert not branch.exists(CheckpointFile.NAME) and trunk.exists("checkpoint/branch-40.pt")


def test_a_branch_says_where_it_starts_and_trains_its_prefix_only_after_a_done_trunk(tmp_path):
    """Waiting for the trunk, from the trunk's checkpoint, from its own; and when the trunk is done without
    the branch point (cleaned up, or a budget added later) the branch trains the trunk's stable phase itself."""
    from sweep.store.runs import BranchCheckpoints, CheckpointFile

    store = Store(str(tmp_path), "s")
    trunk, branch = store.run_dir("trunk"), store.run_dir("branch")
    io = BranchCheckpoints(branch, trunk, 40)
    assert io.start() == "waits for its trunk to reach step 40" and not io.trains_prefix()
    trunk.begin_attempt("trunk", {})
    assert io.start() == "waits for its trunk to reach step 40" and not io.ready()  # trunk still running
    trunk.end_attempt("trunk", "diverged")
    assert io.start().startswith("cannot start: its trunk diverged") and not io.ready()
    trunk.end_attempt("trunk", "done")
    assert io.trains_prefix() and io.ready() and [read() for read in io.candidates()] == [None, None]
    assert io.start().startswith("trains its trunk's first 40 steps itself")
    CheckpointFile(trunk).save_branch_point(b"state", 40)
    assert io.start() == "starts from its trunk's checkpoint at step 40" and not io.trains_prefix()
    CheckpointFile(trunk).remove_branch_point(40)
    assert not trunk.exists("checkpoint/branch-40.pt")
    io.save(b"own", 45)
    assert io.start() == "resumes from its own checkpoint at step 45" and not io.trains_prefix()
    assert CheckpointFile(trunk).start() == "restarts at step 0"
