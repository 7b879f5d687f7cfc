import numpy as np
import pytest
from law_truth import TRUTH, grid

from analysis.loss.fit import compute_optimal, fit_loss_law, objective_and_gradient


def synthetic(noise: float, seed: int = 0):
    return grid(noise, seed, sizes=10, d_decades=(9, 12))


def test_recovers_exact_parameters_without_noise():
    fit = fit_loss_law(*synthetic(0.0))
    for name, value in TRUTH.items():
        assert getattr(fit, name) == pytest.approx(value, rel=1e-4), name
    assert fit.converged and fit.n_points == 60


def test_exponents_within_002_at_one_percent_noise():
    fit = fit_loss_law(*synthetic(0.01, seed=1))
    assert abs(fit.alpha - TRUTH["alpha"]) < 0.02
    assert abs(fit.beta - TRUTH["beta"]) < 0.02
    assert fit.E == pytest.approx(TRUTH["E"], rel=0.05)


def test_analytic_gradient_matches_finite_differences():
    n, d, loss = synthetic(0.01)
    args = (np.log(n), np.log(d), np.log(loss), 1e-3)
    theta = np.array([6.0, 6.0, 0.5, 0.3, 0.3])
    _, grad = objective_and_gradient(theta, *args)
    eps = 1e-6
    numeric = [(objective_and_gradient(theta + eps * e, *args)[0] - objective_and_gradient(theta - eps * e, *args)[0])
               / (2 * eps) for e in np.eye(5)]
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_compute_optimal_allocation_minimises_loss_at_fixed_compute():
    fit = fit_loss_law(*synthetic(0.0))
    c = 1e21
    n_opt, d_opt = compute_optimal(fit, c)
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-9)
    for factor in (0.5, 0.8, 1.25, 2.0):
        n = n_opt * factor
        assert fit.predict(n, c / (6 * n)) > fit.predict(n_opt, d_opt)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 5 valid points"):
        fit_loss_law([1e6, 1e7], [1e9, 1e9], [3.0, 2.5])
