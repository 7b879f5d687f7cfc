"""What only the plan tells: shapes that reach each size's target count, and the expanded runs (their batches,
cooldowns, budgets that make one run)."""

import pytest

from sweep.config.schema import ModelSize
from sweep.config.validate import ConfigError, validate
from sweep.plan.checks import shape_problems


def test_a_size_no_shape_reaches_is_refused_and_a_refused_value_is_left_to_validate(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.grid.models = [ModelSize(n_nonembed_params=1.0), ModelSize(n_nonembed_params=2e4),
                       ModelSize(n_nonembed_params=-5.0), ModelSize(n_nonembed_params=float("nan"))]
    found = shape_problems(cfg)
    assert len(found) == 1 and found[0].startswith("grid.models[0].n_nonembed_params: no shape of this model family "
                                                   "has about 1 non-embedding parameters"), found
    cfg.model.head_dim = 0  # a family that cannot derive shapes: validate names model.head_dim instead
    assert shape_problems(cfg) == []


def test_runs_whose_batches_the_micro_batch_or_ranks_cannot_split(compose_cfg):
    from sweep.plan.checks import validate_runs
    from sweep.plan.grid import expand

    for overrides, key in ((["train.micro_batch_size=3"], "train.micro_batch_size"),
                           (["train.batch_size=6", "train.micro_batch_size=4"], "train.micro_batch_size"),
                           (["cluster.gpus_per_run=4", "train.batch_size=6"], "cluster.gpus_per_run")):
        cfg = compose_cfg("grid=tiny", *overrides)
        if key == "train.micro_batch_size" and cfg.train.batch_size:
            with pytest.raises(ConfigError):  # a given batch: already a config problem
                validate(cfg)
        with pytest.raises(ConfigError) as info:
            validate_runs(cfg, expand(cfg))
        assert info.value.problems[0].startswith(key)
    cfg = compose_cfg("grid=tiny", "train.micro_batch_size=1", "cluster.gpus_per_run=2", "train.batch_size=4")
    validate_runs(cfg, expand(cfg))


def test_a_cooldown_overlapping_the_warmup_is_refused(compose_cfg):
    from sweep.plan.checks import validate_runs
    from sweep.plan.grid import expand

    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[2e3,2e4]", "train.schedule=wsd", "grid.branches=true",
                      "train.warmup_fraction=0.5", "train.cooldown_fraction=0.6")
    with pytest.raises(ConfigError, match="train.cooldown_fraction: warm-up and cooldown overlap"):
        validate_runs(cfg, expand(cfg))


def test_budgets_that_round_to_the_same_run_are_refused(compose_cfg):
    """Two budgets of a size that round up to the same steps would train one run twice under two ids: with
    grid.branches always (one shared plan: t2 has 512 tokens per step, 2e4 and 2.01e4 both make 40 steps),
    and independently only when the plans come out equal too; a trunk and a branch can collide the same way."""
    from sweep.plan.checks import validate_runs
    from sweep.plan.grid import expand

    # one plan a size, 4 sequences of 128 tokens a step
    branches = ("train.schedule=wsd", "grid.branches=true", "grid.branch_plan=largest", "train.batch_size=4")
    for overrides in ((*branches, "grid.n_tokens=[2e4,2.01e4,4e4]"),
                      (*branches, "grid.n_tokens=[2e4,4e4,4.02e4]", "grid.seeds=[0,1]"),  # trunk and branch
                      ("grid.n_tokens=[2e4,2.01e4]", "train.lr=1e-3", "train.batch_size=4")):
        cfg = compose_cfg("grid=tiny", *overrides)
        with pytest.raises(ConfigError) as info:
            validate_runs(cfg, expand(cfg))
        t2 = [p for p in info.value.problems if " of t2 " in p]
        assert len(t2) == 1 and t2[0].startswith("grid.n_tokens: budgets "), info.value.problems
        assert "both round up to 40 steps" in t2[0] or "both round up to 79 steps" in t2[0], t2[0]
        assert "keep one of them, or set them at least one step (512 tokens) apart" in t2[0]
    cfg = compose_cfg("grid=tiny", *branches, "grid.n_tokens=[2e4,2.01e4,4e4]")
    with pytest.raises(ConfigError) as info:
        validate_runs(cfg, expand(cfg))
    assert info.value.problems[0] == ("grid.n_tokens: budgets 20000 and 20100 tokens of t2 both round up to 40 steps "
                                      "(20480 tokens at 512 per step), so they would train the same run twice; keep "
                                      "one of them, or set them at least one step (512 tokens) apart")
    # independent runs at those budgets differ (the learning rate follows the budget); equal budgets are one
    for overrides in (("grid.n_tokens=[2e4,2.01e4]",), (*branches, "grid.n_tokens=[2e4,2e4,4e4]"),
                      (*branches, "grid.n_tokens=[2e4,2.06e4,4e4]")):
        cfg = compose_cfg("grid=tiny", *overrides)
        validate_runs(cfg, expand(cfg))


