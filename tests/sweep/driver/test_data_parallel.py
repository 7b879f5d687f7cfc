"""A run on several devices through Ray Train (two CPU ranks with gloo here; GPUs on a cluster)."""

import polars as pl
import pytest

from sweep.config.schema import ClusterConfig
from sweep.driver.cluster import check_resources
from sweep.driver.data_parallel import run_data_parallel
from sweep.driver.runner import execute
from sweep.plan.resources import Node, RunResources, placeable
from sweep.plan.run_id import run_id
from sweep.store.runs import Store


@pytest.fixture
def spec(data_parallel_spec):
    return data_parallel_spec(2e4, "tasks.n_eval=16")


def test_two_ranks_through_ray_train_record_the_run_as_one_process_would(ray_local, spec, tmp_path):
    rid = run_id(spec)
    single = execute(spec, Store(str(tmp_path / "one"), "s").run_dir(rid), device="cpu")
    wandb = {"mode": "disabled", "project": "p", "entity": None, "group": "g", "directory": str(tmp_path)}
    row = run_data_parallel(spec, str(tmp_path / "two"), "s", rid, ranks=2, use_gpu=False, cpus_per_rank=1,
                            wandb=wandb)
    assert row["status"] == "done", row.get("error")
    assert row["final_val_loss"] == pytest.approx(single["final_val_loss"], rel=1e-3)
    run = Store(str(tmp_path / "two"), "s").run_dir(rid)
    assert run.status()["attempts"][-1]["data_parallel_ranks"] == 2
    evals = pl.read_parquet(run.file("evals.parquet"))
    assert evals.height == pl.read_parquet(Store(str(tmp_path / "one"), "s").run_dir(rid).file("evals.parquet")).height
    curves = pl.read_parquet(run.file("curves.parquet"))
    assert curves["step"].is_unique().all() and curves.height > 0  # one rank wrote them


def test_a_multi_gpu_run_is_placed_across_nodes_by_its_ranks():
    two_gpus = RunResources(num_cpus=4, num_gpus=2)
    assert two_gpus.ranks == 2 and RunResources(num_cpus=1, num_gpus=0.5).ranks == 1
    assert placeable(two_gpus, [Node(cpus=2, gpus=1), Node(cpus=2, gpus=1)])  # one rank per node
    assert not placeable(two_gpus, [Node(cpus=2, gpus=1)])
    problems = check_resources(ClusterConfig(gpus_per_run=2), [two_gpus], [Node(cpus=8, gpus=1)])
    assert problems == ["cluster.gpus_per_run=2 trains a run data parallel on 2 GPUs (2 CPUs each), "
                        "but the cluster has 1 GPUs for it"]
