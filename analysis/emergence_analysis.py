"""The emergence analysis of a long table: one verdict per task x metric, one artifact verdict per task.

Input (`points`, long format, one row per observation): task, metric, n_params, value; optional
metric_kind, higher_is_better, chance, answer_tokens, n_samples, flops, n_tokens, seed, run_id,
val_loss. The sweep's evals.parquet has all of them (val_loss as rows of task 'heldout').

x axes (larger x is always a bigger or better-trained model):
  log_n      x = ln(n_params). Where a size was trained on several token budgets, only its largest
             budget is kept (n_tokens column), seeds averaged. Threshold: N_c = e^x_c.
  log_flops  x = ln(flops) (flops column), every (N, D) run its own point. Threshold: C_c = e^x_c FLOPs.
  val_loss   x = -(validation loss), so that the axis runs the same way (lower loss = bigger model):
             a rising sigmoid in x is a metric that improves as the loss falls, k is per nat of loss,
             and the threshold is the loss L_c = -x_c. The loss of each run comes from a val_loss
             column or from the rows with metric 'val_loss' (joined on run_id, else on n_params,
             n_tokens, seed), which are then not analysed themselves on this axis.
For the two axes other than log_n, `n_c` is the threshold mapped to parameters through the observed
relation between x and ln N (interpolated inside the data, a straight-line fit outside it), and NaN
where that relation is loose (|correlation| < 0.95, e.g. several budgets per size).

Seeds: repeated observations of one size are averaged (their count is `max_seeds`, their spread
enters the noise estimate and, with >= 2 seeds everywhere, the bootstrap). NaN and infinite values
are dropped and counted (`n_dropped`). Values are checked against the metric's natural range: a [0, 1]
metric given in percent is scaled by 1/100, other out-of-range values lift the range instead of being
clipped, both with a `note` (see _check_range). Rows with an empty task or metric belong to no curve: they are
dropped and counted in `EmergenceResult.notes` (EmergenceInputError naming the column when no row is
left). Pure functions; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from analysis.artifact import EM_METRICS, TOKEN_METRICS, CompositionTest, artifact_verdict, composition_test
from analysis.invalid import invalid_rows, summary
from analysis.metric_kinds import metric_info
from analysis.verdicts import N_BOOT, Criteria, CurveVerdict, judge_curve

X_AXES = ("log_n", "log_flops", "val_loss")
REQUIRED = ("task", "metric", "n_params", "value")
# steepness limit in absolute x units per axis (see Criteria.max_width): two decades of parameters;
# compute grows about as N^2 along a compute-optimal frontier, so four decades of FLOPs; none for loss
MAX_WIDTH = {"log_n": math.log(100.0), "log_flops": math.log(1e4), "val_loss": None}
THRESHOLD_UNIT = {"log_n": "parameters", "log_flops": "FLOPs", "val_loss": "validation loss (nats/token)"}
NUMERIC = ("n_params", "value", "chance", "answer_tokens", "n_samples", "flops", "n_tokens", "val_loss")


class EmergenceInputError(ValueError):
    """The table cannot be analysed as given (missing column, non-numeric values, unknown axis)."""


@dataclass(frozen=True)
class MetricMeta:
    kind: str
    kind_source: str  # "column" | "table" | "pattern" | "default"
    higher_is_better: bool
    chance: float | None
    bounds: tuple[float, float] | None
    log_likelihood: bool
    scale: float = 1.0  # values are multiplied by this before the analysis (0.01: read as percent)
    note: str = ""  # what was done about values or chance outside the natural range ("" when nothing)


@dataclass
class EmergenceResult:
    table: pl.DataFrame  # one row per task x metric (see analyze_emergence)
    artifacts: pl.DataFrame  # one row per task
    curves: dict[tuple[str, str], CurveVerdict] = field(default_factory=dict)
    meta: dict[tuple[str, str], MetricMeta] = field(default_factory=dict)
    x_axis: str = "log_n"
    notes: list[str] = field(default_factory=list)  # about the table as a whole (rows dropped before any curve)
    ci_level: float = 0.95  # level of the bootstrap intervals (and of the figure's bands)


def _numeric(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    column = frame[name]
    if column.dtype.is_numeric():
        return frame.with_columns(pl.col(name).cast(pl.Float64))
    if column.dtype == pl.Null:
        return frame.with_columns(pl.col(name).cast(pl.Float64))
    if column.dtype == pl.String:
        cast = column.str.strip_chars().cast(pl.Float64, strict=False)
        bad = column.filter(cast.is_null() & column.is_not_null() & (column.str.strip_chars() != "")
                            & ~column.str.to_lowercase().is_in(["nan", "na", "null", "none", "inf", "-inf"]))
        if bad.len():
            raise EmergenceInputError(f"column '{name}' must be numeric; found {bad.len()} non-numeric "
                                      f"value(s), e.g. {bad[0]!r}")
        return frame.with_columns(cast.alias(name))
    raise EmergenceInputError(f"column '{name}' must be numeric; it has type {column.dtype}")


def _boolean(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    column = frame[name]
    if column.dtype == pl.Boolean:
        return frame
    if column.dtype.is_numeric():
        return frame.with_columns((pl.col(name) != 0).alias(name))
    text = column.cast(pl.String).str.strip_chars().str.to_lowercase()
    mapped = text.replace_strict({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False},
                                 default=None, return_dtype=pl.Boolean)
    bad = text.filter(mapped.is_null() & text.is_not_null() & (text != ""))
    if bad.len():
        raise EmergenceInputError(f"column '{name}' must be true/false; found {bad[0]!r}")
    return frame.with_columns(mapped.alias(name))


def _drop_unlabelled(frame: pl.DataFrame, notes: list[str] | None) -> pl.DataFrame:
    """Drop rows whose task or metric is empty (null or blank): they belong to no curve. Counted in `notes`."""
    empty = {name: pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "") for name in ("task", "metric")}
    counts = frame.select(**{name: expr.sum() for name, expr in empty.items()}).row(0, named=True)
    if not any(counts.values()):
        return frame
    kept = frame.filter(~(empty["task"] | empty["metric"]))
    which = ", ".join(f"{n} with an empty '{name}'" for name, n in counts.items() if n)
    if kept.is_empty():
        raise EmergenceInputError(f"no row has both a task and a metric ({which} of {frame.height} rows); "
                                  f"fill the empty cells")
    if notes is not None:
        notes.append(f"{frame.height - kept.height} rows with an empty task or metric dropped ({which})")
    return kept


def _unusable(frame: pl.DataFrame, x: str) -> tuple[np.ndarray, list[str]]:
    """(usable-row mask, descriptions of the unusable rows by column): value not finite; n_params (and
    flops on that axis) not > 0. Rows are numbered as in the table given."""
    columns = {"column 'n_params'": frame["n_params"].fill_null(float("nan")).to_numpy(),
               "column 'value'": frame["value"].fill_null(float("nan")).to_numpy()}
    positive = ["column 'n_params'"]
    if x == "log_flops" and "flops" in frame.columns:
        columns["column 'flops'"] = frame["flops"].fill_null(float("nan")).to_numpy()
        positive.append("column 'flops'")
    return invalid_rows(columns, positive=tuple(positive))


def _typed(points: pl.DataFrame) -> pl.DataFrame:
    frame = points.with_columns(pl.col("task").cast(pl.String), pl.col("metric").cast(pl.String))
    for name in NUMERIC:
        if name in frame.columns:
            frame = _numeric(frame, name)
    return frame


def require_usable_rows(points: pl.DataFrame, x: str = "log_n") -> None:
    """Raise EmergenceInputError naming the columns and rows when no row of the table can be used at all (a
    table of nothing: bad input for the command line; a single curve of nothing is `insufficient-data`)."""
    validate_points(points, x)  # columns and types first
    frame = _typed(points)
    usable, problems = _unusable(frame, x)
    if frame.height and problems and not usable.any():
        raise EmergenceInputError(f"no usable row: {summary(problems)}")


def validate_points(points: pl.DataFrame, x: str = "log_n", notes: list[str] | None = None) -> pl.DataFrame:
    """Check columns and types; returns the table with numeric columns as Float64. Raises EmergenceInputError.

    Rows with an empty task or metric are dropped; a line saying how many is appended to `notes`.
    """
    if x not in X_AXES:
        raise EmergenceInputError(f"unknown x axis {x!r}; choose one of {', '.join(X_AXES)}")
    missing = [c for c in REQUIRED if c not in points.columns]
    if missing:
        raise EmergenceInputError(f"missing column(s) {', '.join(missing)}; the table needs "
                                  f"{', '.join(REQUIRED)} (has {', '.join(points.columns) or 'none'})")
    frame = _typed(points)
    usable, problems = _unusable(frame, x)
    if problems and usable.any() and notes is not None:  # each curve drops them too (n_dropped): say which
        notes.append(f"{int((~usable).sum())} of {frame.height} rows dropped: {summary(problems)}")
    frame = _drop_unlabelled(frame, notes)
    if "higher_is_better" in frame.columns:
        frame = _boolean(frame, "higher_is_better")
    if "metric_kind" in frame.columns:
        frame = frame.with_columns(pl.col("metric_kind").cast(pl.String).str.strip_chars().str.to_lowercase())
    if x == "log_flops" and ("flops" not in frame.columns or frame["flops"].drop_nulls().len() == 0):
        raise EmergenceInputError("x axis log_flops needs a 'flops' column with values")
    if x == "val_loss":
        has_column = "val_loss" in frame.columns and frame["val_loss"].drop_nulls().len() > 0
        if not has_column and frame.filter(pl.col("metric") == "val_loss").is_empty():
            raise EmergenceInputError("x axis val_loss needs a 'val_loss' column or rows with metric 'val_loss'")
    return frame


def _with_x(frame: pl.DataFrame, x: str) -> pl.DataFrame:
    """Adds x (float) and size (the group that is one point on the curve); drops the val_loss rows on that axis."""
    positive_log = pl.when(pl.col("_v") > 0).then(pl.col("_v").log()).otherwise(None)
    if x == "log_n":
        if "n_tokens" in frame.columns:
            largest = pl.col("n_tokens").fill_null(-1.0).max().over("task", "metric", "n_params")
            frame = frame.filter(pl.col("n_tokens").fill_null(-1.0) == largest)
        return frame.with_columns(pl.col("n_params").alias("_v")).with_columns(
            positive_log.alias("x"), pl.col("n_params").cast(pl.String).alias("size")).drop("_v")
    if x == "log_flops":
        return frame.with_columns(pl.col("flops").alias("_v")).with_columns(
            positive_log.alias("x"), pl.col("flops").cast(pl.String).alias("size")).drop("_v")
    # val_loss: x = -loss of the run the row belongs to
    if "val_loss" not in frame.columns or frame["val_loss"].drop_nulls().len() == 0:
        keys = [c for c in ("run_id", "n_params", "n_tokens", "seed") if c in frame.columns]
        if "run_id" in keys:
            keys = ["run_id"]
        losses = (frame.filter(pl.col("metric") == "val_loss").group_by(keys)
                  .agg(pl.col("value").mean().alias("val_loss")))
        frame = frame.drop("val_loss", strict=False).join(losses, on=keys, how="left")
    frame = frame.filter(pl.col("metric") != "val_loss")
    size_cols = [c for c in ("n_params", "n_tokens") if c in frame.columns]
    return frame.with_columns((-pl.col("val_loss")).alias("x"),
                              pl.concat_str([pl.col(c).cast(pl.String) for c in size_cols], separator="/")
                              .alias("size"))


def _first(group: pl.DataFrame, name: str):
    if name not in group.columns:
        return None
    values = group[name].drop_nulls()
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
    if not values.len():
        return None
    return values.mode().sort()[0] if values.dtype in (pl.String, pl.Boolean) else values[0]


def metric_meta(group: pl.DataFrame, metric: str) -> MetricMeta:
    """Kind, direction, chance and range of one task x metric: columns first, then analysis/metric_kinds.py;
    then the values are checked against the range (see _check_range)."""
    info = metric_info(metric)
    kind_col = _first(group, "metric_kind")
    if kind_col in ("discontinuous", "continuous"):
        kind, source = kind_col, "column"
    else:
        kind, source = info.kind, info.source
    hib = _first(group, "higher_is_better")
    higher = bool(hib) if hib is not None else info.higher_is_better
    chance = _first(group, "chance")
    chance = None if chance is None else float(chance)
    bounds = info.bounds
    values = group["value"].drop_nulls()
    values = values.filter(values.is_finite()) if values.dtype.is_float() else values
    if bounds is None and not info.log_likelihood and values.len() and values.min() >= 0 and values.max() <= 1:
        bounds = (0.0, 1.0)  # a [0, 1] metric we have no entry for: accuracy-like
    scale, bounds, chance, notes = _check_range(values, bounds, chance)
    return MetricMeta(kind, source, higher, chance, bounds, info.log_likelihood, scale, "; ".join(notes))


def _check_range(values: pl.Series, bounds: tuple[float, float] | None, chance: float | None):
    """Values and chance against the metric's natural range: (scale, bounds, chance, notes).

    A [0, 1] metric whose values all lie in [0, 100] with a maximum above 1 is read as percent (published
    tables: GPT-3, BIG-bench) and scaled by 1/100; any other value outside the range drops the range
    (no clipping, no chance floor) with a note, since clipping would change the verdict silently. A
    chance level above 1 and at most 100 for a [0, 1] metric is read as percent too; one outside the
    range is not used.
    """
    notes: list[str] = []
    scale = 1.0
    if bounds is None:
        return scale, bounds, chance, notes
    lo, hi = bounds
    fraction = (lo, hi) == (0.0, 1.0)
    if values.len():
        v_min, v_max = float(values.min()), float(values.max())
        tol = 1e-9 * max(1.0, abs(v_min), abs(v_max))
        if fraction and v_min >= 0 and 1 + tol < v_max <= 100:
            scale = 0.01
            notes.append(f"values read as percent (max {v_max:.4g} > 1): divided by 100")
        elif v_min < lo - tol or v_max > hi + tol:
            notes.append(f"values outside the natural range [{lo:g}, {hi:g}] of the metric (min {v_min:.4g}, "
                         f"max {v_max:.4g}): range not imposed, no clipping, floor not pinned at chance")
            bounds = None
    if chance is not None and math.isfinite(chance) and fraction and 1 < chance <= 100:
        notes.append(f"chance read as percent ({chance:.4g}): divided by 100")
        chance /= 100
    elif chance is not None and bounds is not None and not lo <= chance <= hi:
        notes.append(f"chance {chance:.4g} outside the metric's range [{lo:g}, {hi:g}]: not used")
        chance = None
    return scale, bounds, chance, notes


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


def run_emergence(points: pl.DataFrame, *, x: str = "log_n", n_boot: int = N_BOOT, seed: int = 0,
                  criteria: Criteria | None = None, answer_tokens: float | None = None,
                  ci_level: float | None = None) -> EmergenceResult:
    """Everything analyze_emergence computes, plus the per-curve fits (for figures) and notes on the table."""
    notes: list[str] = []
    frame = validate_points(points, x, notes)
    crit = criteria or Criteria(max_width=MAX_WIDTH[x])
    if ci_level is not None:
        if not 0 < ci_level < 1:
            raise EmergenceInputError(f"ci_level must be in (0, 1), e.g. 0.95; got {ci_level}")
        crit = replace(crit, ci=ci_level)
    frame = _with_x(frame, x)
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
        curve = judge_curve(group["x"].to_numpy().astype(float), group["value"].to_numpy().astype(float),
                            higher_is_better=meta.higher_is_better, chance=meta.chance, bounds=meta.bounds,
                            log_likelihood=meta.log_likelihood,
                            binomial=meta.kind == "discontinuous", n_samples=n_samples,
                            group=group["size"].fill_null("").to_numpy(), criteria=crit, n_boot=n_boot,
                            seed=_curve_seed(seed, index))
        curves[(task, metric)] = curve
        metas[(task, metric)] = meta
        if x != "log_n":
            sizes = (group.filter(pl.col("x").is_finite() & pl.col("value").is_finite())
                     .group_by("size").agg(pl.col("x").mean(), pl.col("n_params").log().mean()))
            size_log_n[(task, metric)] = (sizes["x"].to_numpy(), sizes["n_params"].to_numpy())

    rows = []
    for (task, metric), curve in curves.items():
        meta = metas[(task, metric)]
        row = {"task": task, "metric": metric, "metric_kind": meta.kind, "kind_source": meta.kind_source,
               "higher_is_better": meta.higher_is_better, "chance": meta.chance, "x_axis": x,
               "threshold_unit": THRESHOLD_UNIT[x]}
        row.update(curve.row())
        row["ci_level"] = crit.ci
        row["note"] = meta.note
        if meta.note:
            row["reason"] = f"{row['reason']}; {meta.note}"
        x_c, x_lo, x_hi = row["x_c"], row["x_c_lo"], row["x_c_hi"]
        if x == "log_n":
            n_c = [_threshold(v, x) for v in (x_c, x_lo, x_hi)]
        else:
            xs, log_n = size_log_n[(task, metric)]
            n_c = [_to_params(v, xs, log_n) for v in (x_c, x_lo, x_hi)]
        bounds = sorted((_threshold(x_lo, x), _threshold(x_hi, x)))
        row.update({"n_c": n_c[0], "n_c_lo": n_c[1], "n_c_hi": n_c[2], "threshold": _threshold(x_c, x),
                    "threshold_lo": bounds[0], "threshold_hi": bounds[1], "n_c_lower_bound": math.nan,
                    "threshold_bound": math.nan})
        if curve.verdict == "beyond-range":  # not located: only bounded by the largest model
            largest = row["x_max"]
            bound = _threshold(largest, x)
            row.update({"n_c": math.nan, "n_c_lo": math.nan, "n_c_hi": math.nan, "threshold": math.nan,
                        "threshold_lo": math.nan, "threshold_hi": math.nan, "threshold_in_range": False,
                        "threshold_bound": bound, "n_c_lower_bound": _threshold(largest, x) if x == "log_n"
                        else _to_params(largest, *size_log_n[(task, metric)])})
            side = "<=" if x == "val_loss" else ">="
            row["reason"] += f"; threshold at or beyond the largest model ({side} {bound:.3g} {THRESHOLD_UNIT[x]})"
        rows.append(row)

    artifact_rows = []
    for task in sorted({t for t, _ in curves}):
        task_curves = {m: c for (t, m), c in curves.items() if t == task}
        kinds = {m: metas[(task, m)].kind for m in task_curves}
        composition = _composition(frame, task, task_curves, answer_tokens)
        verdict = artifact_verdict(task_curves, kinds, composition)
        artifact_rows.append({"task": task, "artifact_verdict": verdict.verdict, "artifact_reason": verdict.reason,
                              "discontinuous_metrics": ",".join(verdict.discontinuous),
                              "continuous_metrics": ",".join(verdict.continuous), **composition.row()})
    artifacts = pl.DataFrame(artifact_rows, schema=_ARTIFACT_SCHEMA, strict=False)
    table = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame(schema={"task": pl.String})
    if rows:
        table = table.join(artifacts, on="task", how="left")
    return EmergenceResult(table, artifacts, curves, metas, x, notes, crit.ci)


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
                      ci_level: float | None = None) -> pl.DataFrame:
    """One row per task x metric: verdict, reason, threshold and steepness with bootstrap intervals,
    R^2 / AIC / AICc / BIC per model, and the task's artifact verdict and p^L test.

    points: long table (see module doc). x: "log_n" | "log_flops" | "val_loss". n_boot: bootstrap
    replicates per curve (0: no intervals). seed: the bootstrap's seed (each curve gets its own
    stream from it). criteria: verdict thresholds (analysis.verdicts.Criteria; default: the axis's).
    answer_tokens: L for the p^L test when the table has no answer_tokens column. ci_level: level of the
    percentile intervals (default: the criteria's, 0.95); it is the `ci_level` column.

    Main columns: task, metric, metric_kind, higher_is_better, verdict (emergent | smooth | flat |
    beyond-range | non-monotone | insufficient-data), reason, n_c [n_c_lo, n_c_hi] (threshold in parameters),
    threshold [lo, hi] and threshold_unit (in the x axis's own unit), k [k_lo, k_hi] (per unit of x);
    for beyond-range rows n_c and threshold (and their intervals) are NaN, threshold_in_range is False,
    and threshold_bound / n_c_lower_bound give the largest model (the threshold lies at or past it; on
    the val_loss axis threshold_bound is an upper bound on the loss); NaN for other verdicts;
    x_c [lo, hi], threshold_in_range (the sigmoid's x_c, which every curve with enough sizes gets, lies
    within the observed sizes: read n_c of a smooth, flat or non-monotone curve as a fit parameter, not a finding),
    width_10_90, width_frac, floor, ceil (metric units), rise, noise, r2_/aic_/aicc_/bic_
    for constant, linear, power, sigmoid; ic, delta_ic, delta_ic_flat, best_model, bootstrap,
    n_boot, ci_level (of every interval in the row), sigmoid_converged (the point fit's solver flag);
    spearman_rho (rank correlation of the values, turned so up is better, with scale);
    note (values or chance read as percent, or outside the metric's natural range: see
    _check_range; "" when none; also appended to reason); per task: artifact_verdict (metric-induced |
    genuine | inconclusive), artifact_reason,
    pl_L, pl_L_source, pl_r2, pl_L_fit, pl_r2_fit. Raises EmergenceInputError on an unusable table.
    """
    return run_emergence(points, x=x, n_boot=n_boot, seed=seed, criteria=criteria,
                         answer_tokens=answer_tokens, ci_level=ci_level).table


def artifact_table(points: pl.DataFrame, **kwargs) -> pl.DataFrame:
    """One row per task: artifact_verdict, artifact_reason, the metrics compared, and the p^L test."""
    return run_emergence(points, **kwargs).artifacts
