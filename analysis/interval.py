"""The interval level of every analysis and the percentile interval of bootstrap draws.

One level for the whole report: the loss law, the frontier, the isoFLOP exponents and the emergence
thresholds all default to LEVEL, so a reader never compares a 90% interval with a 95% one.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.90
MIN_DRAWS = 10  # fewer usable draws than this: the interval is NaN rather than noise


def percentile_interval(values, level: float = LEVEL, *, failed: str = "widen") -> tuple[float, float]:
    """(lo, hi): the (1-level)/2 and (1+level)/2 quantiles of bootstrap draws; NaN with fewer than MIN_DRAWS.

    failed: what a non-finite draw means. "widen": NaN counts as beyond either end (a resample whose
    quantity is undefined widens the interval rather than vanishing); "drop": draws that did not refit
    are left out."""
    v = np.asarray(values, dtype=float).ravel()
    if failed == "drop":
        v = v[np.isfinite(v)]
    elif failed == "widen":
        v = np.where(np.isnan(v), np.inf, v)
    else:
        raise ValueError(f"failed must be 'widen' or 'drop', got {failed!r}")
    if len(v) < MIN_DRAWS:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method="linear")
    return float(lo), float(hi)
