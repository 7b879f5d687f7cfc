"""analysis/loss/fit.py: recovering the known law, its gradient and compute-optimal allocation, the options a
fit records, dropping invalid rows and outliers, and the data and options it refuses."""

import re

import numpy as np
import pytest
from law_truth import TRUTH, grid, law

from analysis.loss.fit import (
    InitGrid,
    compute_optimal,
    fit_loss_law,
    identifiability_problem,
    objective_and_gradient,
    robust_sd,
    used_rows,
)


def synthetic(noise: float, seed: int = 0):
    return grid(noise, seed)


def synthetic_wide(noise: float, seed: int = 0):
    """10 sizes on 6 budgets spanning D = 1e9..1e12 (60 points)."""
    return grid(noise, seed, sizes=10, d_decades=(9, 12))


def test_recovers_exact_parameters_without_noise():
    fit = fit_loss_law(*synthetic_wide(0.0))
    for name, value in TRUTH.items():
        assert getattr(fit, name) == pytest.approx(value, rel=1e-4), name
    assert fit.converged and fit.n_points == 60


def test_exponents_within_002_at_one_percent_noise():
    fit = fit_loss_law(*synthetic_wide(0.01, seed=1))
    assert abs(fit.alpha - TRUTH["alpha"]) < 0.02
    assert abs(fit.beta - TRUTH["beta"]) < 0.02
    assert fit.E == pytest.approx(TRUTH["E"], rel=0.05)


def test_analytic_gradient_matches_finite_differences():
    n, d, loss = synthetic_wide(0.01)
    args = (np.log(n), np.log(d), np.log(loss), 1e-3)
    theta = np.array([6.0, 6.0, 0.5, 0.3, 0.3])
    _, grad = objective_and_gradient(theta, *args)
    eps = 1e-6
    numeric = [(objective_and_gradient(theta + eps * e, *args)[0] - objective_and_gradient(theta - eps * e, *args)[0])
               / (2 * eps) for e in np.eye(5)]
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_compute_optimal_allocation_minimises_loss_at_fixed_compute():
    fit = fit_loss_law(*synthetic_wide(0.0))
    c = 1e21
    n_opt, d_opt = compute_optimal(fit, c)
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-9)
    for factor in (0.5, 0.8, 1.25, 2.0):
        n = n_opt * factor
        assert fit.predict(n, c / (6 * n)) > fit.predict(n_opt, d_opt)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 5 valid points"):
        fit_loss_law([1e6, 1e7], [1e9, 1e9], [3.0, 2.5])


def test_fit_records_its_options():
    fit = fit_loss_law(*synthetic(0.0), huber_delta=1e-3, n_best_starts=4, n_column="n_nonembed_params")
    options = fit.options()
    assert options["huber_delta"] == 1e-3 and options["n_best_starts"] == 4
    assert options["n_column"] == "n_nonembed_params" and options["outlier_sd"] is None
    assert options["init_grid"]["alpha"] == list(InitGrid().alpha)
    assert fit.dropped_outliers == () and fit.n_invalid == 0 and fit.converged


def test_invalid_rows_are_dropped_and_counted():
    n, d, loss = synthetic(0.0)
    n, d, loss = n.copy(), d.copy(), loss.copy()
    n[0], d[1], loss[2], loss[3] = np.nan, np.inf, 0.0, -1.0
    fit = fit_loss_law(n, d, loss)
    assert fit.n_invalid == 4 and fit.n_points == len(n) - 4
    assert fit.alpha == pytest.approx(TRUTH["alpha"], rel=1e-3)


def test_fewer_than_five_valid_points_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 5 valid points"):
        fit_loss_law([1e6, 1e7, 1e8, 1e9, np.nan, 1e10], [1e9] * 6, [3.0, 2.5, 2.2, 2.1, 2.0, -1])


def test_ties_are_fine():
    n, d, loss = synthetic(0.01, seed=3)
    fit = fit_loss_law(np.concatenate([n, n[:10]]), np.concatenate([d, d[:10]]), np.concatenate([loss, loss[:10]]))
    assert fit.converged and abs(fit.alpha - TRUTH["alpha"]) < 0.03


def test_outliers_are_dropped_only_when_asked_and_recorded():
    n, d, loss = synthetic(0.005, seed=2)
    loss = loss.copy()
    loss[[5, 30]] *= (1.5, 0.6)  # two broken runs
    kept = fit_loss_law(n, d, loss)
    assert kept.dropped_outliers == () and kept.n_points == len(n)
    dropped = fit_loss_law(n, d, loss, outlier_sd=5.0)
    assert dropped.dropped_outliers == (5, 30) and dropped.n_points == len(n) - 2 and dropped.outlier_sd == 5.0
    assert abs(dropped.alpha - TRUTH["alpha"]) < 0.02 and abs(dropped.beta - TRUTH["beta"]) < 0.02
    mask = used_rows(dropped, n, d, loss)
    assert not mask[5] and not mask[30] and mask.sum() == len(n) - 2


def test_clean_data_loses_nothing_to_a_conservative_outlier_threshold():
    fit = fit_loss_law(*synthetic(0.01, seed=4), outlier_sd=5.0)
    assert fit.dropped_outliers == ()


def test_robust_sd_is_the_sd_for_normal_data_and_ignores_a_few_outliers():
    x = np.random.default_rng(0).normal(0, 2.0, 20000)
    assert robust_sd(x) == pytest.approx(2.0, rel=0.03)
    x[:100] = 1e6
    assert robust_sd(x) == pytest.approx(2.0, rel=0.05)


GRID_N, GRID_D = np.repeat(np.logspace(7, 10, 4), 3), np.tile(np.logspace(8, 11, 3), 4)


@pytest.mark.parametrize("n, d, message", [
    (np.full(10, 1e9), np.logspace(9, 11, 10), "1 distinct N and 10 distinct D"),  # review4 oneN.csv
    (np.logspace(7, 10, 10), np.full(10, 1e10), "10 distinct N and 1 distinct D"),  # oneD.csv
    (np.full(10, 1e9), np.full(10, 1e10), "1 distinct N and 1 distinct D"),  # dupes.csv: identical rows
    (np.logspace(8, 9, 8), 10 * np.logspace(8, 9, 8), "collinear"),  # D = 10 N (five.csv, 8 rows)
    (np.logspace(8, 9, 8), 6e19 / (6 * np.logspace(8, 9, 8)), "collinear"),  # one isoFLOP budget: N D = const
    (np.array([1e8, 1e8, 1e9, 1e9, 1e10] * 2), np.array([1e9, 1e10, 1e9, 1e10, 1e11] * 2), "5 distinct (N, D)"),
])
def test_data_that_cannot_identify_the_law_is_rejected(n, d, message):
    assert message in identifiability_problem(n, d)
    loss = law(n, d)
    with pytest.raises(ValueError, match="cannot identify the loss law"):
        fit_loss_law(n, d, loss)


def test_identifiable_grids_pass():
    assert identifiability_problem(GRID_N, GRID_D) is None
    assert identifiability_problem(*synthetic(0.0)[:2]) is None
    # near-collinear but not quite: D = 20 N with a spread of tokens per parameter
    n = np.logspace(7, 10, 12)
    assert identifiability_problem(n, 20 * n * np.tile([0.25, 1.0, 4.0], 4)) is None
    # invalid rows are ignored, not counted as distinct points
    assert identifiability_problem(np.append(GRID_N, [np.nan, -1.0]), np.append(GRID_D, [1e9, 1e9])) is None


def test_outliers_are_not_dropped_when_the_rest_could_not_identify_the_law():
    n, d = np.array([1e8, 1e8, 1e9, 1e9, 1e10, 1e10]), np.array([1e9, 1e10, 1e9, 1e10, 1e10, 1e11])
    loss = law(n, d)
    loss[0] *= 1.5
    assert fit_loss_law(n, d, loss, outlier_sd=1.0).dropped_outliers == ()


@pytest.mark.parametrize("options, message", [
    ({"n_best_starts": 0}, "n_best_starts must be an integer >= 1, got 0"),
    ({"n_best_starts": 2.5}, "n_best_starts must be an integer >= 1"),
    ({"huber_delta": 0.0}, "huber_delta must be a finite number > 0, got 0.0"),
    ({"huber_delta": -1.0}, "huber_delta must be a finite number > 0, got -1.0"),
    ({"huber_delta": float("nan")}, "huber_delta must be a finite number > 0"),
    ({"outlier_sd": -2.0}, "outlier_sd must be a finite number > 0"),
    ({"weights": np.ones(3)}, "weights must be 48 finite numbers >= 0"),
    ({"init_grid": InitGrid(alpha=())}, "init_grid is empty"),
])
def test_bad_options_are_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_loss_law(*synthetic(0.0), **options)


def test_every_bad_option_is_named_at_once():
    with pytest.raises(ValueError, match="huber_delta must be .*; n_best_starts must be"):
        fit_loss_law(*synthetic(0.0), huber_delta=0.0, n_best_starts=-1)
