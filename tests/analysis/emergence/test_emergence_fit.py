"""Sigmoid and smooth-model fits recover known truth (analysis/emergence.py, analysis/smooth_models.py)."""

import numpy as np
import pytest

from analysis.emergence.sigmoid import LN81, fit_sigmoid, refit_sigmoid, sigmoid
from analysis.emergence.smooth import fit_linear, fit_power

X = np.log(np.logspace(6, 10, 12))


@pytest.mark.parametrize("k, n_c", [(1.5, 1e8), (3.0, 3e8), (6.0, 1e9)])
def test_noisy_sigmoid_recovers_threshold_and_steepness(k, n_c):
    rng = np.random.default_rng(int(k * 10))
    y = sigmoid(X, 0.0, 0.9, k, np.log(n_c)) + rng.normal(0, 0.01, len(X))
    fit = fit_sigmoid(X, y, floor=0.0, y_range=(0, 1))
    assert abs(fit.x_c - np.log(n_c)) < 0.1
    assert fit.k == pytest.approx(k, rel=0.2)
    assert fit.ceil == pytest.approx(0.9, abs=0.02)
    assert fit.width == pytest.approx(LN81 / fit.k)
    assert fit.converged and fit.r2 > 0.99


def test_free_floor_and_falling_curve():
    y = sigmoid(X, 0.8, 0.1, 2.0, np.log(1e8))  # a falling curve: ceil below floor
    fit = fit_sigmoid(X, y, y_range=(0, 1))
    assert (fit.floor, fit.ceil) == (pytest.approx(0.8, abs=1e-3), pytest.approx(0.1, abs=1e-3))
    assert fit.n_free == 4


def test_bootstrap_refits_match_single_fits_and_cover_the_truth():
    rng = np.random.default_rng(0)
    truth = sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))
    y = truth + rng.normal(0, 0.02, len(X))
    fit = fit_sigmoid(X, y, floor=0.0, y_range=(0, 1))
    reps = np.clip(fit.predict(X)[None, :] + rng.normal(0, 0.02, (200, len(X))), 0, 1)
    params = refit_sigmoid(X, reps, fit, y_range=(0, 1))
    assert np.all(np.isfinite(params))
    for i in range(3):  # the batched Levenberg-Marquardt agrees with scipy on single replicates
        single = fit_sigmoid(X, reps[i], floor=0.0, y_range=(0, 1))
        assert params[i, 3] == pytest.approx(single.x_c, abs=1e-3)
        assert params[i, 2] == pytest.approx(single.k, rel=1e-2)
    lo, hi = np.percentile(params[:, 3], [2.5, 97.5])
    assert lo < np.log(3e8) < hi
    assert hi - lo < 0.5


def test_power_law_and_line_recover_their_parameters():
    y = 0.95 - 0.6 * np.exp(-0.5 * (X - X.max()))
    fit = fit_power(X, y)
    assert fit.params["ceil"] == pytest.approx(0.95, abs=1e-4)
    assert fit.params["gamma"] == pytest.approx(0.5, rel=1e-3)
    assert fit.r2 > 0.9999
    line = fit_linear(X, 0.1 + 0.05 * X)
    assert line.params["b"] == pytest.approx(0.05) and line.sse < 1e-20


def test_power_law_ceiling_respects_the_range():
    y = np.minimum(1.0, 1.1 - 0.9 * np.exp(-0.4 * (X - X.min())))
    fit = fit_power(X, y, y_range=(0, 1))
    assert fit.params["ceil"] <= 1.0 + 1e-12
