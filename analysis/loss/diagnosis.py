"""What the loss data support: the caveats that keep the law from a headline, grouped under causes a
researcher can act on, each with the numbers it rests on and a next step to paste.

A caveat (`fit_caveats`) is a fact about the fit: it did not converge, a parameter sits at an optimiser
bound, fewer than 3 distinct sizes or budgets, an interval spanning more than MAX_DECADES decades (E, A,
B) or wider than MAX_EXPONENT_WIDTH (exponents), of no width, or unbounded. Each belongs to a term of the
law (N: A and alpha; D: B and beta; E; the frontier exponents a and b; the optimiser), and `diagnose` files
it under the cause that explains that term here:
  * N or D term: too few levels (fewer than MIN_LEVELS distinct sizes or budgets) or too narrow a range
    (less than MIN_SPAN) -> more sizes / budgets; else reversals of the recipe kind -> the recipe; else
    reversals of any kind -> noise or a break; else more sizes / budgets after all;
  * E: the loss still falls more than FLAT_PER_DOUBLING per doubling of D at the largest size (or of N
    at the largest budget) -> the runs do not reach the irreducible loss, E is not estimable here; a loss
    that has flattened -> the D term's cause;
  * a, b: the cause of alpha's caveats, else of beta's, else the D term's.
Reversals of loss along N or D (analysis.loss.monotonicity) are findings of their own: the recipe and
unexplained breaks keep the law from a headline whatever its intervals; noise does not by itself. Approach
2 not fitted, or its exponent without an interval narrower than MAX_EXPONENT_WIDTH (`isoflop_caveat`), is
a finding that keeps only Approach 2's exponent from a headline. The law is headlined when no finding
blocks it. Pure: results in, a frozen dataclass out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import Enum

from analysis.loss.bootstrap import LossLawBootstrap
from analysis.loss.fit import LossLawFit
from analysis.loss.isoflop import IsoFlopFit
from analysis.loss.monotonicity import Kind, Monotonicity, Reversal, si

MAX_DECADES = 1.0  # an interval of a scale quantity (E, A, B, N*, D*) wider than 10x says little
MAX_EXPONENT_WIDTH = 0.25  # an exponent known only to +-0.125 says little about how to scale
MIN_LEVELS = 4  # distinct sizes (budgets) below which a term's caveats are put down to too few of them
MIN_SPAN = 10.0  # a range of sizes (budgets) narrower than 10x pins its exponent poorly
FLAT_PER_DOUBLING = 0.01  # a loss still falling more than 1% per doubling has not reached E
SHOWN = 2  # reversals spelled out per finding; the rest are in the monotonicity section and table
TERMS = {"E": "E", "A": "N", "alpha": "N", "B": "D", "beta": "D", "a": "exponents", "b": "exponents"}


@dataclass(frozen=True)
class Caveat:
    term: str  # "N", "D", "E", "exponents" or "fit"
    text: str
    short: str = ""  # the same in fewer words, for a list under a cause; "" -> text

    def brief(self) -> str:
        return self.short or self.text


def fit_caveats(fit: LossLawFit | None, bootstrap: LossLawBootstrap | None, n_sizes: int,
                n_budgets: int) -> tuple[Caveat, ...]:
    """Why the fit cannot carry a headline (module docstring); () when there is nothing to say or no fit."""
    if fit is None:
        return ()
    out = [] if fit.converged else [Caveat("fit", f"the fit did not converge ({fit.message})")]
    out += [Caveat(TERMS[text.split(" ")[0]], f"{text}: placed by the bound, not the data") for text in fit.at_bound()]
    for count, what, term, terms in ((n_sizes, "model sizes", "N", "E, A and alpha"),
                                     (n_budgets, "token budgets", "D", "E, B and beta")):
        if count < 3:
            out.append(Caveat(term, f"{count} distinct {what}: {terms} pass through them exactly instead of being "
                                    f"estimated (3 or more leave a residual to estimate from)"))
    if bootstrap is not None:
        out += _wide_intervals(bootstrap.ci, bootstrap.level)
    return tuple(out)


def _wide_intervals(ci: dict[str, tuple[float, float]], level: float) -> list[Caveat]:
    out = []
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        lo, hi = ci.get(name, (math.nan, math.nan))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            if name in ci:
                out.append(Caveat(TERMS[name], f"{name}'s {level:.0%} interval is unbounded"))
            continue
        exponent = name in ("alpha", "beta", "a", "b")
        if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
            out.append(Caveat(TERMS[name], f"{name}'s {level:.0%} interval [{lo:.3g}, {hi:.3g}] has no width: the "
                                           f"resamples cannot move it, which is no measure of its uncertainty"))
        elif exponent and hi - lo > MAX_EXPONENT_WIDTH:
            out.append(Caveat(TERMS[name], f"{name}'s {level:.0%} interval [{lo:.3g}, {hi:.3g}] is wider than "
                                           f"{MAX_EXPONENT_WIDTH:g}", f"{name} in [{lo:.3g}, {hi:.3g}]"))
        elif not exponent and lo > 0 and math.log10(hi / lo) > MAX_DECADES:
            decades = math.log10(hi / lo)
            out.append(Caveat(TERMS[name], f"{name}'s {level:.0%} interval spans {decades:.1f} decades ({lo:.3g} to "
                                           f"{hi:.3g})", f"{name}'s interval spans {decades:.1f} decades"))
    return out


def isoflop_caveat(isoflop: IsoFlopFit | None) -> str | None:
    """Why Approach 2's exponent cannot be quoted (no interval, or one wider than MAX_EXPONENT_WIDTH); None
    when it can or when there is no Approach 2."""
    if isoflop is None:
        return None
    used = sum(m.used for m in isoflop.minima)
    if isoflop.a_ci is None or not all(map(math.isfinite, isoflop.a_ci)):
        return f"Approach 2's a rests on the minima of {used} budgets and has no interval ({isoflop.ci_method})"
    lo, hi = isoflop.a_ci
    if hi - lo > MAX_EXPONENT_WIDTH:
        return (f"Approach 2's a rests on the minima of {used} budgets; its {isoflop.level:.0%} interval "
                f"[{lo:.3g}, {hi:.3g}] is wider than {MAX_EXPONENT_WIDTH:g}")
    return None


class Cause(Enum):
    RECIPE = "recipe"
    NOISE = "noise"
    UNEXPLAINED = "unexplained"
    SIZES = "sizes"
    BUDGETS = "budgets"
    IRREDUCIBLE = "irreducible"
    OPTIMISER = "optimiser"
    ISOFLOP = "isoflop"

    @property
    def title(self) -> str:
        return {Cause.RECIPE: "the recipe, not the law", Cause.NOISE: "noise",
                Cause.UNEXPLAINED: "a break the recipe does not explain", Cause.SIZES: "too few or too close sizes",
                Cause.BUDGETS: "too few or too close token budgets",
                Cause.IRREDUCIBLE: "E is not estimable here", Cause.OPTIMISER: "the optimiser",
                Cause.ISOFLOP: "Approach 2 does not pin N*(C)"}[self]

    @property
    def blocks_alone(self) -> bool:
        """Whether a finding of this cause keeps the law from a headline even with no caveat filed under it."""
        return self in (Cause.RECIPE, Cause.UNEXPLAINED)


KIND_CAUSE = {Kind.RECIPE: Cause.RECIPE, Kind.NOISE: Cause.NOISE, Kind.UNEXPLAINED: Cause.UNEXPLAINED}


@dataclass(frozen=True)
class Finding:
    cause: Cause
    evidence: str  # what the data show, with the runs and spans it rests on
    fix: str  # the next step, with an override to paste where there is one
    caveats: tuple[str, ...] = ()  # the fit's caveats this cause explains

    @property
    def blocks(self) -> bool:
        return self.cause.blocks_alone or bool(self.caveats)

    def text(self) -> str:
        title = self.cause.title
        out = f"{title[0].upper()}{title[1:]}: {self.evidence}."
        if self.caveats:
            out += f" Not pinned because of it: {'; '.join(self.caveats)}."
        return out + f" Next: {self.fix}."

    def as_dict(self) -> dict:
        return {"cause": self.cause.value, "title": self.cause.title, "evidence": self.evidence, "fix": self.fix,
                "caveats": list(self.caveats), "blocks_headline": self.blocks}


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]

    @property
    def headlined(self) -> bool:
        return not any(f.blocks for f in self.findings)

    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)

    def reason(self) -> str:
        """One line: that the data do not pin the law, and why ("" when they do)."""
        if self.headlined:
            return ""
        return "the data do not pin the law: " + "; ".join(f.cause.title for f in self.blocking())

    def as_dict(self) -> dict:
        return {"headlined": self.headlined, "reason": self.reason(), "findings": [f.as_dict() for f in self.findings]}


def _override_number(x: float) -> str:
    """3.8e5, not 3.8e+05 or 380000.0: how a person types a budget in an override."""
    exponent = int(math.floor(math.log10(x)))
    return f"{float(f'{x / 10**exponent:.2g}'):g}e{exponent}"


@dataclass(frozen=True)
class _Ranges:
    """The sizes and budgets the points stand on, and how fast the loss still falls at the largest of each."""

    n_sizes: int
    n_budgets: int
    n_lo: float
    n_hi: float
    d_lo: float
    d_hi: float
    falls: tuple[str, ...]  # "12% per doubling of D at N = 783k", where more than FLAT_PER_DOUBLING
    n_seeds: int  # most runs at one point

    @property
    def n_span(self) -> float:
        return self.n_hi / self.n_lo

    @property
    def d_span(self) -> float:
        return self.d_hi / self.d_lo

    def narrow(self, term: str) -> bool:
        count, span = (self.n_sizes, self.n_span) if term == "N" else (self.n_budgets, self.d_span)
        return count < MIN_LEVELS or span < MIN_SPAN


def _fall_per_doubling(points, along: str) -> tuple[float, float, float] | None:
    """At the largest N (along D) or D (along N): (the loss's relative fall per doubling between its two
    largest values, the held N or D, the doublings between them); None with fewer than two."""
    held = "n_params" if along == "n_tokens" else "n_tokens"
    top = max(getattr(p, held) for p in points)
    line = sorted((p for p in points if math.isclose(getattr(p, held), top, rel_tol=0.05)),
                  key=lambda p: getattr(p, along))
    if len(line) < 2:
        return None
    a, b = line[-2], line[-1]
    doublings = math.log2(getattr(b, along) / getattr(a, along))
    return 1 - (b.loss / a.loss) ** (1 / doublings), top, doublings


def _ranges(mono: Monotonicity, n_sizes: int, n_budgets: int) -> _Ranges:
    points = mono.points
    falls = []
    for along, symbol, held in (("n_tokens", "D", "N"), ("n_params", "N", "D")):
        fall = _fall_per_doubling(points, along)
        if fall is not None and fall[0] > FLAT_PER_DOUBLING:
            falls.append(f"{100 * fall[0]:.1f}% per doubling of {symbol} at the largest {held} = {si(fall[1])}")
    n, d = [p.n_params for p in points], [p.n_tokens for p in points]
    return _Ranges(n_sizes=n_sizes, n_budgets=n_budgets, n_lo=min(n), n_hi=max(n), d_lo=min(d), d_hi=max(d),
                   falls=tuple(falls), n_seeds=max(p.n_runs for p in points))


def _term_cause(term: str, ranges: _Ranges, mono: Monotonicity, filed: dict[str, Cause]) -> Cause:
    if term == "fit":
        return Cause.OPTIMISER
    if term == "exponents":
        return filed.get("N") or filed.get("D") or _term_cause("D", ranges, mono, filed)
    if term == "E":
        return Cause.IRREDUCIBLE if ranges.falls else _term_cause("D", ranges, mono, filed)
    if ranges.narrow(term):
        return Cause.SIZES if term == "N" else Cause.BUDGETS
    along = "n_params" if term == "N" else "n_tokens"
    for reversals in ([r for r in mono.reversals if r.along == along], mono.reversals):
        for kind in (Kind.RECIPE, Kind.UNEXPLAINED, Kind.NOISE):
            if any(r.kind is kind for r in reversals):
                return KIND_CAUSE[kind]
    return Cause.SIZES if term == "N" else Cause.BUDGETS


def _places(reversals: tuple[Reversal, ...]) -> str:
    along_n = sum(r.along == "n_params" for r in reversals)
    along_d = len(reversals) - along_n
    parts = ([f"with N at fixed D in {along_n} place{'s' * (along_n > 1)}"] if along_n else []) + (
        [f"with D at fixed N in {along_d} place{'s' * (along_d > 1)}"] if along_d else [])
    return "loss rises " + " and ".join(parts)


def _listed(reversals: tuple[Reversal, ...]) -> str:
    """The largest rises spelled out, the rest counted."""
    largest = sorted(reversals, key=lambda r: -r.relative_rise)[:SHOWN]
    more = len(reversals) - SHOWN
    return "; ".join(r.describe() for r in largest) + (f"; and {more} more (monotonicity table)" if more > 0 else "")


def _seeds_fix(ranges: _Ranges) -> str:
    seeds = list(range(max(3, 2 * ranges.n_seeds)))
    return f"grid.seeds=[{','.join(map(str, seeds))}]"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _where(reversals: tuple[Reversal, ...]) -> str:
    """What changed at every one of the reversals ("the batch doubles" when it did, each time)."""
    common = [c.column for c in reversals[0].changes if all(c.column in {x.column for x in r.changes}
                                                            for r in reversals)]
    if not common:
        return "the recipe changes (" + _and(sorted({c.column for r in reversals for c in r.changes})) + ")"
    batch = [c for r in reversals for c in r.changes if c.column == "batch_size"]
    if "batch_size" in common and all(_ratio(c) == 2 for c in batch):
        rest = [c for c in common if c != "batch_size"]
        return "the batch doubles" + (f" ({_and(rest)} change with it)" if rest else "")
    return f"{_and(common)} change{'s' * (len(common) == 1)}"


def _ratio(change) -> float | None:
    try:
        return float(change.after) / float(change.before)
    except ValueError:
        return None


def _recipe_finding(reversals: tuple[Reversal, ...], mono: Monotonicity, ranges: _Ranges) -> tuple[str, str]:
    columns = {c.column for r in reversals for c in r.changes}
    evidence = f"{_places(reversals)}, each where {_where(reversals)}: {_listed(reversals)}"
    calibrated = any(v.startswith("calibrated") for p in mono.points for c, v in p.recipe if c == "recipe")
    fix = ("the calibrated recipe still changes here: calibrate at more points (recipe.sizes=3 recipe.budgets=2)"
           if calibrated else "calibrate the recipe at this scale (recipe.source=calibrate)")
    if columns & {"batch_size", "n_steps", "lr"}:
        batches = Counter(v for p in mono.points for c, v in p.recipe if c == "batch_size" and "|" not in v)
        if batches:
            fix += f" or fix the batch (train.batch_size={batches.most_common(1)[0][0]})"
    if "precision" in columns:
        fix += "; one precision for every size (train.precision=fp32)"
    if columns & {"schedule", "role"}:
        fix += "; compare runs of one schedule (the points mix schedules or WSD roles)"
    return evidence, fix + f"; and add seeds ({_seeds_fix(ranges)})"


def _reversal_finding(kind: Kind, reversals: tuple[Reversal, ...], mono: Monotonicity,
                      ranges: _Ranges) -> tuple[str, str]:
    if kind is Kind.RECIPE:
        return _recipe_finding(reversals, mono, ranges)
    if kind is Kind.UNEXPLAINED:
        return (f"{_places(reversals)} beyond the seeds' spread with the same recipe"
                + ("" if mono.recipe_columns else " (the table does not say how the runs were trained)")
                + f": {_listed(reversals)}",
                "look at these runs' curves (curves.parquet) for instability or divergence, and rerun them")
    beyond = sum(r.beyond_noise for r in reversals)
    how = ("within the noise" if not beyond else
           f"{len(reversals) - beyond} within the noise, {beyond} beyond it "
           + ("with the same recipe" if mono.recipe_columns else "(the table does not say how the runs were trained)"))
    return (f"{_places(reversals)}, {how} ({mono.rule()}): {_listed(reversals)}", f"add seeds ({_seeds_fix(ranges)})")


def _term_finding(cause: Cause, ranges: _Ranges) -> tuple[str, str]:
    if cause is Cause.SIZES:
        target = [_override_number(ranges.n_lo * 2.0**k) for k in range(0, 6)]
        return (f"N spans {ranges.n_span:.3g}x over {ranges.n_sizes} sizes ({si(ranges.n_lo)} to "
                f"{si(ranges.n_hi)})",
                f"more sizes over a wider range, {MIN_LEVELS} or more spanning {MIN_SPAN:g}x or more (e.g. grid.models="
                f"[{','.join('{n_nonembed_params:' + x + '}' for x in target)}])")
    if cause is Cause.BUDGETS:
        target = [_override_number(ranges.d_lo * 2.0**k) for k in range(0, 5)]
        return (f"D spans {ranges.d_span:.3g}x over {ranges.n_budgets} budgets ({si(ranges.d_lo)} to "
                f"{si(ranges.d_hi)})",
                f"budgets over a wider range (grid.n_tokens=[{','.join(target)}]) or WSD branches "
                "(train.schedule=wsd grid.branches=true: many budgets per size for about half the FLOPs)")
    if cause is Cause.IRREDUCIBLE:
        return ("the loss is still falling (" + "; ".join(ranges.falls) + "): the runs do not reach the "
                "irreducible loss, so the law's E is not estimable from them",
                "report E as not estimable here; only larger models trained on more tokens reach it")
    return "the optimiser stopped short", ("refit with more starts (python -m analysis fit-loss <runs table> --n "
                                           "n_params --d n_tokens --loss final_val_loss --n-best-starts 64)")


def diagnose(caveats: tuple[Caveat, ...], monotonicity: Monotonicity, n_sizes: int, n_budgets: int,
             isoflop_problem: str | None = None) -> Diagnosis:
    """The findings, those that keep the law from a headline first, each group in the order a reader should
    act on them: breaks in the data, the terms the fit cannot pin, Approach 2 (`isoflop_problem`: why it was
    not fitted, or isoflop_caveat)."""
    findings: list[Finding] = []
    if not monotonicity.points:
        if caveats:
            raise ValueError("caveats of a fit without the runs it was fitted to: pass their monotonicity check")
        return Diagnosis(())
    ranges = _ranges(monotonicity, n_sizes, n_budgets)
    filed: dict[str, Cause] = {}
    by_cause: dict[Cause, list[str]] = {}
    for term in ("N", "D", "E", "exponents", "fit"):
        texts = [c.brief() for c in caveats if c.term == term]
        if texts:
            filed[term] = _term_cause(term, ranges, monotonicity, filed)
            by_cause.setdefault(filed[term], []).extend(texts)
    for kind in (Kind.RECIPE, Kind.UNEXPLAINED, Kind.NOISE):
        reversals = monotonicity.of_kind(kind)
        cause = KIND_CAUSE[kind]
        if reversals:
            evidence, fix = _reversal_finding(kind, reversals, monotonicity, ranges)
            findings.append(Finding(cause, evidence, fix, tuple(by_cause.pop(cause, ()))))
    for cause in (Cause.SIZES, Cause.BUDGETS, Cause.IRREDUCIBLE, Cause.OPTIMISER):
        if cause in by_cause:
            evidence, fix = _term_finding(cause, ranges)
            findings.append(Finding(cause, evidence, fix, tuple(by_cause.pop(cause))))
    if isoflop_problem:
        findings.append(Finding(Cause.ISOFLOP, isoflop_problem,
                                "at each compute budget, sizes on both sides of its optimum (an isoFLOP grid sets "
                                "D = C/(6N) per size)"))
    return Diagnosis(tuple(sorted(findings, key=lambda f: not f.blocks)))
