"""analysis/loss/monotonicity.py: reversals of loss along N and D, the runs they stand on, what changed
between them, and whether noise can explain them."""

import numpy as np
import polars as pl
import pytest
from law_truth import law

from analysis.loss.monotonicity import ONE_SEED_TOLERANCE, Kind, check_monotonicity, monotonicity_table

SIZES = (1e7, 1.5e7, 2.2e7, 3.3e7)  # close in N, far apart in D: a point can rise above its N neighbour
BUDGETS = (1e8, 4e8, 1.6e9, 6.4e9)  # and stay below its D neighbour


def _table(seeds=(0,), noise=0.0, seed=0) -> pl.DataFrame:
    """Runs of the known law on SIZES x BUDGETS, trained alike: batch 16, steps from D, lr from N D."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(SIZES):
        for j, d in enumerate(BUDGETS):
            for s in seeds:
                rows.append({"run_id": f"N{i}-D{j}-s{s}", "label": f"m{i}", "seed": s, "n_params": n, "n_tokens": d,
                             "batch_size": 16, "n_steps": int(d / (16 * 128)),
                             "lr": round(0.3 * (6 * n * d) ** -0.125, 5),
                             "precision": "fp32", "final_val_loss": law(n, d) * np.exp(rng.normal(0, noise))})
    return pl.DataFrame(rows)


def _check(runs: pl.DataFrame, with_table: bool = True):
    return check_monotonicity(runs["n_params"], runs["n_tokens"], runs["final_val_loss"], runs if with_table else None)


def test_a_doubled_batch_that_raises_the_loss_names_exactly_those_runs_and_what_changed():
    runs = _table()
    at = (pl.col("run_id") == "N3-D2-s0")  # the largest size at the third budget: its derived batch doubled
    below = runs.filter(pl.col("run_id") == "N2-D2-s0").row(0, named=True)
    runs = runs.with_columns(
        batch_size=pl.when(at).then(32).otherwise(pl.col("batch_size")),
        n_steps=pl.when(at).then(pl.col("n_steps") // 2).otherwise(pl.col("n_steps")),
        lr=pl.when(at).then(0.00758).otherwise(pl.when(pl.col("run_id") == "N2-D2-s0").then(0.00618)
                                                 .otherwise(pl.col("lr"))),
        final_val_loss=pl.when(at).then(below["final_val_loss"] * 1.05).otherwise(pl.col("final_val_loss")))
    steps = below["n_steps"]
    result = _check(runs)
    assert [(r.smaller.run_ids, r.larger.run_ids) for r in result.reversals] == [(("N2-D2-s0",), ("N3-D2-s0",))]
    r = result.reversals[0]
    assert r.kind is Kind.RECIPE and r.along == "n_params" and r.held == pytest.approx(BUDGETS[2])
    assert steps == 781250 and r.changed() == "batch_size 16 -> 32, n_steps 781250 -> 390625, lr 0.00618 -> 0.00758"
    assert (r.smaller.label, r.larger.label) == ("m2", "m3") and r.relative_rise == pytest.approx(0.05)
    assert result.one_seed and "noise cannot be told from a real break" in result.rule()
    table = monotonicity_table(result)
    assert table.height == 1 and table.row(0, named=True)["run_ids_after"] == "N3-D2-s0"
    assert table.row(0, named=True)["kind"] == "recipe" and table.row(0, named=True)["loss_before"] == below[
        "final_val_loss"]


def test_a_monotone_table_with_seeds_flags_nothing():
    result = _check(_table(seeds=(0, 1, 2), noise=0.003))
    assert result.reversals == () and result.n_pairs == 2 * 4 * 3
    assert result.seed_sd == pytest.approx(0.003 * 4, rel=0.5)  # 0.3% of losses near 4
    assert not result.one_seed and "seed means compared" in result.rule()
    assert monotonicity_table(result).is_empty()


def test_a_rise_within_the_seed_spread_is_noise_even_where_the_batch_doubles():
    """Three seeds spread +-3% about their mean; the point above its neighbour by 1% (well inside 2 standard
    errors of the difference, 4.9%) is noise although its batch doubled."""
    runs = _table(seeds=(0, 1, 2))
    spread = pl.col("seed").replace_strict({0: -0.03, 1: 0.0, 2: 0.03}, return_dtype=pl.Float64)
    at = pl.col("run_id").str.starts_with("N3-D2-")
    below = runs.filter(pl.col("run_id") == "N2-D2-s0")["final_val_loss"][0]
    runs = runs.with_columns(
        batch_size=pl.when(at).then(32).otherwise(pl.col("batch_size")),
        final_val_loss=pl.when(at).then(below * 1.01).otherwise(pl.col("final_val_loss")) * (1 + spread))
    result = _check(runs)
    assert len(result.reversals) == 1
    r = result.reversals[0]
    assert r.kind is Kind.NOISE and not r.beyond_noise and r.changed() == "batch_size 16 -> 32, lr 0.00205 -> 0.00195"
    assert r.smaller.run_ids == ("N2-D2-s0", "N2-D2-s1", "N2-D2-s2") and r.smaller.n_runs == 3
    assert r.relative_rise == pytest.approx(0.01)
    # the seed SD of that budget's points (all at D2), pooled
    at_budget = runs.filter(pl.col("n_tokens") == BUDGETS[2]).group_by("n_params").agg(
        pl.col("final_val_loss").var().alias("var"))
    assert r.tolerance == pytest.approx(2 * np.sqrt(at_budget["var"].mean()) * np.sqrt(2 / 3))


def test_one_seed_uses_the_stated_tolerance():
    runs = _table()
    below = runs.filter(pl.col("run_id") == "N2-D2-s0")["final_val_loss"][0]
    for rise, kind in ((0.5 * ONE_SEED_TOLERANCE, Kind.NOISE), (2 * ONE_SEED_TOLERANCE, Kind.RECIPE)):
        bumped = runs.with_columns(
            precision=pl.when(pl.col("run_id") == "N3-D2-s0").then(pl.lit("bf16")).otherwise(pl.col("precision")),
            final_val_loss=pl.when(pl.col("run_id") == "N3-D2-s0").then(below * (1 + rise))
            .otherwise(pl.col("final_val_loss")))
        (r,) = _check(bumped).reversals
        assert r.kind is kind and r.changed().endswith(", precision fp32 -> bf16")


def test_the_learning_rate_alone_is_not_a_change_of_recipe():
    """lr follows compute under any rule, so a rise beyond the noise with only lr changed is not put down
    to the recipe: with one seed it is noise, with seeds a break the table does not explain."""
    for seeds, kind in (((0,), Kind.NOISE), ((0, 1, 2), Kind.UNEXPLAINED)):
        runs = _table(seeds=seeds, noise=0.001 if len(seeds) > 1 else 0.0)
        below = runs.filter(pl.col("run_id") == "N2-D2-s0")["final_val_loss"][0]
        runs = runs.with_columns(final_val_loss=pl.when(pl.col("run_id").str.starts_with("N3-D2-"))
                                 .then(below * 1.05).otherwise(pl.col("final_val_loss")))
        (r,) = _check(runs).reversals
        assert r.kind is kind and r.changed().startswith("lr ") and not r.recipe_changed


def test_a_table_of_n_d_and_loss_alone_still_gets_the_check():
    runs = _table()
    loss = runs["final_val_loss"].to_numpy().copy()
    loss[runs["run_id"].to_list().index("N1-D3-s0")] *= 1.5  # more tokens, higher loss
    result = check_monotonicity(runs["n_params"], runs["n_tokens"], loss)
    kinds = {(r.along, r.larger.n_params, r.larger.n_tokens, r.kind) for r in result.reversals}
    assert (("n_tokens", SIZES[1], BUDGETS[3], Kind.NOISE) in kinds  # one seed, nothing known of the recipe
            and ("n_params", SIZES[1], BUDGETS[3], Kind.NOISE) in kinds)
    assert all(r.changed() == "" and r.smaller.run_ids[0].startswith("row ") for r in result.reversals)
    assert result.recipe_columns == ()


def test_runs_a_few_tokens_past_their_budget_are_one_budget():
    runs = _table().with_columns(n_tokens=pl.col("n_tokens") * (1 + 0.001 * pl.col("n_params").rank("dense")))
    result = _check(runs)
    assert len(result.points) == 16 and result.reversals == ()


def test_rises_beyond_two_standard_errors_are_rare_where_the_loss_is_flat():
    """The tolerance with seeds as a test: where two neighbours have the same true loss, a rise beyond the
    noise should be flagged about 2.5% of the time (one side of 2 standard errors), not more."""
    rng = np.random.default_rng(0)
    n, d = (a.ravel() for a in np.meshgrid(SIZES, BUDGETS))
    n, d = np.repeat(n, 3), np.repeat(d, 3)
    truth = 2.0 + 100 / d**0.3  # flat in N: every pair along N has equal true loss
    flagged = pairs = 0
    for _ in range(300):
        result = check_monotonicity(n, d, truth * (1 + rng.normal(0, 0.01, len(n))))
        flagged += sum(r.beyond_noise and r.along == "n_params" for r in result.reversals)
        pairs += 3 * len(BUDGETS)
    assert 0.01 < flagged / pairs < 0.05, flagged / pairs


def test_a_smooth_batch_step_is_not_a_change_of_recipe_but_a_jump_or_fewer_steps_along_d_is():
    """A smooth rule moves the batch a little between every pair of neighbours (16 -> 18): a rise there is not
    put down to the recipe. A doubling is; so is a larger budget that trains fewer steps."""
    def reversal(batch_after: int, along_d: bool = False):
        runs = _table()
        at = pl.col("run_id") == ("N1-D3-s0" if along_d else "N3-D2-s0")
        below_id = "N1-D2-s0" if along_d else "N2-D2-s0"
        below = runs.filter(pl.col("run_id") == below_id).row(0, named=True)
        steps = below["n_steps"] - 1 if along_d else pl.col("n_steps")
        runs = runs.with_columns(batch_size=pl.when(at).then(batch_after).otherwise(pl.col("batch_size")),
                                 n_steps=pl.when(at).then(steps).otherwise(pl.col("n_steps")),
                                 final_val_loss=pl.when(at).then(below["final_val_loss"] * 1.05)
                                 .otherwise(pl.col("final_val_loss")))
        (r,) = [r for r in _check(runs).reversals if r.along == ("n_tokens" if along_d else "n_params")
                and r.larger.run_ids == (("N1-D3-s0",) if along_d else ("N3-D2-s0",))]
        return r

    assert not reversal(18).recipe_changed and reversal(18).kind is Kind.NOISE
    assert reversal(32).recipe_changed and reversal(32).kind is Kind.RECIPE
    fewer = reversal(18, along_d=True)
    assert fewer.along == "n_tokens" and fewer.recipe_changed and fewer.kind is Kind.RECIPE


def test_the_seed_spread_is_pooled_per_budget_so_noisy_short_runs_do_not_hide_breaks_in_long_ones():
    """Short runs (the smallest budget) vary +-10% between seeds, long ones +-0.3%: a 2% rise at the largest
    budget is a break there, though the seed SD pooled over every point would call it noise."""
    runs = _table(seeds=(0, 1, 2))
    wide = pl.col("seed").replace_strict({0: -0.1, 1: 0.0, 2: 0.1}, return_dtype=pl.Float64)
    tight = pl.col("seed").replace_strict({0: -0.003, 1: 0.0, 2: 0.003}, return_dtype=pl.Float64)
    at = pl.col("run_id").str.starts_with("N3-D3-")
    below = runs.filter(pl.col("run_id") == "N2-D3-s0")["final_val_loss"][0]
    runs = runs.with_columns(final_val_loss=pl.when(at).then(below * 1.02).otherwise(pl.col("final_val_loss")) * (
        1 + pl.when(pl.col("n_tokens") == BUDGETS[0]).then(wide).otherwise(tight)))
    result = _check(runs)
    (r,) = [r for r in result.reversals if r.larger.run_ids[0].startswith("N3-D3-")]
    assert r.beyond_noise and r.kind is Kind.UNEXPLAINED
    assert 2 * result.seed_sd * np.sqrt(2 / 3) > r.rise  # what one pooled SD would have said
