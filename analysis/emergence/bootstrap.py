"""Bootstrap intervals for a sigmoid's steepness k and threshold x_c (N_c = exp(x_c) by monotonicity).

Resampling sizes would often drop the very points that place the transition, so sizes are kept and the
values redrawn around the fitted curve (a parametric bootstrap): each replicate adds to every size's
fitted value Gaussian noise with the largest variance any known source gives that size:
  seeds     the variance of the seeds' mean, modelled over all sizes at once as a + c f'(x)^2 (scatter
            everywhere, plus a seed's shift in threshold dx moving its value by the fitted slope f'(x)
            times dx), so that two or three seeds per size borrow strength from every size; times
            dof / chi2_dof drawn per replicate, dof the seeds' degrees of freedom at the sizes on the rise
            (each weighted by its share of the largest f'^2): the estimate rests on those sizes. Seeds at
            different sizes are different runs, so their deviations are drawn independently per size
  binomial  p (1 - p) / n_samples at the fitted value, for an all-or-nothing metric
  misfit    the sigmoid's residual variance SSE / dof, or where larger a + c f'(x)^2 fitted to each
            size's squared residual over 1 - its leverage (a fit pulls its curve through the sizes that
            place it, so their residuals understate the noise there); times dof / chi2_dof (dof = sizes
            - parameters) drawn per replicate, as a t-quantile widens for an estimated sigma
  floor     0.1% of the metric's range (evidence.py's noise floor)
The largest, not the sum: the residuals already hold the measurement noise, and the seeds' spread the
sampling noise when seeds see different samples. No replicate is quieter than any source known to be there.
Replicates are clipped to the metric's range and refitted with the same pinned floor and bounds.
Percentile intervals (analysis.interval); a k interval that touches the upper bound means "at least this
steep". How far the sizes limit the threshold's location (the gap between two sizes when those on the rise
cannot place it) is the rule's to say (rule.Decision.resolution); analysis/emergence/curve.py widens the
interval to it. Coverage on coarse grids, with seeds and binomial answers, is checked in
tests/analysis/emergence/test_emergence_intervals.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from analysis.emergence.evidence import CurveEvidence
from analysis.emergence.sigmoid import refit_sigmoid
from analysis.interval import percentile_interval


@dataclass(frozen=True)
class SigmoidBootstrap:
    method: str  # the noise sources the replicates drew from, e.g. "seeds+binomial+misfit"
    params: np.ndarray  # B x (floor, ceil, k, x_c), oriented; NaN rows did not refit
    k_ci: tuple[float, float]
    x_c_ci: tuple[float, float]
    n_boot: int  # replicates that refitted
    steep_frac: float  # share of replicates that are steep and inside the range


def _scaled(var: float | np.ndarray, dof: float, n_boot: int, rng) -> np.ndarray:
    """n_boot draws of an estimated variance: var * dof / chi2_dof (B x 1, or B x n for per-size var)."""
    factor = dof / rng.chisquare(max(dof, 1.0), size=(n_boot, 1))
    return np.atleast_2d(var) * factor


def _shaped(values: np.ndarray, slope2: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(a, c) of a + c f'^2 fitted (non-negative, weighted least squares) to per-size variance estimates."""
    a, c = nnls(np.stack([np.ones(len(values)), slope2], axis=1) * weights[:, None], values * weights)[0]
    return float(a), float(c)


def _misfit(ev: CurveEvidence) -> tuple[np.ndarray, int]:
    """(per-size misfit variance, its dof): the residual variance SSE / dof, or where larger a + c f'^2 fitted to
    each size's leverage-corrected squared residual r^2 / (1 - h) (h from the fit's hat matrix)."""
    sig, x = ev.sigmoid, ev.x
    dof = max(ev.n_sizes - sig.n_free, 1)
    jac = sig.jacobian(x)
    hat = np.einsum("ij,jk,ik->i", jac, np.linalg.pinv(jac.T @ jac), jac)
    resid2 = (ev.oriented - sig.predict(x)) ** 2 / np.clip(1.0 - hat, 1.0 / ev.n_sizes, 1.0)
    slope2 = sig.slope(x) ** 2
    a, c = _shaped(resid2, slope2, np.ones(ev.n_sizes))
    return np.maximum(a + c * slope2, sig.sse / dof), dof


def _seed_model(ev: CurveEvidence) -> tuple[np.ndarray, float]:
    """(per-size variance of the seeds' mean, its dof): a + c f'(x)^2 fitted to every size's seed variance at once,
    and the seeds' degrees of freedom at the sizes on the rise (each weighted by its share of the largest f'^2)."""
    noise, sig = ev.measured, ev.sigmoid
    slope2 = sig.slope(ev.x) ** 2
    ok = np.isfinite(noise.seed_own)
    a, c = _shaped(noise.seed_own[ok], slope2[ok], np.sqrt(noise.n_seeds[ok] - 1.0))
    share = slope2 / slope2.max() if c > 0 else np.ones(ev.n_sizes)
    return (a + c * slope2) / noise.n_seeds, max(float(np.sum((noise.n_seeds[ok] - 1) * share[ok])), 1.0)


def _replicate_variances(ev: CurveEvidence, n_boot: int, rng) -> tuple[str, np.ndarray]:
    """(sources, B x n variances): per replicate and size, the largest variance a known source gives."""
    misfit, dof = _misfit(ev)
    var = np.maximum(_scaled(misfit, dof, n_boot, rng), (1e-3 * ev.scale) ** 2)
    sources = ["misfit"]
    noise = ev.measured
    if noise is not None and noise.has_seeds:
        model, dof_eff = _seed_model(ev)
        var = np.maximum(var, _scaled(model, dof_eff, n_boot, rng))
        sources.insert(0, "seeds")
    if noise is not None and noise.has_binomial:
        var = np.maximum(var, noise.binomial_var(ev.sign * ev.sigmoid.predict(ev.x))[None, :])
        sources.insert(-1, "binomial")
    return "+".join(sources), var


def bootstrap_sigmoid(ev: CurveEvidence, *, bounds_o: tuple[float, float] | None, level: float, n_boot: int,
                      seed: int, steep) -> SigmoidBootstrap:
    """Refit the sigmoid of `ev` to n_boot replicates; `steep(k)` says whether a replicate's k is steep."""
    rng = np.random.default_rng(seed)
    method, var = _replicate_variances(ev, n_boot, rng)
    reps = ev.sigmoid.predict(ev.x)[None, :] + rng.normal(0.0, 1.0, size=var.shape) * np.sqrt(var)
    if bounds_o is not None:
        reps = np.clip(reps, bounds_o[0], bounds_o[1])
    params = refit_sigmoid(ev.x, reps, ev.sigmoid, y_range=bounds_o)
    ok = np.all(np.isfinite(params), axis=1)
    k, xc = params[:, 2], params[:, 3]
    inside = ok & (xc >= ev.x.min()) & (xc <= ev.x.max()) & (params[:, 1] > params[:, 0])
    steep_frac = float(np.mean([steep(kk) for kk in k[inside]] + [False] * int(np.sum(ok & ~inside)))) \
        if ok.any() else math.nan
    return SigmoidBootstrap(method, params, percentile_interval(k, level, failed="drop"),
                            percentile_interval(xc, level, failed="drop"), int(ok.sum()), steep_frac)
