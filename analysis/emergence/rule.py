"""The emergence verdict: every rule that turns a curve's evidence into a verdict, and every property that
depends on the verdict (whether it carries a threshold, its colour, what a figure draws, whether it is
bracketed or fitted).

`decide(evidence, criteria) -> Decision` is pure: the numbers come from analysis.emergence.evidence (and
its jump.py, noise.py), the thresholds from `Criteria`. To change what counts as emergent, change this
file. In order; the checks that need no fitted model come first, so they hold on any number of sizes:

  insufficient-data  no sizes, or fewer than 3
  flat               all values equal; the rise under `min_effect` (5%) of a bounded metric's range, however
                     many sigmas it is (identical zeros make the noise ~0, not the effect large); at chance
                     (every size within `min_rise_over_noise` measured sigmas of a pinned chance level); or
                     within noise (no two sizes differ by `min_rise_over_noise` sigmas of their difference),
                     sigmas measured from seeds and binomial error from n_samples (noise.py)
  non-monotone       a clear rise and a clear fall (evidence.reversal), unless the curve jumps and then
                     falls back less than `max_fall_back` (half) of its rise: that is judged on its running
                     maximum and, if emergent, is emergent with the flag `falls-back`
  emergent,          a jump between neighbouring sizes (jump.py): the largest step between two neighbours is
  bracketed          `min_rise_over_noise` sigmas and `min_effect` of the range, has >= 2 sizes before it, all
                     of them within `bracket_band` (20%) of the rise above the floor (chance when pinned), and
                     either every size after it within `bracket_band` of the top, or, when the step ends at
                     the largest size, that size past the middle of the metric's range (so past the middle of
                     the rise whatever the unseen ceiling); the two sizes are at most `max_width` apart. No
                     size lies on the rise, so no sigmoid can place the threshold between them: N_c lies in
                     [N_i, N_i+1] and no N_c, k or R² is fitted (flag `bracketed`)
  beyond-range       the same jump ending at the largest size below the middle of the range: the threshold
                     is at or past the largest model
  insufficient-data  fewer sizes than the sigmoid's parameters, its noise and `min_dof` (1) spare point
                     beyond one more: n >= K + 1 + min_dof, K = its curve parameters + 1 for the noise (6
                     sizes with the floor pinned at chance, 7 with a free floor; AICc is defined from there
                     on). Below that a sigmoid passes through every point (R² = 1, "1000 sigma") and no
                     comparison is honest
  flat               no model beats the constant by `flat_delta_ic`
  beyond-range       the sigmoid wins but its threshold lies past the largest model, or the rise rests on
                     the largest size alone below the middle of the metric's range: flagged, not claimed
  emergent           the sigmoid beats the best smooth model by `min_delta_ic`, is steep (10-90% width at
                     most `max_width_frac` of the observed range and `max_width`), rises by
                     `min_rise_over_noise` sigmas and `min_effect` of the range, with >= 2 sizes before
                     the transition and >= 2 after its start (or the largest alone past the midpoint). With
                     at most one size on its 10-90% rise, or two with one run per size (flag
                     `rise-unresolved`), the threshold is not located more finely than the two sizes
                     around it: its interval spans them
  smooth             anything else with signal; a metric that gets worse with scale says "inverse scaling"
Where emergent and smooth were told apart by the sigmoid's advantage alone and it lies within `close_ic` of
`min_delta_ic`, the verdict carries the flag `close-call`: a small change of the grid can flip it (the
default grid's compose_3, 3 seeds: 3.1 at 1.085M tokens, emergent; 0.9 with that budget 10% larger, smooth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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
        """Only an emergent curve has a located threshold (fitted, or bracketed by two sizes); every other row
        leaves N_c and its interval empty."""
        return self is Verdict.EMERGENT


@dataclass(frozen=True)
class Criteria:
    # steepness limit in absolute x units per axis: two decades of parameters; compute grows about as N^2
    # along a compute-optimal frontier, so four decades of FLOPs; none for loss
    MAX_WIDTH: ClassVar[dict[str, float | None]] = {"log_n": math.log(100.0), "log_flops": math.log(1e4),
                                                    "val_loss": None}

    min_dof: int = 1  # spare sizes beyond the sigmoid's parameters, its noise and one more
    min_delta_ic: float = 2.0  # the sigmoid must beat the best smooth model by this much
    close_ic: float = 2.0  # an advantage within this of min_delta_ic is a close call (flag close-call)
    flat_delta_ic: float = 2.0  # some model must beat the constant by this much, else flat
    max_width_frac: float = 0.5  # steep: 10-90% width at most this fraction of the observed x range ...
    max_width: float | None = None  # ... and at most this many x units (None: no absolute limit)
    min_rise_over_noise: float = 3.0  # substantial: rise over the observed range in noise sigmas ...
    min_effect: float = 0.05  # ... and at least this fraction of a bounded metric's range
    max_fall_back: float = 0.5  # a jump that later loses less than this share of its rise is still a jump
    bracket_band: float = 0.2  # a bracketing jump: sizes before it within this share of the rise above the floor,
    # sizes after it within this share below the top (so the step carries at least 1 - 2 x this of the rise)
    level: float = LEVEL  # of every interval
    ic: str = "AIC"  # "AIC" | "AICc" | "BIC": one criterion for every curve (see evidence.py)

    def __post_init__(self):
        if self.min_dof < 1:
            raise ValueError(f"min_dof must be at least 1, got {self.min_dof}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.ic not in ("AICc", "AIC", "BIC"):
            raise ValueError(f"ic must be AICc, AIC or BIC, got {self.ic!r}")
        if not 0 <= self.bracket_band < 0.5:
            raise ValueError(f"bracket_band must be in [0, 0.5), got {self.bracket_band}")

    @classmethod
    def for_axis(cls, x: str, **overrides) -> Criteria:
        return cls(**{"max_width": cls.MAX_WIDTH[x], **overrides})

    def min_sizes(self, n_free: int) -> int:
        """Sizes a model with n_free curve parameters needs: its parameters, the noise, min_dof spare, + 1."""
        return n_free + 1 + self.min_dof + 1

    def steep(self, k: float, span: float) -> bool:
        width = LN81 / k
        return width <= self.max_width_frac * span and (self.max_width is None or width <= self.max_width)


@dataclass(frozen=True)
class Decision:
    """A curve's verdict with its reason and flags, and how the threshold is located: by the fitted sigmoid,
    or bracketed by two neighbouring sizes; `resolution` is the pair of sizes the data cannot locate the
    threshold more finely than (the whole interval of a bracket; the least interval of a fit)."""

    verdict: Verdict
    reason: str
    flags: tuple[str, ...] = ()
    fitted: bool = False  # the verdict rests on the fitted sigmoid
    resolution: tuple[float, float] | None = None  # x of two neighbouring sizes

    @property
    def bracketed(self) -> bool:
        """The threshold lies between two neighbouring sizes and nothing is fitted to place it between them."""
        return self.verdict.has_threshold and not self.fitted and self.resolution is not None

    @property
    def reports_fit(self) -> bool:
        """N_c, k and their intervals come from the fitted sigmoid."""
        return self.verdict.has_threshold and self.fitted

    @property
    def draws_sigmoid(self) -> bool:
        """Whether a figure draws the sigmoid (and needs its bootstrap for the band and the intervals)."""
        return self.fitted and self.verdict in (Verdict.EMERGENT, Verdict.BEYOND_RANGE)

    @property
    def draws_smooth(self) -> bool:
        """Whether a figure draws the best smooth model instead: not for a bracket, nor for a jump onto the
        largest size (beyond-range without a fit), where a smooth line would draw a trend no size shows."""
        return not (self.draws_sigmoid or self.bracketed or self.verdict is Verdict.BEYOND_RANGE)


def decide(ev: CurveEvidence, crit: Criteria) -> Decision:
    """The verdict of one curve with its reason and flags; see the module doc for the rules, in order."""
    for check in (_before_fits, _flat_without_fits, _shape):
        early = check(ev, crit)
        if early is not None:
            return early
    decision = _jump(ev, crit) or _enough_sizes(ev, crit) or _flat_by_ic(ev, crit) or _fitted(ev, crit)
    if not ev.envelope or decision.verdict in (Verdict.INSUFFICIENT, Verdict.FLAT):
        return decision
    if decision.verdict is not Verdict.EMERGENT:
        return Decision(Verdict.NON_MONOTONE, _non_monotone_reason(ev))
    return _falls_back(decision, ev)


def _fitted(ev: CurveEvidence, crit: Criteria) -> Decision:
    by_ic = ev.sigmoid is not None and ev.sigmoid.ceil > ev.sigmoid.floor
    if by_ic and ev.delta_ic >= crit.min_delta_ic:
        decision = _sigmoid_preferred(ev, crit)
        close = decision.verdict is Verdict.EMERGENT
    else:
        decision, close = Decision(Verdict.SMOOTH, _smooth_reason(ev, crit)), by_ic
    if close and abs(ev.delta_ic - crit.min_delta_ic) < crit.close_ic:
        decision = replace(decision, flags=(*decision.flags, "close-call"))
    return decision


def _falls_back(decision: Decision, ev: CurveEvidence) -> Decision:
    reason = (decision.reason + f"; then falls back {ev.fall_back:.0%} of its rise after the peak ({ev.reversal}): "
              f"the jump is judged on the running maximum, the fall is flagged")
    return replace(decision, reason=reason, flags=("falls-back", *decision.flags))


def _before_fits(ev: CurveEvidence, crit: Criteria):
    if ev.n_sizes == 0:
        return Decision(Verdict.INSUFFICIENT, ev.empty_reason or "no rows")
    if ev.n_sizes < 3:
        return Decision(Verdict.INSUFFICIENT, f"{ev.n_sizes} size(s): even a flat curve or a jump between "
                                              f"neighbouring sizes needs 3")
    if ev.spread <= 0:
        return Decision(Verdict.FLAT, f"all {ev.n_sizes} sizes have the same value ({ev.y[0]:.4g})")
    return None


def _shape(ev: CurveEvidence, crit: Criteria):
    if ev.reversal and (not ev.envelope or ev.fall_back > crit.max_fall_back):
        return Decision(Verdict.NON_MONOTONE, _non_monotone_reason(ev))
    return None


def _non_monotone_reason(ev: CurveEvidence) -> str:
    return (f"non-monotone: the metric goes {ev.reversal} across sizes (Spearman rho {ev.spearman_rho:.2f}); no "
            f"monotone model describes it, so no threshold is claimed")


def _flat_without_fits(ev: CurveEvidence, crit: Criteria):
    if ev.bounded and ev.spread < crit.min_effect * ev.scale:
        return Decision(Verdict.FLAT, f"range of values {ev.spread:.3g} is {ev.spread / ev.scale:.1%} of the "
                                      f"metric's range {ev.scale:.3g}, under the minimum effect {crit.min_effect:.0%}")
    if ev.off_chance < crit.min_rise_over_noise:
        return Decision(Verdict.FLAT, f"at chance: every size within {ev.off_chance:.1f} measurement sigmas of the "
                                      f"chance level")
    if ev.contrast < crit.min_rise_over_noise:
        return Decision(Verdict.FLAT, f"within noise: no two sizes differ by {crit.min_rise_over_noise:g} measurement "
                                      f"sigmas of their difference (at most {ev.contrast:.1f}; range of values "
                                      f"{ev.spread:.3g})")
    return None


def _step_text(ev: CurveEvidence) -> str:
    j = ev.jump
    values = ev.sign * ev.oriented
    return (f"{values[j.lower]:.3g} -> {values[j.lower + 1]:.3g} between sizes {j.lower + 1} and {j.lower + 2} of "
            f"{ev.n_sizes}")


def _no_bracket(ev: CurveEvidence, crit: Criteria) -> str:
    """Why the largest step between neighbouring sizes brackets no threshold; "" when it does (or, onto the
    largest size below the middle of the range, puts it beyond the largest model)."""
    j = ev.jump
    if j is None:
        return "no rise between neighbouring sizes"
    step = f"the largest step ({_step_text(ev)})"
    if j.n_before < 2:
        return f"{step} has {j.n_before} size before it: the floor is not observed"
    if j.step < crit.min_rise_over_noise * j.sigma:
        return f"{step} is {j.step / j.sigma:.1f} sigma, under {crit.min_rise_over_noise:g}"
    if ev.bounded and j.step < crit.min_effect * ev.scale:
        return f"{step} is {j.step / ev.scale:.1%} of the metric's range, under {crit.min_effect:.0%}"
    if j.before > crit.bracket_band * j.rise:
        return (f"before {step} the curve has risen {j.before / j.rise:.0%} of the way, more than "
                f"{crit.bracket_band:.0%}: sizes lie on the rise")
    if j.last and not j.past_midpoint:
        return ""
    if not j.last and j.after > crit.bracket_band * j.rise:
        return (f"after {step} the curve still rises {j.after / j.rise:.0%} of the way, more than "
                f"{crit.bracket_band:.0%}: sizes lie on the rise, or its top is not observed")
    if crit.max_width is not None and j.x_hi - j.x_lo > crit.max_width:
        return f"{step} spans {j.x_hi - j.x_lo:.3g} in x, wider than {crit.max_width:.3g}: not a jump"
    return ""


def _jump(ev: CurveEvidence, crit: Criteria):
    """A jump between neighbouring sizes with no size on its rise: bracketed, or beyond the largest size."""
    if _no_bracket(ev, crit):
        return None
    j = ev.jump
    told = (f"{_step_text(ev)} carries {j.share:.0%} of the rise ({j.step / j.sigma:.1f} sigma"
            + (f", {j.step / ev.scale:.0%} of the metric's range)" if ev.bounded else ")")
            + f"; the {j.n_before} sizes before it lie within {crit.bracket_band:.0%} of the rise above the floor")
    if j.last and not j.past_midpoint:
        return Decision(Verdict.BEYOND_RANGE, f"a jump onto the largest size: {told}, and the largest does not pass "
                                              f"the middle of the metric's range: the threshold is at or past the "
                                              f"largest model, not located")
    then = ("the largest passes the middle of the metric's range, so the middle of the rise whatever its unseen "
            "ceiling" if j.last else f"the {j.n_after} sizes after it lie within {crit.bracket_band:.0%} of the top")
    return Decision(Verdict.EMERGENT, f"a jump between neighbouring sizes: {told}; {then}", ("bracketed",),
                    resolution=(j.x_lo, j.x_hi))


def _enough_sizes(ev: CurveEvidence, crit: Criteria):
    need = crit.min_sizes(ev.n_free_sigmoid)
    if ev.n_sizes >= need:
        return None
    pinned = "floor pinned at chance" if ev.floor_pinned else "free floor"
    return Decision(Verdict.INSUFFICIENT, f"{ev.n_sizes} sizes, not flat, and no jump brackets a threshold "
                                          f"({_no_bracket(ev, crit)}); a sigmoid ({ev.n_free_sigmoid} parameters, "
                                          f"{pinned}) and its noise need at least {need} sizes to be compared with "
                                          f"smooth models")


def _flat_by_ic(ev: CurveEvidence, crit: Criteria):
    if ev.delta_ic_flat < crit.flat_delta_ic:
        return Decision(Verdict.FLAT, f"no model beats a constant by {ev.ic} >= {crit.flat_delta_ic:g} "
                                      f"(delta {ev.delta_ic_flat:.2f})")
    return None


def _sigmoid_preferred(ev: CurveEvidence, crit: Criteria) -> Decision:
    sig, span = ev.sigmoid, ev.x_range
    width_text = f"10-90% width {sig.width:.3g} = {sig.width / span:.0%} of the observed range {span:.3g}"
    if ev.rise < crit.min_rise_over_noise * ev.noise:
        return Decision(Verdict.FLAT, f"sigmoid preferred but its rise {ev.rise:.3g} is under "
                                      f"{crit.min_rise_over_noise:g} sigma ({ev.noise:.3g})")
    if ev.bounded and ev.rise < crit.min_effect * ev.scale:
        return Decision(Verdict.FLAT, f"sigmoid preferred but its rise {ev.rise:.3g} is {ev.rise / ev.scale:.1%} of "
                                      f"the metric's range, under the minimum effect {crit.min_effect:.0%}")
    if sig.x_c > ev.x_max:
        return Decision(Verdict.BEYOND_RANGE, f"sigmoid preferred ({ev.ic} delta {ev.delta_ic:.1f}) but its threshold "
                                              f"lies past the largest model (x_c - x_max = {sig.x_c - ev.x_max:.2g}): "
                                              f"extrapolated, not claimed", fitted=True)
    if ev.n_before < 2:
        return Decision(Verdict.SMOOTH, f"fewer than 2 sizes before the transition ({ev.n_before} with the fitted "
                                        f"curve in the lowest quarter of its rise; x_c={sig.x_c:.3g}): the regime "
                                        f"before it is not observed, only the saturation")
    if ev.n_risen < 2 and not ev.past_midpoint:
        return Decision(Verdict.BEYOND_RANGE, f"the rise rests on the largest size alone ({ev.y[-1]:.3g} there, the "
                                              f"sizes before it in the lowest quarter of the rise) and does not pass "
                                              f"the middle of the metric's range: the threshold is at or past the "
                                              f"largest model, not located", fitted=True)
    if not crit.steep(sig.k, span):
        limit = f"{crit.max_width_frac:.0%} of the range" + (
            f" and {crit.max_width:.3g}" if crit.max_width is not None else "")
        return Decision(Verdict.SMOOTH, f"sigmoid preferred but shallow: {width_text} (steep: <= {limit})")
    reason = (f"sigmoid beats {ev.best_smooth} by {ev.ic} {ev.delta_ic:.1f}; {width_text}; rise {ev.rise:.3g} = "
              f"{ev.rise / ev.noise:.1f} sigma" + (f" = {ev.rise / ev.scale:.0%} of the metric's range"
                                                   if ev.bounded else ""))
    unresolved = _unresolved(ev) and all(math.isfinite(v) for v in ev.around_x_c)
    return Decision(Verdict.EMERGENT, reason, _emergent_flags(ev, unresolved), fitted=True,
                    resolution=ev.around_x_c if unresolved else None)


def _unresolved(ev: CurveEvidence) -> bool:
    """The sizes on the fitted 10-90% rise cannot place x_c between the two sizes around it: one size (its value
    places x_c only through the assumed shape and a steepness bounded from below), or two with one run per size
    (x_c and k then pass through both exactly, and nothing measures how far another run would move them)."""
    seeds = ev.measured is not None and ev.measured.has_seeds
    return ev.n_on_rise <= 1 or (ev.n_on_rise == 2 and not seeds)


def _emergent_flags(ev: CurveEvidence, unresolved: bool) -> tuple[str, ...]:
    flags = []
    if ev.n_risen < 2:
        flags.append("lone-top")  # the rise rests on the largest size alone, past the middle of the range
    elif ev.n_past_midpoint == 1:
        flags.append("ceiling-unobserved")
    if unresolved:
        flags.append("rise-unresolved")
    if ev.sigmoid.k >= 0.99 * 100 * LN81 / ev.x_range:
        flags.append("k-lower-bound")
    return tuple(flags)


FLAG_TEXT = {
    "falls-back": "the metric falls back after its peak",
    "lone-top": "the rise rests on the largest size alone, past the middle of the metric's range: the threshold "
                "lies between the two largest sizes",
    "ceiling-unobserved": "only the largest size is past the midpoint: the ceiling is not observed",
    "k-lower-bound": "transition narrower than the data resolve: k is a lower bound",
    "bracketed": "no size lies on the rise: the threshold lies between the two neighbouring sizes, and no N_c, k "
                 "or R² is fitted to place it between them",
    "close-call": "a close call: the sigmoid's advantage over the best smooth model lies within 2 of the line "
                  "between emergent and smooth (Criteria.close_ic), so a small change of the grid (a budget, a seed) "
                  "can flip emergent and smooth",
    "rise-unresolved": "at most one size lies on the fitted 10-90% rise (two, with one run per size): the threshold "
                       "is not located more finely than the two sizes around it, and its interval spans them",
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
