"""fits.parquet: one row per fitted quantity, with its estimate and confidence interval.

Columns: analysis (loss_law | frontier | isoflop | backtest | sigmoid), task, metric, quantity,
estimate, ci_low, ci_high, level (of the interval; null without one), n_points, converged, method.
Per-budget frontier quantities are named like `n_opt@C=1e+15`.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from analysis.emergence.rule import Verdict
from analysis.emergence.run import EmergenceResult
from analysis.loss.allocation import budget_key
from analysis.loss.run import LossAnalysis

SCHEMA = {"analysis": pl.String, "task": pl.String, "metric": pl.String, "quantity": pl.String,
          "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "level": pl.Float64,
          "n_points": pl.Int64, "converged": pl.Boolean, "method": pl.String}

SIGMOID_QUANTITIES = ("n_c", "k", "x_c", "floor", "ceil", "r2_sigmoid", "width_10_90")


def _row(analysis: str, quantity: str, estimate: float, ci=None, level=None, n_points=None, converged=None,
         method=None, task=None, metric=None) -> dict[str, Any]:
    lo, hi = (None, None) if ci is None else (float(ci[0]), float(ci[1]))
    return {"analysis": analysis, "task": task, "metric": metric, "quantity": quantity,
            "estimate": None if estimate is None else float(estimate), "ci_low": lo, "ci_high": hi,
            "level": level if ci is not None else None, "n_points": n_points, "converged": converged,
            "method": method}


def loss_rows(loss: LossAnalysis) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    fit, boot = loss.fit, loss.bootstrap
    if fit is None:
        return rows
    level = boot.level if boot is not None else None
    method = "Huber log-space fit; percentile bootstrap over runs" if boot is not None else "Huber log-space fit"
    for name, value in {**fit.params(), "objective": fit.objective}.items():
        ci = boot.ci.get(name) if boot is not None else None
        rows.append(_row("loss_law", name, value, ci, level, fit.n_points, fit.converged, method))
    if loss.frontier is not None:
        f = loss.frontier
        rows.append(_row("frontier", "a", f.a, f.a_ci, f.level, fit.n_points, fit.converged, method))
        rows.append(_row("frontier", "b", f.b, f.b_ci, f.level, fit.n_points, fit.converged, method))
        for p in f.points:
            for name, value, ci in (("n_opt", p.n_opt, p.n_opt_ci), ("d_opt", p.d_opt, p.d_opt_ci),
                                    ("tokens_per_param", p.tokens_per_param, p.tokens_per_param_ci)):
                rows.append(_row("frontier", budget_key(name, p.flops), value, ci, f.level, fit.n_points,
                                 fit.converged, method))
    if loss.isoflop is not None:
        iso = loss.isoflop
        used = sum(m.used for m in iso.minima)
        rows.append(_row("isoflop", "a", iso.a, iso.a_ci, iso.level, used, True, iso.ci_method))
        rows.append(_row("isoflop", "b", iso.b, iso.b_ci, iso.level, used, True, iso.ci_method))
    if loss.backtest is not None:
        bt = loss.backtest
        for name in ("mean_abs_rel_error", "max_abs_rel_error", "in_sample_mean_abs_rel_error"):
            rows.append(_row("backtest", name, getattr(bt, name), n_points=len(bt.points), converged=bt.fit.converged,
                             method=f"fit without the {bt.n_holdout_sizes} largest size(s), predict them"))
    return rows


def _finite(value) -> float | None:
    return float(value) if value is not None and isinstance(value, (int, float)) and math.isfinite(value) else None


def sigmoid_rows(emergence: EmergenceResult | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if emergence is None:
        return rows
    for r in emergence.table.iter_rows(named=True):
        if r.get("bracketed"):  # located between two sizes, nothing fitted: the bracket is the interval
            rows.append(_row("sigmoid", "n_c", None, (r["n_c_lo"], r["n_c_hi"]), None, r["n_sizes"], True,
                             "bracket: no size on the rise; the threshold lies between these two sizes, "
                             f"nothing fitted; verdict {r['verdict']}", task=r["task"], metric=r["metric"]))
            continue
        if not Verdict(r["verdict"]).has_threshold or _finite(r.get("k")) is None:
            continue  # no threshold to report (beyond-range: emergence.parquet holds its lower bound)
        for name in SIGMOID_QUANTITIES:
            lo, hi = _finite(r.get(f"{name}_lo")), _finite(r.get(f"{name}_hi"))
            ci = (lo, hi) if lo is not None and hi is not None else None
            level = r["ci_level"] if ci else None
            rows.append(_row("sigmoid", name, _finite(r.get(name)), ci, level, r["n_sizes"], r["sigmoid_converged"],
                             f"sigmoid in {r['x_axis']}; {r['bootstrap']} bootstrap; verdict {r['verdict']}",
                             task=r["task"], metric=r["metric"]))
    return rows


def fits_table(loss: LossAnalysis, emergence: EmergenceResult | None) -> pl.DataFrame:
    return pl.DataFrame(loss_rows(loss) + sigmoid_rows(emergence), schema=SCHEMA)
