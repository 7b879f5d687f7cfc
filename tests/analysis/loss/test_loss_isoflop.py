"""analysis/loss/isoflop.py: grouping by compute, parabola minima, exponents and their intervals."""

import re

import numpy as np
import pytest
from law_truth import A_TRUE, G, isoflop_grid, law

from analysis.loss.frontier import compute_frontier
from analysis.loss.isoflop import compare_exponents, fit_isoflop, group_by_compute


def test_grouping_joins_budgets_within_tolerance_only():
    labels = group_by_compute([1e20, 1.03e20, 0.99e20, 1.2e20, 1e21, 1.04e21])
    assert labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert group_by_compute([1e20, 1.1e20], rel_tol=0.05).tolist() == [0, 1]
    assert group_by_compute([1e20, 1.1e20], rel_tol=0.15).tolist() == [0, 0]


def test_recovers_the_exponents_of_the_law_without_noise():
    fit = fit_isoflop(*isoflop_grid())
    assert fit.a == pytest.approx(A_TRUE, abs=1e-3) and fit.b == pytest.approx(1 - A_TRUE, abs=1e-3)
    assert len(fit.minima) == 5 and all(m.inside and m.used for m in fit.minima)
    for m in fit.minima:
        assert m.d_opt == pytest.approx(m.flops / (6 * m.n_opt))
        assert m.n_opt == pytest.approx(G * (m.flops / 6) ** A_TRUE, rel=0.03)  # the parabola's own bias
        assert m.loss_min == pytest.approx(law(m.n_opt, m.d_opt), rel=2e-3)


def test_noisy_exponents_fall_inside_their_interval():
    fit = fit_isoflop(*isoflop_grid(noise=0.003, seed=1, jitter=0.02), n_resamples=1000)
    assert fit.ci_method == "residual bootstrap" and fit.converged_fraction > 0.95
    assert fit.a_ci[0] <= A_TRUE <= fit.a_ci[1]
    assert fit.b_ci[0] <= 1 - A_TRUE <= fit.b_ci[1]
    assert fit.b_ci == pytest.approx((1 - fit.a_ci[1], 1 - fit.a_ci[0]))
    assert abs(fit.a - A_TRUE) < 0.03


def test_interval_covers_the_truth_in_most_repeats():
    hits = sum(_covers(seed) for seed in range(20))
    assert hits >= 15, hits


def _covers(seed):
    fit = fit_isoflop(*isoflop_grid(noise=0.005, seed=seed), n_resamples=400, level=0.90, seed=seed)
    return fit.a_ci[0] <= A_TRUE <= fit.a_ci[1]


def test_budgets_with_too_few_sizes_are_skipped_with_the_reason():
    n, d, loss = isoflop_grid(budgets=np.logspace(18, 21, 4))
    extra_n = np.array([1e8, 2e8])  # a budget of 1e23 with two sizes
    n, d = np.append(n, extra_n), np.append(d, 1e23 / (6 * extra_n))
    loss = np.append(loss, law(extra_n, 1e23 / (6 * extra_n)))
    n[0] = np.nan
    fit = fit_isoflop(n, d, loss)
    assert len(fit.skipped) == 1 and "2 distinct model sizes" in fit.skipped[0].reason
    assert fit.skipped[0].flops == pytest.approx(1e23)
    assert fit.n_invalid == 1 and len(fit.minima) == 4


def test_minimum_outside_the_sampled_range_is_flagged_and_left_out():
    n, d, loss = isoflop_grid(budgets=np.logspace(18, 21, 4))
    c = 1e22  # sizes all well below the optimum: the vertex lies beyond the largest
    sizes = G * (c / 6) ** A_TRUE * np.logspace(-1.6, -0.6, 5)
    n, d = np.append(n, sizes), np.append(d, c / (6 * sizes))
    loss = np.append(loss, law(sizes, c / (6 * sizes)))
    fit = fit_isoflop(n, d, loss)
    edge = [m for m in fit.minima if not m.inside]
    assert len(edge) == 1 and edge[0].flops == pytest.approx(c) and not edge[0].used
    assert fit.a == pytest.approx(A_TRUE, abs=2e-3)
    assert fit_isoflop(n, d, loss, use_edge_minima=True).minima[-1].used


def test_flops_column_is_used_instead_of_6nd():
    n, d, loss = isoflop_grid()
    fit = fit_isoflop(n, d, loss, flops=8 * n * d)  # another FLOP count: budgets 8/6 larger
    base = fit_isoflop(n, d, loss)
    assert fit.minima[0].flops == pytest.approx(base.minima[0].flops * 8 / 6)
    assert fit.a == pytest.approx(base.a)


def test_three_sizes_per_budget_falls_back_to_the_regression_interval():
    fit = fit_isoflop(*isoflop_grid(sizes=3, span=0.4, noise=0.002, seed=2))
    assert fit.ci_method == "regression t interval" and fit.a_se is not None
    assert fit.a_ci[0] < fit.a < fit.a_ci[1]


def test_too_few_budgets_is_a_clear_error():
    n, d, loss = isoflop_grid(budgets=[1e20])
    with pytest.raises(ValueError, match="2 or more compute budgets"):
        fit_isoflop(n, d, loss)


def test_agreement_with_the_loss_law():
    from analysis.loss.fit import LossLawFit

    law_fit = LossLawFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, objective=0.0, n_points=0, converged=True,
                         huber_delta=1e-3, n_starts=0)
    iso = fit_isoflop(*isoflop_grid(noise=0.003, seed=1))
    agreement = compare_exponents(iso, compute_frontier(law_fit, [1e20]))
    assert agreement.a_difference == pytest.approx(iso.a - A_TRUE)
    assert agreement.a_cis_overlap is None  # the exact law has no interval
    assert "isoFLOP" in agreement.statement()


@pytest.mark.parametrize("options, message", [
    ({"rel_tol": -0.1}, "rel_tol must be a finite number >= 0, got -0.1"),
    ({"min_sizes": 2}, "a parabola needs at least 3 distinct sizes"),
    ({"min_sizes": 0}, "min_sizes must be an integer >= 1, got 0"),
    ({"level": 0.0}, "level must be a number strictly between 0 and 1"),
    ({"n_resamples": -5}, "n_resamples must be an integer >= 0, got -5"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"flops_per_param_token": -6.0}, "flops_per_param_token must be a finite number > 0"),
])
def test_bad_options_are_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_isoflop(*isoflop_grid(), **options)
