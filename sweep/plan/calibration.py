"""The calibration stage: the batch and learning-rate laws fitted at the sweep's own scale.

Published laws come from far larger runs: DeepSeek LLM's (sweep.plan.recipe.DEEPSEEK) from grid searches at
1e17..2e19 FLOPs, where a CPU sweep trains at 1e11..1e13, and in the step-limited regime of such small
runs the best batch is several times smaller than theirs. So, before the grid trains, the sweep trains a
small batch x learning-rate grid at a few of its own sizes at their smallest budget and fits the laws there,
DeepSeek's own method (Bi et al. 2024, sec. 3.1; Porian et al. 2024 show that tuning these matters most at
small scale):

  points     `recipe.sizes` sizes of the grid, the smallest and every k-th after it so that they span about
             two thirds of its sizes (a recipe of compute alone must hold across N: fitted on the smallest
             sizes alone it gave the largest ones an lr that cost them 7% of loss), each at its
             `recipe.budgets` smallest budgets, at its training compute C;
  runs       at each point, every batch of recipe.batch_factors x the published optimum, or x twice
             train.min_batch_size where that is larger (rounded as the grid rounds, sweep.plan.recipe.round_batch,
             never below the floor), with every lr of recipe.lr_factors x the published lr; ordinary runs
             (ids, tables, a rerun skips them), tagged `calibration` in the runs table's recipe column and
             listed in sweep.json apart from the grid;
  fit        one surface through all of them (fit_surface): ln L = c_p + a quadratic bowl in (ln B, ln eta)
             around the optimum of point p, whose position follows the two power laws
             ln B*(C) = ln b + e_B ln C, ln eta*(C) = ln l + e_eta ln C, the bowl's shape shared by every point;
             Huber-weighted, so a run that blew up does not drag the optimum; the bowl's ridge, the lr that is
             best at a batch other than the optimum's, gives the recipe's lr-batch slope (the published
             recipe's is the square-root rule, 0.5);
  exponents  fitted (on a grid of pairs) only where MIN_POINTS_FOR_EXPONENTS points span at least
             MIN_SPAN_FOR_EXPONENTS in compute; otherwise the published exponents are kept and only the
             coefficients calibrated (a narrow span cannot pin a slope: the optimum moves less than the noise
             across it); an optimum at or below the smallest batch tried, with the exponents kept, is a bound
             and carries no slope: the batch is held at it (exponent 0);
  intervals  percentile bootstrap of the runs within each point (N_BOOT resamples): of the coefficients,
             the exponents and the optimum at the grid's largest compute.

The result, a `Calibration`, carries the fitted `Recipe` (sweep.plan.grid expands the grid with it), the
per-point optima, intervals, and notes on what the data do not support (an optimum outside the batches or
learning rates tried: widen the factors). Pure: rows in, a dataclass out; the driver writes
calibration.json (to_dict).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweep.config.schema import SweepConfig
from sweep.plan.recipe import DEEPSEEK, PowerLaw, Recipe, round_batch
from sweep.plan.spec import RunSpec
from sweep.train.flops import n_params, train_flops

MIN_SPAN_FOR_EXPONENTS = 5.0  # max / min compute of the points before the exponents are fitted ...
MIN_POINTS_FOR_EXPONENTS = 3  # ... on at least this many points
N_BOOT = 200
LEVEL = 0.90  # of every interval of the calibration (the analysis's level, analysis.interval.LEVEL)
SOURCE = "calibrated"
RUN_TAG = "calibration"  # the runs table's recipe column for the calibration's own runs


def calibration_specs(cfg: SweepConfig, grid: list[RunSpec], published: Recipe = DEEPSEEK) -> list[RunSpec]:
    """The calibration runs for a grid (its specs as sweep.plan.grid.expand gives them, any recipe): the
    recipe.batch_factors x recipe.lr_factors grid around `published`'s optimum at each point, one run per
    recipe.seeds, smallest compute first. The points are recipe.sizes sizes spread over about two thirds of the
    grid's, moved down to smaller sizes until the calibration costs at most recipe.max_share of the grid's
    FLOPs (the smallest sizes where even they cost more: the dry run states the share)."""
    sizes = [label for _, label in sorted({(n_params(s.model), s.label) for s in grid})]
    grid_flops = planned_flops(grid)
    n = min(cfg.recipe.sizes, len(sizes))
    top = (n - 1) * max(1, (len(sizes) - 1) // cfg.recipe.sizes)  # the largest size of the spread
    for largest in range(top, n - 2, -1):  # n sizes spread evenly from the smallest up to `largest`
        picks = dict.fromkeys(int(x + 0.5) for x in np.linspace(0, largest, n))
        specs = _specs_at(cfg, grid, [sizes[i] for i in picks], published)
        if planned_flops(specs) <= cfg.recipe.max_share * grid_flops:
            break
    return specs


def planned_flops(specs: list[RunSpec]) -> float:
    """The training FLOPs of runs as planned: what the calibration's share of a grid is counted in (the cap above
    and the share the dry run states)."""
    return sum(float(train_flops(s.model, s.train.n_tokens)) for s in specs)


def _specs_at(cfg: SweepConfig, grid: list[RunSpec], labels: list[str], published: Recipe) -> list[RunSpec]:
    rc = cfg.recipe
    specs: dict[tuple, RunSpec] = {}
    for label in labels:
        of_size = [s for s in grid if s.label == label and s.role != "branch"]
        budgets = sorted({s.n_tokens_budget for s in of_size})[:rc.budgets]
        base = min(of_size, key=lambda s: s.n_tokens_budget)
        for budget in budgets:
            flops = float(train_flops(base.model, budget))
            # around the published optimum, or from the floor up where that optimum lies below twice the floor
            centre = max(published.batch_tokens(flops) / base.model.seq_len, 2 * cfg.train.min_batch_size)
            for fb in rc.batch_factors:
                batch = round_batch(centre * fb, cfg.train.max_batch_size, cfg.train.min_batch_size)
                for fl in rc.lr_factors:
                    lr = fl * published.lr(flops)
                    for seed in rc.seeds:
                        spec = _run(cfg, base, budget, batch, lr, seed)
                        specs.setdefault((label, budget, batch, round(lr, 12), seed), spec)
    return sorted(specs.values(), key=lambda s: (train_flops(s.model, s.train.n_tokens), s.train.batch_size,
                                                   s.train.lr, s.seed))


def _run(cfg: SweepConfig, base: RunSpec, budget: int, batch: int, lr: float, seed: int) -> RunSpec:
    from sweep.plan.branches import branch_train
    from sweep.plan.grid import plan_training

    # the grid's schedule, as an independent run (with WSD branches: the branches' cooldown)
    train = dataclasses.replace(branch_train(cfg.train) if cfg.grid.branches else cfg.train, batch_size=batch, lr=lr,
                                precision=base.train.precision)
    plan = dataclasses.replace(plan_training(train, base.model, budget), recipe=RUN_TAG)
    return dataclasses.replace(base, train=plan, seed=seed, n_tokens_budget=budget, branch_points=(),
                               trunk_run_id=None, branch_step=None, label=f"{base.label} calib")


@dataclass(frozen=True)
class PointOptimum:
    label: str
    flops: float
    n_runs: int
    batch_tokens: float  # the fitted surface's optimum at this point
    lr: float
    best_observed: dict[str, float]  # the run with the lowest loss: batch_tokens, lr, loss
    inside: bool  # the optimum lies within the batches and learning rates tried here


@dataclass(frozen=True)
class Calibration:
    recipe: Recipe
    n_runs: int
    points: tuple[PointOptimum, ...]
    exponents_fitted: bool
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # b, e_B, l, e_eta, batch_at, lr_at
    at_flops: float = math.nan  # where batch_at / lr_at are read: the grid's largest compute
    notes: tuple[str, ...] = ()
    level: float = LEVEL
    residual_sd: float = math.nan  # of ln L around the fitted surface

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.recipe.source, "recipe": dataclasses.asdict(self.recipe), "n_runs": self.n_runs,
                "exponents_fitted": self.exponents_fitted, "level": self.level, "at_flops": self.at_flops,
                "ci": {k: list(v) for k, v in self.ci.items()}, "residual_sd": self.residual_sd,
                "points": [dataclasses.asdict(p) for p in self.points], "notes": list(self.notes)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Calibration:
        r = d["recipe"]
        recipe = Recipe(r["source"], PowerLaw(**r["batch_tokens"]), PowerLaw(**r["lr"]), tuple(r["fitted_flops"]),
                        r["reference"], r["lr_batch_slope"])
        return Calibration(recipe, d["n_runs"], tuple(PointOptimum(**p) for p in d["points"]), d["exponents_fitted"],
                           {k: tuple(v) for k, v in d["ci"].items()}, d["at_flops"], tuple(d["notes"]), d["level"],
                           d["residual_sd"])


@dataclass(frozen=True)
class Surface:
    """ln L = c_p + [du dv] Q [du dv]^T around the optimum, du = ln B - ln B*(C_p), dv = ln eta - ln eta*(C_p),
    with ln B*(C) = z_b + e_b ln(C / c_ref) and ln eta*(C) = z_l + e_l ln(C / c_ref)."""

    c: np.ndarray  # per point
    z_b: float
    e_b: float
    z_l: float
    e_l: float
    c_ref: float
    q: np.ndarray  # 2 x 2
    rss: float  # weighted residual sum of squares
    clipped: bool  # the optimum was moved to the edge of the runs tried (outside it, or no bowl)
    below: bool  # ... and lies at (or below) the smallest batch tried: a bound on the optimum batch

    def batch_tokens(self, flops: float) -> float:
        return math.exp(self.z_b + self.e_b * math.log(flops / self.c_ref))

    def lr(self, flops: float) -> float:
        return math.exp(self.z_l + self.e_l * math.log(flops / self.c_ref))

    @property
    def ridge(self) -> float:
        """d ln(eta) / d ln(B) along the bowl's ridge: the best lr at a batch off the optimum (NaN without a
        bowl that opens upwards in lr)."""
        return float(-self.q[0, 1] / self.q[1, 1]) if self.q[1, 1] > 0 else math.nan

    def predict(self, point, log_c, u, v) -> np.ndarray:
        x = np.log(np.exp(log_c) / self.c_ref)
        du, dv = u - self.z_b - self.e_b * x, v - self.z_l - self.e_l * x
        return self.c[point] + self.q[0, 0] * du**2 + 2 * self.q[0, 1] * du * dv + self.q[1, 1] * dv**2


def _bowl(point, x, u, v, y, e_b: float, e_l: float, n_points: int, iterations: int = 6):
    """For fixed exponents the bowl is linear in its coefficients: ln L = c_p + a zu^2 + 2 b zu zv + d zv^2 + g.z,
    zu = ln B - e_b x, zv = ln eta - e_l x (x = ln C/c_ref). Huber-weighted least squares (IRLS; scale from
    the residuals' MAD, at least 1%): a run that blew up at a high lr does not drag the bowl.
    Returns (c, Q, g, rss, zu, zv)."""
    zu, zv = u - e_b * x, v - e_l * x
    design = np.column_stack([np.eye(n_points)[point], zu**2, 2 * zu * zv, zv**2, zu, zv])
    w = np.ones(len(y))
    for _ in range(iterations):
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
        r = y - design @ coef
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 0.01)
        w = np.minimum(1.0, 1.345 * scale / np.maximum(np.abs(r), 1e-12))
    c = coef[:n_points]
    a, b, d, gu, gv = coef[n_points:]
    return c, np.array([[a, b], [b, d]]), np.array([gu, gv]), float(np.sum(w * r**2)), zu, zv


def fit_surface(point: np.ndarray, log_c: np.ndarray, u: np.ndarray, v: np.ndarray, y: np.ndarray,
                exponents: tuple[float, float] | None,
                exponent_grid: tuple[np.ndarray, np.ndarray] | None = None) -> Surface:
    """The bowl through runs (point index, ln C of the point, ln B, ln eta, ln L). `exponents`: fixed, or None
    to choose them on `exponent_grid` (the exponent pair with the least residual; default EXPONENT_GRID). The
    optimum is the bowl's bottom, clipped to the box of the runs tried (in coordinates moved with C by the
    exponents): where the runs do not bracket it, or the bowl does not open upwards, the best the data can
    say is the edge of what was tried, and `clipped` says so."""
    n_points = int(point.max()) + 1
    c_ref = float(np.exp(np.mean(log_c)))
    x = log_c - math.log(c_ref)
    if exponents is None:
        grid_b, grid_l = exponent_grid or EXPONENT_GRID
        pairs = [(eb, el) for eb in grid_b for el in grid_l]
        exponents = min(pairs, key=lambda e: _bowl(point, x, u, v, y, e[0], e[1], n_points)[3])
    e_b, e_l = exponents
    c, q, g, rss, zu, zv = _bowl(point, x, u, v, y, e_b, e_l, n_points)
    lo, hi = np.array([zu.min(), zv.min()]), np.array([zu.max(), zv.max()])
    bowl = q[0, 0] > 0 and np.linalg.det(q) > 0
    z = -0.5 * np.linalg.solve(q, g) if bowl else np.array([np.nan, np.nan])
    if not bowl:  # no bottom: the best run's coordinates stand in
        best = int(np.argmin(y - c[point]))
        z = np.array([zu[best], zv[best]])
    clipped = (not bowl) or bool(np.any(z < lo) or np.any(z > hi))
    below = bool(z[0] <= lo[0])
    if clipped:  # the batch to the runs' range first, then the best lr at that batch (the bowl's ridge)
        z[0] = np.clip(z[0], lo[0], hi[0])
        if q[1, 1] > 0:
            z[1] = -(g[1] + 2 * q[0, 1] * z[0]) / (2 * q[1, 1])
        z[1] = np.clip(z[1], lo[1], hi[1])
    return Surface(c, float(z[0]), float(e_b), float(z[1]), float(e_l), c_ref, q, rss, clipped, below)


EXPONENT_GRID = (np.round(np.arange(0.0, 1.0001, 0.025), 4), np.round(np.arange(-0.5, 0.2501, 0.025), 4))


def _arrays(rows: list[dict[str, Any]]):
    ok = [r for r in rows if r.get("status") == "done" and r.get("final_val_loss") is not None
          and math.isfinite(r["final_val_loss"]) and r["final_val_loss"] > 0]
    keys = sorted({(r["flops_point"], r["label"]) for r in ok})
    index = {k: i for i, k in enumerate(keys)}
    point = np.array([index[(r["flops_point"], r["label"])] for r in ok], dtype=int)
    log_c = np.log([r["flops_point"] for r in ok])
    u = np.log([r["batch_size"] * r["seq_len"] for r in ok])
    v = np.log([r["lr"] for r in ok])
    y = np.log([r["final_val_loss"] for r in ok])
    return ok, keys, point, log_c, u, v, y


def fit_calibration(rows: list[dict[str, Any]], at_flops: float, published: Recipe = DEEPSEEK,
                    n_boot: int = N_BOOT, seed: int = 0, fit_exponents: bool | None = None,
                    reference: str = "calibration.json") -> Calibration:
    """The calibrated recipe from the calibration runs' rows of the runs table (status, label, flops of the
    budget as `flops_point`, batch_size, seq_len, lr, final_val_loss). `at_flops`: where to read the optimum
    whose interval is reported (the grid's largest compute). fit_exponents None: only where the points span
    MIN_SPAN_FOR_EXPONENTS. Raises ValueError when the runs cannot place an optimum (fewer than 2 batches
    or 2 learning rates at some point, fewer than 6 runs)."""
    ok, keys, point, log_c, u, v, y = _arrays(rows)
    problems = _design_problems(keys, point, u, v, len(ok))
    if problems:
        raise ValueError("; ".join(problems))
    span = float(np.exp(log_c.max() - log_c.min()))
    if fit_exponents is None:
        fit_exponents = span >= MIN_SPAN_FOR_EXPONENTS and len(keys) >= MIN_POINTS_FOR_EXPONENTS
    exponents = None if fit_exponents else (published.batch_tokens.exponent, published.lr.exponent)
    surface = fit_surface(point, log_c, u, v, y, exponents)
    bound = exponents is not None and surface.below
    if bound:  # a bound carries no slope: the batch is held at it (the floor, as the calibration runs start there)
        exponents = (0.0, exponents[1])
        surface = fit_surface(point, log_c, u, v, y, exponents)
    slope, slope_note = _slope(surface, published)
    recipe = Recipe(SOURCE, PowerLaw(surface.batch_tokens(1.0), surface.e_b), PowerLaw(surface.lr(1.0), surface.e_l),
                    (float(np.exp(log_c.min())), float(np.exp(log_c.max()))), reference, slope)
    points, notes = _point_optima(keys, point, u, v, y, recipe)
    if slope_note:
        notes.append(slope_note)
    if bound:
        notes.append(f"the optimum batch lies at or below the smallest batch tried ({math.exp(u.min()):.3g} tokens) "
                     f"at every point: a bound, not a law, so the recipe holds every run of the grid at that batch "
                     f"(batch exponent 0) with the lr best there")
    elif surface.clipped:
        notes.append("the runs do not bracket the optimum (or the loss surface has no bottom among them): the "
                     "recipe takes the edge of the batches and learning rates tried; widen recipe.batch_factors / "
                     "recipe.lr_factors toward it")
    if not fit_exponents:
        notes.append(f"{len(keys)} points spanning {span:.2g}x in compute (exponents are fitted from "
                     f"{MIN_POINTS_FOR_EXPONENTS} points over {MIN_SPAN_FOR_EXPONENTS:g}x): the published exponents "
                     f"are kept ({published.reference}) and the coefficients calibrated")
    ci, failed = _bootstrap(point, log_c, u, v, y, surface, exponents, at_flops, n_boot, seed)
    if failed:
        notes.append(f"{failed:.0%} of the bootstrap refits found no bottom in the resampled runs")
    resid = y - surface.predict(point, log_c, u, v)
    return Calibration(recipe, len(ok), tuple(points), fit_exponents, ci, at_flops, tuple(notes), LEVEL,
                       float(np.std(resid)))


MAX_SLOPE = 1.0  # |d ln eta / d ln B| beyond this is an ill-determined ridge: clipped, and said


def _slope(surface: Surface, published: Recipe) -> tuple[float, str]:
    """The recipe's lr-batch slope: the bowl's ridge, within +-MAX_SLOPE; the published one without a ridge."""
    ridge = surface.ridge
    if not math.isfinite(ridge):
        return published.lr_batch_slope, (f"the loss surface has no bottom in lr: the lr follows the batch by the "
                                          f"published rule (slope {published.lr_batch_slope:g})")
    if abs(ridge) > MAX_SLOPE:
        return math.copysign(MAX_SLOPE, ridge), (f"the bowl's ridge has slope {ridge:.2g} (lr ~ B^slope): taken as "
                                                 f"{math.copysign(MAX_SLOPE, ridge):g}")
    return ridge, ""


def _design_problems(keys, point, u, v, n_runs) -> list[str]:
    problems = []
    for p, (flops, label) in enumerate(keys):
        at = point == p
        if len(np.unique(np.round(u[at], 6))) < 2 or len(np.unique(np.round(v[at], 6))) < 2:
            problems.append(f"{label} at C={flops:.3g}: fewer than 2 batches or 2 learning rates finished")
    n_terms = len(keys) + 5  # a level per point, the bowl's 3 curvatures and 2 slopes
    if not problems and n_runs <= n_terms:
        problems.append(f"{n_runs} finished calibration runs for a bowl of {n_terms} terms; at least {n_terms + 1} "
                        f"are needed")
    elif not problems:
        design = np.column_stack([np.eye(len(keys))[point], u**2, u * v, v**2, u, v])
        if np.linalg.matrix_rank(design) < n_terms:
            problems.append("the runs cannot tell the bowl's terms apart: at least 3 distinct batches and 3 distinct "
                            "learning rates must finish")
    return problems


def _point_optima(keys, point, u, v, y, recipe: Recipe):
    points, notes = [], []
    for p, (flops, label) in enumerate(keys):
        at = point == p
        ub, vb = math.log(recipe.batch_tokens(flops)), math.log(recipe.lr(flops))
        tol = 0.1  # ln units: an optimum within 10% of the edge of what was tried counts as inside
        inside = (u[at].min() - tol <= ub <= u[at].max() + tol) and (v[at].min() - tol <= vb <= v[at].max() + tol)
        best = int(np.flatnonzero(at)[np.argmin(y[at])])
        points.append(PointOptimum(label, float(flops), int(at.sum()), math.exp(ub), math.exp(vb),
                                   {"batch_tokens": float(math.exp(u[best])), "lr": float(math.exp(v[best])),
                                    "loss": float(math.exp(y[best]))}, bool(inside)))
        if not inside:
            notes.append(f"{label} at C={flops:.3g}: the recipe's optimum (batch {math.exp(ub):.3g} tokens, lr "
                         f"{math.exp(vb):.3g}) lies outside the runs tried there (batch {math.exp(u[at].min()):.3g}.."
                         f"{math.exp(u[at].max()):.3g}, lr {math.exp(v[at].min()):.3g}..{math.exp(v[at].max()):.3g})")
    return points, notes


def _bootstrap(point, log_c, u, v, y, s: Surface, exponents, at_flops, n_boot, seed):
    """Percentile intervals of the laws and of the optimum at `at_flops`, resampling runs within each point;
    fitted exponents are chosen again on a grid around the full fit's. (intervals, share of refits clipped)."""
    if n_boot <= 0:
        return {}, 0.0
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(point == p) for p in range(int(point.max()) + 1)]
    near = None
    if exponents is None:
        near = (s.e_b + np.arange(-0.2, 0.2001, 0.05), s.e_l + np.arange(-0.2, 0.2001, 0.05))
    draws, clipped = [], 0
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
        try:
            b = fit_surface(point[idx], log_c[idx], u[idx], v[idx], y[idx], exponents, near)
        except np.linalg.LinAlgError:
            clipped += 1
            continue
        clipped += b.clipped
        draws.append((b.batch_tokens(1.0), b.e_b, b.lr(1.0), b.e_l, b.batch_tokens(at_flops), b.lr(at_flops),
                      float(np.clip(b.ridge, -MAX_SLOPE, MAX_SLOPE)) if math.isfinite(b.ridge) else math.nan))
    if not draws:
        return {}, 1.0
    arr = np.array(draws)
    q = 100 * (1 - LEVEL) / 2
    lo, hi = np.nanpercentile(arr, [q, 100 - q], axis=0)
    names = ("b", "e_B", "l", "e_eta", "batch_tokens_at", "lr_at", "lr_batch_slope")
    return {name: (float(a), float(z)) for name, a, z in zip(names, lo, hi)}, clipped / n_boot
