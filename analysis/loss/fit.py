"""The Chinchilla loss law L(N, D) = E + A / N^alpha + B / D^beta, fitted as the careful replications do.

Hoffmann et al. (2022), Approach 3, with the corrections of Besiroglu et al. (2024, "Chinchilla
Scaling: A replication attempt"):
  * parameters a = log A, b = log B, e = log E; prediction in log space
        log L_hat = logsumexp(a - alpha log N, b - beta log D, e);
  * Huber loss (delta = 1e-3) on the residuals log L_hat - log L, summed over points;
  * L-BFGS-B with analytic gradients, started from the best points of Hoffmann's initialisation grid
    (alpha, beta in 0..2, e in -1..1, a, b in 0..25); the lowest objective wins.
Options, all recorded in the returned fit: the Huber delta, the init grid, how many of its best starts
are refined, optional outlier dropping (k robust SDs of a first fit's residuals; off by default) and
the name of the N column (total or non-embedding parameters). Rows with NaN, inf or non-positive
values are dropped and counted. Data that cannot identify the law (`identifiability_problem`) and
bad option values (analysis.options) are a ValueError before any fitting.
Intervals: analysis.loss.bootstrap; N*(C), D*(C): analysis.loss.frontier.
Pure functions: arrays in, frozen dataclasses out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN, optimal_allocation
from analysis.options import check_options

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class InitGrid:
    """Starting values (Hoffmann et al. 2022, appendix D.2), in the fitted (log) parametrisation."""

    alpha: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    beta: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    e: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    a: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
    b: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)

    def points(self) -> np.ndarray:
        """All combinations as rows of (a, b, e, alpha, beta)."""
        return np.array(list(itertools.product(self.a, self.b, self.e, self.alpha, self.beta)), dtype=float)


@dataclass(frozen=True)
class LossLawFit:
    """An Approach-3 fit and every option that produced it (so a report can say how it was fitted)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float  # summed Huber loss of the log residuals at the optimum
    n_points: int  # points the final fit used
    converged: bool
    huber_delta: float
    n_starts: int  # best starts of the init grid refined with L-BFGS-B
    message: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    n_column: str = "n_params"  # which parameter count N is (total, non-embedding, ...)
    init_grid: InitGrid = field(default_factory=InitGrid)
    outlier_sd: float | None = None  # drop threshold in robust SDs of the first fit's residuals; None: off
    dropped_outliers: tuple[int, ...] = ()  # row indices (into the input arrays) dropped as outliers
    n_invalid: int = 0  # rows dropped for NaN, inf or non-positive values

    def predict(self, n_params, n_tokens) -> np.ndarray:
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def params(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def theta(self) -> np.ndarray:
        """The fitted parametrisation (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta)."""
        return np.array([np.log(self.A), np.log(self.B), np.log(self.E), self.alpha, self.beta])

    def at_bound(self) -> tuple[str, ...]:
        """The parameters the optimiser left on a bound of BOUNDS, e.g. "E = 2.06e-09 = exp(-20), the lower
        bound of log E": the data did not place them, the bound did."""
        out = []
        for name, label, value, (lo, hi) in zip(("A", "B", "E", "alpha", "beta"), ("log A", "log B", "log E",
                                                "alpha", "beta"), self.theta(), BOUNDS):
            tol = 1e-6 * (hi - lo)
            for end, which in ((lo, "lower"), (hi, "upper")):
                if abs(value - end) <= tol:
                    shown = f"{getattr(self, name):.3g} = exp({end:g})" if label.startswith("log") else f"{end:g}"
                    out.append(f"{name} = {shown}, the {which} bound of {label}")
        return tuple(out)

    def options(self) -> dict:
        """The fit options, JSON-ready."""
        grid = self.init_grid
        return {"huber_delta": self.huber_delta, "n_best_starts": self.n_starts, "n_column": self.n_column,
                "outlier_sd": self.outlier_sd,
                "init_grid": {"alpha": list(grid.alpha), "beta": list(grid.beta), "e": list(grid.e),
                              "a": list(grid.a), "b": list(grid.b)}}


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.clip(r, -delta, delta)
    return loss, grad


def log_prediction(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """log L_hat = logsumexp(a - alpha log N, b - beta log D, e), elementwise."""
    a, b, e, alpha, beta = theta
    t0, t1 = a - alpha * log_n, b - beta * log_d
    m = np.maximum(np.maximum(t0, t1), e)
    return m + np.log(np.exp(t0 - m) + np.exp(t1 - m) + np.exp(e - m))


def objective_and_gradient(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
                           delta: float, weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Summed (optionally weighted) Huber loss of log residuals and its analytic gradient in (a, b, e, alpha, beta).

    The three-term logsumexp and its softmax are written out: this runs ~10^5 times per bootstrap, and
    scipy.special's general versions cost more per call than the arithmetic."""
    a, b, e, alpha, beta = theta
    t0, t1 = a - alpha * log_n, b - beta * log_d
    m = np.maximum(np.maximum(t0, t1), e)
    x0, x1, x2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(e - m)
    total = x0 + x1 + x2
    residual = m + np.log(total) - log_loss
    abs_r = np.abs(residual)
    small = abs_r <= delta
    loss = np.where(small, 0.5 * residual * residual, delta * (abs_r - 0.5 * delta))
    dloss = np.clip(residual, -delta, delta)
    if weights is not None:
        loss, dloss = loss * weights, dloss * weights
    g = dloss / total  # dloss * softmax weight = g * x_i
    g0, g1 = g * x0, g * x1
    # Sums of products, not `@`: a BLAS dot wakes its thread pool, which stalls on a busy machine.
    grad = np.array([g0.sum(), g1.sum(), (g * x2).sum(), -(g0 * log_n).sum(), -(g1 * log_d).sum()])
    return float(loss.sum()), grad


def _grid_objectives(starts: np.ndarray, log_n, log_d, log_loss, delta) -> np.ndarray:
    """Objective at every start at once: (n_starts,)."""
    a, b, e, alpha, beta = (starts[:, i : i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(starts), len(log_n)))])
    residual = logsumexp(terms, axis=0) - log_loss
    return _huber(residual, delta)[0].sum(axis=1)


# Bounds keep the optimiser away from overflow; they are far outside any published fit.
BOUNDS = [(-20.0, 60.0), (-20.0, 60.0), (-20.0, 10.0), (0.0, 5.0), (0.0, 5.0)]
LBFGS_OPTIONS = {"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12}


def refine(theta0: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float,
           weights: np.ndarray | None = None):
    """One bounded L-BFGS-B descent from theta0 (scipy OptimizeResult).

    With ftol 1e-15 the line search often fails at the optimum itself, where the objective changes by
    less than rounding (measured: ~1% of bootstrap refits, gradients 1e-11..1e-7 there). Such a stop is
    restarted once with fresh curvature memory; if it still stalls, it counts as converged when the
    projected gradient is below STATIONARY_RTOL of its largest possible size (delta x total weight x
    max |log N|, |log D|), and the message says so."""
    args = (log_n, log_d, log_loss, delta, weights)
    result = minimize(objective_and_gradient, theta0, args=args, jac=True, method="L-BFGS-B", bounds=BOUNDS,
                      options=LBFGS_OPTIONS)
    if result.success or not str(result.message).startswith("ABNORMAL"):
        return result
    again = minimize(objective_and_gradient, result.x, args=args, jac=True, method="L-BFGS-B", bounds=BOUNDS,
                     options=LBFGS_OPTIONS)
    if again.fun <= result.fun * (1 + 1e-9):  # not worse beyond rounding
        again.nit += result.nit
        result = again
    if not result.success:
        lower, upper = np.array(BOUNDS).T
        pg = np.where(((result.x <= lower) & (result.jac > 0)) | ((result.x >= upper) & (result.jac < 0)), 0.0,
                      result.jac)
        total_weight = len(log_n) if weights is None else float(np.sum(weights))
        scale = delta * total_weight * max(1.0, float(np.abs(log_n).max()), float(np.abs(log_d).max()))
        if np.abs(pg).max() <= STATIONARY_RTOL * scale:
            result.success = True
            result.message = f"CONVERGENCE: line search stalled at a stationary point (|pg| {np.abs(pg).max():.1e})"
    return result


STATIONARY_RTOL = 1e-7


def valid_rows(n_params, n_tokens, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, d, loss, ok): the inputs as float arrays and the mask of rows that are finite and positive."""
    n, d, loss_ = (np.asarray(x, dtype=float).ravel() for x in (n_params, n_tokens, loss))
    if not (len(n) == len(d) == len(loss_)):
        raise ValueError(f"N, D and loss differ in length: {len(n)}, {len(d)}, {len(loss_)}")
    ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(loss_) & (n > 0) & (d > 0) & (loss_ > 0)
    return n, d, loss_, ok


MIN_DISTINCT_POINTS = 6  # more distinct (N, D) points than the law's 5 parameters: one residual degree of freedom
MAX_ABS_LOG_CORRELATION = 0.999  # |corr(log N, log D)| above this: N and D move together, their terms blur


def identifiability_problem(n_params, n_tokens) -> str | None:
    """Why runs at (N, D) cannot identify L(N, D) = E + A/N^alpha + B/D^beta, or None when they can.

    The one place that decides it (the sweep's loss analysis and fit_loss_law both ask here). Rows with
    NaN, inf or non-positive N or D are ignored. The law needs
      * at least 2 distinct N (with one, A/N^alpha is a constant that E absorbs) and 2 distinct D (likewise
        B/D^beta);
      * log N and log D not (near-)collinear: |corr| <= MAX_ABS_LOG_CORRELATION and the design
        [1, log N, log D] of full rank (with D = k N, e.g. a fixed tokens-per-parameter sweep or a single
        isoFLOP budget, the N and D terms trade off freely);
      * at least MIN_DISTINCT_POINTS distinct (N, D) points (repeats of a point, e.g. seeds, add no
        information on the shape, and 5 points fit the 5 parameters exactly).
    The message names what is missing and what would fix it."""
    n, d = (np.asarray(x, dtype=float).ravel() for x in (n_params, n_tokens))
    if len(n) != len(d):
        return f"N and D differ in length: {len(n)}, {len(d)}"
    ok = np.isfinite(n) & np.isfinite(d) & (n > 0) & (d > 0)
    n, d = n[ok], d[ok]
    n_sizes, n_budgets = len(np.unique(n)), len(np.unique(d))
    if n_sizes < 2 or n_budgets < 2:
        return (f"the runs have {n_sizes} distinct N and {n_budgets} distinct D; the law needs at least 2 of each "
                "(with one N, E and A/N^alpha cannot be told apart; with one D, E and B/D^beta)")
    log_n, log_d = np.log(n), np.log(d)
    design = np.column_stack([np.ones_like(log_n), log_n - log_n.mean(), log_d - log_d.mean()])
    corr = float(np.corrcoef(log_n, log_d)[0, 1])
    if np.linalg.matrix_rank(design) < 3 or not abs(corr) <= MAX_ABS_LOG_CORRELATION:
        return (f"log N and log D are collinear (correlation {corr:+.4f}): D moves in lockstep with N, so the N and "
                "D terms of the law cannot be told apart; add runs that vary D at fixed N (or N at fixed D)")
    n_distinct = len(np.unique(np.column_stack([n, d]), axis=0))
    if n_distinct < MIN_DISTINCT_POINTS:
        return (f"{n_distinct} distinct (N, D) points; the law has 5 parameters and needs at least "
                f"{MIN_DISTINCT_POINTS} (repeated points, e.g. seeds, count once)")
    return None


def used_rows(fit: LossLawFit, n_params, n_tokens, loss) -> np.ndarray:
    """The mask of the input rows that `fit` was fitted on (valid and not dropped as outliers)."""
    ok = valid_rows(n_params, n_tokens, loss)[3]
    ok[list(fit.dropped_outliers)] = False
    return ok


def robust_sd(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the SD for normal data, unmoved by a few outliers."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _fit_logs(log_n, log_d, log_loss, delta, starts, n_best_starts, weights):
    best_starts = starts[np.argsort(_grid_objectives(starts, log_n, log_d, log_loss, delta))[:n_best_starts]]
    best = None
    with single_blas_thread():
        for theta0 in best_starts:
            result = refine(theta0, log_n, log_d, log_loss, delta, weights)
            if best is None or result.fun < best.fun:
                best = result
    return best, len(best_starts)


def single_blas_thread():
    """A context with one BLAS thread. L-BFGS-B's BLAS calls on 5-vectors gain nothing from threads and,
    on a CPU shared with other work, waiting for the pool made fits 10x slower (measured, 2 cores)."""
    return threadpool_limits(limits=1, user_api="blas")


def fit_loss_law(n_params, n_tokens, loss, *, huber_delta: float = 1e-3, init_grid: InitGrid | None = None,
                 n_best_starts: int = 16, weights=None, outlier_sd: float | None = None,
                 n_column: str = "n_params") -> LossLawFit:
    """Fit E, A, B, alpha, beta to points (N, D, L).

    Rows with NaN, inf or non-positive values are dropped and counted (`n_invalid`); at least 5 valid
    rows are needed, and the valid rows must identify the law (`identifiability_problem`), else
    ValueError. Options are checked first (ValueError naming the option). With `outlier_sd = k`, a first
    fit is made, rows whose log residual lies more than k robust SDs (`robust_sd`) from the median
    residual are dropped (recorded in `dropped_outliers`), and the law is refitted once; nothing is
    dropped if the remaining rows would not identify the law. `n_column` only names which parameter
    count N is, for the record."""
    check_options(huber_delta=(huber_delta, "positive"), n_best_starts=(n_best_starts, "count"),
                  outlier_sd=(outlier_sd, "positive"))
    n, d, loss_, ok = valid_rows(n_params, n_tokens, loss)
    w_all = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w_all is not None and (len(w_all) != len(n) or not np.all(np.isfinite(w_all) & (w_all >= 0))):
        raise ValueError(f"weights must be {len(n)} finite numbers >= 0, one per row")
    if ok.sum() < 5:
        raise ValueError(f"the loss law has 5 parameters; need at least 5 valid points (finite, positive N, D "
                         f"and loss), got {int(ok.sum())} of {len(n)}")
    problem = identifiability_problem(n[ok], d[ok])
    if problem is not None:
        raise ValueError(f"these data cannot identify the loss law: {problem}")
    grid = init_grid or InitGrid()
    starts = grid.points()
    if not len(starts):
        raise ValueError("init_grid is empty: every axis needs at least one value")
    log_n, log_d, log_loss = np.log(n[ok]), np.log(d[ok]), np.log(loss_[ok])
    best, n_starts = _fit_logs(log_n, log_d, log_loss, huber_delta, starts, n_best_starts,
                               None if w_all is None else w_all[ok])
    dropped: tuple[int, ...] = ()
    if outlier_sd is not None:
        residual = log_prediction(best.x, log_n, log_d) - log_loss
        far = np.abs(residual - np.median(residual)) > outlier_sd * robust_sd(residual)
        rows = np.flatnonzero(ok)
        if far.any() and identifiability_problem(n[rows[~far]], d[rows[~far]]) is None:
            dropped = tuple(int(i) for i in rows[far])
            ok[rows[far]] = False
            log_n, log_d, log_loss = np.log(n[ok]), np.log(d[ok]), np.log(loss_[ok])
            best, n_starts = _fit_logs(log_n, log_d, log_loss, huber_delta, starts, n_best_starts,
                                       None if w_all is None else w_all[ok])
    E, A, B, alpha, beta = (float(v) for v in params_from_theta(best.x))
    return LossLawFit(E=E, A=A, B=B, alpha=alpha, beta=beta, objective=float(best.fun), n_points=int(ok.sum()),
                      converged=bool(best.success), huber_delta=huber_delta, n_starts=n_starts,
                      message=str(best.message), n_column=n_column, init_grid=grid, outlier_sd=outlier_sd,
                      dropped_outliers=dropped, n_invalid=int((~valid_rows(n, d, loss_)[3]).sum()))


def params_from_theta(theta) -> np.ndarray:
    """(E, A, B, alpha, beta) in PARAM_NAMES order from fitted (a, b, e, alpha, beta), along the last axis."""
    a, b, e, alpha, beta = np.moveaxis(np.asarray(theta, dtype=float), -1, 0)
    return np.stack([np.exp(e), np.exp(a), np.exp(b), alpha, beta], axis=-1)


def compute_optimal(fit: LossLawFit, flops,
                    flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> tuple[np.ndarray, np.ndarray]:
    """N*(C), D*(C) minimising the fitted loss at compute C = k N D (Hoffmann et al. 2022, eq. 4).

    N_opt = G (C/k)^(beta/(alpha+beta)), D_opt = G^-1 (C/k)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)). See analysis.loss.frontier for exponents, D*/N* and intervals.
    """
    return optimal_allocation(fit.A, fit.B, fit.alpha, fit.beta, flops, flops_per_param_token)
