"""Every plan-time WSD rule: which budgets of a size share a trunk, their shared plan, branch steps and ids.

With grid.branches, the budgets of one size train as one wsd run (the trunk, at the largest budget of its
family) that keeps a checkpoint where each smaller budget's cooldown starts; each smaller budget is a branch
that trains only its cooldown from there. The plans come in from sweep.plan.grid (each budget's own plan, as
an independent wsd run would get it): this module decides what the branches share, where they start, and
refuses budgets that would train the same run twice.
When a branch may start and when a branch point is deleted are run-time rules (sweep.driver.branch_points).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sweep.config.schema import TrainConfig
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec, TrainPlan
from sweep.train.schedule import cooldown_steps

# grid.branches with train.cooldown_fraction unset: a 20% cooldown (Hägele et al. 2024, sec. 4: a
# cooldown of 20% of the steps matches, and longer ones beat, a cosine run of the same length).
BRANCH_COOLDOWN_FRACTION = 0.2

BRANCH_PLANS = ("batch", "largest", "smallest")  # grid.branch_plan: see branch_families and plan_branches

Branch = tuple[int, TrainPlan, int]  # (budget, plan, branch step: where its cooldown starts; 0 for the trunk)


def branch_train(train: TrainConfig) -> TrainConfig:
    """The train config a size's trunk and branches are planned with: a wsd cooldown of
    train.cooldown_fraction of each run's steps, BRANCH_COOLDOWN_FRACTION where that is unset."""
    if train.schedule != "wsd" or train.cooldown_fraction is not None:
        return train
    return dataclasses.replace(train, cooldown_fraction=BRANCH_COOLDOWN_FRACTION)


def plan_branches(train: TrainConfig, plans: Mapping[int, TrainPlan], plan_at: str = "largest") -> list[Branch]:
    """The WSD-branch plans of one family: (budget, plan, branch step) per budget, the largest (the trunk,
    branch step 0) first. `plans`: budget -> the plan an independent run of it gets under branch_train(train)
    (sweep.plan.grid.plan_training).

    All budgets of a family share one run up to their cooldowns, so they share its batch, peak learning
    rate and warm-up: those of the plan at one budget, `plan_at`:
      largest: the trunk, which holds most of the compute, is exactly the independent wsd run of its
        budget; smaller budgets train at a lower learning rate and a larger batch than their own rule
        gives (fewer steps). grid.branch_plan=batch (the default, branch_families) plans each family of
        budgets of one derived batch this way;
      smallest: the smallest branch is exactly its independent wsd run; larger budgets keep its batch
        (at or below their critical batch: no loss per token lost, McCandlish et al. 2018) and its
        higher learning rate, which the trunk then holds for its whole stable phase.
    bench/wsd_branches.py measures both against independent runs. Each budget then gets its own steps
    (ceil(D / tokens per step)) and a cooldown of the cooldown fraction of them; its branch step, where its
    cooldown starts, is n_steps - cooldown_steps.
    The largest budget is the trunk itself: its stable phase runs to its own cooldown and it keeps a
    checkpoint at every smaller budget's branch step; the others branch from those checkpoints.
    """
    fraction = branch_train(train).cooldown_fraction
    budgets = sorted(plans)
    base = plans[budgets[-1] if plan_at == "largest" else budgets[0]]
    tokens_per_step = base.n_tokens // base.n_steps  # batch_size x seq_len: a plan trains whole steps
    branches: list[Branch] = []
    for budget in reversed(budgets):
        n_steps = max(1, math.ceil(budget / tokens_per_step))
        n_cooldown = cooldown_steps(n_steps, fraction)
        plan = dataclasses.replace(base, n_steps=n_steps, n_tokens=n_steps * tokens_per_step,
                                   val_every_steps=max(1, math.ceil(n_steps / max(1, train.val_points))),
                                   cooldown_steps=n_cooldown, cooldown_shape=train.cooldown_shape)
        branches.append((budget, plan, 0 if not branches else n_steps - n_cooldown))
    return branches


def branch_families(train: TrainConfig, plans: Mapping[int, TrainPlan], plan_at: str = "largest") -> list[list[Branch]]:
    """The WSD-branch families of one size, each a trunk and its branches as plan_branches gives them;
    `plans` as there, one per budget of the size.

    largest, smallest: one family, every budget of the size. batch: one family per batch size that
    independent runs of the budgets would derive, each planned at its largest budget.
    A branch then trains at its own budget's batch, with the steps an independent run of it takes;
    under `largest` a budget whose derived batch is half the trunk's gets half the steps, and lands
    9-17% above its independent run (bench/wsd_branches.py, the 115k-parameter size; with `batch` every
    point of that grid agrees, bench/results/wsd_branches/seeds3_*). It costs a trunk per batch size:
    a budget alone in its family is a plain wsd run.
    """
    if plan_at != "batch":
        return [plan_branches(train, plans, plan_at)]
    groups: dict[int, dict[int, TrainPlan]] = {}
    for budget in sorted(plans):
        groups.setdefault(plans[budget].batch_size, {})[budget] = plans[budget]
    return [plan_branches(train, group, "largest") for group in groups.values()]


def family_specs(family: Sequence[Branch], seeds: Sequence[int], **common: Any) -> list[RunSpec]:
    """The runs of one family, per seed: its trunk, keeping a checkpoint at every branch step (its branch
    points, never hashed: sweep.plan.run_id.EXCLUDED), then each branch, naming its trunk's run id and its
    branch step (both hashed). `common`: the RunSpec fields every run of the size shares."""
    points = tuple(sorted({step for _, _, step in family[1:]}))
    specs = []
    for seed in seeds:
        budget, plan, _ = family[0]
        trunk = RunSpec(train=plan, seed=seed, n_tokens_budget=budget, branch_points=points, **common)
        specs.append(trunk)
        specs += [RunSpec(train=plan, seed=seed, n_tokens_budget=budget, trunk_run_id=run_id(trunk), branch_step=step,
                          **common) for budget, plan, step in family[1:]]
    return specs


def same_run_budgets(specs: Sequence) -> list[str]:
    """Budgets of one size that round up to the same whole number of steps and so train the very same run
    twice under two ids: with grid.branches always (a size's runs share one plan and budgets become steps
    as ceil(D / tokens per step), sweep.plan.branches; a trunk and a branch can collide too), and
    independent runs only when the rest of their plans comes out equal as well (train.lr and
    train.batch_size given, say; derived, the learning rate follows the budget itself).

    Refused rather than merged into one run: the tables would then show one run at two budgets, or drop
    one budget silently. Budgets equal after rounding to a whole token are one budget
    (sweep.plan.grid.budgets_for) and never get here."""
    runs: dict[str, list] = {}
    for s in specs:  # what a run trains (its identity), whatever budget asked for it and however it starts
        trained = dataclasses.replace(s, n_tokens_budget=0, branch_points=(), trunk_run_id=None, branch_step=None)
        runs.setdefault(run_id(trained), []).append(s)
    problems = []
    for same in runs.values():
        budgets = sorted({s.n_tokens_budget for s in same})
        if len(budgets) < 2:
            continue
        s = same[0]
        tokens_per_step = s.train.batch_size * s.model.seq_len
        times = "twice" if len(budgets) == 2 else f"{len(budgets)} times"
        message = (f"grid.n_tokens: budgets {' and '.join(f'{b:g}' for b in budgets)} tokens of {s.label} "
                   f"{'both' if len(budgets) == 2 else 'all'} round up to {s.train.n_steps} steps "
                   f"({s.train.n_tokens:g} tokens at {tokens_per_step:g} per step), so they would train the same "
                   f"run {times}; keep one of them, or set them at least one step "
                   f"({tokens_per_step:g} tokens) apart")
        if message not in problems:  # one line per size, not per seed
            problems.append(message)
    return problems
