"""Emergence thresholds: a sigmoid in x = log N fitted to a task metric.

    y = floor + (ceil - floor) / (1 + exp(-k (x - x_c)))

gives the threshold N_c = exp(x_c) (in parameters) and the steepness k (per e-fold of N). The floor
is pinned at the task's chance level when it is known. Pure functions: arrays in, dataclasses out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


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

    def predict(self, x) -> np.ndarray:
        return sigmoid(np.asarray(x, dtype=float), self.floor, self.ceil, self.k, self.x_c)


def sigmoid(x: np.ndarray, floor: float, ceil: float, k: float, x_c: float) -> np.ndarray:
    z = np.clip(-k * (x - x_c), -700, 700)
    return floor + (ceil - floor) / (1.0 + np.exp(z))


def fit_sigmoid(x, y, *, floor: float | None = None, y_range: tuple[float, float] | None = None,
                k_max: float = 50.0) -> SigmoidFit:
    """Least-squares sigmoid through (x, y) from a grid of starts; the best fit wins.

    floor: pin the lower asymptote (e.g. chance accuracy); None fits it. y_range bounds floor and
    ceil (e.g. (0, 1) for accuracies). x_c may lie up to two data ranges outside the data, so a
    threshold beyond the largest model shows up as such instead of being forced inside.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        raise ValueError(f"a sigmoid needs at least 3 points at distinct x; got {len(x)} points")
    lo, hi = y_range if y_range is not None else (-np.inf, np.inf)
    span = np.ptp(x)
    xc_bounds = (x.min() - 2 * span, x.max() + 2 * span)
    fixed = floor is not None

    def unpack(p):
        return (floor, *p) if fixed else tuple(p)

    def residuals(p):
        f, c, k, xc = unpack(p)
        return sigmoid(x, f, c, k, xc) - y

    y_lo, y_hi = float(np.min(y)), float(np.max(y))
    ceil_lower = max(lo, (floor if fixed else y_lo)) if np.isfinite(lo) else (floor if fixed else -np.inf)
    ceil_bounds = (ceil_lower, hi)
    k_bounds = (1e-3, k_max)
    bounds_lo = [ceil_bounds[0], k_bounds[0], xc_bounds[0]]
    bounds_hi = [ceil_bounds[1], k_bounds[1], xc_bounds[1]]
    if not fixed:
        bounds_lo.insert(0, lo)
        bounds_hi.insert(0, hi)
    best = None
    ceil_start = min(max(y_hi, ceil_bounds[0] + 1e-6), ceil_bounds[1] - 1e-9 if np.isfinite(ceil_bounds[1]) else y_hi)
    for xc0 in np.quantile(x, [0.1, 0.3, 0.5, 0.7, 0.9]).tolist() + [x.max() + 0.5 * span]:
        for k0 in (0.5, 2.0, 8.0):
            p0 = [ceil_start, k0, xc0] if fixed else [min(max(y_lo, lo), hi), ceil_start, k0, xc0]
            p0 = np.clip(p0, np.array(bounds_lo) + 1e-12, np.array(bounds_hi) - 1e-12)
            result = least_squares(residuals, p0, bounds=(bounds_lo, bounds_hi), method="trf")
            if best is None or result.cost < best.cost:
                best = result
    f, c, k, xc = unpack(best.x)
    sse = float(np.sum(best.fun**2))
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)
    return SigmoidFit(floor=float(f), ceil=float(c), k=float(k), x_c=float(xc), r2=r2, sse=sse,
                      n_points=len(x), converged=bool(best.success), floor_fixed=fixed)
