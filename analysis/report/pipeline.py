"""The analysis of one sweep directory: load its tables, run the loss and emergence analyses, write
fits.parquet, monotonicity.parquet, emergence.parquet, plots (PNG and SVG) and the report (report.html,
report.md).

I/O happens here and in analysis.tables.io only; the analyses are analysis.loss.run and analysis.emergence.run
(the same orchestrators the command line uses), the report's sections analysis.report.sections and, for the recipe
(sweep.json, calibration.json and the calibration's runs), analysis.report.recipe.
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
from analysis.tables.io import join, read_json, write_bytes
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


def _write(sweep_dir: str, sections: list[Section], images: dict[str, bytes], loss: LossAnalysis,
           emergence: EmergenceResult | None) -> dict[str, bytes]:
    out = join(sweep_dir, "analysis")
    _write_parquet(join(out, "fits.parquet"), fits_table(loss, emergence))
    if loss.monotonicity is not None:
        _write_parquet(join(out, "monotonicity.parquet"), monotonicity_table(loss.monotonicity))
    if emergence is not None:
        _write_parquet(join(out, "emergence.parquet"), emergence.table)
    for name, payload in images.items():
        write_bytes(join(out, "plots", name), payload)
    title = f"Scaling sweep report: {sweep_dir.rstrip('/').rsplit('/', 1)[-1]}"
    png = {name: payload for name, payload in images.items() if name.endswith(".png")}
    write_bytes(join(out, "report.md"), markdown(title, sections).encode())
    write_bytes(join(out, "report.html"), html_page(title, sections, png).encode())
    return png


def _recipe(sweep_dir: str, runs: pl.DataFrame) -> RecipeSummary:
    """The grid's recipe from sweep.json, calibration.json and the calibration's runs (never the loss fit's)."""
    return summarize(inputs.manifest(sweep_dir), read_json(join(sweep_dir, inputs.CALIBRATION)), runs,
                     load_calibration_runs(sweep_dir))


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


def analyze_sweep(sweep_dir: str, console=None, all_runs: bool = False, options: LossOptions | None = None,
                  emergence_boot: int = N_BOOT, only_if_changed: bool = False) -> dict[str, Any]:
    """Fit and report one sweep; writes <sweep>/analysis/ and returns the results.

    only_if_changed: do nothing when <sweep>/analysis/ was made from exactly these inputs (the runs'
    tables and status files, the settings, the analysis code: analysis.tables.inputs); returns {"skipped": True}.
    """
    say = console.print if console is not None else print
    started = time.perf_counter()
    analysis_settings = inputs.settings(all_runs, options, None if emergence_boot == N_BOOT else emergence_boot)
    options = options or LossOptions()
    started_from = inputs.fingerprint(sweep_dir, analysis_settings)
    if only_if_changed and inputs.recorded(sweep_dir) == started_from:
        say(f"analysis up to date: no run changed since {join(sweep_dir, 'analysis')}/ was written")
        return {"out": join(sweep_dir, "analysis"), "skipped": True}
    runs = load_runs(sweep_dir, all_runs=all_runs)
    done = runs.filter((pl.col("status") == "done") & pl.col("final_val_loss").is_not_null())
    evals = load_evals(sweep_dir, all_runs=all_runs)
    if "run_id" in evals.columns:  # evaluations of finished runs only (none when no run is done)
        evals = evals.filter(pl.col("run_id").is_in(done["run_id"].to_list()))
    flops = run_flops(done)
    loss = run_loss_analysis(done["n_params"], done["n_tokens"], done["final_val_loss"], flops, options=options,
                             runs=done)
    loss_seconds = time.perf_counter() - started
    emergence, skipped = _emergence(evals, emergence_boot, options)
    recipe = _recipe(sweep_dir, runs)
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
                            f"is at {100 * options.level:.0f}%. Rerun offline: python -m analysis {sweep_dir}"))
    png = _write(sweep_dir, sections, images, loss, emergence)
    inputs.record(sweep_dir, started_from, analysis_settings)  # last: the analysis is complete
    say(glance_line(recipe))
    _summary(say, loss, emergence, loss_seconds)
    if spent is not None and spent.n_branches:
        say(f"compute: {spent.flops_spent:.3g} FLOPs spent, {spent.flops_independent:.3g} for independent runs "
            f"({100 * spent.saved_fraction:.1f}% saved by {spent.n_branches} WSD branches)")
    written = ["report.html", "report.md", "fits.parquet", "monotonicity.parquet"]
    written += ["emergence.parquet"] * (emergence is not None)
    written += [f"plots/ ({len(png)} figures, PNG and SVG)"] * bool(png)
    if done.is_empty():
        say(f"no finished runs in {sweep_dir} ({runs.height} runs, none done): the report only lists them")
    seconds = time.perf_counter() - started
    say(f"analysis written to {join(sweep_dir, 'analysis')}/ ({', '.join(written)}) in {seconds:.1f} s")
    return {"loss": loss, "emergence": emergence, "out": join(sweep_dir, "analysis"), "seconds": seconds,
            "skipped": False}


def _write_parquet(uri: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    write_bytes(uri, buffer.getvalue())
