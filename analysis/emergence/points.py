"""The long table the emergence analysis reads: its columns checked and typed, each row put on the x axis,
and what each metric is (kind, direction, chance, natural range: columns first, then kinds.py).

Input (`points`, long format, one row per observation): task, metric, n_params, value; optional
metric_kind, higher_is_better, metric_min, metric_max (null: unbounded on that side),
metric_log_likelihood, chance, answer_tokens, n_samples, flops, n_tokens, seed, run_id, val_loss.
The sweep writes every one of them; the name table of kinds.py answers only for a table without
them (an older sweep, a CSV of published curves). Rows with an empty task or metric belong to no
curve: they are dropped and counted (EmergenceInputError naming the column when no row is left).
Values are checked against the metric's natural range: a [0, 1] metric given in percent is scaled by
1/100, other out-of-range values lift the range instead of being clipped, both with a note (see
_check_range). Pure functions; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.emergence.kinds import metric_info
from analysis.tables.invalid import invalid_rows, summary
from analysis.tables.table import InputError, numeric

X_AXES = ("log_n", "log_flops", "val_loss")
REQUIRED = ("task", "metric", "n_params", "value")
NUMERIC = ("n_params", "value", "chance", "answer_tokens", "n_samples", "flops", "n_tokens", "val_loss", "metric_min",
           "metric_max")
BOOLEAN = ("higher_is_better", "metric_log_likelihood")
RANGE_COLUMNS = ("metric_min", "metric_max", "metric_log_likelihood")


class EmergenceInputError(InputError):
    """The table cannot be analysed as given (missing column, non-numeric values, unknown axis)."""


@dataclass(frozen=True)
class MetricMeta:
    kind: str
    kind_source: str  # "column" | "table" | "pattern" | "default"; the range comes from the columns too when
    # the table has them (sweep tables since TABLE_SCHEMA_VERSION 5), else from the same name lookup
    higher_is_better: bool
    chance: float | None
    bounds: tuple[float, float] | None
    log_likelihood: bool
    scale: float = 1.0  # values are multiplied by this before the analysis (0.01: read as percent)
    note: str = ""  # what was done about values or chance outside the natural range ("" when nothing)


def _numeric(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    try:
        return frame.with_columns(numeric(frame[name], f"column '{name}'").alias(name))
    except InputError as exc:
        raise EmergenceInputError(str(exc)) from exc


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
    for name in BOOLEAN:
        if name in frame.columns:
            frame = _boolean(frame, name)
    if "metric_kind" in frame.columns:
        frame = frame.with_columns(pl.col("metric_kind").cast(pl.String).str.strip_chars().str.to_lowercase())
    if x == "log_flops" and ("flops" not in frame.columns or frame["flops"].drop_nulls().len() == 0):
        raise EmergenceInputError("x axis log_flops needs a 'flops' column with values")
    if x == "val_loss":
        has_column = "val_loss" in frame.columns and frame["val_loss"].drop_nulls().len() > 0
        if not has_column and frame.filter(pl.col("metric") == "val_loss").is_empty():
            raise EmergenceInputError("x axis val_loss needs a 'val_loss' column or rows with metric 'val_loss'")
    return frame


def with_x(frame: pl.DataFrame, x: str) -> pl.DataFrame:
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
    """Kind, direction, chance and range of one task x metric: columns first, then analysis/emergence/kinds.py;
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
    values = group["value"].drop_nulls()
    values = values.filter(values.is_finite()) if values.dtype.is_float() else values
    stated = _stated_range(group)
    if stated is not None:
        bounds, loglik = stated[0], info.log_likelihood if stated[1] is None else stated[1]
    else:
        bounds, loglik = info.bounds, info.log_likelihood
        if bounds is None and not loglik and values.len() and values.min() >= 0 and values.max() <= 1:
            bounds = (0.0, 1.0)  # a [0, 1] metric we have no entry for: accuracy-like
    scale, bounds, chance, notes = _check_range(values, bounds, chance)
    return MetricMeta(kind, source, higher, chance, bounds, loglik, scale, "; ".join(notes))


def _stated_range(group: pl.DataFrame) -> tuple[tuple[float, float] | None, bool | None] | None:
    """(bounds, log_likelihood) as the table's columns state them; None when it states neither (then the
    name decides). A null bound is unbounded on that side; both null: no range; a flag left null: unstated."""
    if all(_first(group, name) is None for name in RANGE_COLUMNS):
        return None
    lo, hi, loglik = (_first(group, name) for name in RANGE_COLUMNS)
    bounds = None if lo is None and hi is None else (-math.inf if lo is None else float(lo),
                                                      math.inf if hi is None else float(hi))
    return bounds, None if loglik is None else bool(loglik)


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
