"""analysis/backtest.py: extrapolation error is small on the law and large when the data bend away."""

import numpy as np
import pytest

from analysis.backtest import backtest_loss_law

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def runs(noise=0.005, seed=0, bend=0.0):
    n = np.repeat(np.logspace(7, 10, 7), 5)
    d = np.tile(np.logspace(8, 11, 5), 7)
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    # bend: beyond N = 1e9 the larger models gain less than the law says (a loss floor they hit early)
    loss = loss + bend * np.log10(np.maximum(n / 1e9, 1.0))
    return n, d, loss * np.exp(np.random.default_rng(seed).normal(0, noise, len(n)))


def test_small_error_on_data_from_the_law():
    bt = backtest_loss_law(*runs(), n_holdout_sizes=1)
    assert bt.held_out_sizes == (1e10,) and len(bt.points) == 5
    assert bt.largest_fitted_size == pytest.approx(10 ** (7 + 3 * 5 / 6))
    assert bt.mean_abs_rel_error < 0.01 and bt.trusted
    assert "trust it" in bt.statement
    for p in bt.points:
        assert p.relative_error == pytest.approx(p.predicted / p.loss - 1)
    assert bt.mean_abs_rel_error == pytest.approx(np.mean([abs(p.relative_error) for p in bt.points]))


def test_large_error_when_the_data_bend_away():
    bt = backtest_loss_law(*runs(bend=0.3), n_holdout_sizes=2)
    assert len(bt.held_out_sizes) == 2 and len(bt.points) == 10
    assert bt.mean_abs_rel_error > 0.03 and not bt.trusted
    assert all(p.relative_error < 0 for p in bt.points)  # the law promises lower loss than the runs reached
    assert "do not trust" in bt.statement


def test_holdout_must_leave_something_to_fit():
    with pytest.raises(ValueError, match="hold out 6 of 7 model sizes: at least 2 must remain"):
        backtest_loss_law(*runs(), n_holdout_sizes=6)
    rows = [0, 1, 5, 6, 10, 11]  # three sizes, two runs each
    with pytest.raises(ValueError, match="leaves 4 runs to fit; need 5"):
        backtest_loss_law(*(x[rows] for x in runs()))
    with pytest.raises(ValueError, match="at least 1"):
        backtest_loss_law(*runs(), n_holdout_sizes=0)


def test_fit_options_reach_the_fit():
    bt = backtest_loss_law(*runs(), n_holdout_sizes=1, n_column="n_nonembed_params", huber_delta=1e-2)
    assert bt.fit.n_column == "n_nonembed_params" and bt.fit.huber_delta == 1e-2
    assert bt.as_dict()["fit"]["n_points"] == 30
