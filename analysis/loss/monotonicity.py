"""Whether loss falls with N at every fixed D and with D at every fixed N, and what differs where it does not.

Runs are grouped into points (N, D): sizes (budgets) within rel_tol of each other are one, as everywhere in
the loss analysis, and a point's loss is the mean of its runs (its seeds). Neighbouring points are compared
along N at each D and along D at each N; a larger model (budget) with a higher mean loss is a reversal. The
law L = E + A/N^alpha + B/D^beta falls in both, so a reversal is noise, or the runs are not trained alike.
What a reversal is (`Reversal.kind`, decided here only):
  * within the tolerance, or beyond it with one seed and the same recipe: noise (`Kind.NOISE`). Tolerance:
    with seeds (a point with 2 or more runs), NOISE_Z standard errors of the difference of the two means,
    each point's seed SD pooled over the points of its token budget (short runs vary more); with one
    seed, ONE_SEED_TOLERANCE of the smaller run's loss, a stated guess, since one seed cannot tell noise
    from a real break;
  * beyond the tolerance where a recipe column differs between the two points: the recipe (`Kind.RECIPE`).
    lr follows compute under any rule, and n_steps follows D, so neither alone is a change of recipe (the
    changes list them all the same);
  * beyond the seeds' spread with the same recipe: a break nothing in the table explains (`Kind.UNEXPLAINED`).
The recipe columns are RECIPE_COLUMNS, those the table has; a table of N, D and loss alone gets the check,
with nothing to say about what changed. Pure: arrays and a table in, a frozen dataclass out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import polars as pl

from analysis.loss.isoflop import group_by_compute

RECIPE_COLUMNS = ("batch_size", "n_steps", "lr", "precision", "schedule", "role", "recipe")
ONE_SEED_TOLERANCE = 0.02  # relative; seed-to-seed spread of the sweep's small runs is 0.5% to 28% (README)
BATCH_JUMP = 1.5  # a batch this many times its neighbour's is a jump of the recipe, not a smooth rule's step
NOISE_Z = 2.0  # standard errors of a difference of seed means a rise must exceed to be more than noise
AXES = {"n_params": ("N", "D", "n_tokens"), "n_tokens": ("D", "N", "n_params")}  # along: (symbol, held, held column)


class Kind(Enum):
    NOISE = "noise"
    RECIPE = "recipe"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class Point:
    """The runs at one (N, D): their mean loss and what they have in common."""

    n_params: float
    n_tokens: float
    loss: float  # mean over the runs (seeds)
    run_ids: tuple[str, ...]
    label: str  # the size's name in the runs table ("" without a label column)
    recipe: tuple[tuple[str, str], ...]  # (column, value); runs that differ show every value, "8|16"

    @property
    def n_runs(self) -> int:
        return len(self.run_ids)

    def name(self) -> str:
        return self.label or si(self.n_params)


@dataclass(frozen=True)
class Change:
    column: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.column} {self.before} -> {self.after}"


@dataclass(frozen=True)
class Reversal:
    """A larger N (or D) at the same D (or N) with a higher mean loss than its neighbour below."""

    along: str  # "n_params" or "n_tokens": what grows from `smaller` to `larger`
    smaller: Point
    larger: Point
    tolerance: float  # absolute loss
    one_seed: bool  # the tolerance is ONE_SEED_TOLERANCE: noise cannot be told from a real break
    changes: tuple[Change, ...]

    @property
    def rise(self) -> float:
        return self.larger.loss - self.smaller.loss

    @property
    def relative_rise(self) -> float:
        return self.rise / self.smaller.loss

    @property
    def beyond_noise(self) -> bool:
        return self.rise > self.tolerance

    @property
    def recipe_changed(self) -> bool:
        """Whether the runs were trained differently in a way no one smooth rule does between neighbours: the
        precision, schedule, role or recipe differ; the batch jumps by BATCH_JUMP or more (a power-of-two
        rounding doubles it where a smooth rule moves it by under a third between grid neighbours); or, along
        D, the larger budget takes fewer steps. lr follows compute and n_steps follows D under any rule, so
        neither alone is a change of recipe."""
        for c in self.changes:
            if c.column in ("precision", "schedule", "role", "recipe"):
                return True
            if c.column == "batch_size" and _ratio(c.before, c.after) >= BATCH_JUMP:
                return True
            if c.column == "n_steps" and self.along == "n_tokens" and _ratio(c.after, c.before) > 1:
                return True
        return False

    @property
    def kind(self) -> Kind:
        if self.beyond_noise and self.recipe_changed:
            return Kind.RECIPE
        return Kind.UNEXPLAINED if self.beyond_noise and not self.one_seed else Kind.NOISE

    @property
    def held(self) -> float:
        """The D (along N) or N (along D) both points share."""
        return self.smaller.n_tokens if self.along == "n_params" else self.smaller.n_params

    def where(self) -> str:
        """e.g. "N grows at D = 1.09M"."""
        symbol, held, _ = AXES[self.along]
        return f"{symbol} grows at {held} = {si(self.held)}"

    def changed(self) -> str:
        return ", ".join(map(str, self.changes))

    def describe(self) -> str:
        """e.g. "N 468k -> 783k at D = 1.09M (s6 -> s7): 0.801 -> 0.867 (+8.2%); batch_size 16 -> 32, ..."."""
        symbol, held, _ = AXES[self.along]
        a, b = self.smaller, self.larger
        x = (a.n_params, b.n_params) if self.along == "n_params" else (a.n_tokens, b.n_tokens)
        names = f" ({a.label} -> {b.label})" if a.label and b.label and a.label != b.label else \
            (f" ({a.label})" if a.label else "")
        return (f"{symbol} {si(x[0])} -> {si(x[1])} at {held} = {si(self.held)}{names}: {a.loss:.3f} -> "
                f"{b.loss:.3f} ({100 * self.relative_rise:+.1f}%)" + (f"; {self.changed()}" if self.changes else ""))


@dataclass(frozen=True)
class Monotonicity:
    points: tuple[Point, ...]
    reversals: tuple[Reversal, ...]  # every one, noise included
    n_pairs: int  # neighbouring pairs compared
    seed_sd: float | None  # pooled over the points with several runs; None with one run per point
    recipe_columns: tuple[str, ...]  # the RECIPE_COLUMNS the table had

    @property
    def one_seed(self) -> bool:
        return self.seed_sd is None

    def of_kind(self, kind: Kind) -> tuple[Reversal, ...]:
        return tuple(r for r in self.reversals if r.kind is kind)

    def rule(self) -> str:
        """How a rise is told from noise, in words."""
        if self.one_seed:
            return (f"one run per point: a rise over {ONE_SEED_TOLERANCE:.0%} of the loss counts as a break; "
                    "without seeds, noise cannot be told from a real break")
        return (f"seed means compared; a rise counts as a break beyond {NOISE_Z:g} standard errors of the "
                f"difference, the seeds' SD pooled per token budget (over all points: {self.seed_sd:.3g})")

    def as_dict(self) -> dict:
        return {"rule": self.rule(), "n_points": len(self.points), "n_pairs": self.n_pairs, "seed_sd": self.seed_sd,
                "recipe_columns": list(self.recipe_columns), "reversals": self.rows()}

    def rows(self) -> list[dict]:
        """The monotonicity table: one row per reversal."""
        out = []
        for r in self.reversals:
            a, b = r.smaller, r.larger
            out.append({"along": r.along, "held": r.held, "kind": r.kind.value, "beyond_noise": r.beyond_noise,
                        "label_before": a.label, "label_after": b.label, "run_ids_before": ",".join(a.run_ids),
                        "run_ids_after": ",".join(b.run_ids), "n_params_before": a.n_params,
                        "n_params_after": b.n_params, "n_tokens_before": a.n_tokens, "n_tokens_after": b.n_tokens,
                        "loss_before": a.loss, "loss_after": b.loss, "n_runs_before": a.n_runs,
                        "n_runs_after": b.n_runs, "relative_rise": r.relative_rise, "tolerance": r.tolerance,
                        "changed": r.changed()})
        return out


SCHEMA = {"along": pl.String, "held": pl.Float64, "kind": pl.String, "beyond_noise": pl.Boolean,
          "label_before": pl.String, "label_after": pl.String, "run_ids_before": pl.String,
          "run_ids_after": pl.String, "n_params_before": pl.Float64, "n_params_after": pl.Float64,
          "n_tokens_before": pl.Float64, "n_tokens_after": pl.Float64, "loss_before": pl.Float64,
          "loss_after": pl.Float64, "n_runs_before": pl.Int64, "n_runs_after": pl.Int64,
          "relative_rise": pl.Float64, "tolerance": pl.Float64, "changed": pl.String}


def monotonicity_table(result: Monotonicity) -> pl.DataFrame:
    return pl.DataFrame(result.rows(), schema=SCHEMA)


def _ratio(before: str, after: str) -> float:
    """after / before for two single numeric values (NaN when either is several values, "8|16", or not a number)."""
    try:
        return float(after) / float(before)
    except (TypeError, ValueError, ZeroDivisionError):
        return float("nan")


def si(x: float) -> str:
    """3 significant digits with k, M, G: 783k, 1.09M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _values(frame: pl.DataFrame | None, column: str, rows: np.ndarray) -> tuple:
    """The distinct values of `column` at `rows` (floats to 6 digits, so 1e-9 differences are one value)."""
    if frame is None or column not in frame.columns:
        return ()
    values = frame[column].gather(rows).to_list()
    return tuple(sorted({float(f"{v:.6g}") if isinstance(v, float) else v for v in values if v is not None},
                        key=str))


def _points(n, d, loss, frame, rel_tol) -> tuple[list[Point], np.ndarray, np.ndarray, list[np.ndarray]]:
    """(points, their size group, their budget group, their row indices)."""
    size, budget = group_by_compute(n, rel_tol), group_by_compute(d, rel_tol)
    recipe_columns = [c for c in RECIPE_COLUMNS if frame is not None and c in frame.columns]
    points, sizes, budgets, members = [], [], [], []
    for gn, gd in sorted({(int(a), int(b)) for a, b in zip(size, budget)}):
        rows = np.flatnonzero((size == gn) & (budget == gd))
        ids = _values(frame, "run_id", rows) or tuple(f"row {i}" for i in rows)
        labels = _values(frame, "label", rows)
        recipe = tuple((c, "|".join(_text(v) for v in _values(frame, c, rows))) for c in recipe_columns)
        points.append(Point(n_params=float(np.median(n[rows])), n_tokens=float(np.median(d[rows])),
                            loss=float(loss[rows].mean()), run_ids=tuple(map(str, ids)),
                            label="|".join(map(str, labels)), recipe=recipe))
        sizes.append(gn)
        budgets.append(gd)
        members.append(rows)
    return points, np.array(sizes), np.array(budgets), members


def _pooled_sd(loss: np.ndarray, members: list[np.ndarray]) -> float | None:
    repeated = [loss[rows] for rows in members if len(rows) > 1]
    dof = sum(len(x) - 1 for x in repeated)
    if not dof:
        return None
    return float(math.sqrt(sum(((x - x.mean()) ** 2).sum() for x in repeated) / dof))


def check_monotonicity(n_params, n_tokens, loss, runs: pl.DataFrame | None = None,
                       rel_tol: float = 0.05) -> Monotonicity:
    """Reversals of loss along N at each D and along D at each N (module docstring). `runs`, when given, holds
    the same rows as the arrays and may have run_id, label and the RECIPE_COLUMNS; rows with NaN, inf or
    non-positive N, D or loss are left out."""
    n, d, l_ = (np.asarray(x, dtype=float).ravel() for x in (n_params, n_tokens, loss))
    if runs is not None and runs.height != len(n):
        raise ValueError(f"the runs table has {runs.height} rows for {len(n)} runs")
    ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(l_) & (n > 0) & (d > 0) & (l_ > 0)
    frame = None if runs is None else runs.filter(pl.Series(ok))
    n, d, l_ = n[ok], d[ok], l_[ok]
    points, sizes, budgets, members = _points(n, d, l_, frame, rel_tol)
    seed_sd = _pooled_sd(l_, members)
    # runs of one budget share their steps, and short runs vary far more between seeds than long ones (the
    # default grid: 4-18% at 380k tokens, 0.2-0.6% at 1.085M for the larger sizes): the seed SD is pooled
    # per budget, over the points of that budget with seeds (the whole table's where a budget has none)
    by_budget = {g: _pooled_sd(l_, [m for m, gb in zip(members, budgets) if gb == g]) for g in np.unique(budgets)}
    sd_at = {i: by_budget[budgets[i]] if by_budget[budgets[i]] is not None else seed_sd for i in range(len(points))}
    reversals, n_pairs = [], 0
    for along, key, held in (("n_params", sizes, budgets), ("n_tokens", budgets, sizes)):
        for g in np.unique(held):
            line = sorted(np.flatnonzero(held == g), key=lambda i: key[i])
            for i, j in zip(line, line[1:]):
                n_pairs += 1
                a, b = points[i], points[j]
                if b.loss <= a.loss:
                    continue
                tolerance = (ONE_SEED_TOLERANCE * a.loss if seed_sd is None
                             else NOISE_Z * math.sqrt(sd_at[i] ** 2 / a.n_runs + sd_at[j] ** 2 / b.n_runs))
                changes = tuple(Change(c, x, y) for (c, x), (_, y) in zip(a.recipe, b.recipe) if x != y)
                reversals.append(Reversal(along=along, smaller=a, larger=b, tolerance=tolerance,
                                          one_seed=seed_sd is None, changes=changes))
    recipe_columns = tuple(c for c in RECIPE_COLUMNS if frame is not None and c in frame.columns)
    return Monotonicity(points=tuple(points), reversals=tuple(reversals), n_pairs=n_pairs, seed_sd=seed_sd,
                        recipe_columns=recipe_columns)
