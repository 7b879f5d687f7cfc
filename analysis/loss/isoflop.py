"""Approach 2 of Hoffmann et al. (2022): isoFLOP profiles.

Runs are grouped by training compute C (6ND unless a FLOPs column is given): sorted by C, a run
starts a new group when its C exceeds the group's first by more than `rel_tol` (default 5%). Per
group with at least 3 distinct model sizes, a parabola of the loss in x = log N is fitted by least
squares; its vertex gives N_opt(C), D_opt = C / (6 N_opt) and the loss there. Groups with fewer
sizes, or whose parabola opens downwards, are skipped with the reason; minima outside the sampled
N range are flagged and, by default, left out of the exponent fit (a vertex beyond the data is an
extrapolation of the parabola, not a measurement). Then, by least squares over the budgets,

    log N_opt = a log C + const,   log D_opt = b log C + const,

and since D_opt = C / (6 N_opt) exactly, b = 1 - a.

Intervals: the sizes in an isoFLOP grid are chosen, not sampled, so the points are not resampled.
The bootstrap is over residuals (fixed design): every parabola's fitted losses are perturbed by
relative residuals drawn with replacement from the pool of all budgets' residuals (each divided by
sqrt(1 - leverage) so it has the noise's variance), the parabolas, vertices and the regression are
refitted, and the percentile interval of a is taken; b's is 1 minus a's. This propagates the noise
of each vertex into the exponent. When the parabolas leave fewer than 3 residual degrees of freedom
(e.g. exactly 3 sizes per budget, where every parabola interpolates), there is no noise estimate to
resample, and the interval is the regression's t interval from the scatter of the vertices about
the line (needs at least 3 budgets); so it is with n_resamples = 0. `ci_method` says which was used.
Neither covers the bias of the parabola itself: keep the sampled N range about each minimum narrow
(Hoffmann used about one decade).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.interval import LEVEL
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN
from analysis.loss.frontier import Frontier
from analysis.options import check_options


@dataclass(frozen=True)
class IsoFlopMinimum:
    """One budget's parabola L = c0 + c1 u + c2 u^2, u = log N - x_centre, and its vertex."""

    flops: float  # the group's compute: geometric mean of its runs' C
    n_opt: float
    d_opt: float
    loss_min: float
    n_points: int
    n_sizes: int  # distinct N
    n_min: float  # smallest and largest N sampled at this budget
    n_max: float
    inside: bool  # vertex within [n_min, n_max]
    used: bool  # entered the exponent fit
    coefficients: tuple[float, float, float]  # (c0, c1, c2)
    x_centre: float

    def predict(self, n_params) -> np.ndarray:
        u = np.log(np.asarray(n_params, dtype=float)) - self.x_centre
        c0, c1, c2 = self.coefficients
        return c0 + c1 * u + c2 * u * u

    def as_dict(self) -> dict:
        return {"C": self.flops, "n_opt": self.n_opt, "d_opt": self.d_opt, "loss_min": self.loss_min,
                "n_points": self.n_points, "n_sizes": self.n_sizes, "n_min": self.n_min, "n_max": self.n_max,
                "inside_sampled_range": self.inside, "used": self.used}


@dataclass(frozen=True)
class SkippedBudget:
    flops: float
    n_points: int
    reason: str


@dataclass(frozen=True)
class IsoFlopFit:
    a: float  # N_opt ∝ C^a
    b: float  # D_opt ∝ C^b (= 1 - a)
    log_n_intercept: float  # log N_opt = a log C + log_n_intercept
    log_d_intercept: float
    a_ci: tuple[float, float] | None
    b_ci: tuple[float, float] | None
    a_se: float | None  # OLS standard error of the slope over the vertices (None with 2 budgets)
    level: float
    ci_method: str  # "residual bootstrap", "regression t interval" or "none: ..."
    minima: tuple[IsoFlopMinimum, ...]
    skipped: tuple[SkippedBudget, ...]
    n_invalid: int  # rows dropped for NaN, inf or non-positive values
    rel_tol: float
    flops_per_param_token: float
    use_edge_minima: bool
    n_resamples: int
    seed: int
    converged_fraction: float | None  # bootstrap resamples whose parabolas all kept a minimum

    def predict_n_opt(self, flops) -> np.ndarray:
        return np.exp(self.log_n_intercept + self.a * np.log(np.asarray(flops, dtype=float)))

    def predict_d_opt(self, flops) -> np.ndarray:
        return np.exp(self.log_d_intercept + self.b * np.log(np.asarray(flops, dtype=float)))

    def options(self) -> dict:
        return {"rel_tol": self.rel_tol, "flops_per_param_token": self.flops_per_param_token,
                "use_edge_minima": self.use_edge_minima, "level": self.level, "n_resamples": self.n_resamples,
                "seed": self.seed, "ci_method": self.ci_method}


def group_by_compute(flops, rel_tol: float = 0.05) -> np.ndarray:
    """Integer group labels (0, 1, ... in increasing compute): sorted by C, a run opens a new group when
    its C exceeds the current group's smallest by more than rel_tol."""
    c = np.asarray(flops, dtype=float).ravel()
    order = np.argsort(c, kind="stable")
    labels = np.empty(len(c), dtype=int)
    group, first = -1, None
    for i in order:
        if first is None or c[i] > first * (1 + rel_tol):
            group, first = group + 1, c[i]
        labels[i] = group
    return labels


def _design(u: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(u), u, u * u])


def _vertex(coef: np.ndarray) -> np.ndarray:
    """u at the vertex of c0 + c1 u + c2 u^2; NaN where the parabola has no minimum. coef: (3, ...)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(coef[2] > 0, -coef[1] / (2 * coef[2]), np.nan)


def _slope(log_c: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of y on log_c, column by column (y: (G,) or (G, R))."""
    xc = log_c - log_c.mean()
    y2 = y if y.ndim == 2 else y[:, None]
    slope = xc @ (y2 - y2.mean(axis=0)) / (xc @ xc)
    intercept = y2.mean(axis=0) - slope * log_c.mean()
    return (slope, intercept) if y.ndim == 2 else (slope[0], intercept[0])


def fit_isoflop(n_params, n_tokens, loss, flops=None, *, rel_tol: float = 0.05, min_sizes: int = 3,
                use_edge_minima: bool = False, level: float = LEVEL, n_resamples: int = 1000, seed: int = 0,
                flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> IsoFlopFit:
    """IsoFLOP minima per compute budget and the exponents of N_opt(C), D_opt(C) with intervals.

    Bad option values are a ValueError naming the option, before any work."""
    check_options(rel_tol=(rel_tol, "non-negative"), min_sizes=(min_sizes, "count"), level=(level, "probability"),
                  n_resamples=(n_resamples, "count-or-zero"), seed=(seed, "seed"),
                  flops_per_param_token=(flops_per_param_token, "positive"))
    if min_sizes < 3:
        raise ValueError(f"a parabola needs at least 3 distinct sizes, min_sizes={min_sizes}")
    n, d, l_ = (np.asarray(x, dtype=float).ravel() for x in (n_params, n_tokens, loss))
    c = flops_per_param_token * n * d if flops is None else np.asarray(flops, dtype=float).ravel()
    if not (len(n) == len(d) == len(l_) == len(c)):
        raise ValueError(f"N, D, loss and FLOPs differ in length: {len(n)}, {len(d)}, {len(l_)}, {len(c)}")
    ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(l_) & np.isfinite(c) & (n > 0) & (d > 0) & (l_ > 0) & (c > 0)
    minima, skipped, groups = _parabolas(n[ok], l_[ok], c[ok], rel_tol, min_sizes, use_edge_minima,
                                         flops_per_param_token)
    used_minima = [m for m in minima if m.used]
    if len(used_minima) < 2:
        raise ValueError(
            f"the exponent fit needs minima at 2 or more compute budgets, got {len(used_minima)} "
            f"({len(minima)} parabolas with a minimum, {sum(not m.inside for m in minima)} outside the sampled N "
            f"range; {len(skipped)} budgets skipped: " + "; ".join(f"C={s.flops:.3g}: {s.reason}" for s in skipped)
            + "). Check --rel-tol and that each budget has 3+ model sizes.")
    log_c = np.log([m.flops for m in used_minima])
    log_n_opt = np.log([m.n_opt for m in used_minima])
    a, intercept = _slope(log_c, log_n_opt)
    a = float(a)
    # log D_opt = log C - log k - log N_opt, exactly.
    log_d_intercept = -float(intercept) - float(np.log(flops_per_param_token))
    a_ci, a_se, method, converged_fraction = _exponent_interval(groups, log_c, log_n_opt, a, intercept, level,
                                                                n_resamples, seed)
    return IsoFlopFit(
        a=a, b=1.0 - a, log_n_intercept=float(intercept), log_d_intercept=log_d_intercept, a_ci=a_ci,
        b_ci=None if a_ci is None else (1.0 - a_ci[1], 1.0 - a_ci[0]), a_se=a_se, level=level, ci_method=method,
        minima=tuple(minima), skipped=tuple(skipped), n_invalid=int((~ok).sum()), rel_tol=rel_tol,
        flops_per_param_token=flops_per_param_token, use_edge_minima=use_edge_minima, n_resamples=n_resamples,
        seed=seed, converged_fraction=converged_fraction)


def _parabolas(n, l_, c, rel_tol, min_sizes, use_edge_minima, flops_per_param_token):
    """Per compute group its parabola and minimum: (minima, skipped budgets, the used parabolas' fitted values,
    residuals, leverages, pseudo-inverses and centres for the bootstrap)."""
    labels = group_by_compute(c, rel_tol)
    minima: list[IsoFlopMinimum] = []
    skipped: list[SkippedBudget] = []
    groups = []  # (fitted, residual, leverage, pinv, centre) of the used parabolas, for the bootstrap
    for g in range(labels.max() + 1 if len(labels) else 0):
        rows = labels == g
        budget = float(np.exp(np.log(c[rows]).mean()))
        sizes = np.unique(n[rows])
        if len(sizes) < min_sizes:
            skipped.append(SkippedBudget(budget, int(rows.sum()), f"{len(sizes)} distinct model sizes "
                                                                   f"(a parabola needs {min_sizes})"))
            continue
        x = np.log(n[rows])
        centre = float(x.mean())
        design = _design(x - centre)
        coef = np.linalg.lstsq(design, l_[rows], rcond=None)[0]
        u_opt = float(_vertex(coef))
        if not np.isfinite(u_opt):
            skipped.append(SkippedBudget(budget, int(rows.sum()), "the parabola opens downwards (no minimum)"))
            continue
        n_opt = float(np.exp(centre + u_opt))
        inside = bool(sizes.min() <= n_opt <= sizes.max())
        used = inside or use_edge_minima
        minima.append(IsoFlopMinimum(
            flops=budget, n_opt=n_opt, d_opt=budget / (flops_per_param_token * n_opt),
            loss_min=float(coef[0] + coef[1] * u_opt + coef[2] * u_opt**2), n_points=int(rows.sum()),
            n_sizes=len(sizes), n_min=float(sizes.min()), n_max=float(sizes.max()), inside=inside, used=used,
            coefficients=(float(coef[0]), float(coef[1]), float(coef[2])), x_centre=centre))
        if used:
            pinv = np.linalg.pinv(design)
            fitted = design @ coef
            groups.append((fitted, l_[rows] - fitted, np.einsum("ij,ji->i", design, pinv), pinv, centre))
    return minima, skipped, groups


def _exponent_interval(groups, log_c, log_n_opt, a, intercept, level, n_resamples, seed):
    """(a_ci, a_se, method, converged_fraction): the residual bootstrap when the parabolas leave noise to
    resample, else the regression's t interval over the vertices, else none (see the module doc)."""
    a_se = None
    dof = len(log_c) - 2
    if dof > 0:
        resid = log_n_opt - (a * log_c + intercept)
        a_se = float(np.sqrt(resid @ resid / dof / ((log_c - log_c.mean()) ** 2).sum()))
    a_ci, converged_fraction, method = None, None, "none: 2 budgets and too few residual degrees of freedom"
    pool = _residual_pool(groups)
    residual_dof = sum(len(fitted) - 3 for fitted, *_ in groups)
    if residual_dof >= 3 and n_resamples > 0:
        draws, ok_draws = _residual_bootstrap(groups, pool, log_c, n_resamples, seed)
        converged_fraction = float(ok_draws.mean())
        if ok_draws.sum() >= 10:
            lo, hi = np.quantile(draws[ok_draws], [(1 - level) / 2, (1 + level) / 2])
            a_ci, method = (float(lo), float(hi)), "residual bootstrap"
    if a_ci is None and a_se is not None:
        t = float(stats.t.ppf((1 + level) / 2, dof))
        a_ci, method = (a - t * a_se, a + t * a_se), "regression t interval"
    return a_ci, a_se, method, converged_fraction


def _residual_pool(groups) -> np.ndarray:
    """Relative residuals of all used parabolas, each scaled by 1/sqrt(1 - leverage), centred."""
    parts = []
    for fitted, residual, hat, _, _ in groups:
        free = hat < 1 - 1e-9  # a point a parabola must pass through carries no noise estimate
        parts.append(residual[free] / fitted[free] / np.sqrt(1 - hat[free]))
    pool = np.concatenate(parts) if parts else np.array([])
    return pool - pool.mean() if len(pool) else pool


def _residual_bootstrap(groups, pool, log_c, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Slopes a* of n_resamples refits, and which resamples kept a minimum at every budget."""
    rng = np.random.default_rng(seed)
    log_n_opt = np.empty((len(groups), n_resamples))
    for g, (fitted, _, _, pinv, centre) in enumerate(groups):
        losses = fitted[:, None] * (1 + pool[rng.integers(len(pool), size=(len(fitted), n_resamples))])
        log_n_opt[g] = centre + _vertex(pinv @ losses)
    ok = np.all(np.isfinite(log_n_opt), axis=0)
    slopes = np.full(n_resamples, np.nan)
    if ok.any():
        slopes[ok] = _slope(log_c, log_n_opt[:, ok])[0]
    return slopes, ok


@dataclass(frozen=True)
class ExponentAgreement:
    """Approach 2 (isoFLOP) against Approach 3 (loss-law fit): the exponents a and b side by side."""

    a_isoflop: float
    a_loss_law: float
    a_difference: float  # isoFLOP minus loss law
    a_cis_overlap: bool | None  # None when either interval is missing
    b_isoflop: float
    b_loss_law: float
    b_difference: float
    b_cis_overlap: bool | None

    def statement(self) -> str:
        verdict = {True: "their intervals overlap", False: "their intervals do NOT overlap",
                   None: "no intervals to compare"}[self.a_cis_overlap]
        return (f"N* ∝ C^a: a = {self.a_isoflop:.3f} (isoFLOP) vs {self.a_loss_law:.3f} (loss law), difference "
                f"{self.a_difference:+.3f}; {verdict}.")

    def as_dict(self) -> dict:
        return {"a_isoflop": self.a_isoflop, "a_loss_law": self.a_loss_law, "a_difference": self.a_difference,
                "a_cis_overlap": self.a_cis_overlap, "b_isoflop": self.b_isoflop, "b_loss_law": self.b_loss_law,
                "b_difference": self.b_difference, "b_cis_overlap": self.b_cis_overlap}


def _overlap(x: tuple[float, float] | None, y: tuple[float, float] | None) -> bool | None:
    if x is None or y is None or not all(np.isfinite([*x, *y])):
        return None
    return bool(x[0] <= y[1] and y[0] <= x[1])


def compare_exponents(isoflop: IsoFlopFit, frontier: Frontier) -> ExponentAgreement:
    """How far Approach 2's exponents are from Approach 3's, and whether their intervals overlap."""
    return ExponentAgreement(
        a_isoflop=isoflop.a, a_loss_law=frontier.a, a_difference=isoflop.a - frontier.a,
        a_cis_overlap=_overlap(isoflop.a_ci, frontier.a_ci), b_isoflop=isoflop.b, b_loss_law=frontier.b,
        b_difference=isoflop.b - frontier.b, b_cis_overlap=_overlap(isoflop.b_ci, frontier.b_ci))
