"""The analysis of one sweep directory: load its tables, run the loss and emergence analyses, write
fits.parquet, emergence.parquet, plots (PNG and SVG) and the report (report.html, report.md).

I/O happens here and in analysis.io only; the analyses themselves are pure functions
(analysis.loss_analysis, analysis.emergence_analysis) and the report is built from their results.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import polars as pl

from analysis import inputs
from analysis.compute import compute_summary, compute_text
from analysis.emergence_analysis import N_BOOT, EmergenceInputError, EmergenceResult, run_emergence
from analysis.fits_table import fits_table
from analysis.frontier import FLOPS_PER_PARAM_TOKEN
from analysis.io import join, write_bytes
from analysis.load import load_evals, load_runs
from analysis.loss_analysis import LossAnalysis, LossOptions, run_loss_analysis
from analysis.plots import to_png, to_svg
from analysis.plots_emergence import emergence_figure
from analysis.plots_loss import backtest_errors, isoflop_profiles, loss_vs_compute, residuals
from analysis.report import Section, html_page, markdown


def _ci(ci, fmt: str = "{:.3g}") -> str:
    if ci is None or not all(np.isfinite(ci)):
        return ""
    return "[" + fmt.format(ci[0]) + ", " + fmt.format(ci[1]) + "]"


def _num(value, fmt: str = "{:.3g}") -> str:
    return "" if value is None or not np.isfinite(value) else fmt.format(value)


# ---- the sections of the report -------------------------------------------------------------------------------

def glance_section(loss: LossAnalysis, emergence: EmergenceResult | None) -> Section:
    """The first thing a reader sees: per task the verdicts, then one line on the loss law."""
    rows = []
    if emergence is not None:
        table = emergence.table
        threshold_header = f"threshold N_c ({100 * emergence.ci_level:.0f}%)"
        for art in emergence.artifacts.iter_rows(named=True):
            task_rows = table.filter(pl.col("task") == art["task"])
            by_metric = {r["metric"]: r for r in task_rows.iter_rows(named=True)}
            disc = _pick(by_metric, "discontinuous", ("exact_match", "mc_accuracy"))
            cont = _pick(by_metric, "continuous", ("token_accuracy", "edit_similarity", "target_logprob"))
            if disc is None:  # e.g. heldout/val_loss: nothing to call emergent; its section still shows it
                continue
            emergent = disc["verdict"] == "emergent"
            rows.append({
                "task": art["task"],
                "verdict": art["artifact_verdict"],
                "discontinuous": f"{disc['metric']}: {disc['verdict']}",
                threshold_header: _num(disc["n_c"]) + " " + _ci((disc["n_c_lo"], disc["n_c_hi"])) if emergent else "",
                "continuous": f"{cont['metric']}: {cont['verdict']}" if cont else "",
                "EM ≈ p^L (R²)": _num(art["pl_r2"], "{:.2f}") if emergent else "",
                "why": art["artifact_reason"],
            })
    lines = []
    if loss.fit is not None:
        f, b = loss.fit, loss.bootstrap
        lines.append(f"Loss law: alpha = {f.alpha:.3f} {_ci(b.ci.get('alpha') if b else None)}, beta = {f.beta:.3f} "
                     f"{_ci(b.ci.get('beta') if b else None)}, E = {f.E:.3f} {_ci(b.ci.get('E') if b else None)} "
                     f"({f.n_points} runs, {int(100 * b.level) if b else ''}% intervals).")
        if loss.frontier is not None:
            fr = loss.frontier
            lines.append(f"Compute-optimal: N* ∝ C^{fr.a:.3f} {_ci(fr.a_ci)}, D* ∝ C^{fr.b:.3f} {_ci(fr.b_ci)}.")
        if loss.backtest is not None:
            lines.append("Backtest: " + loss.backtest.statement)
    else:
        lines.append("Loss law not fitted: " + loss.skipped.get("loss_law", ""))
    text = ("Task verdicts: `emergent` on the discontinuous metric with continuous metrics rising smoothly is "
            "metric-induced (Schaeffer et al. 2023); continuous metrics jumping too is genuine.\n" + "\n".join(lines))
    return Section("At a glance", text, rows or None)


def _pick(by_metric: dict[str, dict], kind: str, preferred: tuple[str, ...]) -> dict | None:
    """The row to show for a metric kind: a preferred metric when measured, else any of that kind."""
    for name in preferred:
        if name in by_metric:
            return by_metric[name]
    return next((r for r in by_metric.values() if r["metric_kind"] == kind), None)


def loss_sections(loss: LossAnalysis, runs: pl.DataFrame, images: dict[str, bytes]) -> list[Section]:
    fit, boot = loss.fit, loss.bootstrap
    if fit is None:
        if runs.height:
            _add_figure(images, "loss_vs_compute", loss_vs_compute(runs, None))
        return [Section("Loss law L(N, D) = E + A/N^alpha + B/D^beta", "Not fitted: " + loss.skipped["loss_law"],
                        None, ["loss_vs_compute.png"] if runs.height else [])]
    _add_figure(images, "loss_vs_compute", loss_vs_compute(runs, fit))
    _add_figure(images, "residuals", residuals(runs, fit))
    level = f"{int(round(100 * boot.level))}%"
    table = [{"quantity": name, "estimate": value, f"{level} interval": _ci(boot.ci.get(name))}
             for name, value in fit.params().items()]
    text = (f"Approach 3 (Hoffmann et al. 2022, as replicated by Besiroglu et al. 2024): log-space fit with Huber "
            f"loss (delta {fit.huber_delta:g}) by L-BFGS-B from the {fit.n_starts} best starts of the init grid; "
            f"{fit.n_points} runs (N = {fit.n_column}, D = tokens trained, L = final validation loss); "
            f"objective {fit.objective:.3g}; converged: {fit.converged}."
            + (f" {len(fit.dropped_outliers)} outliers dropped (> {fit.outlier_sd} robust SDs)."
               if fit.dropped_outliers else "")
            + f"\nIntervals: percentile bootstrap over runs, {boot.n_resamples} resamples "
              f"({100 * boot.converged_fraction:.0f}% converged), {boot.seconds:.1f} s on {boot.n_workers} "
              f"process(es).")
    sections = [Section("Loss law L(N, D) = E + A/N^alpha + B/D^beta", text, table,
                        ["loss_vs_compute.png", "residuals.png"])]
    fr = loss.frontier
    frontier_rows = [{"C (FLOPs)": p.flops, "N*": p.n_opt, "N* interval": _ci(p.n_opt_ci), "D*": p.d_opt,
                      "D* interval": _ci(p.d_opt_ci), "D*/N*": p.tokens_per_param,
                      "D*/N* interval": _ci(p.tokens_per_param_ci), "loss at optimum": p.loss_opt}
                     for p in fr.points]
    sections.append(Section(
        "Compute-optimal frontier",
        f"N*(C) ∝ C^a with a = beta/(alpha+beta) = {fr.a:.3f} {_ci(fr.a_ci)}; D*(C) ∝ C^b with b = "
        f"alpha/(alpha+beta) = {fr.b:.3f} {_ci(fr.b_ci)} (C = 6ND). Budgets: the sweep's smallest and largest "
        "compute, and 10x and 100x beyond it (extrapolation).", frontier_rows))
    if loss.isoflop is not None:
        iso = loss.isoflop
        n, d = runs["n_params"].to_numpy(), runs["n_tokens"].to_numpy()
        _add_figure(images, "isoflop", isoflop_profiles(n, runs["final_val_loss"].to_numpy(),
                                                        FLOPS_PER_PARAM_TOKEN * n * d, iso, fr))
        minima = [{"C (FLOPs)": m.flops, "N_opt": m.n_opt, "D_opt": m.d_opt, "loss_min": m.loss_min,
                   "sizes": m.n_sizes, "inside sampled N": m.inside, "used": m.used} for m in iso.minima]
        sections.append(Section(
            "Approach 2: isoFLOP profiles",
            f"a = {iso.a:.3f} {_ci(iso.a_ci)}, b = {iso.b:.3f} {_ci(iso.b_ci)} ({iso.ci_method}). "
            + (loss.agreement.statement() if loss.agreement else "")
            + (f"\n{len(iso.skipped)} budgets skipped (fewer than 3 sizes or no minimum)." if iso.skipped else ""),
            minima, ["isoflop.png"]))
    else:
        sections.append(Section("Approach 2: isoFLOP profiles",
                                "Not fitted: this grid has no compute budget with runs of 3 or more sizes "
                                "(an isoFLOP grid sets D = C/(6N) per size; see grid=chinchilla)."))
    if loss.backtest is not None:
        bt = loss.backtest
        _add_figure(images, "backtest", backtest_errors(bt))
        sections.append(Section("Backtest on the largest model size", bt.statement, [
            {"N": p.n_params, "D": p.n_tokens, "loss": p.loss, "predicted": p.predicted,
             "relative error": p.relative_error} for p in bt.points], ["backtest.png"]))
    else:
        sections.append(Section("Backtest on the largest model size", "Not run: " + loss.skipped.get("backtest", "")))
    return sections


EMERGENCE_COLUMNS = ("metric", "verdict", "n_c", "n_c_lo", "n_c_hi", "k", "width_frac", "best_model", "r2_sigmoid",
                     "delta_ic", "reason")


def emergence_sections(emergence: EmergenceResult | None, skipped: str, images: dict[str, bytes]) -> list[Section]:
    if emergence is None:
        return [Section("Emergence", skipped)]
    sections = []
    for art in emergence.artifacts.iter_rows(named=True):
        task = art["task"]
        rows = [{c: r[c] for c in EMERGENCE_COLUMNS}
                for r in emergence.table.filter(pl.col("task") == task).iter_rows(named=True)]
        name = f"emergence_{_slug(task)}"
        _add_figure(images, name, emergence_figure(emergence, tasks=[task]))
        pl_text = ""
        if art["pl_r2"] is not None and np.isfinite(art["pl_r2"]):
            pl_text = (f"\nEM ≈ p^L with p = {art['pl_token_metric']}, L = {art['pl_L']:.3g} "
                       f"({art['pl_L_source']}): R² = {art['pl_r2']:.3f}; best-fitting L = {art['pl_L_fit']:.3g} "
                       f"(R² = {art['pl_r2_fit']:.3f}).")
        sections.append(Section(
            f"Emergence: {task} — {art['artifact_verdict']}",
            f"{art['artifact_reason']}{pl_text}\nThreshold N_c in parameters with its "
            f"{100 * emergence.ci_level:.0f}% bootstrap interval; "
            "width_frac = the 10-90% rise as a fraction of the observed log-N range; delta_ic = the sigmoid's "
            "information-criterion advantage over the best smooth model.", rows, [f"{name}.png"]))
    return sections


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def _add_figure(images: dict[str, bytes], name: str, fig) -> None:
    images[f"{name}.svg"] = to_svg(fig)
    images[f"{name}.png"] = to_png(fig)


# ---- the entry point ---------------------------------------------------------------------------------------

def analyze_sweep(sweep_dir: str, console=None, all_runs: bool = False, options: LossOptions | None = None,
                  emergence_boot: int = N_BOOT, only_if_changed: bool = False) -> dict[str, Any]:
    """Fit and report one sweep; writes <sweep>/analysis/ and returns the results.

    only_if_changed: do nothing when <sweep>/analysis/ was made from exactly these inputs (the runs'
    tables and status files, the settings, the analysis code: analysis.inputs); returns {"skipped": True}.
    """
    say = console.print if console is not None else print
    started = time.perf_counter()
    analysis_settings = inputs.settings(all_runs, options, None if emergence_boot == N_BOOT else emergence_boot)
    started_from = inputs.fingerprint(sweep_dir, analysis_settings)
    if only_if_changed and inputs.recorded(sweep_dir) == started_from:
        say(f"analysis up to date: no run changed since {join(sweep_dir, 'analysis')}/ was written")
        return {"out": join(sweep_dir, "analysis"), "skipped": True}
    runs = load_runs(sweep_dir, all_runs=all_runs)
    done = runs.filter((pl.col("status") == "done") & pl.col("final_val_loss").is_not_null())
    evals = load_evals(sweep_dir, all_runs=all_runs)
    if "run_id" in evals.columns:  # evaluations of finished runs only (none when no run is done)
        evals = evals.filter(pl.col("run_id").is_in(done["run_id"].to_list()))
    out = join(sweep_dir, "analysis")
    images: dict[str, bytes] = {}

    loss = run_loss_analysis(done["n_params"], done["n_tokens"], done["final_val_loss"], options=options)
    loss_seconds = time.perf_counter() - started
    emergence, skipped = None, ""
    if evals.is_empty():
        skipped = "No evaluations of finished runs in this sweep."
    else:
        try:
            emergence = run_emergence(evals, n_boot=emergence_boot, seed=loss.options.seed)
        except EmergenceInputError as exc:
            skipped = f"Not analysed: {exc}"
    sections = [glance_section(loss, emergence), *loss_sections(loss, done, images),
                *emergence_sections(emergence, skipped, images)]
    spent = compute_summary(done) if done.height else None
    if spent is not None:
        sections.append(Section("Schedules and compute", compute_text(spent), [
            {"run_id": r["run_id"], "N": r["n_params"], "D": r["n_tokens"], "schedule": r["schedule"],
             "role": r["role"], "FLOPs (independent)": _num(r["flops"]), "FLOPs spent": _num(r["flops_spent"]),
             "final_val_loss": r["final_val_loss"]} for r in spent.points.iter_rows(named=True)]))
    sections.append(Section("Runs", "", [
        {k: r.get(k) for k in ("run_id", "status", "n_params", "n_tokens", "final_val_loss", "wall_seconds")}
        for r in runs.sort("n_params", "n_tokens").iter_rows(named=True)]))
    seconds = time.perf_counter() - started
    sections.append(Section("How this report was made",
                            f"Loss analysis (fit, {loss.options.n_resamples} bootstrap resamples, isoFLOP, backtest) "
                            f"{loss_seconds:.1f} s; everything {seconds:.1f} s. Rerun offline: "
                            f"python -m analysis {sweep_dir}"))

    _write_parquet(join(out, "fits.parquet"), fits_table(loss, emergence))
    if emergence is not None:
        _write_parquet(join(out, "emergence.parquet"), emergence.table)
    for name, payload in images.items():
        write_bytes(join(out, "plots", name), payload)
    title = f"Scaling sweep report: {sweep_dir.rstrip('/').rsplit('/', 1)[-1]}"
    png = {name: payload for name, payload in images.items() if name.endswith(".png")}
    write_bytes(join(out, "report.md"), markdown(title, sections).encode())
    write_bytes(join(out, "report.html"), html_page(title, sections, png).encode())
    inputs.record(sweep_dir, started_from, analysis_settings)  # last: the analysis is complete
    if loss.fit is not None:
        f = loss.fit
        say(f"loss law: E={f.E:.4f} A={f.A:.4g} alpha={f.alpha:.3f} B={f.B:.4g} beta={f.beta:.3f} "
            f"({f.n_points} runs; fit + {loss.options.n_resamples} bootstrap resamples {loss_seconds:.1f} s)")
    if spent is not None and spent.n_branches:
        say(f"compute: {spent.flops_spent:.3g} FLOPs spent, {spent.flops_independent:.3g} for independent runs "
            f"({100 * spent.saved_fraction:.1f}% saved by {spent.n_branches} WSD branches)")
    if emergence is not None:
        for note in emergence.notes:
            say(f"note: {note}")
        counts = emergence.artifacts["artifact_verdict"].value_counts().sort("artifact_verdict")
        say("task verdicts: " + ", ".join(f"{r['artifact_verdict']} {r['count']}"
                                          for r in counts.iter_rows(named=True)))
    written = ["report.html", "report.md", "fits.parquet"] + ["emergence.parquet"] * (emergence is not None)
    written += [f"plots/ ({len(png)} figures, PNG and SVG)"] * bool(png)
    if done.is_empty():
        say(f"no finished runs in {sweep_dir} ({runs.height} runs, none done): the report only lists them")
    say(f"analysis written to {out}/ ({', '.join(written)}) in {seconds:.1f} s")
    return {"loss": loss, "emergence": emergence, "out": out, "seconds": seconds, "skipped": False}


def _write_parquet(uri: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    write_bytes(uri, buffer.getvalue())
