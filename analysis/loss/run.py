"""The loss analysis of a set of runs, the one orchestrator behind the sweep report and the command line.

Approach 3 (fit) with bootstrap intervals, the compute-optimal frontier, Approach 2 (isoFLOP) and its
agreement with Approach 3, and a backtest on the largest sizes; which parts run is `LossOptions.parts`.
Always: whether loss falls with N and D (analysis.loss.monotonicity), and what of it all may be headlined,
grouped under causes with next steps (`LossAnalysis.diagnosis`, analysis.loss.diagnosis).
Every option of every part is a field of `LossOptions`, so the report and `python -m analysis fit-loss`
or `isoflop` give the same numbers for the same runs and options. A part that cannot be done on the
given runs is None with the reason in `skipped`, never an exception. Pure: arrays in, a dataclass out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from analysis.interval import LEVEL
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN
from analysis.loss.backtest import MIN_HOLDOUT_FRACTION, MIN_HOLDOUT_RUNS, Backtest, backtest_loss_law
from analysis.loss.bootstrap import LossLawBootstrap, bootstrap_loss_law
from analysis.loss.diagnosis import Diagnosis, diagnose, fit_caveats, isoflop_caveat
from analysis.loss.fit import LossLawFit, fit_loss_law, valid_rows
from analysis.loss.frontier import Frontier, compute_frontier
from analysis.loss.isoflop import ExponentAgreement, IsoFlopFit, compare_exponents, fit_isoflop, group_by_compute
from analysis.loss.monotonicity import Monotonicity, check_monotonicity
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
    monotonicity: Monotonicity | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # part -> why it is missing

    @property
    def level(self) -> float:
        return self.options.level

    def caveats(self) -> list[str]:
        """Why the fit cannot carry a headline (analysis.loss.diagnosis.fit_caveats); [] when there is nothing
        to say (or no fit)."""
        return [c.text for c in fit_caveats(self.fit, self.bootstrap, self.n_sizes, self.n_budgets)]

    def diagnosis(self) -> Diagnosis:
        """The caveats and the breaks in the data, grouped under causes with their evidence and next step."""
        return diagnose(fit_caveats(self.fit, self.bootstrap, self.n_sizes, self.n_budgets),
                        self.monotonicity or check_monotonicity((), (), ()), self.n_sizes, self.n_budgets,
                        self.isoflop_problem())

    def isoflop_problem(self) -> str | None:
        """Why Approach 2's exponent may not be quoted (not fitted, or not pinned); None when it may."""
        if "isoflop" in self.skipped:
            return f"not fitted: {self.skipped['isoflop']}"
        return isoflop_caveat(self.isoflop)

    @property
    def headlined(self) -> bool:
        """Whether the law, its frontier and its backtest may be stated as numbers a reader would quote."""
        return self.fit is not None and self.diagnosis().headlined


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


def run_loss_analysis(n_params, n_tokens, loss, flops=None, options: LossOptions | None = None,
                      runs: pl.DataFrame | None = None) -> LossAnalysis:
    """The parts of `options` on runs (N, D, final loss[, training FLOPs; default 6ND]), and always the
    monotonicity check; `runs`, the same rows as a table, names the runs and how they were trained there."""
    options = options or LossOptions()
    n, d, l_, ok = valid_rows(n_params, n_tokens, loss)
    c = FLOPS_PER_PARAM_TOKEN * n * d if flops is None else np.asarray(flops, dtype=float).ravel()
    out = LossAnalysis(options=options, n_runs=int(ok.sum()), n_sizes=_count(n[ok], options.rel_tol),
                       n_budgets=_count(d[ok], options.rel_tol),
                       monotonicity=check_monotonicity(n, d, l_, runs, rel_tol=options.rel_tol))
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
