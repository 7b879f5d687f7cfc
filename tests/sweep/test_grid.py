import math

import pytest

from sweep.config import ModelConfig, ModelSize, TrainConfig
from sweep.grid import budgets_for, default_lr, expand, plan_training, shape_for_params
from sweep.run_id import run_id
from sweep.train.flops import n_nonembed_params, n_params, train_flops


def test_default_grid_is_sizes_times_budgets_times_seeds(compose_cfg):
    cfg = compose_cfg()
    specs = expand(cfg)
    assert len(specs) == len(cfg.grid.models) * len(cfg.grid.n_tokens) * len(cfg.grid.seeds) >= 12
    assert len({run_id(s) for s in specs}) == len(specs)


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


def test_budget_rounds_up_to_whole_steps():
    shape = shape_for_params(1e5, ModelConfig())
    plan = plan_training(TrainConfig(batch_size=16), shape, 100_000)
    tokens_per_step = 16 * shape.seq_len
    assert plan.n_steps == math.ceil(100_000 / tokens_per_step)
    assert plan.n_tokens == plan.n_steps * tokens_per_step
    assert 0 <= plan.n_tokens - 100_000 < tokens_per_step
    assert 1 <= plan.warmup_steps <= plan.n_steps


@pytest.mark.parametrize("target", [1e5, 3e5, 1e6, 1e7, 1e8])
def test_shape_for_params_hits_target(target):
    shape = shape_for_params(target, ModelConfig())
    assert abs(n_nonembed_params(shape) / target - 1) < 0.05
    assert shape.d_model % shape.n_head == 0 and shape.head_dim == 32


def test_shape_for_tiny_target_is_nearest_available():
    """At 3e4 no shape with head_dim 32 is within 5%: the nearest count wins."""
    from sweep.grid import _shape

    model = ModelConfig()
    shape = shape_for_params(3e4, model)
    candidates = [_shape(model, n_layer, k * 32, k) for n_layer in range(1, 10) for k in range(1, 4)]
    best = min(abs(n_nonembed_params(c) - 3e4) for c in candidates)
    assert abs(n_nonembed_params(shape) - 3e4) == best


def test_size_by_n_params_in_grid(compose_cfg):
    specs = expand(compose_cfg("grid=chinchilla", "grid.tokens_per_param=[20]"))
    counts = sorted(n_nonembed_params(s.model) for s in specs)
    for got, want in zip(counts, [1e6, 3e6, 1e7, 3e7, 1e8]):
        assert abs(got / want - 1) < 0.05


def test_learning_rate_rule_and_override():
    small, large = shape_for_params(1e5, ModelConfig()), shape_for_params(1e8, ModelConfig())
    assert default_lr(small) > default_lr(large) > 0  # Kaplan et al. eq. D.1 decreases with N
    assert plan_training(TrainConfig(lr=0.01), small, 10**5).lr == 0.01
    assert plan_training(TrainConfig(lr_scale=2.0), small, 10**5).lr == pytest.approx(2 * default_lr(small))


def test_explicit_size_without_heads_uses_head_dim(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.grid.models = [ModelSize(n_layer=2, d_model=128)]
    assert expand(cfg)[0].model.n_head == 128 // cfg.model.head_dim


def test_budgets_for_sorts_and_combines(compose_cfg):
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[5e4,1e4]", "grid.tokens_per_param=[1]")
    shape = expand(cfg)[0].model
    assert budgets_for(cfg, shape) == sorted({10_000, 50_000, n_params(shape)})
