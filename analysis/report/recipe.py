"""The sweep's recipe as the report tells it: where each run's batch and peak learning rate came from.

A recipe is two power laws of a run's training compute C, the optimum tokens per step B*(C) = b C^e_B and
peak lr eta*(C) = l C^e_eta, and an lr-batch slope (the lr at a batch B off the optimum is
eta*(C) (B/B*)^slope). The grid took them from the published laws of DeepSeek LLM, or from a calibration at
the sweep's own scale (a batch x lr grid of ordinary runs at a few (size, budget) points, fitted by one
quadratic bowl of ln loss in (ln B, ln lr)). What this module reads is handed to it: sweep.json (the
manifest), calibration.json, the grid's and the calibration's rows of the runs table; `summarize` turns
them into a `RecipeSummary`, from which come the report's section (`recipe_section`, with a table of the
calibration points and a figure of loss against lr at each) and the line of "At a glance" (`glance_line`).
The calibration runs are never the grid the loss law is fitted on (analysis.tables.load keeps them out).
The figure is drawn by analysis.report.recipe_plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import polars as pl

from analysis.plots import add_figure
from analysis.report.page import Section

TITLE = "Recipe: batch and learning rate"
FIGURE = "recipe_calibration"
SQUARE_ROOT_RULE = 0.5  # Adam's lr-batch slope (Malladi et al. 2022): what a recipe that records none used


@dataclass(frozen=True)
class Law:
    """y = coefficient * C^exponent."""

    coefficient: float
    exponent: float

    def __call__(self, flops: float) -> float:
        return self.coefficient * flops**self.exponent


@dataclass(frozen=True)
class Laws:
    """A recipe as sweep.json and calibration.json record it."""

    source: str  # deepseek | calibrated
    batch_tokens: Law
    lr: Law
    fitted_flops: tuple[float, float]
    reference: str
    lr_batch_slope: float = SQUARE_ROOT_RULE

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Laws:
        slope = d.get("lr_batch_slope")
        return Laws(str(d["source"]), Law(**d["batch_tokens"]), Law(**d["lr"]), tuple(map(float, d["fitted_flops"])),
                    str(d.get("reference", "")), SQUARE_ROOT_RULE if slope is None else float(slope))

    def covers(self, flops: float) -> bool:
        return self.fitted_flops[0] <= flops <= self.fitted_flops[1]

    def same_laws(self, other: Laws) -> bool:
        pairs = [(self.batch_tokens.coefficient, other.batch_tokens.coefficient),
                 (self.batch_tokens.exponent, other.batch_tokens.exponent),
                 (self.lr.coefficient, other.lr.coefficient), (self.lr.exponent, other.lr.exponent)]
        return all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in pairs)


# DeepSeek LLM (Bi et al. 2024), sec. 3.1, eq. 1, from grid searches of batch and learning rate on runs of
# 1e17..2e19 FLOPs: B_opt = 0.2920 C^0.3271 tokens, eta_opt = 0.3118 C^-0.1250; lr ~ B^0.5 off the optimum
# batch. The sweep's own copy is sweep.plan.recipe.DEEPSEEK (tests/analysis/report/test_recipe_report.py holds
# them equal).
PUBLISHED = Laws("deepseek", Law(0.2920, 0.3271), Law(0.3118, -0.1250), (1e17, 2e19),
                 "DeepSeek LLM, Bi et al. 2024, sec. 3.1", SQUARE_ROOT_RULE)


class Origin(Enum):
    """Where the grid's batch and lr came from, as sweep.json and calibration.json say."""

    PUBLISHED = "published"  # the published laws, by choice (recipe.source=deepseek, or auto inside their range)
    CALIBRATED = "calibrated"  # laws fitted by the sweep's calibration stage
    PROVISIONAL = "provisional"  # calibration asked for, not fitted: the grid shown is expanded with the published laws
    UNRECORDED = "unrecorded"  # sweep.json predates the recipe, or there is no sweep.json


@dataclass(frozen=True)
class RecipeSummary:
    origin: Origin
    laws: Laws | None  # what the grid used (sweep.json's recipe)
    grid: pl.DataFrame  # the grid's runs, with `flops_point`: the compute the recipe was read at
    calibration: dict[str, Any] | None  # calibration.json
    calibration_runs: pl.DataFrame  # the calibration's runs, with `flops_point`
    remarks: tuple[str, ...] = ()  # what the files disagree on

    @property
    def largest(self) -> dict[str, Any] | None:
        """The grid run at the largest compute (the larger model on a tie)."""
        if self.grid.is_empty():
            return None
        return self.grid.sort("flops_point", "n_params", descending=True, nulls_last=True).row(0, named=True)

    @property
    def grid_flops(self) -> tuple[float, float] | None:
        c = self.grid["flops_point"].drop_nulls() if self.grid.height else None
        return None if c is None or c.is_empty() else (float(c.min()), float(c.max()))


def with_point_flops(runs: pl.DataFrame) -> pl.DataFrame:
    """`runs` with `flops_point`, each run's compute at its token budget (the compute its recipe was read at):
    the runs table's flops scaled from the tokens trained to the budget; 6ND where the table has no flops."""
    if runs.is_empty():
        return runs.with_columns(pl.lit(None, pl.Float64).alias("flops_point")) if runs.width else runs
    has = set(runs.columns)
    budget = pl.col("n_tokens_budget") if "n_tokens_budget" in has else pl.col("n_tokens")
    if {"flops", "n_tokens"} <= has:
        flops = pl.col("flops") * budget / pl.col("n_tokens")
    else:
        flops = 6.0 * pl.col("n_params") * budget
    return runs.with_columns(flops.cast(pl.Float64).alias("flops_point"))


def summarize(manifest: dict[str, Any] | None, calibration: dict[str, Any] | None, grid_runs: pl.DataFrame,
              calibration_runs: pl.DataFrame) -> RecipeSummary:
    """The recipe of a sweep from its manifest (sweep.json, None when absent), calibration.json (None when absent),
    and its grid's and calibration's rows of the runs table."""
    grid, calib = with_point_flops(grid_runs), with_point_flops(calibration_runs)
    manifest = manifest or {}
    if "recipe_source" not in manifest or not manifest.get("recipe"):
        return RecipeSummary(Origin.UNRECORDED, None, grid, None, calib)
    laws = Laws.from_dict(manifest["recipe"])
    remarks = []
    if manifest["recipe_source"] != "calibrate":
        if calibration is not None:
            remarks.append("calibration.json holds a calibration this grid does not use (sweep.json: "
                           f"recipe_source={manifest['recipe_source']})")
        return RecipeSummary(Origin.PUBLISHED, laws, grid, None, calib, tuple(remarks))
    if calibration is None or laws.source == PUBLISHED.source:
        return RecipeSummary(Origin.PROVISIONAL, laws, grid, calibration, calib)
    if not laws.same_laws(Laws.from_dict(calibration["recipe"])):
        remarks.append("the laws in calibration.json differ from those sweep.json says the grid used: the grid "
                       "was expanded from another calibration; rerun the sweep to expand it from this one")
    return RecipeSummary(Origin.CALIBRATED, laws, grid, calibration, calib, tuple(remarks))


def g(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, exponents without a plus sign or leading zero (1.1e11, 4.2e-5)."""
    text = f"{value:.{digits}g}"
    mantissa, _, exponent = text.partition("e")
    return text if not exponent else f"{mantissa}e{int(exponent)}"


def _sequences(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else g(value, 2)


def _num(value: float | None, fmt: str = "{:.3g}") -> str:
    return "" if value is None or not math.isfinite(value) else fmt.format(value)


def _interval(ci: dict[str, list[float]], key: str) -> str:
    pair = ci.get(key)
    if not pair or len(pair) != 2 or not all(v is not None and math.isfinite(v) for v in pair):
        return "[not recorded]"
    return f"[{g(pair[0], 3)}, {g(pair[1], 3)}]"


def _seq_len(summary: RecipeSummary) -> float | None:
    for frame in (summary.grid, summary.calibration_runs):
        if "seq_len" in frame.columns and frame["seq_len"].drop_nulls().len():
            return float(frame["seq_len"].drop_nulls().median())
    return None


def _largest_text(summary: RecipeSummary) -> str:
    run = summary.largest
    if run is None:
        return ""
    return (f"batch {_num(run.get('batch_size'), '{:.0f}')} sequences, lr {_num(run.get('lr'), '{:.2g}')} at the "
            f"largest run")


def _published_there(summary: RecipeSummary) -> str:
    """What the published laws give at the largest run's compute: its optimum batch (sequences) and lr."""
    run, seq = summary.largest, _seq_len(summary)
    if run is None or seq is None or run.get("flops_point") is None:
        return ""
    c = run["flops_point"]
    return f"published: {_sequences(PUBLISHED.batch_tokens(c) / seq)} and {g(PUBLISHED.lr(c), 2)}"


def _span(lo: float, hi: float) -> str:
    return f"C {g(lo, 2)}-{g(hi, 2)}"


def glance_line(summary: RecipeSummary) -> str:
    """One line for "At a glance": which recipe the grid used, where from, and the batch and lr of its largest run."""
    at_largest = _largest_text(summary)
    if summary.origin is Origin.UNRECORDED:
        return "Recipe: not recorded in sweep.json" + (f"; {at_largest}" if at_largest else "") + "."
    laws, span = summary.laws, summary.grid_flops
    if summary.origin is Origin.CALIBRATED:
        cal = summary.calibration
        lo, hi = laws.fitted_flops
        published = _published_there(summary)
        return (f"Recipe: calibrated at this scale from {cal['n_runs']} runs ({len(cal.get('points', []))} points, "
                f"{_span(lo, hi)})" + (f": {at_largest}" if at_largest else "")
                + (f" ({published})" if published else "") + ".")
    where = ""
    if span is not None:
        inside = laws.covers(span[0]) and laws.covers(span[1])
        where = f", {'covering' if inside else 'extrapolated to'} this grid's {_span(*span)}"
    head = ("Recipe: calibration not fitted: the grid is provisional, on the published laws"
            if summary.origin is Origin.PROVISIONAL else "Recipe: published laws")
    return (f"{head} ({laws.reference}), fitted on {_span(*laws.fitted_flops)}{where}"
            + (f": {at_largest}" if at_largest else "") + ".")


def _laws_text(laws: Laws) -> str:
    return (f"B*(C) = {g(laws.batch_tokens.coefficient, 4)} C^{g(laws.batch_tokens.exponent, 4)} tokens per step, "
            f"lr*(C) = {g(laws.lr.coefficient, 4)} C^{g(laws.lr.exponent, 4)}, and lr*(C) (B/B*)^"
            f"{g(laws.lr_batch_slope, 2)} at a batch B off the optimum")


def _recipe_column(grid: pl.DataFrame) -> str:
    if "recipe" not in grid.columns or grid.is_empty():
        return ""
    counts = grid["recipe"].fill_null("not recorded").value_counts(sort=True)
    return ("The runs table's recipe column of the grid's runs: "
            + ", ".join(f"{r['recipe']} ({r['count']})" for r in counts.iter_rows(named=True)) + ".")


def _grid_text(summary: RecipeSummary) -> str:
    run = summary.largest
    if run is None:
        return "The grid has no runs in the runs table yet."
    where = "" if run["flops_point"] is None else f", C = {g(run['flops_point'])}"
    return (f"The largest run of the grid ({run.get('label') or run['run_id']}{where}) trains at batch "
            f"{_num(run.get('batch_size'), '{:.0f}')} sequences and lr {_num(run.get('lr'))}.")


def _published_text(summary: RecipeSummary) -> str:
    laws, span = summary.laws, summary.grid_flops
    lo, hi = laws.fitted_flops
    text = f"The grid's batch and peak lr follow the published laws of {laws.reference}: {_laws_text(laws)}; fitted on "
    text += f"C = {g(lo, 2)}-{g(hi, 2)} FLOPs."
    if span is not None:
        c = summary.grid["flops_point"].drop_nulls().to_numpy()
        outside = int(np.sum((c < lo) | (c > hi)))
        text += (f" The grid's runs train at C = {g(span[0], 2)}-{g(span[1], 2)} FLOPs (runs table, at each run's "
                 "budget): ")
        if outside == 0:
            text += "inside that range."
        else:
            far = max(lo / span[0], span[1] / hi)
            text += (f"{outside} of {len(c)} lie outside it, up to {g(far, 3)}x beyond its edge, where the laws are "
                     "extrapolated; recipe.source=calibrate fits them at this sweep's scale.")
    return text


def _provisional_text(summary: RecipeSummary) -> str:
    runs = summary.calibration_runs
    done = int((runs["status"] == "done").sum()) if "status" in runs.columns else 0
    why = ("calibration.json absent" if summary.calibration is None else
           "sweep.json's recipe is the published one, not calibration.json's")
    return (f"The sweep calibrates its recipe (sweep.json: recipe_source=calibrate), but its grid was not expanded "
            f"from a calibration ({why}): the grid in sweep.json is the provisional one, expanded with the published "
            f"laws ({summary.laws.reference}: {_laws_text(summary.laws)}); {done} of "
            f"{runs.height} calibration runs in the runs table are done. Rerun the sweep to finish and fit them.")


def _calibrated_text(summary: RecipeSummary) -> str:
    cal, laws = summary.calibration, summary.laws
    ci, level = cal.get("ci", {}), float(cal.get("level", 0.9))
    points = cal.get("points", [])
    lo, hi = laws.fitted_flops
    where = ", ".join(f"{p['label']} at C = {g(p['flops'])}" for p in points)
    kept = not cal.get("exponents_fitted", False)
    exponent = (lambda key: "(kept at the published value)") if kept else (lambda key: _interval(ci, key))
    slope_ci = (_interval(ci, "lr_batch_slope") if "lr_batch_slope" in cal.get("recipe", {}) else
                "(calibration.json records no slope: the square-root rule; no interval)")
    lines = [
        f"The grid's batch and peak lr follow laws calibrated at this sweep's scale ({laws.reference}): "
        f"{cal['n_runs']} calibration runs at {len(points)} points ({where}; C = {g(lo, 3)}-{g(hi, 3)} FLOPs), one "
        f"quadratic bowl of ln(loss) in (ln B, ln lr) whose optimum moves with C by two power laws (residual SD of "
        f"ln loss {_num(cal.get('residual_sd'))}). The calibration runs are not part of the loss fit. Intervals at "
        f"{100 * level:.0f}%, percentile bootstrap of the runs within each point:",
        f"- B*(C) = b C^e_B tokens per step: b = {g(laws.batch_tokens.coefficient, 4)} {_interval(ci, 'b')}, e_B = "
        f"{g(laws.batch_tokens.exponent, 4)} {exponent('e_B')}",
        f"- lr*(C) = l C^e_eta: l = {g(laws.lr.coefficient, 4)} {_interval(ci, 'l')}, e_eta = "
        f"{g(laws.lr.exponent, 4)} {exponent('e_eta')}",
        f"- lr at a batch B off the optimum: lr*(C) (B/B*)^slope, slope = {g(laws.lr_batch_slope, 3)} {slope_ci}",
        "- Exponents: " + (f"kept at the published values ({PUBLISHED.reference}), only the coefficients "
                           "calibrated." if kept else f"fitted on the {len(points)} points."),
    ]
    lines.append(_optimum_text(summary))
    notes = cal.get("notes", [])
    lines.append("Notes of the calibration:" if notes else "The calibration wrote no notes.")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def _optimum_text(summary: RecipeSummary) -> str:
    cal, laws, seq = summary.calibration, summary.laws, _seq_len(summary)
    at = cal.get("at_flops")
    if at is None or not math.isfinite(at):
        return "- The calibration records no compute at which its optimum's interval was read."
    ci = cal.get("ci", {})
    per_seq = (lambda tokens: f" ({g(tokens / seq, 3)} sequences)") if seq else (lambda tokens: "")
    batch, lr = laws.batch_tokens(at), laws.lr(at)
    text = (f"- At the grid's largest compute C = {g(at, 3)}: B* = {g(batch, 3)} tokens{per_seq(batch)} "
            f"{_interval(ci, 'batch_tokens_at')}, lr* = {g(lr, 3)} {_interval(ci, 'lr_at')}; the published laws give "
            f"B* = {g(PUBLISHED.batch_tokens(at), 3)} tokens{per_seq(PUBLISHED.batch_tokens(at))}, lr* = "
            f"{g(PUBLISHED.lr(at), 3)} there.")
    if at > laws.fitted_flops[1]:
        text += (f" The laws are extrapolated {g(at / laws.fitted_flops[1], 3)}x beyond the calibration's largest "
                 "compute to reach it.")
    return text


def _point_rows(summary: RecipeSummary) -> list[dict[str, Any]]:
    rows = []
    for p in summary.calibration.get("points", []):
        best, grid = p.get("best_observed", {}), grid_run_at(summary, p["label"], p["flops"])
        rows.append({
            "point": p["label"], "C (FLOPs)": p["flops"], "runs": p["n_runs"],
            "best batch (tokens)": best.get("batch_tokens"), "best lr": best.get("lr"), "best loss": best.get("loss"),
            "optimum batch (tokens)": p["batch_tokens"], "optimum lr": p["lr"],
            "optimum inside the runs tried": "yes" if p["inside"] else "no",
            "grid run here": "" if grid is None else f"batch {grid['batch_size']} seq, lr {_num(grid['lr'])}",
        })
    return rows


def runs_at(runs: pl.DataFrame, label: str, flops: float) -> pl.DataFrame:
    """The calibration runs of the point (label, compute)."""
    if runs.is_empty() or "label" not in runs.columns:
        return runs.clear()
    near = (pl.col("flops_point") / flops).log().abs() < 0.01
    return runs.filter((pl.col("label") == label) & near)


def grid_run_at(summary: RecipeSummary, label: str, flops: float) -> dict[str, Any] | None:
    """The grid's run at a calibration point: the same size and budget as its calibration runs."""
    at = runs_at(summary.calibration_runs, label, flops)
    grid = summary.grid
    if at.is_empty() or grid.is_empty() or not {"n_params", "n_tokens_budget"} <= set(grid.columns):
        return None
    same = grid.filter((pl.col("n_params") == at["n_params"][0]) & (pl.col("n_tokens_budget") ==
                                                                   at["n_tokens_budget"][0]))
    return None if same.is_empty() else same.sort("final_val_loss", nulls_last=True).row(0, named=True)


def recipe_section(summary: RecipeSummary, images: dict[str, bytes], figure=None) -> Section:
    """The report's section on the recipe: calibrated, with the laws, their intervals, the optimum at the grid's
    largest compute, every note of the calibration, a table of its points and `figure`
    (analysis.report.recipe_plots.calibration_figure); else a short text."""
    tail = [t for t in (_grid_text(summary), _recipe_column(summary.grid), *summary.remarks) if t]
    if summary.origin is Origin.UNRECORDED:
        text = ("sweep.json does not record which recipe set the grid's batch and lr (a sweep written before the "
                "recipe was recorded, or a directory without sweep.json); each run's batch_size and lr are in its "
                "run.parquet.")
        return Section(TITLE, "\n".join([text, *tail]))
    if summary.origin is Origin.PUBLISHED:
        return Section(TITLE, "\n".join([_published_text(summary), *tail]))
    if summary.origin is Origin.PROVISIONAL:
        return Section(TITLE, "\n".join([_provisional_text(summary), *tail]))
    figures = [add_figure(images, FIGURE, figure)] if figure is not None else []
    text = "\n".join([_calibrated_text(summary), *tail])
    if figures:
        text += ("\nFigure: at each calibration point, final val loss against peak lr, one line per batch size; "
                 "dotted, the fitted optimum lr (at the optimum batch); solid and star, the grid's lr at the batch it "
                 "uses there and that run's loss. A loss beyond 1.5x the point's best is drawn at the top edge as ^.")
    return Section(TITLE, text, _point_rows(summary) or None, figures)
