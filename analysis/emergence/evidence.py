"""The evidence a verdict rests on: one curve (a metric against scale) in, every number the rule needs out.

Orientation. Every curve is first turned so that up means better: lower-is-better metrics (losses,
Brier scores, errors) are negated, their chance level and natural range with them. The sigmoid is
then always rising (k > 0 with ceil > floor), and `k`, `x_c` mean the same thing for every metric.
Floors and ceilings are reported back in the metric's own units (floor: the small-model plateau).

Models (analysis/emergence/smooth.py, sigmoid.py): constant, linear, saturating power law, sigmoid.
The sigmoid's floor is pinned at chance for bounded metrics (accuracies, similarities, Brier, capped
errors) when the data do not go below chance; log-likelihoods are never pinned.

Information criteria. Gaussian likelihood with the noise variance estimated from the residuals, but
never below a noise floor: the measurement noise when known (spread over seeds; binomial sampling
error p(1-p)/n_samples for all-or-nothing metrics) and at least 0.1% of the metric's range. Without
that floor a 4-parameter curve through 4-5 points has SSE ~ 0 and an infinite likelihood. Parameters
counted: the model's plus one for the variance. One criterion for every curve (Criteria.ic: AIC by
default; AICc, whose correction swamps a 4-5 parameter fit at 6-8 sizes and in simulation called clean
sharp curves flat, and BIC on request); the rule (analysis/emergence/rule.py) asks for enough sizes.

A curve that rises to a peak and then falls (one turn, up first) is fitted on its running maximum
(`envelope`), so that a jump followed by a partial fall can be judged as the jump it is; how far it
falls back is `fall_back`, and the rule decides what to make of it.

Without any fit: each size's measured standard error (analysis/emergence/noise.py), the largest difference
between two sizes and the largest distance from a pinned chance level in those sigmas (`contrast`,
`off_chance`), and the largest step between neighbouring sizes with where the other sizes sit
(analysis/emergence/jump.py). With the sigmoid: how many sizes lie on its 10-90% rise (`n_on_rise`) and
which two sizes surround its x_c (`around_x_c`). Nothing here decides a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.emergence.jump import Jump, largest_step
from analysis.emergence.noise import Noise, measure
from analysis.emergence.sigmoid import SigmoidFit, fit_sigmoid
from analysis.emergence.smooth import SmoothFit, fit_constant, fit_linear, fit_power

MODELS = ("constant", "linear", "power", "sigmoid")


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

    def value(self, ic: str) -> float:
        return {"AICc": self.aicc, "AIC": self.aic, "BIC": self.bic}[ic]


@dataclass(frozen=True)
class CurveEvidence:
    """Per-size values and every fit and statistic of one curve; fits in oriented units (up = better)."""

    x: np.ndarray = field(repr=False)  # per size, sorted
    y: np.ndarray = field(repr=False)  # per-size mean, metric units
    n_seeds: np.ndarray = field(repr=False)
    seeds: tuple[np.ndarray, ...] = field(default=(), repr=False)  # per size, the seeds' values, metric units
    n_points: int = 0  # finite observations used (seeds counted)
    n_dropped: int = 0  # non-finite observations dropped
    empty_reason: str = ""  # why there is no size at all
    higher_is_better: bool = True
    bounded: bool = False  # the metric has a finite natural range
    scale: float = math.nan  # the metric's range when bounded, else the range of the values
    spread: float = 0.0  # range of the oriented per-size values
    floor_pinned: bool = False
    ic: str = "AIC"
    sigmoid: SigmoidFit | None = None
    smooth: dict[str, SmoothFit] = field(default_factory=dict)
    scores: dict[str, ModelScore] = field(default_factory=dict)
    best_model: str = ""
    best_smooth: str = ""
    delta_ic: float = math.nan  # IC(best smooth) - IC(sigmoid): > 0 favours the sigmoid
    delta_ic_flat: float = math.nan  # IC(constant) - IC(best other): > 0 means there is signal
    noise: float = math.nan  # sigma the rise is compared with
    noise_measured: float = math.nan  # from seeds / binomial sampling; NaN if unknown
    measured: Noise | None = field(default=None, repr=False)  # per size, what noise.py knows
    contrast: float = math.nan  # largest difference between two sizes, in sigmas of that difference (measured)
    off_chance: float = math.nan  # largest distance of a size from a pinned chance level, in its sigmas (measured)
    rise: float = math.nan  # fitted sigmoid change across the observed range, oriented (> 0: improving)
    slope: float = math.nan  # of the linear model, oriented
    spearman_rho: float = math.nan
    n_before: int = 0  # sizes with the fitted sigmoid in the lowest quarter of its rise
    n_risen: int = 0
    n_on_rise: int = 0  # sizes on the 10-90% part of the fitted rise
    around_x_c: tuple[float, float] = (math.nan, math.nan)  # x of the sizes either side of the fitted x_c
    n_past_midpoint: int = 0  # sizes past x_c
    past_midpoint: bool = False  # the largest size is past the middle of a bounded metric's range
    jump: Jump | None = None  # the largest step between neighbouring sizes (jump.py)
    reversal: str = ""  # the path of a clear non-monotone curve, e.g. "0 -> 0.9 (size 7 of 8) -> 0.6"
    envelope: bool = False  # fitted on the running maximum (one peak, up first)
    fall_back: float = math.nan  # share of the rise lost after the peak (envelope curves)
    notes: tuple[str, ...] = ()  # about the fits (a model not fitted, values below chance, seeds averaged)

    @property
    def n_sizes(self) -> int:
        return len(self.x)

    @property
    def n_free_sigmoid(self) -> int:
        return 3 if self.floor_pinned else 4

    @property
    def x_max(self) -> float:
        return float(self.x.max()) if len(self.x) else math.nan

    @property
    def x_range(self) -> float:
        return float(np.ptp(self.x)) if len(self.x) else math.nan

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    @property
    def oriented(self) -> np.ndarray:
        """The per-size values the models were fitted to: oriented, and the running maximum for an envelope."""
        yo = self.sign * self.y
        return np.maximum.accumulate(yo) if self.envelope else yo


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


def _contrasts(yo: np.ndarray, se: np.ndarray, floor_o: float | None, sigma_floor: float) -> dict:
    """In measured sigmas: the largest difference between two sizes, and the largest distance from chance."""
    se = np.fmax(se, sigma_floor)
    if not np.all(np.isfinite(se)):
        return {}
    pairs = np.abs(yo[:, None] - yo[None, :]) / np.hypot(se[:, None], se[None, :])
    out = {"contrast": float(pairs.max())}
    if floor_o is not None:
        out["off_chance"] = float(np.max(np.abs(yo - floor_o) / se))
    return out


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


def _peak_then_fall(yo: np.ndarray) -> float:
    """For oriented values that rise to a peak before the largest size and stay below it after: the share
    of the rise lost after the peak, at its deepest (0 < share); NaN for any other shape. A partial
    recovery after the fall keeps the shape (Pythia's 3-digit addition: 0 -> 0.139 at 2.8B -> 0.082 ->
    0.12; tests/analysis/emergence/test_emergence_published.py)."""
    peak = int(np.argmax(yo))
    if peak in (0, len(yo) - 1):
        return math.nan
    start = float(np.min(yo[:peak + 1]))
    rise = float(yo[peak]) - start
    if rise <= 0:
        return math.nan
    return (float(yo[peak]) - float(np.min(yo[peak:]))) / rise


def _per_size(x, y, group, n_samples):
    """Finite observations averaged per size: (xs, ys, seeds, samples, n_points, n_dropped)."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    ns = None if n_samples is None else np.asarray(n_samples, dtype=float).ravel()
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return np.array([]), np.array([]), [], np.array([]), 0, int(len(y))
    g = None if group is None else np.asarray(group)[finite]
    xs, ys, seeds, samples = _aggregate(x[finite], y[finite], g, None if ns is None else ns[finite])
    return xs, ys, seeds, samples, int(finite.sum()), int((~finite).sum())


def _pinned_floor(yo, chance, b_o, sigma_meas, scale, log_likelihood, sign, notes) -> float | None:
    """The oriented chance level when a bounded metric's floor is pinned there, else None (with a note)."""
    if chance is None or not math.isfinite(chance) or b_o is None or log_likelihood:
        return None
    c_o = sign * float(chance)
    tol = max(3 * (sigma_meas if math.isfinite(sigma_meas) else 0.0), 0.05 * scale)
    if yo.min() >= c_o - tol and b_o[0] <= c_o <= b_o[1]:
        return c_o
    notes.append(f"values go below chance ({chance:.4g}): floor fitted, not pinned")
    return None


def _fit_models(xs, yo, floor_o, b_o, notes) -> tuple[dict[str, SmoothFit], SigmoidFit | None]:
    fits = {"constant": fit_constant(xs, yo), "linear": fit_linear(xs, yo)}
    sig = None
    try:
        fits["power"] = fit_power(xs, yo, y_range=b_o)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"power law not fitted: {exc}")
    try:
        sig = fit_sigmoid(xs, yo, floor=floor_o, y_range=b_o)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"sigmoid not fitted: {exc}")
    return fits, sig


def _comparison(fits, sig, n, sigma_floor, ic) -> dict:
    """Scores of every model and what the rule compares: best model, best smooth, the two IC deltas."""
    scores = {name: _scores(name, f.sse, f.r2, f.n_free, n, sigma_floor) for name, f in fits.items()}
    if sig is not None:
        scores["sigmoid"] = _scores("sigmoid", sig.sse, sig.r2, sig.n_free, n, sigma_floor)

    def value(name):
        s = scores.get(name)
        v = math.inf if s is None else s.value(ic)
        return math.inf if math.isnan(v) else v

    best = min(scores, key=value)
    best_smooth = min(("linear", "power"), key=value)
    others = min(value(m) for m in ("linear", "power", "sigmoid"))
    return {"scores": scores, "best_model": best, "best_smooth": best_smooth,
            "delta_ic": value(best_smooth) - value("sigmoid"), "delta_ic_flat": value("constant") - others}


def _transition(sig: SigmoidFit | None, xs, yo, b_o) -> dict:
    """Where the sizes lie on the fitted sigmoid: before its rise, risen, on its 10-90% part, past x_c, past
    the range's middle; and the two sizes either side of x_c."""
    if sig is None:
        return {}
    fraction = (sig.predict(xs) - sig.floor) / (sig.ceil - sig.floor) if sig.ceil != sig.floor else np.zeros(len(xs))
    quarter = fraction <= 0.25
    past_mid = bool(b_o is not None and yo[-1] > sig.floor + 0.5 * (b_o[1] - sig.floor))
    above = int(np.searchsorted(xs, sig.x_c, side="right"))
    around = (float(xs[above - 1]), float(xs[above])) if 0 < above < len(xs) else (math.nan, math.nan)
    return {"rise": float(sig.predict(xs.max()) - sig.predict(xs.min())), "n_before": int(np.sum(quarter)),
            "n_risen": int(np.sum(~quarter)), "n_on_rise": int(np.sum((fraction > 0.1) & (fraction < 0.9))),
            "around_x_c": around, "n_past_midpoint": int(np.sum(xs > sig.x_c)), "past_midpoint": past_mid}


def gather(x, y, *, higher_is_better: bool = True, chance: float | None = None,
           bounds: tuple[float, float] | None = None, log_likelihood: bool = False, binomial: bool = False,
           n_samples=None, group=None, ic: str = "AIC") -> CurveEvidence:
    """The evidence of one curve: x the scale (larger: bigger model), y the metric in its own units; repeated
    x (or `group`) averaged as seeds. Never raises on data: no rows gives an evidence with no sizes."""
    xs, ys, seeds, samples, n_points, n_dropped = _per_size(x, y, group, n_samples)
    base = {"x": xs, "y": ys, "n_seeds": np.array([len(s) for s in seeds], dtype=int), "seeds": tuple(seeds),
            "n_points": n_points, "n_dropped": n_dropped, "higher_is_better": higher_is_better, "ic": ic}
    if not len(xs):
        return CurveEvidence(**base, empty_reason=f"no finite values ({n_dropped} rows, all NaN or infinite)"
                             if n_dropped else "no rows")
    sign = 1.0 if higher_is_better else -1.0
    b_o = None if bounds is None else tuple(sorted((sign * bounds[0], sign * bounds[1])))
    bounded = b_o is not None and all(math.isfinite(v) for v in b_o)
    b_o = b_o if bounded else None
    yo = sign * ys
    spread = float(np.ptp(yo)) if np.ptp(yo) > 1e-9 * max(float(np.max(np.abs(yo))), 1e-300) else 0.0
    scale = (b_o[1] - b_o[0]) if bounded else (spread or 1.0)
    measured = measure(seeds, samples, binomial and bounded)
    se = measured.standard_errors(ys)  # per size; their mean in variance is the curve's measured sigma
    sigma_meas = math.sqrt(float(np.mean(se ** 2))) if np.all(np.isfinite(se)) else math.nan
    notes: list[str] = []
    floor_o = _pinned_floor(yo, chance, b_o, sigma_meas, scale, log_likelihood, sign, notes)
    base.update(bounded=bounded, scale=scale, spread=spread, floor_pinned=floor_o is not None,
                noise_measured=sigma_meas, measured=measured, spearman_rho=_spearman(xs, yo),
                reversal=_reversal(ys, sigma_meas, scale, bounded))
    base.update(_contrasts(yo, se, floor_o, 1e-3 * scale))
    fall_back = _peak_then_fall(yo) if base["reversal"] else math.nan
    base.update(envelope=math.isfinite(fall_back), fall_back=fall_back)
    if len(xs) < 3 or spread == 0 or np.ptp(xs) == 0:
        return CurveEvidence(**base, notes=tuple(notes))
    yf = np.maximum.accumulate(yo) if base["envelope"] else yo
    base["jump"] = largest_step(xs, yf, se, yf.min() if floor_o is None else floor_o, 1e-3 * scale,
                                b_o[1] if bounded else None)
    fits, sig = _fit_models(xs, yf, floor_o, b_o, notes)
    sigma_floor = max(sigma_meas if math.isfinite(sigma_meas) else 0.0, 1e-3 * scale)
    compared = _comparison(fits, sig, len(xs), sigma_floor, ic)
    best = compared["best_model"]
    best_fit = sig if best == "sigmoid" else fits[best]
    dof = max(len(xs) - best_fit.n_free, 1)
    resid_sigma = math.sqrt(best_fit.sse / dof)
    if len(seeds) and max(len(s) for s in seeds) > 1:
        notes.append(f"seeds averaged (up to {max(len(s) for s in seeds)} per size)")
    return CurveEvidence(**base, sigmoid=sig, smooth=fits, **compared, noise=max(sigma_floor, resid_sigma),
                         slope=fits["linear"].params["b"],
                         **_transition(sig, xs, yf, b_o), notes=tuple(notes))
