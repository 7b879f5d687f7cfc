"""A finished run's files are checked against what was recorded when it committed; a damaged one is redone."""

import json

import pytest
import torch

from sweep.driver.runner import execute
from sweep.plan.grid import expand
from sweep.plan.run_id import run_id
from sweep.store.runs import Store


@pytest.fixture
def done_run(compose_cfg, tmp_path):
    torch.set_num_threads(1)
    spec = min(expand(compose_cfg("grid=tiny", "tasks.n_eval=16")), key=lambda s: s.model.n_layer)
    run = Store(str(tmp_path), "s").run_dir(run_id(spec))
    assert execute(spec, run, device="cpu")["status"] == "done"
    return run


def test_commit_records_size_checksum_and_rows_of_every_table(done_run):
    files = done_run.status()["files"]
    assert set(files) == {"run.parquet", "curves.parquet", "evals.parquet", "samples.parquet"}
    assert files["run.parquet"]["rows"] == 1 and files["samples.parquet"]["rows"] > 0
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in files.values())
    assert done_run.verify() == []


@pytest.mark.parametrize("damage, problem", [
    (lambda b: b[: len(b) // 2], "has {n} bytes"),  # truncated
    (lambda b: b[:-9] + b"X" + b[-8:], "does not match its checksum"),  # one byte changed, same size
    (None, "is missing"),
])
def test_a_damaged_table_is_found(done_run, damage, problem):
    path = done_run.file("evals.parquet")
    payload = open(path, "rb").read()
    if damage is None:
        done_run.delete("evals.parquet")
    else:
        open(path, "wb").write(damage(payload))
    (found,) = done_run.verify()
    assert found.startswith("evals.parquet") and problem.split(" {")[0] in found


def test_an_unreadable_status_makes_the_run_unfinished(done_run):
    open(done_run.file("status.json"), "w").write('{"state": "do')
    assert done_run.state() == "corrupt" and not done_run.is_finished()


def test_runs_committed_before_checksums_get_their_footers_checked(done_run):
    status = done_run.status()
    del status["files"]
    done_run.write_json("status.json", status)
    assert done_run.verify() == []
    path = done_run.file("run.parquet")
    open(path, "wb").write(open(path, "rb").read()[:-20])
    assert done_run.verify()[0].startswith("run.parquet is not readable Parquet")
    json.dumps(done_run.status())
