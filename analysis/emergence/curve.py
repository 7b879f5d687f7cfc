"""One curve in, one verdict out: the evidence (evidence.py), the rule's decision (rule.py) and, where a
fitted sigmoid carries the verdict, bootstrap intervals (bootstrap.py), as one `CurveVerdict`.

The threshold's interval is the bootstrap's percentile interval of x_c, widened to the two sizes the rule
says the data cannot locate it more finely than (rule.Decision.resolution: when the sizes on the rise
cannot place it).
A bracketed threshold has no fit: its interval is the two sizes either side of the jump."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.emergence.bootstrap import SigmoidBootstrap, bootstrap_sigmoid
from analysis.emergence.evidence import MODELS, CurveEvidence, gather
from analysis.emergence.rule import FLAG_TEXT, Criteria, Decision, Verdict, decide
from analysis.emergence.sigmoid import sigmoid

# bootstrap replicates per curve by default: each tail of a 90% percentile interval then rests on ~50
# replicates; 90 curves of 8 sizes take 7-10 s on 2 shared CPU cores
N_BOOT = 1000
# the sigmoid's columns, empty in a bracketed row: nothing is fitted between the two sizes
_SIGMOID_COLUMNS = ("k", "k_lo", "k_hi", "x_c", "width_10_90", "width_frac", "floor", "ceil", "delta_ic",
                    "r2_sigmoid", "aic_sigmoid", "aicc_sigmoid", "bic_sigmoid")


@dataclass(frozen=True)
class CurveVerdict:
    evidence: CurveEvidence
    decision: Decision
    reason: str  # the decision's, with the evidence's notes
    boot: SigmoidBootstrap | None = None
    level: float = math.nan

    def __getattr__(self, name: str):  # the evidence's numbers read as the verdict's (curve.x, curve.sigmoid)
        if name == "evidence":
            raise AttributeError(name)
        return getattr(self.evidence, name)

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    @property
    def flags(self) -> tuple[str, ...]:
        return self.decision.flags

    @property
    def k_ci(self) -> tuple[float, float]:
        return self.boot.k_ci if self.boot else (math.nan, math.nan)

    @property
    def x_c_ci(self) -> tuple[float, float]:
        """The threshold's interval in x: the bootstrap's, widened to the rule's resolution; a bracket's two sizes."""
        res = self.decision.resolution
        if self.decision.bracketed:
            return res
        lo, hi = self.boot.x_c_ci if self.boot else (math.nan, math.nan)
        if res is None or not (math.isfinite(lo) and math.isfinite(hi)):
            return lo, hi
        return min(lo, res[0]), max(hi, res[1])

    @property
    def threshold_span(self) -> tuple[float, float]:
        """Where the threshold lies in x: the fitted x_c twice, a bracket's two sizes, NaN when not located."""
        if self.decision.bracketed:
            return self.decision.resolution
        if self.decision.reports_fit:
            return self.sigmoid.x_c, self.sigmoid.x_c
        return math.nan, math.nan

    @property
    def transition_width(self) -> float:
        """How wide the transition can be in x: the fitted 10-90% width, or a bracket's gap."""
        if self.decision.bracketed:
            return self.decision.resolution[1] - self.decision.resolution[0]
        return self.width

    @property
    def floor(self) -> float:
        return self.evidence.sign * self.sigmoid.floor if self.sigmoid else math.nan

    @property
    def ceil(self) -> float:
        return self.evidence.sign * self.sigmoid.ceil if self.sigmoid else math.nan

    @property
    def width(self) -> float:
        return self.sigmoid.width if self.sigmoid else math.nan

    def predict(self, x) -> np.ndarray:
        """The fitted sigmoid in metric units."""
        return self.evidence.sign * self.sigmoid.predict(x)

    def predict_smooth(self, x, name: str | None = None) -> np.ndarray:
        """The best smooth model (or the one named), in metric units."""
        return self.evidence.sign * self.smooth[name or self.best_smooth].predict(x)

    def band(self, x, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap interval of the sigmoid, metric units (NaN without a bootstrap)."""
        x = np.asarray(x, dtype=float)
        params = None if self.boot is None else self.boot.params
        if params is None or not np.isfinite(params).any():
            return np.full_like(x, np.nan), np.full_like(x, np.nan)
        p = params[np.all(np.isfinite(params), axis=1)]
        curves = self.evidence.sign * sigmoid(x[None, :], p[:, :1], p[:, 1:2], p[:, 2:3], p[:, 3:4])
        q = 100 * (1 - (self.level if level is None else level)) / 2
        lo, hi = np.percentile(curves, [q, 100 - q], axis=0)
        return np.minimum(lo, hi), np.maximum(lo, hi)

    def row(self) -> dict[str, Any]:
        """Flat scalar columns for a table (x-axis dependent columns are added by the caller)."""
        ev, sig = self.evidence, self.sigmoid
        out: dict[str, Any] = {
            "verdict": self.verdict.value, "reason": self.reason, "flags": ",".join(self.flags),
            "n_sizes": ev.n_sizes, "n_points": ev.n_points, "n_dropped": ev.n_dropped,
            "max_seeds": int(ev.n_seeds.max()) if len(ev.n_seeds) else 0,
            "x_min": float(ev.x.min()) if len(ev.x) else math.nan, "x_max": ev.x_max,
            "k": sig.k if sig else math.nan, "k_lo": self.k_ci[0], "k_hi": self.k_ci[1],
            "x_c": sig.x_c if sig else math.nan, "x_c_lo": self.x_c_ci[0], "x_c_hi": self.x_c_ci[1],
            "threshold_in_range": bool(sig and ev.x.min() <= sig.x_c <= ev.x.max()),
            "width_10_90": self.width, "width_frac": self.width / ev.x_range if sig else math.nan,
            "floor": self.floor, "ceil": self.ceil, "floor_pinned": ev.floor_pinned,
            "rise": ev.rise, "noise": ev.noise, "noise_measured": ev.noise_measured,
            "rise_over_noise": ev.rise / ev.noise if ev.noise > 0 else math.nan,
            "effect": ev.rise / ev.scale if ev.bounded else math.nan,
            "sigmoid_converged": sig.converged if sig else None, "ic": ev.ic, "best_model": ev.best_model,
            "delta_ic": ev.delta_ic, "delta_ic_flat": ev.delta_ic_flat, "bootstrap": self.boot.method if self.boot
            else "", "n_boot": self.boot.n_boot if self.boot else 0,
            "boot_emergent_frac": self.boot.steep_frac if self.boot else math.nan, "spearman_rho": ev.spearman_rho,
            "fall_back": ev.fall_back, "bracketed": self.decision.bracketed,
        }
        for name in MODELS:
            s = ev.scores.get(name)
            for key in ("r2", "aic", "aicc", "bic"):
                out[f"{key}_{name}"] = getattr(s, key) if s else math.nan
        if self.decision.bracketed:
            jump = ev.jump
            out.update({name: math.nan for name in _SIGMOID_COLUMNS})
            out.update(sigmoid_converged=None, threshold_in_range=True, rise=jump.step, noise=jump.sigma,
                       rise_over_noise=jump.step / jump.sigma, effect=jump.step / ev.scale if ev.bounded else math.nan)
        return out


def judge_curve(x, y, *, higher_is_better: bool = True, chance: float | None = None,
                bounds: tuple[float, float] | None = None, log_likelihood: bool = False,
                binomial: bool = False, n_samples=None, group=None, criteria: Criteria | None = None,
                n_boot: int = N_BOOT, seed: int = 0) -> CurveVerdict:
    """Fit constant, linear, power-law and sigmoid models to one curve and give its verdict.

    x: scale (log N, log C, or minus the validation loss: larger is a bigger model); y: the metric in
    its own units. Repeated x (seeds) are averaged and counted; `group` overrides what counts as one
    size. chance: the metric's chance level (pins the floor of a bounded metric); bounds: its natural
    range; binomial: values are means of 0/1 outcomes over n_samples (a sampling-noise estimate).
    Never raises on data: bad data give a verdict of insufficient-data or flat with the reason.
    """
    crit = criteria or Criteria()
    ev = gather(x, y, higher_is_better=higher_is_better, chance=chance, bounds=bounds,
                log_likelihood=log_likelihood, binomial=binomial, n_samples=n_samples, group=group, ic=crit.ic)
    decision = decide(ev, crit)
    notes = list(ev.notes) + [FLAG_TEXT[f] for f in decision.flags if f != "falls-back"]
    if ev.n_dropped and ev.n_sizes:
        notes.append(f"{ev.n_dropped} non-finite values dropped")
    reason = decision.reason + ("; " + "; ".join(notes) if notes else "")
    boot = None
    if ev.sigmoid is not None and n_boot > 0 and decision.draws_sigmoid:
        sign = ev.sign
        bounds_o = None if not ev.bounded else tuple(sorted((sign * bounds[0], sign * bounds[1])))
        boot = bootstrap_sigmoid(ev, bounds_o=bounds_o, level=crit.level, n_boot=n_boot, seed=seed,
                                 steep=lambda k: crit.steep(k, ev.x_range))
    return CurveVerdict(ev, decision, reason, boot, crit.level)
