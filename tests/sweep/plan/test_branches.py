"""Every plan-time WSD rule (sweep.plan.branches), through the grid that uses it: which budgets share a trunk,
the shared plan, branch steps and the ids that link a branch to its trunk."""

import math
from collections import Counter

import pytest

from sweep.config.schema import TrainConfig
from sweep.plan.grid import expand, plan_training
from sweep.plan.run_id import run_id

BRANCHES = ("grid=tiny", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]",
            "grid.n_tokens=[2e4,4e4,6e4,1e5]", "train.schedule=wsd", "grid.branches=true",
            "grid.branch_plan=largest")  # one trunk per size: these budgets derive two batches (2 and 4)


def test_branches_are_one_trunk_per_size_and_seed_and_a_branch_per_smaller_budget(compose_cfg):
    specs = expand(compose_cfg(*BRANCHES, "grid.seeds=[0,1]"))
    assert len(specs) == 8
    trunks = [s for s in specs if s.role == "trunk"]
    assert sorted(s.seed for s in trunks) == [0, 1] and all(s.n_tokens_budget == 100_000 for s in trunks)
    for trunk in trunks:
        branches = [s for s in specs if s.trunk_run_id == run_id(trunk)]
        assert sorted(s.n_tokens_budget for s in branches) == [20_000, 40_000, 60_000]
        assert all(s.seed == trunk.seed for s in branches)
        assert trunk.branch_points == tuple(sorted(s.branch_step for s in branches))


@pytest.mark.parametrize("plan_at, budget", [("largest", 100_000), ("smallest", 20_000)])
def test_branch_points_and_cooldown_lengths_are_exact(compose_cfg, plan_at, budget):
    """Every point: steps = ceil(D / tokens per step), cooldown = round(20% of them), branch step =
    steps - cooldown; batch, peak LR and warm-up are those of one budget (grid.branch_plan), shared by all."""
    specs = expand(compose_cfg(*BRANCHES, f"grid.branch_plan={plan_at}", "grid.n_tokens=[2e4,4e4,6e4,1e5,1e7]"))
    shared = plan_training(TrainConfig(schedule="wsd", cooldown_fraction=0.2, min_batch_size=1), specs[0].model,
                           budget if plan_at == "smallest" else 10_000_000)
    assert len({s.train.batch_size for s in specs}) == 1
    for s in specs:
        plan = s.train
        assert (plan.batch_size, plan.lr, plan.warmup_steps) == (shared.batch_size, shared.lr, shared.warmup_steps)
        tokens_per_step = plan.batch_size * s.model.seq_len
        assert plan.n_steps == math.ceil(s.n_tokens_budget / tokens_per_step)
        assert plan.n_tokens == plan.n_steps * tokens_per_step >= s.n_tokens_budget
        assert plan.cooldown_steps == round(0.2 * plan.n_steps) and plan.cooldown_shape == "1-sqrt"
        if s.role == "branch":
            assert s.branch_step == plan.n_steps - plan.cooldown_steps == plan.stable_steps
    trunk = next(s for s in specs if s.role == "trunk")
    assert all(step < trunk.train.stable_steps for step in trunk.branch_points)  # inside the trunk's stable phase


def test_branch_plan_batch_gives_a_trunk_per_derived_batch_and_each_branch_its_own_batch(compose_cfg):
    """grid.branch_plan=batch: budgets group by the batch an independent run of them derives; each group is
    a trunk (its largest budget, planned there) and branches, so every point trains at its own batch."""
    budgets = [2e4, 4e4, 6e4, 1e5, 3e6, 1e7]
    specs = expand(compose_cfg(*BRANCHES, "grid.branch_plan=batch", f"grid.n_tokens={budgets}"))
    independent = {s.n_tokens_budget: s.train for s in
                   expand(compose_cfg(*BRANCHES[:2], f"grid.n_tokens={budgets}", "train.schedule=wsd"))}
    assert len({plan.batch_size for plan in independent.values()}) >= 2  # the grid spans a batch change
    per_batch = Counter(plan.batch_size for plan in independent.values())
    trunks = [s for s in specs if s.role == "trunk"]
    assert len(trunks) == sum(n > 1 for n in per_batch.values())  # a budget alone in its batch: a plain wsd run
    alone = [s for s in specs if per_batch[s.train.batch_size] == 1]
    assert alone and all(s.role == "independent" and s.train.cooldown_steps for s in alone)
    for trunk in trunks:
        family = [trunk] + [s for s in specs if s.trunk_run_id == run_id(trunk)]
        assert {s.train.batch_size for s in family} == {trunk.train.batch_size}
        assert trunk.n_tokens_budget == max(s.n_tokens_budget for s in family)
        assert trunk.train.lr == independent[trunk.n_tokens_budget].lr  # planned at its own budget
        assert trunk.branch_points == tuple(sorted(s.branch_step for s in family[1:]))
    for s in specs:
        assert s.train.batch_size == independent[s.n_tokens_budget].batch_size
        assert s.train.n_steps == independent[s.n_tokens_budget].n_steps
        if s.role == "branch":
            assert s.branch_step == s.train.n_steps - s.train.cooldown_steps
    assert sorted(s.n_tokens_budget for s in specs) == sorted(independent)


def test_a_branch_id_changes_when_its_trunk_changes(compose_cfg):
    base = {(s.n_tokens_budget, s.role): run_id(s) for s in expand(compose_cfg(*BRANCHES))}
    for override in ("train.weight_decay=0.05", "grid.n_tokens=[2e4,4e4,6e4,2e5]", "train.cooldown_shape=linear"):
        changed = {(s.n_tokens_budget, s.role): (run_id(s), s.trunk_run_id) for s in
                   expand(compose_cfg(*BRANCHES, override))}
        assert changed[(20_000, "branch")][0] != base[(20_000, "branch")], override
        assert changed[(20_000, "branch")][1] != base[(max(k[0] for k in base), "trunk")], override


def test_grids_without_branches_keep_their_ids(compose_cfg):
    """The branch fields are hashed only when set: every other run keeps the id it had."""
    plain = expand(compose_cfg("grid=tiny"))
    assert all(s.role == "independent" and s.train.cooldown_steps is None for s in plain)
    wsd = expand(compose_cfg("grid=tiny", "train.schedule=wsd"))
    assert all(s.train.cooldown_steps is None for s in wsd)  # wsd without cooldown_fraction: the older rule


def test_a_smaller_budget_keeps_the_ids_under_largest_and_renews_all_under_smallest(compose_cfg):
    """A budget added below the others: with grid.branch_plan=largest the shared plan is the trunk's, so the
    trunk (whose id leaves out its branch points) and every finished branch keep their ids and are reused;
    with smallest the shared batch, lr and warm-up move to the new budget, so every run of the size is new
    (inherent; the dry run says why: sweep.driver.dry_run.replan_notes)."""
    for plan_at, reused in (("largest", True), ("smallest", False)):
        before = {(s.n_tokens_budget, s.role): run_id(s) for s in
                  expand(compose_cfg(*BRANCHES, f"grid.branch_plan={plan_at}"))}
        after = {(s.n_tokens_budget, s.role): run_id(s) for s in
                 expand(compose_cfg(*BRANCHES, f"grid.branch_plan={plan_at}", "grid.n_tokens=[1e4,2e4,4e4,6e4,1e5]"))}
        assert set(before) < set(after) and (10_000, "branch") in after
        kept = [key for key in before if before[key] == after[key]]
        assert kept == (list(before) if reused else []), plan_at
