"""The loss analysis of a set of runs, the one orchestrator behind the sweep report and the command line.

Approach 3 (fit) with bootstrap intervals, the compute-optimal frontier, Approach 2 (isoFLOP) and its
agreement with Approach 3, and a backtest on the largest sizes; which parts run is `LossOptions.parts`.
Every option of every part is a field of `LossOptions`, so the report and `python -m analysis fit-loss`
or `isoflop` give the same numbers for the same runs and options. A part that cannot be done on the
given runs is None with the reason in `skipped`, never an exception. Pure: arrays in, a dataclass out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.interval import LEVEL
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN
from analysis.loss.backtest import MIN_HOLDOUT_FRACTION, MIN_HOLDOUT_RUNS, Backtest, backtest_loss_law
from analysis.loss.bootstrap import LossLawBootstrap, bootstrap_loss_law
from analysis.loss.fit import LossLawFit, fit_loss_law, valid_rows
from analysis.loss.frontier import Frontier, compute_frontier
from analysis.loss.isoflop import ExponentAgreement, IsoFlopFit, compare_exponents, fit_isoflop, group_by_compute
from analysis.options import check_options

PARTS = ("loss_law", "isoflop", "backtest")


@dataclass(frozen=True)
class LossOptions:
    parts: tuple[str, ...] = PARTS  # which analyses to run (the frontier comes with the loss law)
    n_resamples: int = 1000  # bootstrap resamples of the loss law and of the isoFLOP exponents; 0: none
    level: float = LEVEL
    seed: int = 0
    huber_delta: float = 1e-3
    n_best_starts: int = 16
    outlier_sd: float | None = None
    n_column: str = "n_params"
    flops_budgets: tuple[float, ...] | None = None  # None: the sweep's smallest and largest compute, x10, x100
    n_holdout_sizes: int | None = None  # None: the largest sizes holding >= min_holdout_fraction of the runs
    min_holdout_fraction: float = MIN_HOLDOUT_FRACTION
    min_holdout_runs: int = MIN_HOLDOUT_RUNS
    rel_tol: float = 0.05  # isoFLOP budgets within this relative difference form one group
    use_edge_minima: bool = False
    n_workers: int | None = None

    def __post_init__(self):
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown parts {unknown}; known: {', '.join(PARTS)}")
        check_options(n_resamples=(self.n_resamples, "count-or-zero"), level=(self.level, "probability"),
                      seed=(self.seed, "seed"), huber_delta=(self.huber_delta, "positive"),
                      n_best_starts=(self.n_best_starts, "count"), outlier_sd=(self.outlier_sd, "positive"),
                      n_holdout_sizes=(self.n_holdout_sizes, "count"),
                      min_holdout_fraction=(self.min_holdout_fraction, "probability"),
                      min_holdout_runs=(self.min_holdout_runs, "count"), rel_tol=(self.rel_tol, "non-negative"),
                      n_workers=(self.n_workers, "count"))
        budgets = self.flops_budgets or ()
        if not all(math.isfinite(c) and c > 0 for c in budgets):
            raise ValueError(f"flops_budgets must be finite FLOP counts > 0, got {list(budgets)}")

    def fit_options(self) -> dict:
        return {"huber_delta": self.huber_delta, "n_best_starts": self.n_best_starts,
                "outlier_sd": self.outlier_sd, "n_column": self.n_column}


@dataclass
class LossAnalysis:
    options: LossOptions
    n_runs: int
    n_sizes: int = 0  # distinct N, within rel_tol
    n_budgets: int = 0  # distinct D, within rel_tol
    fit: LossLawFit | None = None
    bootstrap: LossLawBootstrap | None = None
    frontier: Frontier | None = None
    isoflop: IsoFlopFit | None = None
    agreement: ExponentAgreement | None = None
    backtest: Backtest | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # part -> why it is missing

    @property
    def level(self) -> float:
        return self.options.level

    def caveats(self) -> list[str]:
        """Why the fit cannot carry a headline: not converged, parameters at an optimiser bound, fewer than 3
        distinct sizes or budgets (a term fitted through them exactly), intervals spanning more than
        MAX_DECADES decades (E, A, B) or wider than MAX_EXPONENT_WIDTH (exponents), of no width, or
        unbounded. [] when there is nothing to say (or no fit)."""
        if self.fit is None:
            return []
        out = [] if self.fit.converged else [f"the fit did not converge ({self.fit.message})"]
        out += [f"{text}: placed by the bound, not the data" for text in self.fit.at_bound()]
        for count, what, terms in ((self.n_sizes, "model sizes", "E, A and alpha"),
                                   (self.n_budgets, "token budgets", "E, B and beta")):
            if count < 3:
                out.append(f"{count} distinct {what}: {terms} pass through them exactly instead of being "
                           f"estimated (3 or more leave a residual to estimate from)")
        if self.bootstrap is not None:
            out += _wide_intervals(self.bootstrap.ci, self.bootstrap.level)
        return out


MAX_DECADES = 1.0  # an interval of a scale quantity (E, A, B, N*, D*) wider than 10x says little
MAX_EXPONENT_WIDTH = 0.25  # an exponent known only to +-0.125 says little about how to scale
_EXPONENTS = ("alpha", "beta", "a", "b")


def _wide_intervals(ci: dict[str, tuple[float, float]], level: float) -> list[str]:
    out = []
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        lo, hi = ci.get(name, (math.nan, math.nan))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            if name in ci:
                out.append(f"{name}'s {level:.0%} interval is unbounded")
            continue
        if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
            out.append(f"{name}'s {level:.0%} interval [{lo:.3g}, {hi:.3g}] has no width: the resamples cannot "
                       f"move it, which is no measure of its uncertainty")
        elif name in _EXPONENTS and hi - lo > MAX_EXPONENT_WIDTH:
            out.append(f"{name}'s {level:.0%} interval [{lo:.3g}, {hi:.3g}] is wider than {MAX_EXPONENT_WIDTH:g}")
        elif name not in _EXPONENTS and lo > 0 and math.log10(hi / lo) > MAX_DECADES:
            out.append(f"{name}'s {level:.0%} interval spans {math.log10(hi / lo):.1f} decades "
                       f"({lo:.3g} to {hi:.3g})")
    return out


def _count(values: np.ndarray, rel_tol: float) -> int:
    """Distinct sizes or budgets, values within rel_tol of each other counted once (a run trains a few
    tokens past its budget: 501k, 502k and 500k are one budget of 500k)."""
    return int(group_by_compute(values, rel_tol).max()) + 1 if len(values) else 0


def frontier_budgets(flops: np.ndarray) -> list[float]:
    """Where to read the frontier: the smallest and largest compute of the runs, and 10x and 100x beyond."""
    c = np.asarray(flops, dtype=float)
    c = c[np.isfinite(c) & (c > 0)]
    if not len(c):
        return []
    return sorted({float(c.min()), float(c.max()), float(10 * c.max()), float(100 * c.max())})


def _loss_law(out: LossAnalysis, n, d, l_, c) -> None:
    options = out.options
    try:
        out.fit = fit_loss_law(n, d, l_, **options.fit_options())
    except ValueError as exc:
        out.skipped["loss_law"] = (f"{out.n_runs} runs over {out.n_sizes} sizes and {out.n_budgets} token budgets: "
                                   f"{exc}")
        return
    budgets = list(options.flops_budgets or frontier_budgets(c))
    if options.n_resamples > 0:
        out.bootstrap = bootstrap_loss_law(n, d, l_, out.fit, n_resamples=options.n_resamples, level=options.level,
                                           seed=options.seed, flops_budgets=budgets, n_workers=options.n_workers)
    out.frontier = compute_frontier(out.fit, budgets, out.bootstrap)


def run_loss_analysis(n_params, n_tokens, loss, flops=None, options: LossOptions | None = None) -> LossAnalysis:
    """The parts of `options` on runs (N, D, final loss[, training FLOPs; default 6ND])."""
    options = options or LossOptions()
    n, d, l_, ok = valid_rows(n_params, n_tokens, loss)
    c = FLOPS_PER_PARAM_TOKEN * n * d if flops is None else np.asarray(flops, dtype=float).ravel()
    out = LossAnalysis(options=options, n_runs=int(ok.sum()), n_sizes=_count(n[ok], options.rel_tol),
                       n_budgets=_count(d[ok], options.rel_tol))
    if "loss_law" in options.parts:
        _loss_law(out, n, d, l_, c)
    if "isoflop" in options.parts:
        try:
            out.isoflop = fit_isoflop(n, d, l_, c, rel_tol=options.rel_tol, use_edge_minima=options.use_edge_minima,
                                      level=options.level, n_resamples=options.n_resamples, seed=options.seed)
        except ValueError as exc:
            out.skipped["isoflop"] = str(exc)
        if out.isoflop is not None and out.frontier is not None:
            out.agreement = compare_exponents(out.isoflop, out.frontier)
    if "backtest" in options.parts:
        try:
            out.backtest = backtest_loss_law(n, d, l_, n_holdout_sizes=options.n_holdout_sizes,
                                             min_holdout_fraction=options.min_holdout_fraction,
                                             min_holdout_runs=options.min_holdout_runs, **options.fit_options())
        except ValueError as exc:
            out.skipped["backtest"] = str(exc)
    return out
