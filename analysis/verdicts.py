"""One curve (a metric against scale) in, one verdict out: emergent, smooth, flat, beyond-range,
non-monotone or insufficient-data, with the fits, information criteria and bootstrap intervals behind it.

Orientation. Every curve is first turned so that up means better: lower-is-better metrics (losses,
Brier scores, errors) are negated, their chance level and natural range with them. The sigmoid is
then always rising (k > 0 with ceil > floor), and `k`, `x_c` mean the same thing for every metric.
Floors and ceilings are reported back in the metric's own units (floor: the small-model plateau).

Models (analysis/smooth_models.py, analysis/emergence.py): constant, linear, saturating power law,
sigmoid. The sigmoid's floor is pinned at chance for bounded metrics (accuracies, similarities,
Brier, capped errors) when the data do not go below chance; log-likelihoods are never pinned.

Information criteria. Gaussian likelihood with the noise variance estimated from the residuals,
but never below a noise floor: the measurement noise when known (spread over seeds; binomial
sampling error p(1-p)/n_samples for all-or-nothing metrics) and at least 0.1% of the metric's range.
Without that floor a 4-parameter curve through 4-5 points has SSE ~ 0 and an infinite likelihood.
Parameters counted: the model's plus one for the variance. The verdict compares AICc (Hurvich and Tsai
1989) once n >= K + 4 for the largest model, and AIC below that: with the 4-8 sizes typical of a
sweep, AICc's correction 2K(K+1)/(n-K-1) is undefined for a 4-5 parameter sigmoid or swamps the fit
(+40 for K = 4 at n = 6), and in simulation it called clean sharp curves flat; the noise floor and
the structural checks below keep AIC honest at small n. The `ic` column says which one decided;
AIC, AICc (NaN where undefined) and BIC are reported for every model. Criteria(ic=...) forces one.

Verdict (the defaults of `Criteria`, in this order):
  insufficient-data  fewer than `min_sizes` (4) distinct sizes with a finite value
  non-monotone       a clear rise and a clear fall (each at least 20% of the range of values and 3
                     measurement sigmas, the values turning at most twice, the range at least 10% of a
                     bounded metric's range; see _reversal): a U-shape, a peak, a late collapse. Every model
                     here is monotone, so none is trusted to place a threshold; the reason gives the path
                     of the values (e.g. "0 -> 0.9 (size 7 of 8) -> 0.1") and Spearman's rho. Scatter that
                     turns more often is left to the flat checks
  flat               all values equal; or no model beats the constant by `flat_delta_ic` (2); or the
                     whole range of values is within `min_rise_over_noise` (3) measurement sigmas
  beyond-range       the sigmoid is clearly better (below) and rises by more than 3 sigma, but its
                     threshold x_c lies past the largest model, or the whole rise rests on the largest
                     size alone without passing the middle of the metric's range (the threshold is then
                     only bounded below): flagged, not claimed
  emergent           the sigmoid beats the best smooth model by `min_delta_ic` (2) AND is steep (its
                     10-90% width is at most `max_width_frac` (0.5) of the observed x range, and at most
                     `max_width` when set: analysis/emergence_analysis.py sets 2 decades of N) AND its
                     rise over the observed range exceeds 3 noise sigmas AND x_c <= x_max AND at least 2
                     sizes lie before the transition (fitted curve in the lowest quarter of its rise)
                     and at least 2 after its start (or the largest alone, past the middle of a bounded
                     metric's range: x_c then lies between the two largest sizes whatever the ceiling),
                     so that both the absence at small scale and the rise are observed
  smooth             anything else with signal: a smooth model is as good, or the sigmoid is shallow,
                     or fewer than 2 sizes precede its transition (only the saturation observed), or the
                     metric gets worse with scale: then the reason starts "inverse scaling: the metric gets
                     worse with scale", sharp drop or not (no falling curve is ever emergent)

Bootstrap (intervals for k and x_c; N_c = exp(x_c) by monotonicity): resampling sizes would often
drop the very points that place the transition, so sizes are kept and the values resampled:
  seeds       every size has >= 2 seeds: resample the seeds within each size (deviations rescaled by
              sqrt(m / (m - 1))), average
  residual    >= 15 sizes with residuals above the noise floor: fitted curve + resampled residuals,
              rescaled by sqrt(n / (n - p))
  parametric  otherwise (few sizes): fitted curve + Gaussian noise; when sigma is estimated from the
              residuals (dof = n - p), each replicate draws its own sigma * sqrt(dof / chi2_dof), so
              the uncertainty of sigma itself widens the interval as a t-quantile would.
Simulated coverage of nominal 95% intervals (sigmoid k=2, 3% noise, 100 curves each): x_c 0.81-0.91
and k 0.78-0.90 with 6-12 sizes, 0.9 with 3 seeds at 6 sizes, but only about 0.5 with 4 sizes: read
intervals from 4-5 sizes as optimistic.
Replicates are clipped to the metric's range and refitted with the same pinned floor and bounds.
Percentile intervals; a k interval that touches the upper bound means "at least this steep". Not run
for flat or non-monotone curves (no transition to put an interval on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from analysis.emergence import LN81, SigmoidFit, fit_sigmoid, refit_sigmoid, sigmoid
from analysis.smooth_models import SmoothFit, fit_constant, fit_linear, fit_power

VERDICTS = ("emergent", "smooth", "flat", "beyond-range", "non-monotone", "insufficient-data")
MODELS = ("constant", "linear", "power", "sigmoid")
# bootstrap replicates per curve by default: each tail of a 95% percentile interval then rests on ~25
# replicates; 90 curves of 8 sizes take 7-10 s on 2 shared CPU cores (measured for review 4)
N_BOOT = 1000


@dataclass(frozen=True)
class Criteria:
    min_sizes: int = 4
    min_delta_ic: float = 2.0  # the sigmoid must beat the best smooth model by this much
    flat_delta_ic: float = 2.0  # some model must beat the constant by this much, else flat
    max_width_frac: float = 0.5  # steep: 10-90% width at most this fraction of the observed x range ...
    max_width: float | None = None  # ... and at most this many x units (None: no absolute limit)
    min_rise_over_noise: float = 3.0  # substantial: rise over the observed range in noise sigmas
    ci: float = 0.95
    ic: str = "auto"  # "auto" (AICc when n >= K + 4 for every model, else AIC) | "AICc" | "AIC" | "BIC"

    def __post_init__(self):
        if self.min_sizes < 3:
            raise ValueError(f"min_sizes must be at least 3, got {self.min_sizes}")
        if not 0 < self.ci < 1:
            raise ValueError(f"ci must be in (0, 1), got {self.ci}")


@dataclass(frozen=True)
class ModelScore:
    name: str
    sse: float
    r2: float
    n_free: int  # fitted curve parameters (the likelihood adds one for the variance)
    log_likelihood: float
    aic: float
    aicc: float  # NaN where undefined (n <= K + 1)
    bic: float


@dataclass(frozen=True)
class CurveVerdict:
    verdict: str
    reason: str
    n_sizes: int
    n_points: int  # finite observations used (seeds counted)
    n_dropped: int  # non-finite observations dropped
    x: np.ndarray = field(repr=False)  # per size, sorted
    y: np.ndarray = field(repr=False)  # per-size mean, metric units
    n_seeds: np.ndarray = field(repr=False)
    higher_is_better: bool = True
    floor_pinned: bool = False
    sigmoid: SigmoidFit | None = None  # in oriented units (up = better); see floor/ceil below for metric units
    smooth: dict[str, SmoothFit] = field(default_factory=dict)  # oriented units
    scores: dict[str, ModelScore] = field(default_factory=dict)
    ic: str = ""  # "AICc" or "AIC": the criterion the verdict compared
    best_model: str = ""
    delta_ic: float = math.nan  # IC(best smooth) - IC(sigmoid): > 0 favours the sigmoid
    delta_ic_flat: float = math.nan  # IC(constant) - IC(best other): > 0 means there is signal
    noise: float = math.nan  # sigma the rise is compared with
    noise_measured: float = math.nan  # from seeds / binomial sampling; NaN if unknown
    rise: float = math.nan  # fitted sigmoid change across the observed range, oriented (> 0: improving)
    spearman_rho: float = math.nan  # rank correlation of the oriented per-size values with x (+1: better with scale)
    k_ci: tuple[float, float] = (math.nan, math.nan)
    x_c_ci: tuple[float, float] = (math.nan, math.nan)
    bootstrap: str = ""  # "seeds" | "residual" | "parametric" | "" (not run)
    n_boot: int = 0  # replicates that refitted
    boot_emergent_frac: float = math.nan  # share of replicates that are steep and inside the range
    boot_params: np.ndarray | None = field(default=None, repr=False)  # B x (floor, ceil, k, x_c), oriented

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    @property
    def floor(self) -> float:
        return self.sign * self.sigmoid.floor if self.sigmoid else math.nan

    @property
    def ceil(self) -> float:
        return self.sign * self.sigmoid.ceil if self.sigmoid else math.nan

    @property
    def x_range(self) -> float:
        return float(np.ptp(self.x)) if len(self.x) else math.nan

    @property
    def width(self) -> float:
        return self.sigmoid.width if self.sigmoid else math.nan

    def predict(self, x) -> np.ndarray:
        """The fitted sigmoid in metric units."""
        return self.sign * self.sigmoid.predict(x)

    def predict_smooth(self, x, name: str | None = None) -> np.ndarray:
        """The best smooth model (or the one named), in metric units."""
        name = name or min(("linear", "power"), key=lambda m: self._ic_value(m))
        return self.sign * self.smooth[name].predict(x)

    def band(self, x, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap interval of the sigmoid, metric units (NaN without a bootstrap)."""
        x = np.asarray(x, dtype=float)
        if self.boot_params is None or not np.isfinite(self.boot_params).any():
            return np.full_like(x, np.nan), np.full_like(x, np.nan)
        p = self.boot_params[np.all(np.isfinite(self.boot_params), axis=1)]
        curves = self.sign * sigmoid(x[None, :], p[:, :1], p[:, 1:2], p[:, 2:3], p[:, 3:4])
        q = 100 * (1 - ci) / 2
        lo, hi = np.percentile(curves, [q, 100 - q], axis=0)
        return np.minimum(lo, hi), np.maximum(lo, hi)

    def _ic_value(self, name: str) -> float:
        s = self.scores.get(name)
        if s is None:
            return math.inf
        return s.aicc if self.ic == "AICc" else s.aic

    def row(self) -> dict[str, Any]:
        """Flat scalar columns for a table (x-axis dependent columns are added by the caller)."""
        sig = self.sigmoid
        out: dict[str, Any] = {
            "verdict": self.verdict, "reason": self.reason, "n_sizes": self.n_sizes, "n_points": self.n_points,
            "n_dropped": self.n_dropped, "max_seeds": int(self.n_seeds.max()) if len(self.n_seeds) else 0,
            "x_min": float(self.x.min()) if len(self.x) else math.nan,
            "x_max": float(self.x.max()) if len(self.x) else math.nan,
            "k": sig.k if sig else math.nan, "k_lo": self.k_ci[0], "k_hi": self.k_ci[1],
            "x_c": sig.x_c if sig else math.nan, "x_c_lo": self.x_c_ci[0], "x_c_hi": self.x_c_ci[1],
            "threshold_in_range": bool(sig and self.x.min() <= sig.x_c <= self.x.max()),
            "width_10_90": self.width, "width_frac": self.width / self.x_range if sig else math.nan,
            "floor": self.floor, "ceil": self.ceil, "floor_pinned": self.floor_pinned,
            "rise": self.rise, "noise": self.noise, "noise_measured": self.noise_measured,
            "rise_over_noise": self.rise / self.noise if self.noise > 0 else math.nan,
            "sigmoid_converged": sig.converged if sig else None,
            "ic": self.ic, "best_model": self.best_model, "delta_ic": self.delta_ic,
            "delta_ic_flat": self.delta_ic_flat, "bootstrap": self.bootstrap, "n_boot": self.n_boot,
            "boot_emergent_frac": self.boot_emergent_frac, "spearman_rho": self.spearman_rho,
        }
        for name in MODELS:
            s = self.scores.get(name)
            for key in ("r2", "aic", "aicc", "bic"):
                out[f"{key}_{name}"] = getattr(s, key) if s else math.nan
        return out


def _scores(name: str, sse: float, r2: float, n_free: int, n: int, sigma_floor: float) -> ModelScore:
    """Gaussian log-likelihood with the variance estimated as SSE/n but not below sigma_floor^2."""
    var = max(sse / n, sigma_floor**2)
    loglik = -0.5 * n * math.log(2 * math.pi * var) - sse / (2 * var)
    k = n_free + 1
    aic = 2 * k - 2 * loglik
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.nan
    return ModelScore(name, sse, r2, n_free, loglik, aic, aicc, k * math.log(n) - 2 * loglik)


def _aggregate(x, y, group, n_samples):
    """Per distinct group (default: distinct x): mean x, mean y, seed values, total samples."""
    keys = np.asarray(group) if group is not None else np.round(x, 9)
    uniq, inverse = np.unique(keys, return_inverse=True)
    xs, ys, seeds, samples = [], [], [], []
    for i in range(len(uniq)):
        m = inverse == i
        xs.append(float(np.mean(x[m])))
        ys.append(float(np.mean(y[m])))
        seeds.append(y[m])
        samples.append(float(np.nansum(n_samples[m])) if n_samples is not None else math.nan)
    order = np.argsort(xs)
    return (np.array(xs)[order], np.array(ys)[order], [seeds[i] for i in order], np.array(samples)[order])


def _measured_noise(seeds: list[np.ndarray], p_mean: np.ndarray, samples: np.ndarray,
                    binomial: bool) -> float:
    """Standard error of a per-size mean from seed spread and (for 0/1 metrics) sampling; NaN if unknown."""
    counts = np.array([len(s) for s in seeds])
    parts = []
    if np.any(counts >= 2):
        dof = np.sum(counts[counts >= 2] - 1)
        pooled = sum(float(np.sum((s - s.mean()) ** 2)) for s in seeds if len(s) >= 2) / dof
        parts.append(float(np.mean(pooled / counts)))
    if binomial and np.all(np.isfinite(samples)) and np.all(samples > 0):
        p = np.clip(p_mean, 0.5 / samples, 1 - 0.5 / samples)
        parts.append(float(np.mean(p * (1 - p) / samples)))
    return math.sqrt(max(parts)) if parts else math.nan


def _percentile_ci(values: np.ndarray, ci: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) < 10:
        return math.nan, math.nan
    q = 100 * (1 - ci) / 2
    lo, hi = np.percentile(v, [q, 100 - q])
    return float(lo), float(hi)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation (average ranks for ties); NaN when either side is constant."""
    rx, ry = (_ranks(v) for v in (x, y))
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):  # ties share their mean rank
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _reversal(y: np.ndarray, sigma_meas: float, scale: float, bounded: bool) -> str:
    """A description of a clear non-monotone structure in the per-size values y (sorted by size), e.g.
    "0 -> 0.9 (size 7 of 8) -> 0.1", or "" when there is none.

    Clear: the largest rise (any size to a later one) and the largest fall both reach 20% of the range
    of values and 3 measurement sigmas (when known); the values turn at most twice, counting only steps
    of at least 10% of the range (more turns is scatter around a level: the flat verdict's business);
    and for a bounded metric the range is at least 10% of the metric's range.
    """
    spread = float(np.ptp(y))
    rise = float(np.max(y - np.minimum.accumulate(y)))  # largest increase from an earlier size
    fall = float(np.max(np.maximum.accumulate(y) - y))  # largest decrease from an earlier size
    need = max(0.2 * spread, 3 * sigma_meas if math.isfinite(sigma_meas) else 0.0)
    if min(rise, fall) < need or (bounded and spread < 0.1 * scale):
        return ""
    steps = np.diff(y)
    kept = np.flatnonzero(np.abs(steps) >= 0.1 * spread)
    signs = np.sign(steps[kept])
    turns = np.flatnonzero(signs[1:] != signs[:-1])
    if len(turns) == 0 or len(turns) > 2:
        return ""
    points = [0]
    for t in turns:  # the extreme between the last step of one direction and the first of the next
        lo, hi = kept[t] + 1, kept[t + 1]
        segment = y[lo:hi + 1]
        points.append(lo + int(np.argmax(segment) if signs[t] > 0 else np.argmin(segment)))
    points.append(len(y) - 1)
    return " -> ".join(f"{y[i]:.3g}" + (f" (size {i + 1} of {len(y)})" if 0 < i < len(y) - 1 else "")
                       for i in points)


def judge_curve(x, y, *, higher_is_better: bool = True, chance: float | None = None,
                bounds: tuple[float, float] | None = None, log_likelihood: bool = False,
                binomial: bool = False, n_samples=None, group=None, criteria: Criteria | None = None,
                n_boot: int = N_BOOT, seed: int = 0) -> CurveVerdict:
    """Fit constant, linear, power-law and sigmoid models to one curve and give its verdict.

    x: scale (log N, log C, or minus the validation loss: larger is a bigger model); y: the metric in
    its own units. Repeated x (seeds) are averaged and counted; `group` overrides what counts as one
    size (e.g. when each seed has its own x). chance: the metric's chance level (pins the floor of a
    bounded metric); bounds: the metric's natural range; binomial: values are means of 0/1 outcomes
    over n_samples (a sampling-noise estimate). Never raises on data: bad data give a verdict of
    insufficient-data or flat with the reason.
    """
    crit = criteria or Criteria()
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    ns = None if n_samples is None else np.asarray(n_samples, dtype=float).ravel()
    finite = np.isfinite(x) & np.isfinite(y)
    n_dropped = int(np.sum(~finite))
    sign = 1.0 if higher_is_better else -1.0

    def early(verdict: str, reason: str, xs=None, ys=None, counts=None):
        xs = np.array([]) if xs is None else xs
        ys = np.array([]) if ys is None else ys
        counts = np.array([], dtype=int) if counts is None else counts
        return CurveVerdict(verdict, reason, len(xs), int(np.sum(finite)), n_dropped, xs, ys, counts,
                            higher_is_better)

    if not finite.any():
        return early("insufficient-data", f"no finite values ({len(y)} rows, all NaN or infinite)"
                     if len(y) else "no rows")
    g = None if group is None else np.asarray(group)[finite]
    xs, ys, seeds, samples = _aggregate(x[finite], y[finite], g, None if ns is None else ns[finite])
    counts = np.array([len(s) for s in seeds])
    dropped = f"; {n_dropped} non-finite values dropped" if n_dropped else ""
    if len(xs) < crit.min_sizes or np.ptp(xs) == 0:
        return early("insufficient-data", f"{len(np.unique(xs))} distinct sizes with finite values; "
                     f"need at least {crit.min_sizes}{dropped}", xs, ys, counts)

    # orient: up is better
    yo = sign * ys
    seeds_o = [sign * s for s in seeds]
    b_o = None
    if bounds is not None:
        lo, hi = sorted((sign * bounds[0], sign * bounds[1]))
        b_o = (lo, hi)
    bounded = b_o is not None and all(math.isfinite(v) for v in b_o)
    scale = (b_o[1] - b_o[0]) if bounded else float(np.ptp(yo))
    sigma_meas = _measured_noise(seeds_o, ys, samples, binomial and bounded)
    if np.ptp(yo) <= 1e-9 * max(float(np.max(np.abs(yo))), scale, 1e-300):
        return early("flat", f"all {len(xs)} sizes have the same value ({ys[0]:.4g}){dropped}", xs, ys, counts)
    sigma_floor = max(sigma_meas if math.isfinite(sigma_meas) else 0.0, 1e-3 * scale)

    # floor: chance, for bounded metrics that do not go below it
    notes = []
    floor_o = None
    if chance is not None and math.isfinite(chance) and bounded and not log_likelihood:
        c_o = sign * float(chance)
        tol = max(3 * (sigma_meas if math.isfinite(sigma_meas) else 0.0), 0.05 * scale)
        if yo.min() >= c_o - tol and b_o[0] <= c_o <= b_o[1]:
            floor_o = c_o
        else:
            notes.append(f"values go below chance ({chance:.4g}): floor fitted, not pinned")

    fits: dict[str, SmoothFit] = {}
    sig: SigmoidFit | None = None
    for name, fitter in (("constant", fit_constant), ("linear", fit_linear)):
        fits[name] = fitter(xs, yo)
    try:
        fits["power"] = fit_power(xs, yo, y_range=b_o)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"power law not fitted: {exc}")
    try:
        sig = fit_sigmoid(xs, yo, floor=floor_o, y_range=b_o)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"sigmoid not fitted: {exc}")
    n = len(xs)
    scores = {name: _scores(name, f.sse, f.r2, f.n_free, n, sigma_floor) for name, f in fits.items()}
    if sig is not None:
        scores["sigmoid"] = _scores("sigmoid", sig.sse, sig.r2, sig.n_free, n, sigma_floor)
    if crit.ic == "auto":  # AICc once its correction stops dominating (n - K - 1 >= 3 for the largest model)
        k_max = max(sc.n_free for sc in scores.values()) + 1
        ic_name = "AICc" if n - k_max - 1 >= 3 else "AIC"
    else:
        ic_name = crit.ic

    def ic(name):
        s = scores.get(name)
        return math.inf if s is None else {"AICc": s.aicc, "AIC": s.aic, "BIC": s.bic}[ic_name]

    best = min(scores, key=ic)
    best_smooth = min(("linear", "power"), key=ic)
    delta_flat = ic("constant") - min(ic(m) for m in ("linear", "power", "sigmoid"))
    delta_ic = ic(best_smooth) - ic("sigmoid")
    best_fit = sig if best == "sigmoid" else fits[best]
    dof = max(n - best_fit.n_free, 1)
    resid_sigma = math.sqrt(best_fit.sse / dof)
    noise = max(sigma_floor, resid_sigma)
    noise_est = (resid_sigma, dof, sigma_floor)
    x_lo, x_hi, span = float(xs.min()), float(xs.max()), float(np.ptp(xs))
    rise = float(sig.predict(x_hi) - sig.predict(x_lo)) if sig else math.nan
    quarter = sig.predict(xs) <= sig.floor + 0.25 * (sig.ceil - sig.floor) if sig else np.ones(len(xs), bool)
    n_before, n_risen = int(np.sum(quarter)), int(np.sum(~quarter))
    # a lone risen point past the middle of a bounded range places x_c between the two largest sizes,
    # whatever the unobserved ceiling (it cannot exceed the range): located, k only a lower bound
    past_midpoint = bool(sig is not None and bounded and yo[-1] > sig.floor + 0.5 * (b_o[1] - sig.floor))
    slope = fits["linear"].params["b"]
    rho = _spearman(xs, yo)
    shape = _reversal(ys, sigma_meas, scale, bounded)  # symmetric in the orientation: metric units
    trend = "improves" if slope > 0 else "worsens"

    def steep(k):
        width = LN81 / k
        return width <= crit.max_width_frac * span and (crit.max_width is None or width <= crit.max_width)

    # verdict
    ic_text = f"{ic_name}"
    if shape:
        verdict, reason = "non-monotone", (f"non-monotone: the metric goes {shape} across sizes (Spearman rho "
                                           f"{rho:.2f}); no monotone model describes it, so no threshold is "
                                           f"claimed")
    elif delta_flat < crit.flat_delta_ic:
        verdict, reason = "flat", (f"no model beats a constant by {ic_text} >= {crit.flat_delta_ic:g} "
                                   f"(delta {delta_flat:.2f})")
    elif math.isfinite(sigma_meas) and np.ptp(yo) < crit.min_rise_over_noise * sigma_meas:
        verdict, reason = "flat", (f"range of values {np.ptp(yo):.3g} is within {crit.min_rise_over_noise:g} "
                                   f"measurement sigmas ({sigma_meas:.3g})")
    elif sig is not None and delta_ic >= crit.min_delta_ic and sig.ceil > sig.floor:
        width_text = (f"10-90% width {sig.width:.3g} = {sig.width / span:.0%} of the observed range "
                      f"{span:.3g}")
        substantial = rise >= crit.min_rise_over_noise * noise
        if not substantial:
            verdict, reason = "flat", (f"sigmoid preferred but its rise {rise:.3g} is under "
                                       f"{crit.min_rise_over_noise:g} sigma ({noise:.3g})")
        elif sig.x_c > x_hi:
            verdict, reason = "beyond-range", (f"sigmoid preferred ({ic_text} delta {delta_ic:.1f}) but its "
                                               f"threshold lies past the largest model (x_c - x_max = "
                                               f"{sig.x_c - x_hi:.2g}): extrapolated, not claimed")
        elif n_before < 2:
            verdict, reason = "smooth", (f"fewer than 2 sizes before the transition ({n_before} with the fitted "
                                         f"curve in the lowest quarter of its rise; x_c={sig.x_c:.3g}): the regime "
                                         f"before it is not observed, only the saturation")
        elif n_risen < 2 and not past_midpoint:
            verdict, reason = "beyond-range", (f"the rise rests on the largest size alone ({ys[-1]:.3g} there, "
                                               f"the sizes before it in the lowest quarter of the rise) and does "
                                               f"not pass the middle of the metric's range: the threshold is at "
                                               f"or past the largest model, not located")
        elif steep(sig.k):
            verdict, reason = "emergent", (f"sigmoid beats {best_smooth} by {ic_text} {delta_ic:.1f}; "
                                           f"{width_text}; rise {rise:.3g} = {rise / noise:.1f} sigma")
            if n_risen < 2:
                notes.append("the rise rests on the largest size alone, past the middle of the metric's range: "
                             "the threshold lies between the two largest sizes")
            elif np.sum(xs > sig.x_c) == 1:
                notes.append("only the largest size is past the midpoint: the ceiling is not observed")
            if sig.k >= 0.99 * 100 * LN81 / span:
                notes.append("transition narrower than the data resolve: k is a lower bound")
        else:
            limit = (f"{crit.max_width_frac:.0%} of the range" +
                     (f" and {crit.max_width:.3g}" if crit.max_width is not None else ""))
            verdict, reason = "smooth", f"sigmoid preferred but shallow: {width_text} (steep: <= {limit})"
    else:
        verdict, reason = "smooth", (f"{best_smooth} model as good as the sigmoid ({ic_text} delta "
                                     f"{delta_ic:.1f} < {crit.min_delta_ic:g}); metric {trend} with scale")
        if sig is not None and sig.ceil <= sig.floor:
            reason = f"metric {trend} with scale; no rising sigmoid"
        if slope < 0:
            reason = (f"inverse scaling: the metric gets worse with scale ({ys[0]:.3g} at the smallest size, "
                      f"{ys[-1]:.3g} at the largest; Spearman rho {rho:.2f}); " +
                      reason.replace(f"; metric {trend} with scale", "").replace(f"metric {trend} with scale; ", ""))
    if n_dropped:
        notes.append(f"{n_dropped} non-finite values dropped")
    if counts.max() > 1:
        notes.append(f"seeds averaged (up to {counts.max()} per size)")
    if notes:
        reason = reason + "; " + "; ".join(notes)

    result = CurveVerdict(verdict, reason, n, int(np.sum(finite)), n_dropped, xs, ys, counts, higher_is_better,
                          floor_o is not None, sig, fits, scores, ic_name, best, delta_ic, delta_flat, noise,
                          sigma_meas, rise, rho)
    if sig is None or n_boot <= 0 or verdict in ("flat", "non-monotone"):  # no transition to put an interval on
        return result
    return _with_bootstrap(result, seeds_o, yo, b_o, crit, n_boot, seed, steep, noise_est)


def _with_bootstrap(res: CurveVerdict, seeds_o, yo, b_o, crit: Criteria, n_boot: int, seed: int,
                    steep, noise_est: tuple[float, int, float]) -> CurveVerdict:
    rng = np.random.default_rng(seed)
    sig = res.sigmoid
    xs = res.x
    n = len(xs)
    fitted = sig.predict(xs)
    resid = yo - fitted
    resid_sigma, dof, sigma_floor = noise_est
    if all(len(s) >= 2 for s in seeds_o) and any(np.ptp(s) > 0 for s in seeds_o):
        method = "seeds"  # centred seed deviations, rescaled by sqrt(m / (m - 1)) so their spread is unbiased
        devs = [(s - s.mean()) * math.sqrt(len(s) / (len(s) - 1)) for s in seeds_o]
        means = np.array([s.mean() for s in seeds_o])
        reps = means[None, :] + np.stack(
            [d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1) for d in devs], axis=1)
    elif n >= 15 and resid_sigma > sigma_floor:
        method = "residual"
        centred = (resid - resid.mean()) * math.sqrt(n / max(n - sig.n_free, 1))
        reps = fitted[None, :] + rng.choice(centred, size=(n_boot, n))
    else:
        method = "parametric"
        # an estimated sigma is itself uncertain with few sizes: draw it per replicate from its sampling
        # distribution (sigma * sqrt(dof / chi2_dof)), which widens the intervals as a t-quantile would;
        # never below the noise floor (the measured noise when known)
        sigma = np.maximum(resid_sigma * np.sqrt(dof / rng.chisquare(dof, size=n_boot)), sigma_floor)
        reps = fitted[None, :] + rng.normal(0.0, 1.0, size=(n_boot, n)) * sigma[:, None]
    if b_o is not None:
        reps = np.clip(reps, b_o[0], b_o[1])
    params = refit_sigmoid(xs, reps, sig, y_range=b_o)
    ok = np.all(np.isfinite(params), axis=1)
    k, xc = params[:, 2], params[:, 3]
    inside = ok & (xc >= xs.min()) & (xc <= xs.max()) & (params[:, 1] > params[:, 0])
    steep_share = float(np.mean([steep(kk) for kk in k[inside]] + [False] * int(np.sum(ok & ~inside)))) \
        if ok.any() else math.nan
    return replace(res, k_ci=_percentile_ci(k, crit.ci), x_c_ci=_percentile_ci(xc, crit.ci), bootstrap=method,
                   n_boot=int(ok.sum()), boot_emergent_frac=steep_share, boot_params=params)
