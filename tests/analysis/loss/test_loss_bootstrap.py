"""analysis/loss/bootstrap.py: intervals that contain the truth, cover it at their level, and are reproducible."""

import re

import numpy as np
import pytest
from law_truth import A_TRUE, TRUTH, grid

from analysis.interval import percentile_interval
from analysis.loss.allocation import budget_key
from analysis.loss.bootstrap import bootstrap_loss_law
from analysis.loss.fit import fit_loss_law


def synthetic(noise: float, seed: int = 0, sizes: int = 8, budgets: int = 6):
    """A grid of N in 1e7..1e10 and D in 1e8..1e11 with multiplicative noise."""
    return grid(noise, seed, sizes, budgets)


def test_recovers_the_law_within_its_intervals_at_one_percent_noise():
    n, d, loss = synthetic(0.01, seed=1, sizes=10, budgets=8)
    fit = fit_loss_law(n, d, loss)
    boot = bootstrap_loss_law(n, d, loss, fit, n_resamples=300, level=0.90, seed=0, flops_budgets=[1e21],
                              n_workers=1)
    assert abs(fit.alpha - TRUTH["alpha"]) < 0.02 and abs(fit.beta - TRUTH["beta"]) < 0.02
    for name, value in TRUTH.items():
        lo, hi = boot.ci[name]
        assert lo <= value <= hi, (name, lo, value, hi)
        assert lo <= getattr(fit, name) <= hi
    assert boot.ci["a"][0] <= A_TRUE <= boot.ci["a"][1]
    assert boot.converged_fraction >= 0.95 and boot.n_resamples == 300 and boot.level == 0.90


def test_intervals_cover_derived_quantities_at_every_budget():
    n, d, loss = synthetic(0.01, seed=2)
    fit = fit_loss_law(n, d, loss)
    budgets = [1e19, 1e21, 1e23]
    boot = bootstrap_loss_law(n, d, loss, fit, n_resamples=100, flops_budgets=budgets, n_workers=1)
    for c in budgets:
        for quantity in ("n_opt", "d_opt", "tokens_per_param"):
            lo, hi = boot.ci[budget_key(quantity, c)]
            assert 0 < lo < hi
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        assert name in boot.ci
    a_lo, a_hi = boot.ci["a"]
    b_lo, b_hi = boot.ci["b"]
    assert a_lo + b_hi == pytest.approx(1.0) and a_hi + b_lo == pytest.approx(1.0)  # b = 1 - a per resample


def test_ninety_percent_intervals_cover_the_truth_in_most_repeats():
    repeats, hits = 16, {"E": 0, "alpha": 0, "beta": 0, "a": 0}
    for r in range(repeats):
        n, d, loss = synthetic(0.01, seed=100 + r)
        boot = bootstrap_loss_law(n, d, loss, fit_loss_law(n, d, loss, n_best_starts=4), n_resamples=80,
                                  level=0.90, seed=r, n_workers=1)
        truth = {**TRUTH, "a": A_TRUE}
        for name in hits:
            hits[name] += boot.ci[name][0] <= truth[name] <= boot.ci[name][1]
    assert all(h / repeats >= 0.70 for h in hits.values()), hits


@pytest.mark.slow
def test_coverage_is_near_the_nominal_level_over_many_repeats():
    repeats, hits = 60, {"E": 0, "alpha": 0, "beta": 0, "a": 0}
    for r in range(repeats):
        n, d, loss = synthetic(0.01, seed=1000 + r)
        boot = bootstrap_loss_law(n, d, loss, n_resamples=1000, level=0.90, seed=r)
        truth = {**TRUTH, "a": A_TRUE}
        for name in hits:
            hits[name] += boot.ci[name][0] <= truth[name] <= boot.ci[name][1]
    assert all(0.78 <= h / repeats for h in hits.values()), hits


def test_same_seed_same_intervals_whatever_the_number_of_processes():
    n, d, loss = synthetic(0.01, seed=3)
    fit = fit_loss_law(n, d, loss)
    one = bootstrap_loss_law(n, d, loss, fit, n_resamples=40, seed=7, n_workers=1)
    two = bootstrap_loss_law(n, d, loss, fit, n_resamples=40, seed=7, n_workers=2)
    assert np.array_equal(one.samples, two.samples, equal_nan=True) and one.ci == two.ci
    other = bootstrap_loss_law(n, d, loss, fit, n_resamples=40, seed=8, n_workers=1)
    assert not np.array_equal(one.samples, other.samples)


def test_resamples_only_the_points_the_fit_used():
    n, d, loss = synthetic(0.005, seed=4)
    loss = loss.copy()
    loss[[3, 17]] *= (1.6, 0.5)
    n_bad = np.append(n, np.nan)
    d_bad, loss_bad = np.append(d, 1e9), np.append(loss, 2.0)
    fit = fit_loss_law(n_bad, d_bad, loss_bad, outlier_sd=5.0)
    assert fit.dropped_outliers == (3, 17) and fit.n_invalid == 1
    boot = bootstrap_loss_law(n_bad, d_bad, loss_bad, fit, n_resamples=30, n_workers=1)
    assert boot.n_points == len(n) - 2
    assert boot.ci["alpha"][0] < TRUTH["alpha"] < boot.ci["alpha"][1]


def test_percentile_interval_edges():
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert all(np.isnan(percentile_interval([1.0, 2.0], 0.9)))  # too few resamples: no interval
    with pytest.raises(ValueError, match="level"):
        bootstrap_loss_law(*synthetic(0.0), level=90)


@pytest.mark.parametrize("options, message", [
    ({"n_resamples": 0}, "n_resamples must be an integer >= 1, got 0"),
    ({"level": 1.0}, "level must be a number strictly between 0 and 1"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"n_workers": 0}, "n_workers must be an integer >= 1, got 0"),
    ({"chunks_per_worker": 0}, "chunks_per_worker must be an integer >= 1"),
    ({"flops_per_param_token": 0.0}, "flops_per_param_token must be a finite number > 0"),
    ({"flops_budgets": [1e20, -1.0]}, "flops_budgets must be finite numbers > 0"),
])
def test_bad_options_are_a_value_error_before_any_work(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_loss_law(*synthetic(0.0), fit=None, **options)
