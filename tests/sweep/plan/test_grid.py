import math

import pytest

from sweep.config.schema import ModelConfig, ModelSize, TrainConfig
from sweep.plan.grid import budgets_for, expand, plan_training, shape_for_params
from sweep.plan.run_id import run_id
from sweep.train.flops import n_nonembed_params, n_params, train_flops


def test_default_grid_is_sizes_times_budgets_times_seeds(compose_cfg):
    cfg = compose_cfg()
    specs = expand(cfg)
    assert len(specs) == len(cfg.grid.models) * len(cfg.grid.n_tokens) * len(cfg.grid.seeds) >= 12
    assert len({run_id(s) for s in specs}) == len(specs)


def test_the_default_grid_gives_the_analysis_enough_to_stand_on(compose_cfg):
    """7 sizes at the largest budget (a sigmoid with a free floor has 4 parameters and needs 7 sizes), and
    isoFLOP groups of 3 sizes for Approach 2, grouped the way the analysis groups them (C = 6ND within 5%)."""
    import numpy as np

    from analysis.emergence.rule import Criteria
    from analysis.loss.isoflop import group_by_compute
    from sweep.train.flops import flops_6nd

    specs = expand(compose_cfg())
    largest = max(s.n_tokens_budget for s in specs)
    assert len({n_params(s.model) for s in specs if s.n_tokens_budget == largest}) >= Criteria().min_sizes(4) == 7
    groups = group_by_compute(np.array([flops_6nd(s.model, s.train.n_tokens) for s in specs]))
    sizes_per_group = [len({n_params(s.model) for s, g in zip(specs, groups) if g == k}) for k in set(groups)]
    assert sum(n >= 3 for n in sizes_per_group) >= 5


def test_seeds_multiply_runs_and_order_is_largest_compute_first(compose_cfg):
    specs = expand(compose_cfg("grid=tiny", "grid.seeds=[0,1,2]"))
    assert len(specs) == 2 * 3
    flops = [train_flops(s.model, s.train.n_tokens) for s in specs]
    assert flops == sorted(flops, reverse=True)


def test_ratio_budgets_follow_parameter_count(compose_cfg):
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[]", "grid.tokens_per_param=[10,20]")
    specs = expand(cfg)
    assert len(specs) == 4
    for s in specs:
        assert s.n_tokens_budget / n_params(s.model) == pytest.approx(round(s.n_tokens_budget / n_params(s.model)),
                                                                      abs=1e-3)
        assert s.train.n_tokens >= s.n_tokens_budget


def test_duplicate_budgets_collapse(compose_cfg):
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[2e4,2e4]")
    assert len(expand(cfg)) == 2
    # with grid.branches too (one trunk and one branch per size); budgets that differ but round to the same
    # steps are refused instead (sweep.plan.checks.same_run_budgets)
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[2e4,2e4,4e4]", "train.schedule=wsd", "grid.branches=true",
                      "grid.branch_plan=largest")
    assert sorted(s.role for s in expand(cfg)) == ["branch", "branch", "trunk", "trunk"]


def test_budget_rounds_up_to_whole_steps():
    shape = shape_for_params(1e5, ModelConfig())
    plan = plan_training(TrainConfig(batch_size=16), shape, 100_000)
    tokens_per_step = 16 * shape.seq_len
    assert plan.n_steps == math.ceil(100_000 / tokens_per_step)
    assert plan.n_tokens == plan.n_steps * tokens_per_step
    assert 0 <= plan.n_tokens - 100_000 < tokens_per_step
    assert 1 <= plan.warmup_steps <= plan.n_steps


@pytest.mark.parametrize("n_steps, fraction, floor, beta2, expected", [
    (245, 0.05, None, 0.95, 40),     # short run: Adam's horizon 2 / (1 - 0.95), not 5% (12 steps)
    (100, 0.05, None, 0.95, 25),     # the floor takes at most a quarter of the run
    (3, 0.05, None, 0.95, 1),        # at least one step
    (10_000, 0.05, None, 0.95, 500),  # long run: the fraction
    (50_000, 0.05, None, 0.95, 1000),  # capped at max_warmup_steps
    (2_000, 0.05, None, 0.99, 200),  # beta2 = 0.99: a 200-step horizon
    (245, 0.05, 0, 0.95, 12),        # min_warmup_steps=0: the fraction alone
    (245, 0.2, None, 0.95, 49),      # a larger fraction wins over the floor
])
def test_warmup_is_the_fraction_but_at_least_adams_horizon(n_steps, fraction, floor, beta2, expected):
    from sweep.plan.grid import warmup_steps

    train = TrainConfig(warmup_fraction=fraction, min_warmup_steps=floor, beta2=beta2)
    assert warmup_steps(train, n_steps) == expected


@pytest.mark.parametrize("target", [1e5, 3e5, 1e6, 1e7, 1e8])
def test_shape_for_params_hits_target(target):
    shape = shape_for_params(target, ModelConfig())
    assert abs(n_nonembed_params(shape) / target - 1) < 0.05
    assert shape.d_model % shape.n_head == 0 and shape.head_dim == 32


def test_shape_for_tiny_target_is_nearest_available():
    """At 3e4 no shape with head_dim 32 is within 5%: the nearest count wins."""
    from sweep.plan.grid import _shape

    model = ModelConfig()
    shape = shape_for_params(3e4, model)
    candidates = [_shape(model, n_layer, k * 32, k) for n_layer in range(1, 10) for k in range(1, 4)]
    best = min(abs(n_nonembed_params(c) - 3e4) for c in candidates)
    assert abs(n_nonembed_params(shape) - 3e4) == best


def test_size_by_n_nonembed_params_in_grid(compose_cfg):
    specs = expand(compose_cfg("grid=chinchilla", "grid.tokens_per_param=[20]"))
    counts = sorted(n_nonembed_params(s.model) for s in specs)
    for got, want in zip(counts, [1e6, 3e6, 1e7, 3e7, 1e8]):
        assert abs(got / want - 1) < 0.05


def test_explicit_size_without_heads_uses_head_dim(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.grid.models = [ModelSize(n_layer=2, d_model=128)]
    assert expand(cfg)[0].model.n_head == 128 // cfg.model.head_dim


def test_budgets_for_sorts_and_combines(compose_cfg):
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[5e4,1e4]", "grid.tokens_per_param=[1]")
    shape = expand(cfg)[0].model
    assert budgets_for(cfg, shape) == sorted({10_000, 50_000, n_params(shape)})
