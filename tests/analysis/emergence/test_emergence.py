import numpy as np
import pytest

from analysis.emergence.sigmoid import fit_sigmoid, sigmoid


def test_recovers_threshold_and_steepness():
    x = np.log(np.logspace(6, 10, 12))
    y = sigmoid(x, 0.0, 0.9, 3.0, np.log(3e8))
    fit = fit_sigmoid(x, y, floor=0.0, y_range=(0, 1))
    assert fit.n_c == pytest.approx(3e8, rel=1e-3)
    assert fit.k == pytest.approx(3.0, rel=1e-3)
    assert fit.r2 > 0.999


def test_noisy_curve_with_free_floor():
    rng = np.random.default_rng(0)
    x = np.log(np.logspace(6, 10, 20))
    y = sigmoid(x, 0.25, 0.95, 2.0, np.log(1e8)) + rng.normal(0, 0.01, 20)
    fit = fit_sigmoid(x, y, y_range=(0, 1))
    assert abs(fit.x_c - np.log(1e8)) < 0.2
    assert fit.floor == pytest.approx(0.25, abs=0.03)


def test_needs_three_points():
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_sigmoid([1.0, 2.0], [0.0, 1.0])
