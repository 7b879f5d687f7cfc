"""The loss orchestrator (analysis/loss/run.py) and what the report may headline from it.

The wrong claims each test rules out: a fit at an optimiser bound (E's interval starting at 2.06e-09 =
exp(-20)) yet "At a glance" leading with N* ∝ C^0.648; a backtest saying "the data bend away from the law"
of held-out errors of mixed sign; LossOptions(n_resamples=0) still running 1,000 isoFLOP resamples.
"""

import numpy as np
import pytest
from law_truth import isoflop_grid, law

from analysis.loss.backtest import backtest_loss_law
from analysis.loss.run import LossOptions, run_loss_analysis
from analysis.report.sections import glance_section

GRID_N, GRID_D = (a.ravel() for a in np.meshgrid(np.geomspace(1e5, 1e7, 5), np.geomspace(1e7, 1e9, 4)))


def test_a_fit_at_an_optimiser_bound_is_flagged_and_not_headlined():
    """Losses that want E < 0 (here 0.05 below a pure power law): L-BFGS-B stops at log E = -20."""
    rng = np.random.default_rng(0)
    loss = (400 / GRID_N**0.35 + 900 / GRID_D**0.3 - 0.05) * np.exp(rng.normal(0, 0.002, GRID_N.size))
    result = run_loss_analysis(GRID_N, GRID_D, loss, options=LossOptions(n_resamples=50, n_workers=1,
                                                                         parts=("loss_law",)))
    assert result.fit.E == pytest.approx(np.exp(-20))
    assert result.fit.at_bound() == ("E = 2.06e-09 = exp(-20), the lower bound of log E",)
    assert any("the lower bound of log E" in c for c in result.caveats())
    glance = glance_section(result, None).text
    assert "not headlined" in glance and "exp(-20)" in glance
    assert "N* ∝" not in glance and "alpha =" not in glance


def test_an_interval_spanning_decades_is_flagged_and_not_headlined():
    """A pure power law (E = 0) with noise: E itself is not at the bound, its interval runs down to it."""
    rng = np.random.default_rng(0)
    loss = (400 / GRID_N**0.35 + 900 / GRID_D**0.3) * np.exp(rng.normal(0, 0.002, GRID_N.size))
    result = run_loss_analysis(GRID_N, GRID_D, loss, options=LossOptions(n_resamples=100, n_workers=1,
                                                                         parts=("loss_law",)))
    assert result.fit.at_bound() == ()
    wide = [c for c in result.caveats() if c.startswith("E's 90% interval spans")]
    assert wide and "decades" in wide[0]
    assert "N* ∝" not in glance_section(result, None).text


def test_a_well_determined_fit_is_headlined():
    rng = np.random.default_rng(1)
    n, d, _ = isoflop_grid(budgets=np.logspace(18, 21, 4), sizes=7)
    result = run_loss_analysis(n, d, law(n, d) * np.exp(rng.normal(0, 0.003, len(n))),
                               options=LossOptions(n_resamples=100, n_workers=1, parts=("loss_law",)))
    assert result.caveats() == []
    glance = glance_section(result, None).text
    assert "N* ∝ C^" in glance and "90% intervals" in glance


def _grid(perturb):
    """Runs of a known law over 6 sizes x 4 budgets; `perturb(rel)` sets the largest size's relative errors."""
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e9, 6), np.geomspace(1e9, 1e11, 4)))
    loss = law(n, d) * np.exp(np.random.default_rng(2).normal(0, 0.001, n.size))
    top = n == n.max()
    loss[top] *= 1 + perturb(top.sum())
    return n, d, loss


def test_held_out_errors_of_mixed_sign_are_not_called_a_bend():
    n, d, loss = _grid(lambda k: 0.06 * (-1.0) ** np.arange(k))
    bt = backtest_loss_law(n, d, loss, n_holdout_sizes=1)
    assert not bt.trusted
    assert "bend away" not in bt.statement and "mixed sign" in bt.statement, bt.statement


def test_held_out_errors_of_one_sign_are_a_bend():
    n, d, loss = _grid(lambda k: np.full(k, 0.06))
    bt = backtest_loss_law(n, d, loss, n_holdout_sizes=1)
    assert not bt.trusted and "under-predicts every held-out run" in bt.statement and "bend" in bt.statement


def test_no_resamples_means_none_anywhere():
    n, d, loss = _grid(lambda k: np.zeros(k))
    result = run_loss_analysis(n, d, loss, options=LossOptions(n_resamples=0, parts=("loss_law", "isoflop")))
    assert result.bootstrap is None and result.frontier.a_ci is None
    assert result.isoflop is None or result.isoflop.ci_method != "residual bootstrap"


def test_every_option_is_checked_up_front():
    with pytest.raises(ValueError, match="n_resamples must be an integer >= 0"):
        LossOptions(n_resamples=-1)
    with pytest.raises(ValueError, match="unknown parts"):
        LossOptions(parts=("loss_law", "isoflops"))


def test_two_budgets_fix_b_and_beta_exactly_and_that_is_said():
    """Two token budgets: B/D^beta passes through them exactly; the bootstrap cannot move beta, and an
    interval of no width ([1.05, 1.05]) was headlined as if beta were known to three digits."""
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(3e3, 3e6, 8), [5e5, 2e6]))
    rng = np.random.default_rng(0)
    d = d * (1 + rng.uniform(0, 0.005, d.size))  # runs train a few tokens past their budget: 16 distinct D
    loss = law(n, d) * np.exp(rng.normal(0, 0.003, n.size))
    result = run_loss_analysis(n, d, loss, options=LossOptions(n_resamples=50, n_workers=1, parts=("loss_law",)))
    caveats = "; ".join(result.caveats())
    assert result.n_budgets == 2 and result.n_sizes == 8
    assert "2 distinct token budgets: E, B and beta pass through them exactly" in caveats
    assert "N* ∝" not in glance_section(result, None).text
