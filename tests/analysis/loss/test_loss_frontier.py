"""analysis/frontier.py: the compute-optimal allocation, its exponents and D*/N*, with intervals."""

import numpy as np
import pytest

from analysis.loss.allocation import derived_quantities, frontier_exponents, optimal_allocation
from analysis.loss.bootstrap import bootstrap_loss_law
from analysis.loss.fit import LossLawFit, compute_optimal, fit_loss_law
from analysis.loss.frontier import compute_frontier

LAW = LossLawFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, objective=0.0, n_points=0, converged=True,
                 huber_delta=1e-3, n_starts=0)


def test_exponents_sum_to_one_and_match_hoffmann():
    a, b = frontier_exponents(0.34, 0.28)
    assert a == pytest.approx(0.28 / 0.62) and b == pytest.approx(0.34 / 0.62) and a + b == pytest.approx(1.0)
    a_many, _ = frontier_exponents(np.array([0.3, 0.5]), np.array([0.3, 0.5]))
    assert np.allclose(a_many, 0.5)


def test_frontier_points_are_the_minimum_of_the_law_on_each_isoflop():
    frontier = compute_frontier(LAW, [1e19, 1e21, 1e23])
    for p in frontier.points:
        assert 6 * p.n_opt * p.d_opt == pytest.approx(p.flops, rel=1e-9)
        assert p.tokens_per_param == pytest.approx(p.d_opt / p.n_opt)
        assert p.loss_opt == pytest.approx(float(LAW.predict(p.n_opt, p.d_opt)))
        for factor in (0.7, 1.4):
            n = p.n_opt * factor
            assert LAW.predict(n, p.flops / (6 * n)) > p.loss_opt
    n1, n2 = frontier.points[0].n_opt, frontier.points[1].n_opt
    assert np.log(n2 / n1) / np.log(100) == pytest.approx(frontier.a)  # N* grows as C^a
    assert frontier.a_ci is None and frontier.points[0].n_opt_ci is None


def test_vectorised_allocation_matches_compute_optimal():
    budgets = np.array([1e18, 1e20, 1e22])
    n_opt, d_opt = compute_optimal(LAW, budgets)
    params = np.array([[LAW.A, LAW.B, LAW.alpha, LAW.beta]] * 3)
    n_many, d_many = optimal_allocation(*(params[:, i : i + 1] for i in range(4)), budgets)
    assert n_many.shape == (3, 3) and np.allclose(n_many, n_opt) and np.allclose(d_many, d_opt)
    derived = derived_quantities(params[:, 0], params[:, 1], params[:, 2], params[:, 3], budgets)
    assert set(derived) == {"a", "b"} | {f"{q}@C={c:.4g}" for q in ("n_opt", "d_opt", "tokens_per_param")
                                         for c in budgets}


def test_frontier_intervals_from_a_bootstrap_contain_the_truth():
    rng = np.random.default_rng(5)
    n = np.repeat(np.logspace(7, 10, 8), 6)
    d = np.tile(np.logspace(8, 11, 6), 8)
    loss = LAW.predict(n, d) * np.exp(rng.normal(0, 0.01, len(n)))
    fit = fit_loss_law(n, d, loss)
    boot = bootstrap_loss_law(n, d, loss, fit, n_resamples=200, n_workers=1)
    frontier = compute_frontier(fit, [1e20, 1e22], boot)  # budgets the bootstrap was not asked for
    truth = compute_frontier(LAW, [1e20, 1e22])
    assert frontier.level == 0.90 and frontier.a_ci[0] <= truth.a <= frontier.a_ci[1]
    for p, t in zip(frontier.points, truth.points):
        assert p.n_opt_ci[0] <= t.n_opt <= p.n_opt_ci[1]
        assert p.d_opt_ci[0] <= t.d_opt <= p.d_opt_ci[1]
        assert p.tokens_per_param_ci[0] <= t.tokens_per_param <= p.tokens_per_param_ci[1]
    assert frontier.as_dict()["budgets"][0]["n_opt_ci"] == list(frontier.points[0].n_opt_ci)


def test_budgets_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        compute_frontier(LAW, [1e20, -1.0])
