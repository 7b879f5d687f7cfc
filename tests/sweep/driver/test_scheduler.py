"""End to end on a real local Ray: train, skip what is done, rerun only what changed, survive failures."""

import dataclasses
import os
import signal
import time

import polars as pl
import pytest
from rich.console import Console

from sweep.driver.scheduler import run_sweep
from sweep.plan.grid import expand
from sweep.plan.run_id import run_id
from sweep.store.runs import Store

QUIET = Console(file=open(os.devnull, "w"))


def kill_worker_when(run, ready, seconds: float, poll: float):
    """A started thread that SIGKILLs the worker training `run` once ready(status) holds (within `seconds`);
    returns (thread, killed), killed["pid"] set when it struck."""
    import threading

    killed = {}

    def killer():
        deadline = time.time() + seconds
        while time.time() < deadline:
            status = run.status()
            if status and ready(status):
                killed["pid"] = status["attempts"][-1]["pid"]
                os.kill(killed["pid"], signal.SIGKILL)
                return
            time.sleep(poll)

    thread = threading.Thread(target=killer)
    thread.start()
    return thread, killed


def sweep(compose_cfg, tmp_path, *overrides):
    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "tasks.n_eval=32", *overrides)
    specs = expand(cfg)
    store = Store(cfg.results_dir, cfg.name)
    return specs, store, run_sweep(cfg, specs, store, QUIET)


def test_sweep_trains_skips_done_and_reruns_only_changed(ray_local, compose_cfg, tmp_path):
    specs, store, outcome = sweep(compose_cfg, tmp_path)
    assert sorted(outcome.trained) == sorted(run_id(s) for s in specs) and not outcome.failed
    runs = pl.read_parquet(f"{tmp_path}/tiny/runs/*/run.parquet")
    assert runs.height == 2 and (runs["status"] == "done").all()
    assert pl.read_parquet(f"{tmp_path}/tiny/runs/*/evals.parquet").height > 0
    assert (tmp_path / "tiny" / "sweep.json").exists()

    _, _, again = sweep(compose_cfg, tmp_path)
    assert again.rows == {} and sorted(again.skipped) == sorted(run_id(s) for s in specs)
    assert all(len(store.run_dir(run_id(s)).status()["attempts"]) == 1 for s in specs)

    more, _, changed = sweep(compose_cfg, tmp_path, "grid.n_tokens=[2e4,3e4]")
    new = {run_id(s) for s in more} - {run_id(s) for s in specs}
    assert len(new) == 2 and set(changed.trained) == new


def test_failed_run_is_recorded_and_the_sweep_goes_on(ray_local, compose_cfg, tmp_path):
    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "tasks.n_eval=16")
    good = expand(cfg)[0]
    bad = dataclasses.replace(good, model=dataclasses.replace(good.model, seq_len=16))  # eval cannot fit
    store = Store(cfg.results_dir, cfg.name)
    outcome = run_sweep(cfg, [bad, good], store, QUIET)
    assert outcome.failed == [run_id(bad)]
    assert outcome.trained == [run_id(good)]
    assert store.run_dir(run_id(bad)).state() == "failed"
    # A rerun retries the failed run (it is not finished) and leaves the good one alone.
    again = run_sweep(cfg, [bad, good], store, QUIET)
    assert list(again.rows) == [run_id(bad)] and again.skipped == [run_id(good)]


def test_killed_worker_is_retried_and_resumes_from_checkpoint(ray_local, compose_cfg, tmp_path):
    """A worker lost mid-run (SIGKILL, as a lost node) costs only the work since its last checkpoint."""
    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "tasks.n_eval=16",
                      "grid.n_tokens=[1.5e6]", "train.checkpoint_every_seconds=0.5", "cluster.max_retries=1")
    spec = min(expand(cfg), key=lambda s: s.model.n_layer)
    store = Store(cfg.results_dir, cfg.name)
    run = store.run_dir(run_id(spec))
    thread, killed = kill_worker_when(run, lambda status: run.exists("checkpoint/latest.pt"), seconds=120, poll=0.1)
    outcome = run_sweep(cfg, [spec], store, QUIET)
    thread.join()
    assert "pid" in killed
    status = run.status()
    assert outcome.trained == [run_id(spec)], status
    assert len(status["attempts"]) == 2
    assert status["attempts"][-1]["resumed_from_step"] > 0


def test_each_run_holds_the_gpu_share_and_cpus_its_size_calls_for(ray_fake_gpu, compose_cfg, tmp_path):
    """Per-run Ray options on a real Ray with one (believed) GPU: the larger run a whole GPU and the
    node's CPUs, the smaller one a quarter and one CPU; both train on CPU here (cluster.device=cpu)."""
    from sweep.plan.resources import flops_per_step

    models = "grid.models=[{name: small, n_layer: 1, d_model: 32, n_head: 2},{name: big, n_layer: 2, d_model: 64}]"
    base = expand(compose_cfg("grid=tiny", models, "train.batch_size=16"))
    big_work = max(flops_per_step(s) for s in base)  # the big run fills the GPU, the small one ~1/5 of it
    specs, store, outcome = sweep(compose_cfg, tmp_path, models, "train.batch_size=16", "cluster.device=cpu",
                                  f"cluster.full_gpu_flops_per_step={big_work}")
    assert sorted(outcome.trained) == sorted(run_id(s) for s in specs), outcome.rows
    held = {s.label: store.run_dir(run_id(s)).status()["attempts"][-1] for s in specs}
    assert held["big"]["resources"] == {"CPU": 2.0, "GPU": 1.0} and held["big"]["gpu_share"] == 1.0
    assert held["small"]["resources"] == {"CPU": 1.0, "GPU": 0.25} and held["small"]["gpu_share"] == 0.25
    assert held["big"]["device"] == held["small"]["device"] == "cpu"


def test_a_run_holding_a_gpu_share_without_cuda_fails_with_a_clear_message(ray_fake_gpu, compose_cfg, tmp_path,
                                                                            monkeypatch):
    """cluster.device=auto on a GPU node whose torch has no CUDA (a CPU wheel): each run fails saying so,
    instead of silently training on the CPU while holding its GPU share."""
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU: the runs would (rightly) train on it")
    # the driver believes in CUDA (a head node with it, say), so its own check lets the runs go to the workers
    monkeypatch.setattr("sweep.driver.cluster.cuda_usable", lambda: True)
    specs, store, outcome = sweep(compose_cfg, tmp_path)
    assert sorted(outcome.failed) == sorted(run_id(s) for s in specs) and not outcome.trained
    for spec in specs:
        status = store.run_dir(run_id(spec)).status()
        assert status["state"] == "failed" and len(status["attempts"]) == 1  # not retried
        assert status["error"].startswith("this run holds 0.125 of a GPU (cluster.gpus_per_run) but torch")
        assert "CPU-only build" in status["error"] and "cluster.gpus_per_run=0" in status["error"]


def test_run_sweep_refuses_what_no_node_can_hold_with_the_resource_lines_of_ready(ray_local, compose_cfg, tmp_path):
    """A caller of run_sweep without the CLI's ready() (bench/, tests) is refused before any run starts, with
    the same lines ready() raises: one problem per line, each naming its key
    (sweep.driver.cluster.require_launchable)."""
    import pytest

    from sweep.driver.cluster import ClusterError, ready

    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "cluster.num_cpus=2",
                      "cluster.num_gpus=0", "cluster.cpus_per_run=4096", "cluster.device=cuda")
    specs = expand(cfg)
    with pytest.raises(ClusterError) as by_ready:
        with ready(cfg.cluster, specs):
            raise AssertionError("the block ran")
    store = Store(cfg.results_dir, cfg.name)
    with pytest.raises(ClusterError) as by_run_sweep:
        run_sweep(cfg, specs, store, QUIET)
    lines = str(by_run_sweep.value).splitlines()
    assert lines == str(by_ready.value).splitlines() and len(lines) == 2
    assert lines[0].startswith("cluster.device=cuda but the cluster has no GPU")
    assert lines[1].startswith("cluster.cpus_per_run=4096 but the largest node has 2 CPUs")
    assert all(state is None for state in store.states([run_id(s) for s in specs]).values())  # nothing started


def test_runs_whose_batches_come_from_forked_data_workers_train_inside_ray_workers(ray_local, compose_cfg, tmp_path):
    """DataLoader worker processes forked from a Ray actor (as on a GPU node, where data_workers > 0)."""
    specs, store, outcome = sweep(compose_cfg, tmp_path, "train.data_workers=2")
    assert sorted(outcome.trained) == sorted(run_id(s) for s in specs), outcome.rows
    runs = pl.read_parquet(f"{tmp_path}/tiny/runs/*/run.parquet")
    assert (runs["data_workers"] == 2).all()


BRANCHES = ("grid=tiny", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "train.schedule=wsd",
            "grid.branches=true", "grid.branch_plan=largest")  # one trunk per size, whatever batches the budgets derive


def test_wsd_branches_train_from_their_trunk_and_a_lost_branch_alone_is_redone(ray_local, compose_cfg, tmp_path):
    """Trunk + branches on a real Ray: branches start from the trunk's branch-point checkpoints, the runs
    table tells them apart and counts only their cooldowns as spent; once every branch is done no branch
    point is left and a rerun does nothing. A branch whose worker died (left `running`, its tables gone) and
    a budget added later are the only runs trained then: the trunk is done without their branch points, so
    they train its stable phase themselves, the same run (the lost branch ends exactly where it did)."""
    overrides = ("grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "grid.n_tokens=[2e4,3e4,5e4]",
                 "train.schedule=wsd", "grid.branches=true", "grid.branch_plan=largest")
    specs, store, outcome = sweep(compose_cfg, tmp_path, *overrides)
    assert sorted(outcome.trained) == sorted(run_id(s) for s in specs) and not outcome.failed
    trunk = next(s for s in specs if s.role == "trunk")
    branches = [s for s in specs if s.role == "branch"]
    for branch in branches:
        status = store.run_dir(run_id(branch)).status()
        assert status["attempts"][-1]["resumed_from_step"] == branch.branch_step
    assert list((tmp_path / "tiny").glob("runs/*/checkpoint/branch-*.pt")) == []  # every branch is done
    runs = pl.read_parquet(f"{tmp_path}/tiny/runs/*/run.parquet")
    assert sorted(runs["role"].to_list()) == ["branch", "branch", "trunk"]
    spent = dict(zip(runs["run_id"], runs["flops_spent"]))
    full = dict(zip(runs["run_id"], runs["flops"]))
    loss = dict(zip(runs["run_id"], runs["final_val_loss"]))
    assert spent[run_id(trunk)] == full[run_id(trunk)]
    for branch in branches:
        share = branch.train.cooldown_steps / branch.train.n_steps
        assert spent[run_id(branch)] == pytest.approx(share * full[run_id(branch)])
    assert runs.filter(pl.col("role") == "branch")["trunk_run_id"].to_list() == [run_id(trunk)] * 2

    _, _, again = sweep(compose_cfg, tmp_path, *overrides)
    assert again.rows == {} and len(again.skipped) == 3

    lost = store.run_dir(run_id(branches[0]))
    status = lost.status()
    status.update(state="running")
    status["attempts"].append({"attempt": 2, "started": status["attempts"][-1]["started"], "pid": 1})
    lost.write_json("status.json", status)
    lost.delete("run.parquet")
    grown = (*overrides[:1], "grid.n_tokens=[1e4,2e4,3e4,5e4]", *overrides[2:])
    specs, _, redo = sweep(compose_cfg, tmp_path, *grown)
    added = next(s for s in specs if s.n_tokens_budget == 10_000)
    assert {run_id(s) for s in specs} >= {run_id(trunk), *map(run_id, branches)}  # the trunk's id kept
    assert sorted(redo.rows) == sorted([run_id(branches[0]), run_id(added)]) and not redo.failed
    for branch in (branches[0], added):
        assert store.run_dir(run_id(branch)).status()["attempts"][-1]["resumed_from_step"] == 0
        assert redo.rows[run_id(branch)]["flops_spent"] == redo.rows[run_id(branch)]["flops"]
    assert redo.rows[run_id(branches[0])]["final_val_loss"] == pytest.approx(loss[run_id(branches[0])], rel=1e-5)
    assert len(store.run_dir(run_id(trunk)).status()["attempts"]) == 1
    assert len(store.run_dir(run_id(branches[1])).status()["attempts"]) == 1
    assert list((tmp_path / "tiny").glob("runs/*/checkpoint/*.pt")) == []


def test_a_branch_whose_trunk_failed_is_failed_with_the_reason(ray_local, compose_cfg, tmp_path):
    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "tasks.n_eval=16",
                      "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "grid.n_tokens=[2e4,3e4]",
                      "train.schedule=wsd", "grid.branches=true")
    trunk, branch = expand(cfg)
    bad_trunk = dataclasses.replace(trunk, train=dataclasses.replace(trunk.train, diverge_loss=1e-3))  # diverges
    branch = dataclasses.replace(branch, trunk_run_id=run_id(bad_trunk))
    store = Store(cfg.results_dir, cfg.name)
    outcome = run_sweep(cfg, [bad_trunk, branch], store, QUIET)
    assert outcome.rows[run_id(bad_trunk)]["status"] == "diverged"
    assert outcome.rows[run_id(branch)]["status"] == "failed"
    assert "without a checkpoint at branch step" in outcome.rows[run_id(branch)]["error"]


@pytest.mark.slow
def test_a_branch_whose_worker_is_killed_is_retried_alone(ray_local, compose_cfg, tmp_path):
    """SIGKILL a branch's worker in its cooldown (after its own periodic checkpoint): only the branch is
    retried, resuming from its checkpoint past the branch step; the trunk trains once."""
    cfg = compose_cfg("grid=tiny", f"results_dir={tmp_path}", "logger=none", "tasks.n_eval=16",
                      "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "grid.n_tokens=[1e6,1.5e6]",
                      "train.schedule=wsd", "grid.branches=true", "train.checkpoint_every_seconds=0.5",
                      "cluster.max_retries=1")
    trunk, branch = expand(cfg)
    store = Store(cfg.results_dir, cfg.name)
    run = store.run_dir(run_id(branch))
    thread, killed = kill_worker_when(
        run, lambda status: status.get("state") == "running" and run.exists("checkpoint/latest.pt"),
        seconds=300, poll=0.05)
    outcome = run_sweep(cfg, [trunk, branch], store, QUIET)
    thread.join()
    assert "pid" in killed
    status = run.status()
    assert sorted(outcome.trained) == sorted([run_id(trunk), run_id(branch)]), status
    assert len(status["attempts"]) == 2 and status["attempts"][-1]["resumed_from_step"] > branch.branch_step
    assert len(store.run_dir(run_id(trunk)).status()["attempts"]) == 1
