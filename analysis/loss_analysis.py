"""Everything the report says about loss: Approach 3 with bootstrap intervals, the compute-optimal
frontier, Approach 2 (isoFLOP) and its agreement with Approach 3, and a backtest on the largest sizes.

One pure function, `run_loss_analysis`, from arrays to a `LossAnalysis`; each part that cannot be
done on the given runs is None with the reason in `skipped`, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.backtest import Backtest, backtest_loss_law
from analysis.bootstrap import LossLawBootstrap, bootstrap_loss_law
from analysis.chinchilla import LossLawFit, fit_loss_law, identifiability_problem, valid_rows
from analysis.frontier import FLOPS_PER_PARAM_TOKEN, Frontier, compute_frontier
from analysis.isoflop import ExponentAgreement, IsoFlopFit, compare_exponents, fit_isoflop


@dataclass(frozen=True)
class LossOptions:
    n_resamples: int = 1000
    level: float = 0.90
    seed: int = 0
    huber_delta: float = 1e-3
    outlier_sd: float | None = None
    n_holdout_sizes: int | None = None  # None: the largest sizes holding >= 15% of the runs (backtest.py)
    n_workers: int | None = None


@dataclass
class LossAnalysis:
    options: LossOptions
    n_runs: int
    fit: LossLawFit | None = None
    bootstrap: LossLawBootstrap | None = None
    frontier: Frontier | None = None
    isoflop: IsoFlopFit | None = None
    agreement: ExponentAgreement | None = None
    backtest: Backtest | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # part -> why it is missing


def frontier_budgets(flops: np.ndarray) -> list[float]:
    """Where to read the frontier: the smallest and largest compute of the sweep, and 10x and 100x beyond."""
    c = flops[np.isfinite(flops) & (flops > 0)]
    if not len(c):
        return []
    return sorted({float(c.min()), float(c.max()), float(10 * c.max()), float(100 * c.max())})


def run_loss_analysis(n_params, n_tokens, loss, flops=None, options: LossOptions | None = None) -> LossAnalysis:
    """Fit, bootstrap, frontier, isoFLOP and backtest on runs (N, D, final loss[, FLOPs])."""
    options = options or LossOptions()
    n, d, l_, ok = valid_rows(n_params, n_tokens, loss)
    c = FLOPS_PER_PARAM_TOKEN * n * d if flops is None else np.asarray(flops, dtype=float).ravel()
    out = LossAnalysis(options=options, n_runs=int(ok.sum()))
    problem = identifiability_problem(n[ok], d[ok])
    if problem is not None:
        n_sizes, n_budgets = len(np.unique(n[ok])), len(np.unique(d[ok]))
        out.skipped["loss_law"] = (f"{int(ok.sum())} finished runs over {n_sizes} sizes and {n_budgets} token "
                                   f"budgets: {problem}")
        return out
    out.fit = fit_loss_law(n, d, l_, huber_delta=options.huber_delta, outlier_sd=options.outlier_sd)
    budgets = frontier_budgets(c[ok])
    out.bootstrap = bootstrap_loss_law(n, d, l_, out.fit, n_resamples=options.n_resamples, level=options.level,
                                       seed=options.seed, flops_budgets=budgets, n_workers=options.n_workers)
    out.frontier = compute_frontier(out.fit, budgets, out.bootstrap)
    try:
        out.isoflop = fit_isoflop(n, d, l_, c, level=options.level, seed=options.seed)
        out.agreement = compare_exponents(out.isoflop, out.frontier)
    except ValueError as exc:
        out.skipped["isoflop"] = str(exc)
    try:
        out.backtest = backtest_loss_law(n, d, l_, n_holdout_sizes=options.n_holdout_sizes,
                                         huber_delta=options.huber_delta, outlier_sd=options.outlier_sd)
    except ValueError as exc:
        out.skipped["backtest"] = str(exc)
    return out
