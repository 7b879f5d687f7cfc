"""Is a task's jump real, or made by the metric? (Schaeffer, Miranda and Koyejo 2023)

An all-or-nothing metric turns a smooth per-token improvement into a sharp curve: if each of the L
answer tokens is right with probability p, the whole answer is right with probability about p^L, and
p^L hugs zero until p is close to one. So a task's verdict compares the kinds of metric measured on
the same samples (kinds: analysis/emergence/kinds.py):

  metric-induced  a discontinuous metric (exact match, multiple-choice accuracy) is emergent while the
                  continuous metrics improve smoothly (verdict smooth, rising) and none of them jumps,
                  unless EM = p_token^L clearly fails (R^2 < COMPOSITION_FAILS = 0.5 at the stated L,
                  or at the fitted L when no L is stated): the smooth per-token gain then does not
                  account for the jump, and the verdict is inconclusive with that reason
  genuine         a discontinuous metric is emergent and continuous metrics jump too, at a compatible
                  scale (thresholds x_c no further apart than the wider of the two 10-90% widths; a
                  threshold bracketed by two sizes lies anywhere between them, as wide as their gap): every
                  continuous metric that moves jumps, or a log-likelihood metric (target_logprob,
                  task_loss: the least thresholded read-out of the model) does, whatever the others do
  inconclusive    anything else, with the reason: no discontinuous metric emergent, no continuous
                  metric to compare, EM that does not follow p^L (above), continuous metrics that
                  disagree (a partial-credit metric jumps while the log-likelihood improves smoothly),
                  a jump in a continuous metric at another scale only, or no smooth improvement to point
                  to. A verdict never contradicts its reason: no "metric-induced, although ... jump".

The compositional check fits EM = p_token^L per size: L from the answer_tokens column (mean answer
length in tokens) when present, else the caller's value, and in any case an effective L fitted by
least squares on the EM scale (min over L of sum (EM - p^L)^2; the EM scale keeps sizes where EM = 0,
which a fit of log EM = L log p would have to drop). R^2 is that of predicted against observed EM.
A high R^2 with the stated L says the exact-match curve is what independent per-token errors predict.
Below COMPOSITION_FAILS (0.5) p^L explains less than half of EM's variance across sizes (e.g. EM above
p^L, which independent tokens cannot give, or p^L rising decades before EM): the claim that the jump is
the compounding of the smooth per-token gain is then unsupported, so no metric-induced verdict. Between
0.5 and COMPOSITION_EXPLAINS the verdict stands and the reason carries the R^2: token errors are rarely
independent and the stated L is only a mean answer length, so a partial fit is expected of a real artifact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from analysis.emergence.curve import CurveVerdict
from analysis.emergence.rule import Label, Verdict


class Artifact(Label):
    """The per-task verdict of the metric-artifact test."""

    METRIC_INDUCED = "metric-induced"
    GENUINE = "genuine"
    INCONCLUSIVE = "inconclusive"


ARTIFACT_VERDICTS = tuple(a.value for a in Artifact)
EM_METRICS = ("exact_match", "exact_str_match", "em")
TOKEN_METRICS = ("token_accuracy",)
COMPOSITION_FAILS = 0.5  # below this R^2 (stated L, else fitted L) EM is not p^L: no metric-induced verdict


@dataclass(frozen=True)
class CompositionTest:
    """EM against p_token^L over the sizes where both are measured."""
    em_metric: str | None
    token_metric: str | None
    n_sizes: int
    length: float  # the L used for r2 (NaN when neither the table nor the caller gives one)
    length_source: str  # "answer_tokens" | "option" | "" (none given)
    r2: float  # R^2 of p^L (stated L) against observed EM
    length_fit: float  # effective L by least squares on the EM scale
    r2_fit: float  # R^2 with the effective L
    reason: str = ""

    def row(self) -> dict:
        return {"pl_em_metric": self.em_metric, "pl_token_metric": self.token_metric, "pl_n_sizes": self.n_sizes,
                "pl_L": self.length, "pl_L_source": self.length_source, "pl_r2": self.r2,
                "pl_L_fit": self.length_fit, "pl_r2_fit": self.r2_fit, "pl_note": self.reason}


def _r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    sst = float(np.sum((observed - observed.mean()) ** 2))
    if sst <= 0:
        return math.nan
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / sst


def composition_test(x_em, em, x_token, p_token, *, length: float | None = None, length_source: str = "",
                     em_metric: str = "exact_match", token_metric: str = "token_accuracy") -> CompositionTest:
    """How well EM = p_token^L explains the exact-match curve (per-size means; x matched exactly)."""
    x_em, em = np.asarray(x_em, dtype=float), np.asarray(em, dtype=float)
    x_tok, p = np.asarray(x_token, dtype=float), np.asarray(p_token, dtype=float)
    pairs = [(e, p[np.argmin(np.abs(x_tok - xe))]) for xe, e in zip(x_em, em)
             if len(x_tok) and np.min(np.abs(x_tok - xe)) <= 1e-9 * max(1.0, abs(xe))]
    pairs = [(e, q) for e, q in pairs if math.isfinite(e) and math.isfinite(q)]
    given = float(length) if length is not None and math.isfinite(length) and length > 0 else math.nan
    source = length_source if math.isfinite(given) else ""

    def empty(reason: str) -> CompositionTest:
        return CompositionTest(em_metric, token_metric, len(pairs), given, source, math.nan, math.nan, math.nan,
                               reason)

    if len(pairs) < 3:
        return empty(f"{len(pairs)} sizes with both {em_metric} and {token_metric}; need 3")
    e, q = (np.array(v) for v in zip(*pairs))
    if np.any((q < 0) | (q > 1)) or np.any((e < 0) | (e > 1)):
        return empty(f"{em_metric} and {token_metric} must lie in [0, 1]")
    if np.ptp(e) == 0:
        return empty(f"{em_metric} is constant ({e[0]:.3g}): nothing to explain")
    q = np.clip(q, 1e-12, 1.0)

    def sse(log_l: float) -> float:
        return float(np.sum((e - q ** math.exp(log_l)) ** 2))

    best = minimize_scalar(sse, bounds=(math.log(0.05), math.log(1000.0)), method="bounded",
                           options={"xatol": 1e-6})
    length_fit = math.exp(best.x)
    r2 = _r2(e, q**given) if math.isfinite(given) else math.nan
    return CompositionTest(em_metric, token_metric, len(e), given, source, r2, length_fit,
                           _r2(e, q**length_fit), "")


@dataclass(frozen=True)
class ArtifactVerdict:
    verdict: Artifact
    reason: str
    discontinuous: tuple[str, ...]  # metrics of that kind with a verdict
    continuous: tuple[str, ...]


def _describe(curves: dict[str, CurveVerdict], names) -> str:
    return ", ".join(f"{m}: {curves[m].verdict}" for m in names)


def artifact_verdict(curves: dict[str, CurveVerdict], kinds: dict[str, str],
                     composition: CompositionTest | None = None, log_likelihood: frozenset[str] = frozenset()
                     ) -> ArtifactVerdict:
    """The per-task verdict from the per-metric verdicts of one task (see the module doc)."""
    usable = {m: c for m, c in curves.items() if c.verdict is not Verdict.INSUFFICIENT}
    disc = tuple(sorted(m for m in usable if kinds.get(m) == "discontinuous"))
    cont = tuple(sorted(m for m in usable if kinds.get(m) == "continuous"))
    unknown = sorted(m for m in curves if kinds.get(m) not in ("discontinuous", "continuous"))

    def out(verdict: Artifact, reason: str) -> ArtifactVerdict:
        extra = []
        if composition is not None and math.isfinite(composition.r2_fit):
            stated = (f"R2 {composition.r2:.3f} with L={composition.length:.3g} ({composition.length_source}); "
                      if math.isfinite(composition.r2) else "")
            extra.append(f"{composition.em_metric} ~ {composition.token_metric}^L: {stated}"
                         f"fitted L={composition.length_fit:.3g}, R2 {composition.r2_fit:.3f}")
        if unknown:
            extra.append(f"metrics of unknown kind left out: {', '.join(unknown)}")
        return ArtifactVerdict(verdict, "; ".join([reason, *extra]), disc, cont)

    if not disc:
        return out(Artifact.INCONCLUSIVE, "no discontinuous metric with enough data on this task")
    if not cont:
        return out(Artifact.INCONCLUSIVE, "no continuous metric with enough data on this task")
    jumps = [m for m in disc if usable[m].verdict is Verdict.EMERGENT]
    if not jumps:
        return out(Artifact.INCONCLUSIVE, f"no discontinuous metric is emergent ({_describe(usable, disc)})")
    cont_jumps = [m for m in cont if usable[m].verdict is Verdict.EMERGENT]
    cont_smooth = [m for m in cont if usable[m].verdict is Verdict.SMOOTH and usable[m].slope > 0]
    disc_text = _describe(usable, jumps)
    if cont_jumps:
        near = [c for c in cont_jumps if any(_compatible(usable[c], usable[d]) for d in jumps)]
        if not near:
            return out(Artifact.INCONCLUSIVE, f"{disc_text}; {', '.join(cont_jumps)} jump too but at another scale")
        loglik = [m for m in near if m in log_likelihood]
        if cont_smooth and not loglik:
            return out(Artifact.INCONCLUSIVE, f"{disc_text}; continuous metrics disagree: {', '.join(near)} jump at "
                       f"the same scale but {', '.join(cont_smooth)} improve smoothly, and no log-likelihood jumps")
        smooth_too = f"; {', '.join(cont_smooth)} improve smoothly" if cont_smooth else ""
        return out(Artifact.GENUINE, f"{disc_text}; continuous metrics jump at the same scale ({', '.join(near)})"
                   + smooth_too)
    if cont_smooth:
        rest = [m for m in cont if m not in cont_smooth]
        tail = f" ({_describe(usable, rest)})" if rest else ""
        failing = _composition_fails(composition)
        if failing:
            return out(Artifact.INCONCLUSIVE, f"{disc_text} while {', '.join(cont_smooth)} improve smoothly{tail}, "
                       f"but {failing}: the jump is not the compounding of the per-token gain")
        return out(Artifact.METRIC_INDUCED, f"{disc_text} while {', '.join(cont_smooth)} improve smoothly{tail}")
    return out(Artifact.INCONCLUSIVE,
               f"{disc_text}; no continuous metric improves smoothly ({_describe(usable, cont)})")


def _composition_fails(composition: CompositionTest | None) -> str:
    """Why EM = p^L clearly fails (R^2 < COMPOSITION_FAILS at the stated L, or at the fitted L when none is
    stated: the best L for the data); "" when it holds, is middling, or could not be computed."""
    if composition is None:
        return ""
    if math.isfinite(composition.r2):
        r2, where = composition.r2, f"at the stated L={composition.length:.3g}"
    elif math.isfinite(composition.r2_fit):
        r2, where = composition.r2_fit, f"even at the fitted L={composition.length_fit:.3g}"
    else:
        return ""
    if r2 >= COMPOSITION_FAILS:
        return ""
    return (f"{composition.em_metric} does not follow {composition.token_metric}^L (R2 {r2:.2f} {where}, "
            f"< {COMPOSITION_FAILS:g})")


def _compatible(a: CurveVerdict, b: CurveVerdict) -> bool:
    """Thresholds no further apart than the wider of the two transitions (a bracket: its two sizes, as wide
    as the gap between them)."""
    (a_lo, a_hi), (b_lo, b_hi) = a.threshold_span, b.threshold_span
    return max(0.0, max(a_lo, b_lo) - min(a_hi, b_hi)) <= max(a.transition_width, b.transition_width)
