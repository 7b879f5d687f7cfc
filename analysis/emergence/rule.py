"""The emergence verdict: every rule that turns a curve's evidence into a verdict, and every property that
depends on the verdict (whether it carries a threshold, its colour, whether a sigmoid is drawn).

`decide(evidence, criteria) -> (Verdict, reason, flags)` is pure: the numbers come from
analysis.emergence.evidence, the thresholds from `Criteria`. To change what counts as emergent, change
this file. In order:

  insufficient-data  fewer sizes than the sigmoid's parameters, its noise and `min_dof` (1) spare point
                     beyond one more: n >= K + 1 + min_dof, K = its curve parameters + 1 for the noise (6
                     sizes with the floor pinned at chance, 7 with a free floor; AICc is defined from there
                     on). Below that a sigmoid passes through every point (R² = 1, "1000 sigma") and no
                     comparison is honest
  non-monotone       a clear rise and a clear fall (evidence.reversal), unless the curve jumps and then
                     falls back less than `max_fall_back` (half) of its rise: that is judged on its running
                     maximum and, if emergent, is emergent with the flag `falls-back`
  flat               all values equal; no model beats the constant by `flat_delta_ic`; the range of values
                     within `min_rise_over_noise` measurement sigmas (seeds, binomial error from
                     n_samples); or the rise under `min_effect` (5%) of a bounded metric's range, however
                     many sigmas it is (identical zeros make the noise ~0, not the effect large)
  beyond-range       the sigmoid wins but its threshold lies past the largest model, or the rise rests on
                     the largest size alone below the middle of the metric's range: flagged, not claimed
  emergent           the sigmoid beats the best smooth model by `min_delta_ic`, is steep (10-90% width at
                     most `max_width_frac` of the observed range and `max_width`), rises by
                     `min_rise_over_noise` sigmas and `min_effect` of the range, with >= 2 sizes before
                     the transition and >= 2 after its start (or the largest alone past the midpoint)
  smooth             anything else with signal; a metric that gets worse with scale says "inverse scaling"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from analysis.emergence.evidence import CurveEvidence
from analysis.emergence.sigmoid import LN81
from analysis.interval import LEVEL

# every verdict word's colour, per curve and per task, so a reader sees them at a glance
COLOURS = {"emergent": "#c62828", "smooth": "#1565c0", "flat": "#757575", "beyond-range": "#ef6c00",
           "non-monotone": "#6a1b9a", "insufficient-data": "#9e9e9e", "metric-induced": "#1565c0",
           "genuine": "#c62828", "inconclusive": "#757575"}


class Label(str, Enum):
    """A verdict word: prints as itself, has its colour."""

    def __str__(self) -> str:
        return self.value

    @property
    def colour(self) -> str:
        return COLOURS[self.value]


class Verdict(Label):
    EMERGENT = "emergent"
    SMOOTH = "smooth"
    FLAT = "flat"
    BEYOND_RANGE = "beyond-range"
    NON_MONOTONE = "non-monotone"
    INSUFFICIENT = "insufficient-data"

    @property
    def has_threshold(self) -> bool:
        """Only an emergent curve has a located threshold; every other row leaves N_c and its interval empty."""
        return self is Verdict.EMERGENT

    @property
    def draws_sigmoid(self) -> bool:
        """Whether a figure draws the sigmoid (else the best smooth model, or the points alone)."""
        return self in (Verdict.EMERGENT, Verdict.BEYOND_RANGE)

    @property
    def needs_bootstrap(self) -> bool:
        """Intervals only where there is a transition to put one on."""
        return self in (Verdict.EMERGENT, Verdict.BEYOND_RANGE)


@dataclass(frozen=True)
class Criteria:
    # steepness limit in absolute x units per axis: two decades of parameters; compute grows about as N^2
    # along a compute-optimal frontier, so four decades of FLOPs; none for loss
    MAX_WIDTH: ClassVar[dict[str, float | None]] = {"log_n": math.log(100.0), "log_flops": math.log(1e4),
                                                    "val_loss": None}

    min_dof: int = 1  # spare sizes beyond the sigmoid's parameters, its noise and one more
    min_delta_ic: float = 2.0  # the sigmoid must beat the best smooth model by this much
    flat_delta_ic: float = 2.0  # some model must beat the constant by this much, else flat
    max_width_frac: float = 0.5  # steep: 10-90% width at most this fraction of the observed x range ...
    max_width: float | None = None  # ... and at most this many x units (None: no absolute limit)
    min_rise_over_noise: float = 3.0  # substantial: rise over the observed range in noise sigmas ...
    min_effect: float = 0.05  # ... and at least this fraction of a bounded metric's range
    max_fall_back: float = 0.5  # a jump that later loses less than this share of its rise is still a jump
    level: float = LEVEL  # of every interval
    ic: str = "AIC"  # "AIC" | "AICc" | "BIC": one criterion for every curve (see evidence.py)

    def __post_init__(self):
        if self.min_dof < 1:
            raise ValueError(f"min_dof must be at least 1, got {self.min_dof}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.ic not in ("AICc", "AIC", "BIC"):
            raise ValueError(f"ic must be AICc, AIC or BIC, got {self.ic!r}")

    @classmethod
    def for_axis(cls, x: str, **overrides) -> Criteria:
        return cls(**{"max_width": cls.MAX_WIDTH[x], **overrides})

    def min_sizes(self, n_free: int) -> int:
        """Sizes a model with n_free curve parameters needs: its parameters, the noise, min_dof spare, + 1."""
        return n_free + 1 + self.min_dof + 1

    def steep(self, k: float, span: float) -> bool:
        width = LN81 / k
        return width <= self.max_width_frac * span and (self.max_width is None or width <= self.max_width)


def decide(ev: CurveEvidence, crit: Criteria) -> tuple[Verdict, str, tuple[str, ...]]:
    """(verdict, reason, flags) of one curve; see the module doc for the rules, in order."""
    early = _before_fits(ev, crit)
    if early is not None:
        return early
    flat = _flat(ev, crit)
    if flat is not None:
        return flat
    if ev.sigmoid is not None and ev.delta_ic >= crit.min_delta_ic and ev.sigmoid.ceil > ev.sigmoid.floor:
        verdict, reason, flags = _sigmoid_preferred(ev, crit)
    else:
        verdict, reason, flags = Verdict.SMOOTH, _smooth_reason(ev, crit), ()
    if ev.envelope:
        if verdict is not Verdict.EMERGENT:
            return Verdict.NON_MONOTONE, _non_monotone_reason(ev), ()
        reason += (f"; then falls back {ev.fall_back:.0%} of its rise after the peak ({ev.reversal}): "
                   f"the jump is judged on the running maximum, the fall is flagged")
        flags = ("falls-back", *flags)
    return verdict, reason, flags


def _before_fits(ev: CurveEvidence, crit: Criteria):
    if ev.n_sizes == 0:
        return Verdict.INSUFFICIENT, ev.empty_reason or "no rows", ()
    need = crit.min_sizes(ev.n_free_sigmoid)
    if ev.n_sizes < need:
        pinned = "floor pinned at chance" if ev.floor_pinned else "free floor"
        return Verdict.INSUFFICIENT, (f"{ev.n_sizes} sizes; a sigmoid ({ev.n_free_sigmoid} parameters, {pinned}) "
                                      f"and its noise need at least {need} sizes to be compared with smooth "
                                      f"models"), ()
    if ev.spread <= 0:
        return Verdict.FLAT, f"all {ev.n_sizes} sizes have the same value ({ev.y[0]:.4g})", ()
    if ev.reversal and not ev.envelope:
        return Verdict.NON_MONOTONE, _non_monotone_reason(ev), ()
    if ev.envelope and ev.fall_back > crit.max_fall_back:
        return Verdict.NON_MONOTONE, _non_monotone_reason(ev), ()
    return None


def _non_monotone_reason(ev: CurveEvidence) -> str:
    return (f"non-monotone: the metric goes {ev.reversal} across sizes (Spearman rho {ev.spearman_rho:.2f}); no "
            f"monotone model describes it, so no threshold is claimed")


def _flat(ev: CurveEvidence, crit: Criteria):
    if ev.delta_ic_flat < crit.flat_delta_ic:
        return Verdict.FLAT, (f"no model beats a constant by {ev.ic} >= {crit.flat_delta_ic:g} "
                              f"(delta {ev.delta_ic_flat:.2f})"), ()
    if math.isfinite(ev.noise_measured) and ev.spread < crit.min_rise_over_noise * ev.noise_measured:
        return Verdict.FLAT, (f"range of values {ev.spread:.3g} is within {crit.min_rise_over_noise:g} "
                              f"measurement sigmas ({ev.noise_measured:.3g})"), ()
    if ev.bounded and ev.spread < crit.min_effect * ev.scale:
        return Verdict.FLAT, (f"range of values {ev.spread:.3g} is {ev.spread / ev.scale:.1%} of the metric's "
                              f"range {ev.scale:.3g}, under the minimum effect {crit.min_effect:.0%}"), ()
    return None


def _sigmoid_preferred(ev: CurveEvidence, crit: Criteria) -> tuple[Verdict, str, tuple[str, ...]]:
    sig, span = ev.sigmoid, ev.x_range
    width_text = f"10-90% width {sig.width:.3g} = {sig.width / span:.0%} of the observed range {span:.3g}"
    if ev.rise < crit.min_rise_over_noise * ev.noise:
        return Verdict.FLAT, (f"sigmoid preferred but its rise {ev.rise:.3g} is under {crit.min_rise_over_noise:g} "
                              f"sigma ({ev.noise:.3g})"), ()
    if ev.bounded and ev.rise < crit.min_effect * ev.scale:
        return Verdict.FLAT, (f"sigmoid preferred but its rise {ev.rise:.3g} is {ev.rise / ev.scale:.1%} of the "
                              f"metric's range, under the minimum effect {crit.min_effect:.0%}"), ()
    if sig.x_c > ev.x_max:
        return Verdict.BEYOND_RANGE, (f"sigmoid preferred ({ev.ic} delta {ev.delta_ic:.1f}) but its threshold lies "
                                      f"past the largest model (x_c - x_max = {sig.x_c - ev.x_max:.2g}): "
                                      f"extrapolated, not claimed"), ()
    if ev.n_before < 2:
        return Verdict.SMOOTH, (f"fewer than 2 sizes before the transition ({ev.n_before} with the fitted curve in "
                                f"the lowest quarter of its rise; x_c={sig.x_c:.3g}): the regime before it is not "
                                f"observed, only the saturation"), ()
    if ev.n_risen < 2 and not ev.past_midpoint:
        return Verdict.BEYOND_RANGE, (f"the rise rests on the largest size alone ({ev.y[-1]:.3g} there, the sizes "
                                      f"before it in the lowest quarter of the rise) and does not pass the middle "
                                      f"of the metric's range: the threshold is at or past the largest model, not "
                                      f"located"), ()
    if not crit.steep(sig.k, span):
        limit = f"{crit.max_width_frac:.0%} of the range" + (
            f" and {crit.max_width:.3g}" if crit.max_width is not None else "")
        return Verdict.SMOOTH, f"sigmoid preferred but shallow: {width_text} (steep: <= {limit})", ()
    reason = (f"sigmoid beats {ev.best_smooth} by {ev.ic} {ev.delta_ic:.1f}; {width_text}; rise {ev.rise:.3g} = "
              f"{ev.rise / ev.noise:.1f} sigma" + (f" = {ev.rise / ev.scale:.0%} of the metric's range"
                                                   if ev.bounded else ""))
    return Verdict.EMERGENT, reason, _emergent_flags(ev)


def _emergent_flags(ev: CurveEvidence) -> tuple[str, ...]:
    flags = []
    if ev.n_risen < 2:
        flags.append("lone-top")  # the rise rests on the largest size alone, past the middle of the range
    elif ev.n_past_midpoint == 1:
        flags.append("ceiling-unobserved")
    if ev.sigmoid.k >= 0.99 * 100 * LN81 / ev.x_range:
        flags.append("k-lower-bound")
    return tuple(flags)


FLAG_TEXT = {
    "falls-back": "the metric falls back after its peak",
    "lone-top": "the rise rests on the largest size alone, past the middle of the metric's range: the threshold "
                "lies between the two largest sizes",
    "ceiling-unobserved": "only the largest size is past the midpoint: the ceiling is not observed",
    "k-lower-bound": "transition narrower than the data resolve: k is a lower bound",
}


def _smooth_reason(ev: CurveEvidence, crit: Criteria) -> str:
    trend = "improves" if ev.slope > 0 else "worsens"
    if ev.sigmoid is not None and ev.sigmoid.ceil <= ev.sigmoid.floor:
        core = "no rising sigmoid"
    else:
        core = (f"{ev.best_smooth} model as good as the sigmoid ({ev.ic} delta {ev.delta_ic:.1f} < "
                f"{crit.min_delta_ic:g})")
    if ev.slope < 0:
        return (f"inverse scaling: the metric gets worse with scale ({ev.y[0]:.3g} at the smallest size, "
                f"{ev.y[-1]:.3g} at the largest; Spearman rho {ev.spearman_rho:.2f}); {core}")
    return f"{core}; metric {trend} with scale"
