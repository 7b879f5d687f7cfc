"""The dry run and the summary: what each run's state says, where it resumes, what the grid trains and costs,
and the notes on WSD batches and renewed plans."""

import pytest
from rich.console import Console

from sweep.plan.grid import expand
from sweep.plan.run_id import run_id
from sweep.store.runs import Store
from sweep.train.flops import n_params

BRANCHES = ("grid=tiny", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "train.schedule=wsd",
            "grid.branches=true", "grid.branch_plan=largest")  # one trunk per size, whatever batches the budgets derive


def test_dry_run_tells_live_stale_and_interrupted_runs_apart(tmp_path):
    from sweep.driver.dry_run import describe_state
    from sweep.store.lease import acquire
    from sweep.store.runs import CheckpointFile

    store = Store(str(tmp_path), "s")
    live, dead, stopped = (store.run_dir(name) for name in ("live", "dead", "stopped"))
    for run in (live, dead, stopped):
        run.begin_attempt(run.path, {"pid": 1})
    acquire(live, "another-driver", seconds=60, settle=0)
    CheckpointFile(dead).save(b"x", 40)
    stopped.end_attempt("stopped", "interrupted")
    CheckpointFile(stopped).save(b"x", 7)
    assert describe_state(live, "running").startswith("running (pid ")
    assert describe_state(dead, "running") == "stale: its worker died; resumes at step 40"
    assert describe_state(stopped, "interrupted") == "interrupted; resumes at step 7"
    assert describe_state(stopped, "done") == "done"


def test_every_status_text_of_a_branch_says_where_it_starts(tmp_path, compose_cfg):
    """Dry run and resume notes: a branch never 'restarts at step 0'; it waits for its trunk, starts from the
    trunk's checkpoint at its branch step, or resumes from its own checkpoint."""
    from sweep.driver.dry_run import describe_state, resume_notes
    from sweep.store.runs import CheckpointFile, checkpoints_for

    trunk, branch = expand(compose_cfg(*BRANCHES, "grid.n_tokens=[2e4,3e4]"))
    store = Store(str(tmp_path), "s")
    run = store.run_dir(run_id(branch))
    step = branch.branch_step
    io = checkpoints_for(branch, run)
    assert describe_state(run, None, io) == f"pending; waits for its trunk to reach step {step}"
    CheckpointFile(store.run_dir(run_id(trunk))).save_branch_point(b"x", step)
    assert describe_state(run, None, io) == f"pending; starts from its trunk's checkpoint at step {step}"
    run.begin_attempt(run_id(branch), {"pid": 1})  # its worker died before the branch's own checkpoint
    stale = describe_state(run, "running", io)
    assert stale == f"stale: its worker died; starts from its trunk's checkpoint at step {step}"
    assert resume_notes([branch], store) == [f"{run_id(branch)} (running earlier; {branch.train.n_steps} steps) "
                                             f"starts from its trunk's checkpoint at step {step}"]
    run.end_attempt(run_id(branch), "failed", error="boom")
    assert describe_state(run, "failed", io) == f"failed; starts from its trunk's checkpoint at step {step}"
    CheckpointFile(run).save(b"y", step + 2)
    assert describe_state(run, "interrupted", io) == f"interrupted; resumes from its own checkpoint at step {step + 2}"
    assert describe_state(run, "corrupt", io) == f"corrupt: redone; resumes from its own checkpoint at step {step + 2}"


def test_a_branch_that_will_train_from_step_0_is_counted_in_full_by_the_dry_run_and_the_progress_bar(
        tmp_path, compose_cfg):
    """A branch whose trunk is done without the checkpoint at its branch step trains every step itself
    (BranchCheckpoints.trains_prefix): the dry run's FLOPs and cost and the progress bar's total count them
    all, and its token count from 0; a branch that starts from its trunk's checkpoint counts its cooldown."""
    import io

    from sweep.driver.dry_run import first_steps, plan_table
    from sweep.driver.runner import spent_flops
    from sweep.driver.scheduler import progress_plan
    from sweep.plan.cost import Throughput, grid_cost
    from sweep.plan.resources import Node, RunResources
    from sweep.store.runs import CheckpointFile

    trunk, branch = expand(compose_cfg(*BRANCHES, "grid.n_tokens=[2e4,3e4]"))
    rid, step = run_id(branch), branch.branch_step
    store = Store(str(tmp_path), "s")
    tokens_per_step = branch.train.batch_size * branch.model.seq_len
    cooldown, every_step = spent_flops(branch), spent_flops(branch, 0)
    assert 0 < step and cooldown < every_step
    throughput = Throughput(kind="cpu", points=((1.0, 1e9),), source="test")
    needs = {rid: RunResources(num_cpus=1, num_gpus=0)}

    def counted():
        first = first_steps([branch], store)
        table = io.StringIO()
        Console(file=table, width=400).print(plan_table([branch], {}, "t", None, first))
        seconds = grid_cost([branch], needs, [Node(cpus=1, gpus=0)], throughput, first).runs[0].seconds
        return first[rid], progress_plan([branch], store), table.getvalue(), seconds

    trunk_dir = store.run_dir(run_id(trunk))
    for setup, first, flops in ((lambda: None, step, cooldown),  # waits for its trunk: then its cooldown
                                (lambda: CheckpointFile(trunk_dir).save_branch_point(b"x", step), step, cooldown),
                                (lambda: (CheckpointFile(trunk_dir).remove_branch_point(step),
                                          trunk_dir.end_attempt(run_id(trunk), "done")), 0, every_step)):
        setup()
        found, (total, first_tokens), table, seconds = counted()
        assert found == first and total == {rid: flops} and first_tokens == {rid: first * tokens_per_step}
        assert f"{flops:.2e}" in table
        assert seconds == pytest.approx(flops / throughput.flops_per_second(n_params(branch.model)))


def test_the_dry_run_says_why_a_new_budget_renews_every_run_of_a_size(compose_cfg):
    from sweep.driver.dry_run import replan_notes

    cfg = compose_cfg(*BRANCHES, "grid.branch_plan=smallest", "grid.n_tokens=[1e4,2e4,3e4]")
    specs = expand(cfg)
    earlier = [{"run_id": f"old-{i}", "label": "t1", "seed": 0, "status": "done", "role": role,
                "n_params": n_params(specs[0].model), "batch_size": 999, "lr": 1e-3} for i, role in
               enumerate(("trunk", "branch"))]
    notes = replan_notes(cfg, specs, earlier)
    assert len(notes) == 1 and "t1 seed 0: 2 finished WSD run(s) of this size are not reused" in notes[0]
    assert "smallest budget (grid.branch_plan), now D=10k" in notes[0] and "from batch 999" in notes[0]
    reused = [dict(r, run_id=run_id(s)) for r, s in zip(earlier, specs)]
    assert replan_notes(cfg, specs, reused) == []  # the grid's own runs: nothing to explain


def test_under_branch_plan_batch_a_renewal_is_told_per_trunk_family(compose_cfg):
    """A size has a trunk per derived batch: an earlier run is explained by the family of its own budget."""
    from sweep.driver.dry_run import replan_notes

    # t1 derives 3 sequences at 2e4 and 3e4 tokens, 5 at 8e4 and 1e5
    cfg = compose_cfg(*BRANCHES, "grid.branch_plan=batch", "grid.n_tokens=[2e4,3e4,8e4,1e5]")
    specs = expand(cfg)
    trunks = sorted((s for s in specs if s.role == "trunk"), key=lambda s: s.n_tokens_budget)
    assert len(trunks) == 2 and trunks[0].train.batch_size != trunks[1].train.batch_size
    earlier = [{"run_id": "old", "label": "t1", "seed": 0, "status": "done", "role": "branch",
                "n_params": n_params(specs[0].model), "n_tokens_budget": 80_000, "batch_size": 999, "lr": 1e-3}]
    notes = replan_notes(cfg, specs, earlier)
    assert len(notes) == 1 and "largest budget of its batch (grid.branch_plan), now D=100k" in notes[0]


def test_the_dry_run_says_which_branches_train_at_another_batch_than_their_own(compose_cfg):
    """Under a shared plan a branch inherits its trunk's batch; where its own budget derives another, the dry
    run names it and what grid.branch_plan=batch would cost."""
    from sweep.driver.dry_run import batch_notes

    grid = (*BRANCHES, "grid.n_tokens=[2e4,4e4,6e4,1e5]")
    cfg = compose_cfg(*grid)
    notes = batch_notes(cfg, expand(cfg))
    assert len(notes) == 2
    assert notes[0].startswith("t1: branches train at the shared batch of 5 sequences") and \
        "D=20k (3), D=40k (4), D=60k (4);" in notes[0]
    assert "grid.branch_plan=batch" in notes[1] and "% of independent runs" in notes[1]
    for fixed in ("grid.branch_plan=batch", "train.batch_size=4"):
        cfg = compose_cfg(*grid, fixed)
        assert batch_notes(cfg, expand(cfg)) == [], fixed
