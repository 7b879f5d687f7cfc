"""Bootstrap intervals for the loss law: resample the points, refit, take percentiles.

Each resample draws the fitted points with replacement (multinomial counts, all drawn up front from
one seeded `numpy.random.default_rng`, so the result depends on the seed and not on the number of
worker processes). A resample is refitted by one L-BFGS-B descent from the full fit's optimum, with
the counts as weights on the distinct points drawn: the full fit has already searched Hoffmann's
init grid, and a resample's optimum lies near it (Besiroglu et al. 2024 bootstrap the same way).
Resamples whose descent does not report convergence are left out of the intervals and counted.

Intervals are percentile intervals at `level` (default analysis.interval.LEVEL) for E, A, B, alpha, beta and for the
derived quantities of analysis.loss.allocation: a, b and, at each requested compute budget, N*, D* and D*/N*.
Resamples run in worker processes, in contiguous chunks. Pure function: arrays in, a dataclass out.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from analysis.interval import LEVEL, percentile_interval
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN, derived_quantities
from analysis.loss.fit import (
    PARAM_NAMES,
    LossLawFit,
    fit_loss_law,
    params_from_theta,
    refine,
    single_blas_thread,
    used_rows,
)
from analysis.options import check_options


@dataclass(frozen=True, eq=False)
class LossLawBootstrap:
    """Resampled fits of one loss-law fit and their percentile intervals."""

    samples: np.ndarray  # (n_resamples, 5): E, A, B, alpha, beta of every resample (NaN rows: not converged)
    converged: np.ndarray  # (n_resamples,) bool
    level: float  # confidence level of every interval, e.g. 0.90
    seed: int
    n_points: int  # points resampled (those the full fit used)
    flops_budgets: tuple[float, ...]  # budgets whose N*, D*, D*/N* intervals are in `ci`
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (lo, hi)
    seconds: float = 0.0
    n_workers: int = 1

    @property
    def n_resamples(self) -> int:
        return len(self.converged)

    @property
    def converged_fraction(self) -> float:
        return float(self.converged.mean()) if len(self.converged) else 0.0

    def converged_samples(self) -> np.ndarray:
        return self.samples[self.converged]

    def interval(self, values) -> tuple[float, float]:
        """The percentile interval at `level` of per-resample values (non-finite values count as
        beyond either end, so they widen rather than vanish)."""
        return percentile_interval(values, self.level)

    def as_dict(self) -> dict:
        return {"n_resamples": self.n_resamples, "converged_fraction": self.converged_fraction, "level": self.level,
                "seed": self.seed, "method": "percentile, resampling points with replacement",
                "seconds": self.seconds}


def _refine_chunk(theta0: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refit each row of `counts` (multiplicities of the points) from theta0: (thetas (k, 5), success (k,))."""
    thetas = np.full((len(counts), 5), np.nan)
    success = np.zeros(len(counts), dtype=bool)
    with single_blas_thread():
        for i, row in enumerate(counts):
            drawn = np.flatnonzero(row)
            result = refine(theta0, log_n[drawn], log_d[drawn], log_loss[drawn], delta, row[drawn].astype(float))
            thetas[i], success[i] = result.x, bool(result.success) and np.all(np.isfinite(result.x))
    return thetas, success


# Fork on Linux: workers start in milliseconds and never re-import the caller's __main__ (spawn and
# forkserver do, which breaks scripts without an `if __name__ == "__main__"` guard). Workers only run
# numpy/scipy on the arrays they are sent, so threads of the parent (polars, torch) are not touched.
_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def bootstrap_loss_law(n_params, n_tokens, loss, fit: LossLawFit | None = None, *, n_resamples: int = 1000,
                       level: float = LEVEL, seed: int = 0, flops_budgets=(),
                       flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN, n_workers: int | None = None,
                       chunks_per_worker: int = 4) -> LossLawBootstrap:
    """Percentile intervals for the loss law fitted to (N, D, L) and its derived quantities.

    `fit` is the full fit (made here with the default options if None); only the rows it used are
    resampled (invalid rows and dropped outliers stay out). `n_workers` processes (default: the CPUs
    this process may use; 1 runs in this process) each take contiguous chunks of resamples. Bad option
    values are a ValueError naming the option, before any work."""
    check_options(n_resamples=(n_resamples, "count"), level=(level, "probability"), seed=(seed, "seed"),
                  flops_per_param_token=(flops_per_param_token, "positive"), n_workers=(n_workers, "count"),
                  chunks_per_worker=(chunks_per_worker, "count"))
    budgets = np.asarray(flops_budgets, dtype=float).ravel()
    if not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise ValueError(f"flops_budgets must be finite numbers > 0, got {budgets.tolist()}")
    started = time.perf_counter()
    if fit is None:
        fit = fit_loss_law(n_params, n_tokens, loss)
    ok = used_rows(fit, n_params, n_tokens, loss)
    log_n, log_d, log_loss = (np.log(np.asarray(x, dtype=float).ravel()[ok]) for x in (n_params, n_tokens, loss))
    n_points = len(log_n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=n_resamples).astype(np.int32)
    theta0 = fit.theta()
    workers = max(1, min(n_workers or _default_workers(), n_resamples))
    if workers == 1:
        thetas, success = _refine_chunk(theta0, log_n, log_d, log_loss, fit.huber_delta, counts)
    else:
        bounds = np.linspace(0, n_resamples, min(n_resamples, workers * chunks_per_worker) + 1).astype(int)
        context = multiprocessing.get_context(_START_METHOD)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_refine_chunk, theta0, log_n, log_d, log_loss, fit.huber_delta, counts[lo:hi])
                       for lo, hi in zip(bounds[:-1], bounds[1:])]
            parts = [f.result() for f in futures]
        thetas = np.concatenate([p[0] for p in parts])
        success = np.concatenate([p[1] for p in parts])
    samples = params_from_theta(thetas)  # (E, A, B, alpha, beta)
    samples[~success] = np.nan
    budgets = tuple(float(c) for c in budgets)
    good = samples[success]
    named = {name: good[:, i] for i, name in enumerate(PARAM_NAMES)}
    named.update(derived_quantities(good[:, 1], good[:, 2], good[:, 3], good[:, 4], budgets, flops_per_param_token))
    ci = {name: percentile_interval(values, level) for name, values in named.items()}
    return LossLawBootstrap(samples=samples, converged=success, level=level, seed=seed, n_points=n_points,
                            flops_budgets=budgets, ci=ci, seconds=time.perf_counter() - started, n_workers=workers)
