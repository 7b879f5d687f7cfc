"""The analysis of one grid of a sweep directory: load its tables, run the loss and emergence analyses, write
fits.parquet, monotonicity.parquet, emergence.parquet, plots (PNG and SVG) and the report (report.html,
report.md) into the grid's analysis directory (analysis.tables.grids says which).

I/O happens here and in analysis.tables only; the analyses are analysis.loss.run and analysis.emergence.run
(the same orchestrators the command line uses), the report's sections analysis.report.sections and, for the recipe
(the grid's sweep.json, calibration.json and the calibration's runs), analysis.report.recipe.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import polars as pl

from analysis.emergence.curve import N_BOOT
from analysis.emergence.points import EmergenceInputError
from analysis.emergence.run import EmergenceResult, run_emergence
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN
from analysis.loss.monotonicity import monotonicity_table
from analysis.loss.run import LossAnalysis, LossOptions, run_loss_analysis
from analysis.report.compute import compute_summary
from analysis.report.fits_table import fits_table
from analysis.report.page import Section, html_page, markdown
from analysis.report.recipe import RecipeSummary, glance_line, recipe_section, summarize
from analysis.report.recipe_plots import calibration_figure
from analysis.report.sections import compute_section, emergence_sections, glance_section, loss_sections
from analysis.tables import inputs
from analysis.tables.grids import Grid, grid_ids, open_grid, publish
from analysis.tables.io import join, write_bytes
from analysis.tables.load import load_calibration_runs, load_evals, load_runs


def run_flops(runs: pl.DataFrame) -> np.ndarray:
    """Each run's training compute as the runs table states it: flops_6nd (the budget an isoFLOP grid sets),
    else flops; 6ND only for a table that has neither."""
    for name in ("flops_6nd", "flops"):
        if name in runs.columns and runs.height and runs[name].is_not_null().all():
            return runs[name].cast(pl.Float64).to_numpy()
    return FLOPS_PER_PARAM_TOKEN * runs["n_params"].cast(pl.Float64).to_numpy() * runs["n_tokens"].cast(
        pl.Float64).to_numpy()


def _emergence(evals: pl.DataFrame, n_boot: int, options: LossOptions) -> tuple[EmergenceResult | None, str]:
    if evals.is_empty():
        return None, "No evaluations of finished runs in this sweep."
    try:
        return run_emergence(evals, n_boot=n_boot, seed=options.seed, level=options.level), ""
    except EmergenceInputError as exc:
        return None, f"Not analysed: {exc}"


def _write(out: str, title: str, sections: list[Section], images: dict[str, bytes], loss: LossAnalysis,
           emergence: EmergenceResult | None) -> dict[str, bytes]:
    _write_parquet(join(out, "fits.parquet"), fits_table(loss, emergence))
    if loss.monotonicity is not None:
        _write_parquet(join(out, "monotonicity.parquet"), monotonicity_table(loss.monotonicity))
    if emergence is not None:
        _write_parquet(join(out, "emergence.parquet"), emergence.table)
    for name, payload in images.items():
        write_bytes(join(out, "plots", name), payload)
    png = {name: payload for name, payload in images.items() if name.endswith(".png")}
    write_bytes(join(out, "report.md"), markdown(title, sections).encode())
    write_bytes(join(out, "report.html"), html_page(title, sections, png).encode())
    return png


def _recipe(grid: Grid, runs: pl.DataFrame) -> RecipeSummary:
    """The grid's recipe from its sweep.json, calibration.json and the calibration's runs (never the loss fit's)."""
    return summarize(grid.manifest, grid.calibration(), runs, load_calibration_runs(grid))


def _summary(say, loss: LossAnalysis, emergence: EmergenceResult | None, loss_seconds: float) -> None:
    diagnosis = loss.diagnosis()
    if loss.fit is not None:
        f = loss.fit
        timing = f"{f.n_points} runs; fit + {loss.options.n_resamples} bootstrap resamples {loss_seconds:.1f} s"
        say(f"loss law: E={f.E:.4f} A={f.A:.4g} alpha={f.alpha:.3f} B={f.B:.4g} beta={f.beta:.3f} ({timing})"
            if diagnosis.headlined else f"loss law: not headlined, {diagnosis.reason()} ({timing})")
    for finding in diagnosis.findings:
        say(f"note: {finding.cause.title}: next: {finding.fix}")
    if emergence is not None:
        for note in emergence.notes:
            say(f"note: {note}")
        counts = emergence.artifacts["artifact_verdict"].value_counts().sort("artifact_verdict")
        say("task verdicts: " + ", ".join(f"{r['artifact_verdict']} {r['count']}"
                                          for r in counts.iter_rows(named=True)))


def _made(grid: Grid, all_runs: bool) -> str:
    """How the report was made: which runs, and the command that redoes it."""
    if all_runs:
        return (f"Every run in {grid.sweep_dir} but the calibration's, of whichever grid. Rerun offline: "
                f"python -m analysis {grid.sweep_dir} --all-runs")
    if grid.grid_id is None:
        return f"Rerun offline: python -m analysis {grid.sweep_dir}"
    others = [gid for gid in grid_ids(grid.sweep_dir) if gid != grid.grid_id]
    return (f"The runs of grid {grid.grid_id} ({len(grid.run_ids or [])} runs, {join(grid.home, 'sweep.json')})"
            + ("; the latest grid of this directory" if grid.latest else "; not the latest grid of this directory")
            + (f"; its other grids: {', '.join(others)}" if others else "")
            + f". Rerun offline: python -m analysis {grid.sweep_dir} --grid {grid.grid_id}")


def _analyse(grid: Grid, out: str, say, all_runs: bool, options: LossOptions, emergence_boot: int) -> dict[str, Any]:
    """Load the grid's tables, fit, and write everything but the record into `out`; returns the results."""
    started = time.perf_counter()
    runs = load_runs(grid, all_runs=all_runs)
    done = runs.filter((pl.col("status") == "done") & pl.col("final_val_loss").is_not_null())
    evals = load_evals(grid, all_runs=all_runs)
    if "run_id" in evals.columns:  # evaluations of finished runs only (none when no run is done)
        evals = evals.filter(pl.col("run_id").is_in(done["run_id"].to_list()))
    flops = run_flops(done)
    loss = run_loss_analysis(done["n_params"], done["n_tokens"], done["final_val_loss"], flops, options=options,
                             runs=done)
    loss_seconds = time.perf_counter() - started
    emergence, skipped = _emergence(evals, emergence_boot, options)
    recipe = _recipe(grid, runs)
    figure = calibration_figure(recipe) if recipe.calibration_runs.height else None
    images: dict[str, bytes] = {}
    sections = [glance_section(loss, emergence, glance_line(recipe)), *loss_sections(loss, done, flops, images),
                recipe_section(recipe, images, figure), *emergence_sections(emergence, skipped, images)]
    spent = compute_summary(done) if done.height else None
    if spent is not None:
        sections.append(compute_section(spent))
    sections.append(Section("Runs", "", [
        {k: r.get(k) for k in ("run_id", "status", "n_params", "n_tokens", "final_val_loss", "wall_seconds")}
        for r in runs.sort("n_params", "n_tokens").iter_rows(named=True)]))
    sections.append(Section("How this report was made",
                            f"Loss analysis (fit, {options.n_resamples} bootstrap resamples, isoFLOP, backtest) "
                            f"{loss_seconds:.1f} s; everything {time.perf_counter() - started:.1f} s. Every interval "
                            f"is at {100 * options.level:.0f}%. {_made(grid, all_runs)}"))
    title = f"Scaling sweep report: {grid.sweep_dir.rstrip('/').rsplit('/', 1)[-1]}"
    png = _write(out, title, sections, images, loss, emergence)
    say(glance_line(recipe))
    _summary(say, loss, emergence, loss_seconds)
    if spent is not None and spent.n_branches:
        say(f"compute: {spent.flops_spent:.3g} FLOPs spent, {spent.flops_independent:.3g} for independent runs "
            f"({100 * spent.saved_fraction:.1f}% saved by {spent.n_branches} WSD branches)")
    written = ["report.html", "report.md", "fits.parquet", "monotonicity.parquet"]
    written += ["emergence.parquet"] * (emergence is not None)
    written += [f"plots/ ({len(png)} figures, PNG and SVG)"] * bool(png)
    if done.is_empty():
        say(f"no finished runs in {grid.sweep_dir} ({runs.height} runs, none done): the report only lists them")
    return {"loss": loss, "emergence": emergence, "written": written}


def analyze_sweep(sweep_dir: str, console=None, all_runs: bool = False, options: LossOptions | None = None,
                  emergence_boot: int = N_BOOT, only_if_changed: bool = False, grid: str | None = None
                  ) -> dict[str, Any]:
    """Fit and report one grid of a sweep directory (grid: its id; None: the latest); returns the results.

    Writes the grid's analysis directory (grids/<grid_id>/analysis/; <sweep>/analysis/ for a sweep whose manifest
    names no grid, and for all_runs, which reads every run in the directory), then makes the latest grid's
    analysis <sweep>/analysis/ too (analysis.tables.grids.publish). only_if_changed: do nothing but that copy when
    the grid's analysis was made from exactly these inputs (the runs' tables and status files, the grid's recipe,
    the settings, the analysis code: analysis.tables.inputs); returns {"skipped": True}. Raises UnknownGrid for a
    grid the directory does not keep.
    """
    say = console.print if console is not None else print
    started = time.perf_counter()
    chosen = open_grid(sweep_dir, grid)
    analysis_settings = inputs.settings(all_runs, options, None if emergence_boot == N_BOOT else emergence_boot)
    out = inputs.analysis_dir(chosen, analysis_settings)
    started_from = inputs.fingerprint(chosen, analysis_settings)
    if only_if_changed and inputs.recorded(out) == started_from:
        copied = not all_runs and publish(chosen)
        say(f"analysis up to date: no run changed since {out}/ was written"
            + (f" (copied to {join(sweep_dir, 'analysis')}/, the latest grid's)" if copied else ""))
        return {"out": out, "skipped": True}
    result = _analyse(chosen, out, say, all_runs, options or LossOptions(), emergence_boot)
    inputs.record(out, started_from, analysis_settings)  # last: the analysis is complete
    copied = not all_runs and publish(chosen)
    seconds = time.perf_counter() - started
    say(f"analysis written to {out}/ ({', '.join(result.pop('written'))}) in {seconds:.1f} s"
        + (f"; the latest grid's, so also to {join(sweep_dir, 'analysis')}/" if copied else ""))
    return {**result, "out": out, "seconds": seconds, "skipped": False}


def _write_parquet(uri: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    write_bytes(uri, buffer.getvalue())
