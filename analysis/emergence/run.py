"""The emergence analysis of a long table: one verdict per task x metric, one artifact verdict per task.

The table (analysis/emergence/points.py) is put on an x axis (larger x is always a bigger or
better-trained model):
  log_n      x = ln(n_params). Where a size was trained on several token budgets, only its largest
             budget is kept (n_tokens column), seeds averaged. Threshold: N_c = e^x_c.
  log_flops  x = ln(flops) (flops column), every (N, D) run its own point. Threshold: C_c = e^x_c FLOPs.
  val_loss   x = -(validation loss), so that the axis runs the same way (lower loss = bigger model):
             the threshold is the loss L_c = -x_c. The loss of each run comes from a val_loss column
             or from the rows with metric 'val_loss' (joined on run_id, else on n_params, n_tokens, seed).
For the two axes other than log_n, `n_c` is the threshold mapped to parameters through the observed
relation between x and ln N (interpolated inside the data, a straight-line fit outside it), and NaN
where that relation is loose (|correlation| < 0.95, e.g. several budgets per size).

Each curve is judged by analysis/emergence/curve.py; a threshold and its interval are reported only
where the verdict has one (Verdict.has_threshold): fitted (N_c with its interval), or bracketed by two
neighbouring sizes (N_c empty, its interval the two sizes); a beyond-range row gives the largest model
as a bound instead. Pure functions; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from analysis.emergence.artifact import EM_METRICS, TOKEN_METRICS, CompositionTest, artifact_verdict, composition_test
from analysis.emergence.curve import N_BOOT, CurveVerdict, judge_curve
from analysis.emergence.points import EmergenceInputError, MetricMeta, metric_meta, validate_points, with_x
from analysis.emergence.rule import Criteria, Verdict

THRESHOLD_UNIT = {"log_n": "parameters", "log_flops": "FLOPs", "val_loss": "validation loss (nats/token)"}
_THRESHOLD_COLUMNS = ("n_c", "n_c_lo", "n_c_hi", "threshold", "threshold_lo", "threshold_hi")


@dataclass
class EmergenceResult:
    table: pl.DataFrame  # one row per task x metric (see analyze_emergence)
    artifacts: pl.DataFrame  # one row per task
    curves: dict[tuple[str, str], CurveVerdict] = field(default_factory=dict)
    meta: dict[tuple[str, str], MetricMeta] = field(default_factory=dict)
    x_axis: str = "log_n"
    notes: list[str] = field(default_factory=list)  # about the table as a whole (rows dropped before any curve)
    level: float = 0.90  # level of the bootstrap intervals (and of the figure's bands)


def _to_params(x_c: float, xs: np.ndarray, log_n: np.ndarray) -> float:
    """Map a threshold on another axis to parameters through the observed x -> ln N relation."""
    if not math.isfinite(x_c):
        return math.nan
    ok = np.isfinite(xs) & np.isfinite(log_n)
    xs, log_n = xs[ok], log_n[ok]
    if len(xs) < 2 or np.ptp(xs) == 0 or np.ptp(log_n) == 0:
        return math.nan
    if abs(np.corrcoef(xs, log_n)[0, 1]) < 0.95:
        return math.nan
    order = np.argsort(xs)
    xs, log_n = xs[order], log_n[order]
    if xs[0] <= x_c <= xs[-1] and np.all(np.diff(log_n) >= 0):
        value = float(np.interp(x_c, xs, log_n))
    else:
        slope, intercept = np.polyfit(xs, log_n, 1)
        value = float(intercept + slope * x_c)
    return math.exp(value) if value < 700 else math.inf


def _threshold(x_c: float, x: str) -> float:
    if not math.isfinite(x_c):
        return math.nan
    if x == "val_loss":
        return -x_c
    return math.exp(x_c) if x_c < 700 else math.inf


def _curve_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _judge_all(frame: pl.DataFrame, x: str, crit: Criteria, n_boot: int, seed: int):
    """(curves, metas, per-curve (x, ln N) of each size for the axes other than log_n)."""
    curves: dict[tuple[str, str], CurveVerdict] = {}
    metas: dict[tuple[str, str], MetricMeta] = {}
    size_log_n: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    keys = frame.select("task", "metric").unique().sort("task", "metric").rows()
    for index, (task, metric) in enumerate(keys):
        group = frame.filter((pl.col("task") == task) & (pl.col("metric") == metric))
        meta = metric_meta(group, metric)
        if meta.scale != 1.0:
            group = group.with_columns(pl.col("value") * meta.scale)
        n_samples = group["n_samples"].to_numpy() if "n_samples" in group.columns else None
        curves[(task, metric)] = judge_curve(
            group["x"].to_numpy().astype(float), group["value"].to_numpy().astype(float),
            higher_is_better=meta.higher_is_better, chance=meta.chance, bounds=meta.bounds,
            log_likelihood=meta.log_likelihood, binomial=meta.kind == "discontinuous", n_samples=n_samples,
            group=group["size"].fill_null("").to_numpy(), criteria=crit, n_boot=n_boot, seed=_curve_seed(seed, index))
        metas[(task, metric)] = meta
        if x != "log_n":
            sizes = (group.filter(pl.col("x").is_finite() & pl.col("value").is_finite())
                     .group_by("size").agg(pl.col("x").mean(), pl.col("n_params").log().mean()))
            size_log_n[(task, metric)] = (sizes["x"].to_numpy(), sizes["n_params"].to_numpy())
    return curves, metas, size_log_n


def _curve_row(task: str, metric: str, curve: CurveVerdict, meta: MetricMeta, x: str, level: float,
               size_log_n) -> dict:
    row = {"task": task, "metric": metric, "metric_kind": meta.kind, "kind_source": meta.kind_source,
           "higher_is_better": meta.higher_is_better, "chance": meta.chance, "x_axis": x,
           "threshold_unit": THRESHOLD_UNIT[x], **curve.row(), "ci_level": level, "note": meta.note}
    if meta.note:
        row["reason"] = f"{row['reason']}; {meta.note}"
    x_c, x_lo, x_hi = row["x_c"], row["x_c_lo"], row["x_c_hi"]
    if x == "log_n":
        n_c = [_threshold(v, x) for v in (x_c, x_lo, x_hi)]
    else:
        n_c = [_to_params(v, *size_log_n) for v in (x_c, x_lo, x_hi)]
    bounds = sorted((_threshold(x_lo, x), _threshold(x_hi, x)))
    row.update({"n_c": n_c[0], "n_c_lo": n_c[1], "n_c_hi": n_c[2], "threshold": _threshold(x_c, x),
                "threshold_lo": bounds[0], "threshold_hi": bounds[1], "n_c_lower_bound": math.nan,
                "threshold_bound": math.nan})
    if not curve.verdict.has_threshold:  # no located threshold: the fit's x_c stays in x_c, nothing is claimed
        row.update({name: math.nan for name in _THRESHOLD_COLUMNS})
        row["threshold_in_range"] = False
    if curve.decision.bracketed:
        row["reason"] += (f"; threshold between {row['threshold_lo']:.3g} and {row['threshold_hi']:.3g} "
                          f"{THRESHOLD_UNIT[x]} (bracketed)")
    if curve.verdict is Verdict.BEYOND_RANGE:  # bounded by the largest model only
        largest = row["x_max"]
        bound = _threshold(largest, x)
        row.update({"threshold_bound": bound, "n_c_lower_bound": bound if x == "log_n"
                    else _to_params(largest, *size_log_n)})
        side = "<=" if x == "val_loss" else ">="
        row["reason"] += f"; threshold at or beyond the largest model ({side} {bound:.3g} {THRESHOLD_UNIT[x]})"
    return row


def run_emergence(points: pl.DataFrame, *, x: str = "log_n", n_boot: int = N_BOOT, seed: int = 0,
                  criteria: Criteria | None = None, answer_tokens: float | None = None,
                  level: float | None = None) -> EmergenceResult:
    """Everything analyze_emergence computes, plus the per-curve fits (for figures) and notes on the table."""
    notes: list[str] = []
    frame = validate_points(points, x, notes)
    crit = criteria or Criteria.for_axis(x)
    if level is not None:
        if not 0 < level < 1:
            raise EmergenceInputError(f"level must be in (0, 1), e.g. 0.9; got {level}")
        crit = replace(crit, level=level)
    frame = with_x(frame, x)
    curves, metas, size_log_n = _judge_all(frame, x, crit, n_boot, seed)
    rows = [_curve_row(task, metric, curve, metas[(task, metric)], x, crit.level, size_log_n.get((task, metric)))
            for (task, metric), curve in curves.items()]
    artifact_rows = []
    for task in sorted({t for t, _ in curves}):
        task_curves = {m: c for (t, m), c in curves.items() if t == task}
        kinds = {m: metas[(task, m)].kind for m in task_curves}
        composition = _composition(frame, task, task_curves, answer_tokens)
        loglik = frozenset(m for m in task_curves if metas[(task, m)].log_likelihood)
        verdict = artifact_verdict(task_curves, kinds, composition, loglik)
        artifact_rows.append({"task": task, "artifact_verdict": verdict.verdict.value,
                              "artifact_reason": verdict.reason,
                              "discontinuous_metrics": ",".join(verdict.discontinuous),
                              "continuous_metrics": ",".join(verdict.continuous), **composition.row()})
    artifacts = pl.DataFrame(artifact_rows, schema=_ARTIFACT_SCHEMA, strict=False)
    table = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame(schema={"task": pl.String})
    if rows:
        table = table.join(artifacts, on="task", how="left")
    return EmergenceResult(table, artifacts, curves, metas, x, notes, crit.level)


_ARTIFACT_SCHEMA = {"task": pl.String, "artifact_verdict": pl.String, "artifact_reason": pl.String,
                    "discontinuous_metrics": pl.String, "continuous_metrics": pl.String,
                    "pl_em_metric": pl.String, "pl_token_metric": pl.String, "pl_n_sizes": pl.Int64,
                    "pl_L": pl.Float64, "pl_L_source": pl.String, "pl_r2": pl.Float64, "pl_L_fit": pl.Float64,
                    "pl_r2_fit": pl.Float64, "pl_note": pl.String}


def _composition(frame: pl.DataFrame, task: str, task_curves: dict[str, CurveVerdict],
                 answer_tokens: float | None) -> CompositionTest:
    em = next((m for m in EM_METRICS if m in task_curves), None)
    token = next((m for m in TOKEN_METRICS if m in task_curves), None)
    length, source = None, ""
    if "answer_tokens" in frame.columns:
        values = frame.filter(pl.col("task") == task)["answer_tokens"].drop_nulls()
        values = values.filter(values.is_finite() & (values > 0))
        if values.len():
            length, source = float(values.mean()), "answer_tokens"
    if length is None and answer_tokens is not None:
        length, source = float(answer_tokens), "option"
    if em is None or token is None:
        return CompositionTest(em, token, 0, length if length is not None else math.nan, source, math.nan,
                               math.nan, math.nan, "needs an exact-match and a token_accuracy metric")
    a, b = task_curves[em], task_curves[token]
    return composition_test(a.x, a.y, b.x, b.y, length=length, length_source=source, em_metric=em,
                            token_metric=token)


def analyze_emergence(points: pl.DataFrame, *, x: str = "log_n", n_boot: int = N_BOOT, seed: int = 0,
                      criteria: Criteria | None = None, answer_tokens: float | None = None,
                      level: float | None = None) -> pl.DataFrame:
    """One row per task x metric: verdict, reason, threshold and steepness with bootstrap intervals,
    R^2 / AIC / AICc / BIC per model, and the task's artifact verdict and p^L test.

    points: long table (see module doc). x: "log_n" | "log_flops" | "val_loss". n_boot: bootstrap
    replicates per curve (0: no intervals). seed: the bootstrap's seed (each curve gets its own
    stream from it). criteria: verdict thresholds (analysis.emergence.rule.Criteria; default: the axis's).
    answer_tokens: L for the p^L test when the table has no answer_tokens column. level: level of the
    percentile intervals (default: the criteria's, analysis.interval.LEVEL); it is the `ci_level` column.

    Main columns: task, metric, metric_kind, higher_is_better, verdict (emergent | smooth | flat |
    beyond-range | non-monotone | insufficient-data), reason, flags (e.g. bracketed, rise-unresolved, falls-back),
    n_sizes (the sizes the verdict stands on), n_c [n_c_lo, n_c_hi] (threshold in parameters),
    threshold [lo, hi] and threshold_unit (in the x axis's own unit): set only for emergent rows,
    NaN for every verdict without a located threshold; bracketed (flag and column): a jump between two
    neighbouring sizes with no size on its rise, n_c and threshold NaN, [lo, hi] the two sizes, and no
    sigmoid columns (k, x_c, widths, floor, ceil, delta_ic, r2_/aic_/aicc_/bic_sigmoid NaN; rise, noise
    and effect are the jump's); beyond-range rows give threshold_bound /
    n_c_lower_bound (the largest model; on the val_loss axis an upper bound on the loss) instead;
    k [k_lo, k_hi] (per unit of x), x_c [lo, hi] (the fitted sigmoid's, whatever the verdict: a fit
    parameter, not a finding), threshold_in_range, width_10_90, width_frac, floor, ceil (metric units),
    rise, effect (rise as a share of a bounded metric's range), noise, fall_back, r2_/aic_/aicc_/bic_
    for constant, linear, power, sigmoid; ic, delta_ic, delta_ic_flat, best_model, bootstrap,
    n_boot, ci_level (of every interval in the row), sigmoid_converged (the point fit's solver flag);
    spearman_rho (rank correlation of the values, turned so up is better, with scale);
    note (values or chance read as percent, or outside the metric's natural range: see
    points._check_range; "" when none; also appended to reason); per task: artifact_verdict
    (metric-induced | genuine | inconclusive), artifact_reason,
    pl_L, pl_L_source, pl_r2, pl_L_fit, pl_r2_fit. Raises EmergenceInputError on an unusable table.
    """
    return run_emergence(points, x=x, n_boot=n_boot, seed=seed, criteria=criteria,
                         answer_tokens=answer_tokens, level=level).table


def artifact_table(points: pl.DataFrame, **kwargs) -> pl.DataFrame:
    """One row per task: artifact_verdict, artifact_reason, the metrics compared, and the p^L test."""
    return run_emergence(points, **kwargs).artifacts
