"""The largest step between neighbouring sizes of a curve, and where the other sizes sit: the numbers the
rule (analysis/emergence/rule.py) reads to decide whether a threshold can only be bracketed by two sizes.

On oriented values (up is better; the running maximum for a curve that peaks and falls back), sorted by
size. The rise is measured from the floor reference (the chance level when the floor is pinned there,
else the lowest value) to the highest value. The step's noise: each size's standard error is the
largest of what is measured (seeds, binomial sampling), the scatter about a step function (one level
before the step, one after: misfit counts as noise) and the noise floor. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Jump:
    lower: int  # index of the size just below the step
    x_lo: float  # x of the sizes either side of it
    x_hi: float
    step: float  # the rise across it
    sigma: float  # the step's noise (standard error of the difference of the two values)
    rise: float  # highest value less the floor reference
    before: float  # highest value at or below the lower size, less the floor reference
    after: float  # highest value less the lowest value from the upper size on
    n_before: int  # sizes at or below the lower size
    n_after: int  # sizes from the upper size on
    past_midpoint: bool  # the upper size passes the middle of a bounded metric's range above the floor reference

    @property
    def last(self) -> bool:
        """The step ends at the largest size: nothing after it shows where the rise levels off."""
        return self.n_after == 1

    @property
    def share(self) -> float:
        return self.step / self.rise if self.rise > 0 else math.nan


def _step_scatter(yo: np.ndarray, j: int) -> float:
    """Residual sigma of a step function with one level up to index j and one after (NaN without dof)."""
    dof = len(yo) - 2
    if dof < 1:
        return math.nan
    sse = float(np.sum((yo[:j + 1] - yo[:j + 1].mean()) ** 2) + np.sum((yo[j + 1:] - yo[j + 1:].mean()) ** 2))
    return math.sqrt(sse / dof)


def largest_step(x: np.ndarray, yo: np.ndarray, se: np.ndarray, floor_ref: float, sigma_floor: float,
                 top_o: float | None) -> Jump | None:
    """The largest rise between neighbouring sizes (None with fewer than 3 sizes or no rise at all).

    x, yo: per size, sorted, oriented; se: measured standard error per size (NaN: unknown); floor_ref: the
    floor the rise is measured from; top_o: the oriented upper end of a bounded metric's range (None: unbounded).
    """
    if len(yo) < 3:
        return None
    steps = np.diff(yo)
    j = int(np.argmax(steps))
    if steps[j] <= 0:
        return None
    scatter = _step_scatter(yo, j)
    sigma = np.fmax(np.fmax(np.asarray(se, dtype=float), scatter), sigma_floor)
    top = float(yo.max())
    past = top_o is not None and math.isfinite(top_o) and yo[j + 1] > floor_ref + 0.5 * (top_o - floor_ref)
    return Jump(lower=j, x_lo=float(x[j]), x_hi=float(x[j + 1]), step=float(steps[j]),
                sigma=float(math.hypot(sigma[j], sigma[j + 1])), rise=top - floor_ref,
                before=float(yo[:j + 1].max()) - floor_ref, after=top - float(yo[j + 1:].min()),
                n_before=j + 1, n_after=len(yo) - j - 1, past_midpoint=bool(past))
