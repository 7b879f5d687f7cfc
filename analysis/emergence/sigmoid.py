"""Emergence thresholds: a sigmoid in x = log N fitted to a task metric.

    y = floor + (ceil - floor) / (1 + exp(-k (x - x_c)))

gives the threshold N_c = exp(x_c) (in parameters) and the steepness k (per e-fold of N); the
transition from 10% to 90% of the rise spans `2 ln 9 / k` in x. The floor is pinned at the task's
chance level when it is known. Pure functions: arrays in, dataclasses out.

The fit follows the house recipe: a vectorised grid over (k, x_c) on which floor and ceil are solved
in closed form (they enter linearly), then least squares with the analytic Jacobian from the best grid
points. `refit_sigmoid` reruns that on many bootstrap replicates of y at once: the grid is one matrix
product for all replicates, and the refinement a batched Levenberg-Marquardt (bounds kept by a smooth
reparametrisation) from two starts per replicate, the original estimate and the replicate's own best
grid point. The comparison with smooth models: analysis/emergence/evidence.py; the verdicts:
analysis/emergence/rule.py; the bootstrap design: analysis/emergence/bootstrap.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

LN81 = 2.0 * math.log(9.0)  # the 10%-90% width of a logistic is LN81 / k


@dataclass(frozen=True)
class SigmoidFit:
    floor: float
    ceil: float
    k: float
    x_c: float
    r2: float
    sse: float
    n_points: int
    converged: bool
    floor_fixed: bool

    @property
    def n_c(self) -> float:
        """The threshold in the units of exp(x): parameters when x = log N."""
        return float(math.exp(self.x_c)) if self.x_c < 700 else math.inf

    @property
    def width(self) -> float:
        """The x distance over which the curve goes from 10% to 90% of its rise."""
        return LN81 / self.k

    @property
    def n_free(self) -> int:
        """Fitted parameters (floor, when not pinned; ceil; k; x_c)."""
        return 3 if self.floor_fixed else 4

    def predict(self, x) -> np.ndarray:
        return sigmoid(np.asarray(x, dtype=float), self.floor, self.ceil, self.k, self.x_c)

    def slope(self, x) -> np.ndarray:
        """d y / d x of the fitted curve."""
        s = _logistic(self.k * (np.asarray(x, dtype=float) - self.x_c))
        return (self.ceil - self.floor) * self.k * s * (1.0 - s)

    def jacobian(self, x) -> np.ndarray:
        """n x n_free derivatives of the prediction in the fitted parameters ((floor,) ceil, k, x_c)."""
        return _jacobian(np.asarray(x, dtype=float), self.floor, self.ceil, self.k, self.x_c, self.floor_fixed)


def sigmoid(x: np.ndarray, floor: float, ceil: float, k: float, x_c: float) -> np.ndarray:
    z = np.clip(-k * (x - x_c), -700, 700)
    return floor + (ceil - floor) / (1.0 + np.exp(z))


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(-z, -700, 700)))


def _jacobian(x: np.ndarray, f: float, c: float, k: float, xc: float, floor_fixed: bool) -> np.ndarray:
    """n x p derivatives of the sigmoid in ((floor,) ceil, k, x_c): analytic, for the fit and its leverages."""
    s = _logistic(k * (x - xc))
    ds = (c - f) * s * (1.0 - s)
    cols = [s, ds * (x - xc), -ds * k]
    return np.stack(cols if floor_fixed else [1.0 - s, *cols], axis=1)


@dataclass(frozen=True)
class _Bounds:
    """Parameter boxes for one curve, shared by the fit and its bootstrap refits."""
    lo: float
    hi: float
    k: tuple[float, float]
    x_c: tuple[float, float]


def _bounds(x: np.ndarray, y_range, k_max: float | None) -> _Bounds:
    lo, hi = y_range if y_range is not None else (-np.inf, np.inf)
    span = float(np.ptp(x))
    k_hi = k_max if k_max is not None else 100.0 * LN81 / span  # narrowest width: 1% of the observed range
    k_lo = min(LN81 / (100.0 * span), k_hi / 10)  # widest: 100 times the range (a straight line in effect)
    return _Bounds(float(lo), float(hi), (k_lo, k_hi), (float(x.min() - 2 * span), float(x.max() + 2 * span)))


def _grid(x: np.ndarray, b: _Bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, x_c) grid points and the logistic basis S (G x n) at each."""
    span = float(np.ptp(x))
    ks = np.geomspace(b.k[0] * 1.001, b.k[1] * 0.999, 24)
    xcs = np.linspace(x.min() - 1.5 * span, x.max() + 1.5 * span, 49)
    kk, cc = (a.ravel() for a in np.meshgrid(ks, xcs, indexing="ij"))
    return kk, cc, _logistic(kk[:, None] * (x[None, :] - cc[:, None]))


def _linear_part(S: np.ndarray, Y: np.ndarray, floor: float | None, b: _Bounds):
    """Closed-form floor and ceil for every grid row of S and every replicate row of Y.

    Returns (F, C, SSE), each G x B. With bounds, the unconstrained solution is clipped into the box
    (a good start for the refinement, which enforces the bounds exactly).
    """
    Y = np.atleast_2d(Y)
    T = 1.0 - S
    ss = np.einsum("gi,gi->g", S, S)[:, None]
    tt = np.einsum("gi,gi->g", T, T)[:, None]
    ts = np.einsum("gi,gi->g", T, S)[:, None]
    ty, sy = T @ Y.T, S @ Y.T
    if floor is not None:
        C = np.clip(floor + (sy - floor * (ts + ss)) / np.maximum(ss, 1e-300), b.lo, b.hi)  # S.(y - floor)
        F = np.full_like(C, floor)
    else:
        det = tt * ss - ts**2
        good = det > 1e-12 * np.maximum(tt * ss, 1e-300)
        mean = Y.mean(axis=1)[None, :]
        F = np.where(good, (ss * ty - ts * sy) / np.where(good, det, 1.0), mean)
        C = np.where(good, (tt * sy - ts * ty) / np.where(good, det, 1.0), mean)
        F, C = np.clip(F, b.lo, b.hi), np.clip(C, b.lo, b.hi)
    # the prediction is F T + C S: its SSE in closed form, without the G x B x n array of predictions
    yy = np.einsum("bi,bi->b", Y, Y)[None, :]
    sse = yy - 2 * (F * ty + C * sy) + F**2 * tt + 2 * F * C * ts + C**2 * ss
    return F, C, np.maximum(sse, 0.0)


def _refine(x: np.ndarray, y: np.ndarray, start: np.ndarray, floor: float | None, b: _Bounds):
    """Least squares with the analytic Jacobian from one start; returns (params, sse, success)."""
    fixed = floor is not None

    def unpack(p):
        return (floor, *p) if fixed else tuple(p)

    def residuals(p):
        f, c, k, xc = unpack(p)
        return f + (c - f) * _logistic(k * (x - xc)) - y

    def jacobian(p):
        return _jacobian(x, *unpack(p), fixed)

    lo = [b.lo, b.k[0], b.x_c[0]]
    hi = [b.hi, b.k[1], b.x_c[1]]
    if not fixed:
        lo.insert(0, b.lo)
        hi.insert(0, b.hi)
    lo_a, hi_a = np.array(lo), np.array(hi)
    p0 = np.array(start[1:] if fixed else start, dtype=float)
    width = np.where(np.isfinite(hi_a - lo_a), (hi_a - lo_a) * 1e-9, 1e-9)
    p0 = np.clip(p0, lo_a + width, hi_a - width)
    result = least_squares(residuals, p0, jac=jacobian, bounds=(lo_a, hi_a), method="trf", max_nfev=400)
    params = np.array(unpack(result.x), dtype=float)
    return params, float(np.sum(result.fun**2)), bool(result.success)


def fit_sigmoid(x, y, *, floor: float | None = None, y_range: tuple[float, float] | None = None,
                k_max: float | None = None) -> SigmoidFit:
    """Least-squares sigmoid through (x, y): vectorised grid over (k, x_c), then refinement of the best.

    floor: pin the lower asymptote (e.g. chance accuracy); None fits it. y_range bounds floor and
    ceil (e.g. (0, 1) for accuracies). x_c may lie up to two data ranges outside the data, so a
    threshold beyond the largest model shows up as such instead of being forced inside. k_max
    defaults to the steepness whose 10-90% width is 1% of the observed x range (a transition
    narrower than the spacing of the sizes is not resolved by the data anyway: k is then a lower
    bound). ceil < floor means a falling curve.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        raise ValueError(f"a sigmoid needs at least 3 points at distinct x; got {len(x)} points")
    b = _bounds(x, y_range, k_max)
    kk, cc, S = _grid(x, b)
    F, C, sse = _linear_part(S, y[None, :], floor, b)
    order = np.argsort(sse[:, 0])
    best = None
    tried: list[tuple[float, float]] = []
    for g in order:
        if len(tried) == 4:
            break
        if any(abs(np.log(kk[g] / k0)) < 0.3 and abs(cc[g] - c0) < 0.1 * np.ptp(x) for k0, c0 in tried):
            continue  # keep the starts distinct
        tried.append((kk[g], cc[g]))
        start = np.array([F[g, 0], C[g, 0], kk[g], cc[g]])
        params, fit_sse, success = _refine(x, y, start, floor, b)
        if best is None or fit_sse < best[1]:
            best = (params, fit_sse, success)
    (f, c, k, xc), fit_sse, success = best
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - fit_sse / sst if sst > 0 else (1.0 if fit_sse == 0 else 0.0)
    return SigmoidFit(floor=float(f), ceil=float(c), k=float(k), x_c=float(xc), r2=r2, sse=fit_sse,
                      n_points=len(x), converged=success, floor_fixed=floor is not None)


class _Box:
    """A smooth map from an unconstrained u to a value in [lo, hi] (either end may be infinite)."""

    def __init__(self, lo: float, hi: float, log: bool = False):
        self.lo, self.hi, self.log = lo, hi, log

    def value(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(value, d value / d u)."""
        lo, hi = self.lo, self.hi
        if self.log:  # lo > 0: logistic in log space
            s = _logistic(u)
            v = lo * (hi / lo) ** s
            return v, v * math.log(hi / lo) * s * (1 - s)
        if np.isfinite(lo) and np.isfinite(hi):
            s = _logistic(u)
            return lo + (hi - lo) * s, (hi - lo) * s * (1 - s)
        if np.isfinite(hi):
            e = np.exp(np.clip(u, -700, 700))
            return hi - e, -e
        if np.isfinite(lo):
            e = np.exp(np.clip(u, -700, 700))
            return lo + e, e
        return u, np.ones_like(u)

    def inverse(self, v: np.ndarray) -> np.ndarray:
        lo, hi = self.lo, self.hi
        v = np.asarray(v, dtype=float)
        if self.log:
            t = np.log(v / lo) / math.log(hi / lo)
            t = np.clip(t, 1e-6, 1 - 1e-6)
            return np.log(t / (1 - t))
        if np.isfinite(lo) and np.isfinite(hi):
            t = np.clip((v - lo) / (hi - lo), 1e-6, 1 - 1e-6)
            return np.log(t / (1 - t))
        if np.isfinite(hi):
            return np.log(np.maximum(hi - v, 1e-12))
        if np.isfinite(lo):
            return np.log(np.maximum(v - lo, 1e-12))
        return v


def _lm_batch(x: np.ndarray, Y: np.ndarray, starts: np.ndarray, floor: float | None, b: _Bounds,
              iterations: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on every row of Y at once, bounds enforced by smooth reparametrisation.

    starts: B x 4 (floor, ceil, k, x_c). Returns (params B x 4, sse B). Used for bootstrap refits,
    where thousands of small fits must be cheap; the point estimate uses scipy's exact-bounds solver.
    """
    fixed = floor is not None
    boxes = ([] if fixed else [_Box(b.lo, b.hi)]) + [_Box(b.lo, b.hi), _Box(*b.k, log=True), _Box(*b.x_c)]
    cols = slice(1, 4) if fixed else slice(0, 4)
    u = np.stack([box.inverse(v) for box, v in zip(boxes, starts[:, cols].T)], axis=1)

    def evaluate(u, rows):
        vals, ders = zip(*(box.value(u[:, j]) for j, box in enumerate(boxes)))
        if fixed:
            f, df = np.full(len(u), floor), None
            c, k, xc = vals
            dc, dk, dxc = ders
        else:
            f, c, k, xc = vals
            df, dc, dk, dxc = ders
        z = k[:, None] * (x[None, :] - xc[:, None])
        s = _logistic(z)
        r = f[:, None] + (c - f)[:, None] * s - Y[rows]
        ds = (c - f)[:, None] * s * (1 - s)
        jac = [s * dc[:, None], ds * (x[None, :] - xc[:, None]) * dk[:, None], -ds * k[:, None] * dxc[:, None]]
        if not fixed:
            jac.insert(0, (1 - s) * df[:, None])
        return r, np.stack(jac, axis=2), np.sum(r**2, axis=1)

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging trial step gives inf SSE and is rejected
        return _lm_loop(evaluate, u, boxes, floor, iterations)


def _lm_loop(evaluate, u, boxes, floor, iterations):
    """Damped Gauss-Newton steps on the rows still active; a row stops once an accepted step gains less
    than 1e-10 of its SSE, or its damping reaches 1e12 (no step helps)."""
    u = u.copy()
    sse = np.empty(len(u))
    rows = np.arange(len(u))
    r, J, sse[rows] = evaluate(u, rows)
    lam = np.full(len(u), 1e-2)
    eye = np.eye(u.shape[1])[None]
    for _ in range(iterations):
        Jt = J.transpose(0, 2, 1)
        A = Jt @ J
        g = (Jt @ r[:, :, None])[:, :, 0]
        diag = np.einsum("bii->bi", A)
        damp = lam[rows, None] * (diag + 1e-9 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        system = A + eye * damp[:, :, None]
        solvable = np.all(np.isfinite(system), axis=(1, 2)) & np.all(np.isfinite(g), axis=1)
        system = np.where(solvable[:, None, None], system, eye)
        step = np.linalg.solve(system, -np.where(solvable[:, None], g, 0.0)[:, :, None])[:, :, 0]
        u_new = u[rows] + step
        r_new, J_new, sse_new = evaluate(u_new, rows)
        old = sse[rows]
        better = np.isfinite(sse_new) & (sse_new < old) & np.all(np.isfinite(J_new), axis=(1, 2))
        u[rows[better]] = u_new[better]
        r = np.where(better[:, None], r_new, r)
        J = np.where(better[:, None, None], J_new, J)
        gain = np.where(better, (old - sse_new) / np.maximum(old, 1e-300), 0.0)
        sse[rows[better]] = sse_new[better]
        lam[rows] = np.clip(np.where(better, lam[rows] / 3, lam[rows] * 4), 1e-12, 1e12)
        active = ~((better & (gain < 1e-10)) | (lam[rows] >= 1e12))
        if not active.any():
            break
        rows, r, J = rows[active], r[active], J[active]
    vals = [box.value(u[:, j])[0] for j, box in enumerate(boxes)]
    params = np.stack(([np.full(len(u), floor)] if floor is not None else []) + vals, axis=1)
    return params, sse


def refit_sigmoid(x, y_reps, fit: SigmoidFit, *, y_range: tuple[float, float] | None = None,
                  k_max: float | None = None) -> np.ndarray:
    """Refit the sigmoid of `fit` (same pinned floor, same bounds) to each row of y_reps (B x n).

    Returns a B x 4 array of (floor, ceil, k, x_c); a row is NaN where y has a non-finite value.
    Every replicate is fitted twice in one batch, from the original estimate and from its own best
    grid point, and the better fit is kept.
    """
    x = np.asarray(x, dtype=float).ravel()
    Y = np.atleast_2d(np.asarray(y_reps, dtype=float))
    out = np.full((Y.shape[0], 4), np.nan)
    good = np.all(np.isfinite(Y), axis=1)
    if not good.any():
        return out
    Y = Y[good]
    floor = fit.floor if fit.floor_fixed else None
    b = _bounds(x, y_range, k_max)
    kk, cc, S = _grid(x, b)
    F, C, sse = _linear_part(S, Y, floor, b)
    g = np.argmin(sse, axis=0)
    cols = np.arange(len(Y))
    own = np.tile([fit.floor, fit.ceil, fit.k, fit.x_c], (len(Y), 1))
    grid = np.stack([F[g, cols], C[g, cols], kk[g], cc[g]], axis=1)
    params, fit_sse = _lm_batch(x, np.vstack([Y, Y]), np.vstack([own, grid]), floor, b)
    n = len(Y)
    pick = fit_sse[:n] <= fit_sse[n:]
    out[good] = np.where(pick[:, None], params[:n], params[n:])
    return out
