"""The smooth alternatives a sigmoid must beat before a curve is called emergent.

- constant:  y = a                                   (no dependence on scale: the null model)
- linear:    y = a + b x                             (steady improvement per e-fold of N)
- power:     y = ceil - c exp(-gamma (x - x_max))    (a saturating power law: with x = log N this
                                                      is y = ceil - c (N / N_max)^-gamma; c < 0 gives
                                                      the mirror image, a curve falling to ceil)

x_max, the largest observed x, is the reference so that c is the gap left at the largest model and
stays O(1) whatever the units of x. gamma is kept in (0.01, 30] / (x range): outside it the power law
is either a straight line (the linear model's job) or a step at one end of the data. For fixed gamma
the model is linear in (ceil, c), so the fit is a vectorised grid over gamma with (ceil, c) in closed
form, then least squares with the analytic Jacobian from the best grid point. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True)
class SmoothFit:
    name: str  # "constant" | "linear" | "power"
    params: dict[str, float] = field(default_factory=dict)  # constant: a; linear: a, b; power: ceil, c, gamma, x_ref
    sse: float = 0.0
    r2: float = 0.0
    n_points: int = 0
    n_free: int = 1  # fitted parameters (x_ref of the power law is fixed by the data, not fitted)
    converged: bool = True

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        p = self.params
        if self.name == "constant":
            return np.full_like(x, p["a"])
        if self.name == "linear":
            return p["a"] + p["b"] * x
        return p["ceil"] - p["c"] * np.exp(np.clip(-p["gamma"] * (x - p["x_ref"]), -700, 700))


def _r2(y: np.ndarray, sse: float) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse <= 0 else 0.0)


def fit_constant(x, y) -> SmoothFit:
    y = np.asarray(y, dtype=float)
    a = float(y.mean())
    sse = float(np.sum((y - a) ** 2))
    return SmoothFit("constant", {"a": a}, sse, 0.0, len(y), 1)


def fit_linear(x, y) -> SmoothFit:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    b, a = np.polyfit(x, y, 1)
    sse = float(np.sum((a + b * x - y) ** 2))
    return SmoothFit("linear", {"a": float(a), "b": float(b)}, sse, _r2(y, sse), len(y), 2)


def fit_power(x, y, *, y_range: tuple[float, float] | None = None) -> SmoothFit:
    """y = ceil - c exp(-gamma (x - max x)), ceil within y_range when given."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lo, hi = y_range if y_range is not None else (-np.inf, np.inf)
    span = float(np.ptp(x))
    x_ref = float(x.max())
    g_lo, g_hi = 0.01 / span, 30.0 / span
    gammas = np.geomspace(g_lo * 1.001, g_hi * 0.999, 60)
    E = np.exp(-gammas[:, None] * (x[None, :] - x_ref))  # G x n, each row 1 at x_ref
    # y = ceil - c e: ordinary least squares in (ceil, -c) per gamma
    n = len(x)
    se, see = E.sum(axis=1), np.einsum("gi,gi->g", E, E)
    sy, sey = y.sum(), E @ y
    det = n * see - se**2
    slope = np.where(det > 1e-12, (n * sey - se * sy) / np.where(det > 1e-12, det, 1.0), 0.0)  # = -c
    ceil = np.clip((sy - slope * se) / n, lo, hi)
    slope = np.where(see > 0, (sey - ceil * se) / np.maximum(see, 1e-300), 0.0)  # refit c for a clipped ceil
    sse_grid = np.sum((ceil[:, None] + slope[:, None] * E - y[None, :]) ** 2, axis=1)
    g = int(np.argmin(sse_grid))

    def residuals(p):
        c0, c, gam = p
        return c0 - c * np.exp(-gam * (x - x_ref)) - y

    def jacobian(p):
        _, c, gam = p
        e = np.exp(-gam * (x - x_ref))
        return np.stack([np.ones_like(x), -e, c * (x - x_ref) * e], axis=1)

    bounds_lo, bounds_hi = np.array([lo, -np.inf, g_lo]), np.array([hi, np.inf, g_hi])
    p0 = np.array([ceil[g], -slope[g], gammas[g]])
    pad = np.where(np.isfinite(bounds_hi - bounds_lo), (bounds_hi - bounds_lo) * 1e-9, 1e-9)
    p0 = np.clip(p0, bounds_lo + pad, bounds_hi - pad)
    result = least_squares(residuals, p0, jac=jacobian, bounds=(bounds_lo, bounds_hi), method="trf", max_nfev=400)
    sse = float(np.sum(result.fun**2))
    if sse > sse_grid[g]:  # the refinement can only help; keep the grid point if it did not
        params, sse, ok = (ceil[g], -slope[g], gammas[g]), float(sse_grid[g]), False
    else:
        params, ok = result.x, bool(result.success)
    named = {"ceil": float(params[0]), "c": float(params[1]), "gamma": float(params[2]), "x_ref": x_ref}
    return SmoothFit("power", named, sse, _r2(y, sse), len(y), 3, ok)
