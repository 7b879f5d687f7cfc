"""sweep/plan/recipe.py: the batch and learning-rate laws, the batch rounding without cliffs, and which source a
sweep uses."""

import math

import pytest

from sweep.config.schema import ModelConfig, TrainConfig
from sweep.plan.grid import expand, plan_training, shape_for_params
from sweep.plan.recipe import DEEPSEEK, STEPS_PER_OCTAVE, PowerLaw, Recipe, batch_and_lr, choose_source, round_batch
from sweep.train.flops import train_flops


def test_the_published_laws_are_deepseeks():
    # Bi et al. 2024, eq. 1, at C = 1e18 FLOPs: B_opt = 0.2920 * 1e18^0.3271 ~ 2.26e5 tokens, eta ~ 1.75e-3.
    assert DEEPSEEK.batch_tokens(1e18) == pytest.approx(0.2920 * 10 ** (18 * 0.3271))
    assert DEEPSEEK.batch_tokens(1e18) == pytest.approx(2.255e5, rel=0.01)
    assert DEEPSEEK.lr(1e18) == pytest.approx(0.3118 * 10 ** (-18 * 0.125)) == pytest.approx(1.753e-3, rel=0.01)
    assert DEEPSEEK.covers(1e18) and not DEEPSEEK.covers(1e12)


def test_the_batch_keeps_eight_values_per_octave_so_neighbours_differ_by_at_most_an_eighth():
    assert [round_batch(s, 4096) for s in (0.3, 1, 2.4, 7.6, 8, 8.4, 15.4, 18.6, 19.1, 33, 35)] == [
        1, 1, 2, 8, 8, 8, 15, 18, 20, 32, 36]
    values = sorted({round_batch(2 ** (k / 64), 4096) for k in range(0, 64 * 12)})
    assert values[:9] == list(range(1, 10))
    ratios = [b / a for a, b in zip(values, values[1:])]
    assert max(r for r, a in zip(ratios, values) if a >= STEPS_PER_OCTAVE) <= 1 + 1 / STEPS_PER_OCTAVE
    assert round_batch(10_000, 512) == 512  # max_batch_size caps it


def test_the_lr_follows_the_rounded_batch_by_the_square_root_rule():
    recipe = Recipe("test", PowerLaw(1.0, 0.5), PowerLaw(0.01, 0.0), (1.0, 1e30), "a test")
    batch, lr = batch_and_lr(recipe, flops=(18.6 * 128) ** 2, seq_len=128, max_batch_size=4096)
    assert batch == 18 and lr == pytest.approx(0.01 * math.sqrt(18 / 18.6))


def test_no_cliffs_along_the_default_grid(compose_cfg):
    """Neighbouring points of the default grid differ in batch by at most 1/8 plus what compute asks, never by
    a power-of-two jump, and a larger budget of a size never trains fewer steps (the old rounding down to powers
    of two halved them where the batch doubled: 783K params at 1.085M tokens took 265 steps against 530)."""
    specs = expand(compose_cfg("recipe.source=deepseek"))
    by_size: dict[tuple[str, int], list] = {}
    for spec in specs:
        by_size.setdefault((spec.label, spec.seed), []).append(spec)
    for label, runs in by_size.items():
        runs.sort(key=lambda s: s.n_tokens_budget)
        for a, b in zip(runs, runs[1:]):
            assert b.train.n_steps > a.train.n_steps, label
            grows = (DEEPSEEK.batch_tokens(float(train_flops(b.model, b.n_tokens_budget)))
                     / DEEPSEEK.batch_tokens(float(train_flops(a.model, a.n_tokens_budget))))
            assert b.train.batch_size / a.train.batch_size <= grows * (1 + 1 / STEPS_PER_OCTAVE) ** 2, label
    for budget in {s.n_tokens_budget for s in specs}:
        runs = sorted((s for s in specs if s.n_tokens_budget == budget),
                      key=lambda s: s.model.d_model * s.model.n_layer)
        assert all(b.train.batch_size / a.train.batch_size < 1.5 for a, b in zip(runs, runs[1:]))


def test_a_given_batch_moves_the_recipes_lr_by_the_square_root_rule():
    shape = shape_for_params(1e5, ModelConfig())
    derived = plan_training(TrainConfig(), shape, 10**6)
    fixed = plan_training(TrainConfig(batch_size=3), shape, 10**6)
    assert fixed.batch_size == 3 and fixed.n_steps == -(-10**6 // (3 * shape.seq_len))
    assert fixed.lr == pytest.approx(derived.lr * math.sqrt(3 / derived.batch_size))
    assert (derived.recipe, fixed.recipe) == ("deepseek", "deepseek, batch_size fixed")
    assert plan_training(TrainConfig(batch_size=3, lr=1e-3), shape, 10**6).recipe == "fixed"


def test_auto_calibrates_only_off_the_published_laws_fitted_range():
    assert choose_source("auto", [1e11, 6e12])[0] == "calibrate"
    assert choose_source("auto", [1e16, 1e18])[0] == "calibrate"  # partly below
    source, why = choose_source("auto", [2e17, 1e19])
    assert source == "deepseek" and "inside" in why
    assert choose_source("deepseek", [1e11])[0] == "deepseek" and choose_source("calibrate", [1e18])[0] == "calibrate"
