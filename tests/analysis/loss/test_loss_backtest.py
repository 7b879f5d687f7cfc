"""analysis/backtest.py: extrapolation error is small on the law and large when the data bend away."""

import numpy as np
import pytest
from law_truth import law

from analysis.loss.backtest import backtest_loss_law, choose_holdout_sizes


def runs(noise=0.005, seed=0, bend=0.0):
    n = np.repeat(np.logspace(7, 10, 7), 5)
    d = np.tile(np.logspace(8, 11, 5), 7)
    loss = law(n, d)
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
    with pytest.raises(ValueError, match="leaves 4 runs to fit, which cannot identify the law"):
        backtest_loss_law(*(x[rows] for x in runs()))
    with pytest.raises(ValueError, match="n_holdout_sizes must be an integer >= 1, got 0"):
        backtest_loss_law(*runs(), n_holdout_sizes=0)


@pytest.mark.parametrize("options, message", [
    ({"min_holdout_fraction": 0.0}, "min_holdout_fraction must be a number strictly between 0 and 1"),
    ({"min_holdout_runs": 0}, "min_holdout_runs must be an integer >= 1"),
    ({"trust_factor": -1.0}, "trust_factor must be a finite number >= 0"),
    ({"huber_delta": 0.0}, "huber_delta must be a finite number > 0"),
])
def test_bad_options_are_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        backtest_loss_law(*runs(), **options)


def isoflop_runs(noise=0.005, seed=0):
    """Every run has its own N (isoFLOP curves, as in published tables): 6 budgets x 8 sizes."""
    rng = np.random.default_rng(seed)
    n, d = [], []
    for c in np.logspace(18, 21, 6):
        n_star = 0.1 * np.sqrt(c / 6)
        for size in n_star * np.logspace(-0.7, 0.7, 8) * rng.uniform(0.97, 1.03, 8):
            n.append(size)
            d.append(c / (6 * size))
    n, d = np.array(n), np.array(d)
    loss = law(n, d)
    return n, d, loss * np.exp(rng.normal(0, noise, len(n)))


def test_distinct_n_per_run_holds_out_a_share_of_the_runs_not_one_run():
    n, d, loss = isoflop_runs()
    assert len(np.unique(n)) == len(n) == 48
    bt = backtest_loss_law(n, d, loss)  # the default rule; the old default held out 1 run 1.0x beyond
    assert len(bt.points) == 8 == bt.n_holdout_sizes  # ceil(15% of 48) = 8 runs, each its own size
    assert set(bt.held_out_sizes) == set(np.sort(n)[-8:])
    assert min(bt.held_out_sizes) > bt.largest_fitted_size == np.sort(n)[-9]
    assert bt.fit.n_points == 40
    assert "15% of the 48 runs" in bt.rule and "8 sizes, 8 runs" in bt.rule
    assert bt.rule in bt.statement and bt.as_dict()["rule"] == bt.rule and bt.as_dict()["n_holdout_runs"] == 8
    assert f"{max(bt.held_out_sizes) / bt.largest_fitted_size:.2f}x" in bt.statement
    wider = backtest_loss_law(n, d, loss, min_holdout_fraction=0.3)
    assert len(wider.points) == 15


def test_default_rule_on_a_grid_takes_whole_sizes():
    bt = backtest_loss_law(*runs())  # 7 sizes x 5 runs: 15% of 35 is 5.25 runs -> the top 2 sizes (10 runs)
    assert bt.held_out_sizes == tuple(np.logspace(7, 10, 7)[-2:]) and len(bt.points) == 10
    assert backtest_loss_law(*runs(), min_holdout_fraction=0.1).n_holdout_sizes == 1  # 3.5 runs -> 1 size
    assert backtest_loss_law(*runs(), min_holdout_fraction=0.1, min_holdout_runs=6).n_holdout_sizes == 2


def test_explicit_holdout_sizes_are_kept_and_recorded():
    bt = backtest_loss_law(*isoflop_runs(), n_holdout_sizes=3)
    assert len(bt.points) == 3 and bt.rule == "the 3 largest model sizes (n_holdout_sizes=3)"


def test_choose_holdout_sizes_alone():
    sizes, rule = choose_holdout_sizes([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], min_holdout_fraction=0.25)
    assert sizes.tolist() == [8.0, 9.0, 10.0] and "3 sizes, 3 runs" in rule
    with pytest.raises(ValueError, match="at least 2 must remain"):
        choose_holdout_sizes([1.0, 2.0, 3.0, 3.0, 3.0], min_holdout_runs=4)


def test_fit_options_reach_the_fit():
    bt = backtest_loss_law(*runs(), n_holdout_sizes=1, n_column="n_nonembed_params", huber_delta=1e-2)
    assert bt.fit.n_column == "n_nonembed_params" and bt.fit.huber_delta == 1e-2
    assert bt.as_dict()["fit"]["n_points"] == 30
