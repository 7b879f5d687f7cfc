"""The sections of a sweep's report, built from the loss and emergence results (analysis.report.page renders them).

What a section says about a verdict comes from the verdict (analysis.emergence.rule.Verdict); what it
says about the loss law comes from the loss analysis's diagnosis (analysis.loss.diagnosis): where the data
do not pin the law, no law, frontier or backtest number is headlined, and one line says why.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis.emergence.plots import emergence_figure
from analysis.emergence.rule import Verdict
from analysis.emergence.run import EmergenceResult
from analysis.loss.monotonicity import Kind, si
from analysis.loss.plots import backtest_errors, isoflop_profiles, loss_vs_compute, residuals
from analysis.loss.run import LossAnalysis
from analysis.plots import add_figure
from analysis.report.compute import ComputeSummary, compute_text
from analysis.report.page import Section

LOSS_TITLE = "Loss law L(N, D) = E + A/N^alpha + B/D^beta"
EMERGENCE_COLUMNS = ("metric", "verdict", "n_sizes", "flags", "threshold N_c", "k", "width_frac", "effect",
                     "best_model", "r2_sigmoid", "delta_ic", "reason")


def _ci(ci, fmt: str = "{:.3g}") -> str:
    if ci is None or not all(np.isfinite(ci)):
        return ""
    return "[" + fmt.format(ci[0]) + ", " + fmt.format(ci[1]) + "]"


def _num(value, fmt: str = "{:.3g}") -> str:
    return "" if value is None or not np.isfinite(value) else fmt.format(value)


def _pct(level: float) -> str:
    return f"{100 * level:.0f}%"


def _pick(by_metric: dict[str, dict], kind: str, preferred: tuple[str, ...]) -> dict | None:
    """The row to show for a metric kind: a preferred metric when measured, else any of that kind."""
    for name in preferred:
        if name in by_metric:
            return by_metric[name]
    return next((r for r in by_metric.values() if r["metric_kind"] == kind), None)


def _glance_rows(emergence: EmergenceResult) -> list[dict]:
    rows = []
    threshold_header = f"threshold N_c ({_pct(emergence.level)})"
    for art in emergence.artifacts.iter_rows(named=True):
        task_rows = emergence.table.filter(pl.col("task") == art["task"]).iter_rows(named=True)
        by_metric = {r["metric"]: r for r in task_rows}
        disc = _pick(by_metric, "discontinuous", ("exact_match", "mc_accuracy"))
        cont = _pick(by_metric, "continuous", ("token_accuracy", "edit_similarity", "target_logprob"))
        if disc is None:  # e.g. heldout/val_loss: nothing to call emergent; its section still shows it
            continue
        located = Verdict(disc["verdict"]).has_threshold
        rows.append({
            "task": art["task"], "verdict": art["artifact_verdict"],
            "discontinuous": f"{disc['metric']}: {disc['verdict']}", "sizes": disc["n_sizes"],
            threshold_header: _threshold_text(disc) if located else "",
            "flags": disc["flags"], "continuous": f"{cont['metric']}: {cont['verdict']}" if cont else "",
            "EM ≈ p^L (R²)": _num(art["pl_r2"], "{:.2f}") if located else "", "why": art["artifact_reason"],
        })
    return rows


def _threshold_text(row: dict) -> str:
    """N_c with its interval; a bracketed threshold as the two sizes it lies between, with nothing fitted."""
    if row.get("bracketed"):
        return f"between {_num(row['n_c_lo'])} and {_num(row['n_c_hi'])} (bracketed)"
    return _num(row["n_c"]) + " " + _ci((row["n_c_lo"], row["n_c_hi"]))


def _loss_lines(loss: LossAnalysis) -> list[str]:
    """The law, its frontier and backtest when the data pin them; else that they do not, and why: each cause
    with the numbers it rests on and its next step. Findings that block nothing follow as notes."""
    diagnosis = loss.diagnosis()
    notes = [f"- {f.text()}" for f in diagnosis.findings]
    if loss.fit is None:
        return ["Loss law not fitted: " + loss.skipped.get("loss_law", ""), *notes]
    if not diagnosis.headlined:
        return [f"Loss law: not headlined; {diagnosis.reason()}. Each cause, the numbers it rests on and the next "
                f"step (the estimates and their intervals: section '{LOSS_TITLE}' and fits.parquet):", *notes]
    f, b = loss.fit, loss.bootstrap
    ci = (lambda name: _ci(b.ci.get(name))) if b else (lambda name: "")
    lines = [f"Loss law: alpha = {f.alpha:.3f} {ci('alpha')}, beta = {f.beta:.3f} {ci('beta')}, E = {f.E:.3f} "
             f"{ci('E')} ({f.n_points} runs" + (f", {_pct(b.level)} intervals)." if b else ", no bootstrap).")]
    if loss.frontier is not None:
        fr = loss.frontier
        lines.append(f"Compute-optimal: N* ∝ C^{fr.a:.3f} {_ci(fr.a_ci)}, D* ∝ C^{fr.b:.3f} {_ci(fr.b_ci)}.")
    if loss.backtest is not None:
        lines.append("Backtest: " + loss.backtest.statement)
    return lines + notes


def glance_section(loss: LossAnalysis, emergence: EmergenceResult | None, recipe_line: str = "") -> Section:
    """The first thing a reader sees: per task the verdicts (with the sizes each stands on), the recipe the grid
    was trained with (analysis.report.recipe.glance_line), then the loss law only when its fit can carry a headline."""
    rows = _glance_rows(emergence) if emergence is not None else []
    legend = ("Task verdicts: `emergent` on the discontinuous metric with continuous metrics rising smoothly is "
              "metric-induced (Schaeffer et al. 2023); continuous metrics jumping too is genuine. 'sizes': the "
              "model sizes the verdict stands on. A threshold 'between A and B (bracketed)' jumps between two "
              "neighbouring sizes with none on its rise: it lies somewhere between them, and nothing is fitted to "
              "say where.\n") if rows else ""
    text = legend + "\n".join(([recipe_line] if recipe_line else []) + _loss_lines(loss))
    return Section("At a glance", text, rows or None)


def _not_given(loss: LossAnalysis, analysis: str) -> str:
    """One line in place of numbers the data do not pin."""
    return (f"Not given: {loss.diagnosis().reason()} (At a glance has each cause and its next step). The estimates "
            f"and their intervals are in fits.parquet (analysis '{analysis}').")


def _law_section(loss: LossAnalysis, runs: pl.DataFrame, images: dict[str, bytes]) -> Section:
    fit, boot = loss.fit, loss.bootstrap
    reason = "" if loss.headlined else loss.diagnosis().reason()
    figures = [add_figure(images, "loss_vs_compute", loss_vs_compute(runs, fit, not_pinned=reason)),
               add_figure(images, "residuals", residuals(runs, fit))]
    header = f"{_pct(boot.level)} interval" if boot else "interval"
    table = [{"quantity": name, "estimate": value, header: _ci(boot.ci.get(name)) if boot else ""}
             for name, value in fit.params().items()]
    caveats = loss.caveats()
    text = (f"Approach 3 (Hoffmann et al. 2022, as replicated by Besiroglu et al. 2024): log-space fit with Huber "
            f"loss (delta {fit.huber_delta:g}) by L-BFGS-B from the {fit.n_starts} best starts of the init grid; "
            f"{fit.n_points} runs over {loss.n_sizes} sizes and {loss.n_budgets} token budgets (N = {fit.n_column}, "
            f"D = tokens trained, L = final validation loss); objective {fit.objective:.3g}; converged: "
            f"{fit.converged}." + (f" {len(fit.dropped_outliers)} outliers dropped (> {fit.outlier_sd} robust SDs)."
                                   if fit.dropped_outliers else ""))
    if boot:
        text += (f"\nIntervals: percentile bootstrap over runs, {boot.n_resamples} resamples "
                 f"({100 * boot.converged_fraction:.0f}% converged), {boot.seconds:.1f} s on {boot.n_workers} "
                 f"process(es).")
    if reason:
        text += (f"\nNot headlined: {reason}; the figure draws the fitted curves, not a law."
                 + (f" Caveats: {'; '.join(caveats)}." if caveats else ""))
    return Section(LOSS_TITLE, text, table, figures)


def _frontier_section(loss: LossAnalysis) -> Section:
    title = "Compute-optimal frontier"
    if not loss.headlined:
        return Section(title, _not_given(loss, "frontier"))
    fr = loss.frontier
    rows = [{"C (FLOPs)": p.flops, "N*": p.n_opt, "N* interval": _ci(p.n_opt_ci), "D*": p.d_opt,
             "D* interval": _ci(p.d_opt_ci), "D*/N*": p.tokens_per_param,
             "D*/N* interval": _ci(p.tokens_per_param_ci), "loss at optimum": p.loss_opt} for p in fr.points]
    return Section(title,
                   f"N*(C) ∝ C^a with a = beta/(alpha+beta) = {fr.a:.3f} {_ci(fr.a_ci)}; D*(C) ∝ C^b with b = "
                   f"alpha/(alpha+beta) = {fr.b:.3f} {_ci(fr.b_ci)} (C = 6ND). Budgets: the sweep's smallest and "
                   "largest compute, and 10x and 100x beyond it (extrapolation).", rows)


def monotonicity_section(loss: LossAnalysis) -> Section:
    """Where loss fails to fall with N at fixed D or with D at fixed N, the runs, and what differs between them."""
    mono = loss.monotonicity
    title = "Monotonicity: loss falls with N and with D"
    if mono is None or not mono.points:
        return Section(title, "No runs to check.")
    text = f"{mono.n_pairs} neighbouring pairs of points compared ({mono.rule()}). "
    if not mono.reversals:
        return Section(title, text + "Loss falls with N at every D and with D at every N.")
    counts = ", ".join(f"{len(mono.of_kind(k))} {k.value}" for k in Kind if mono.of_kind(k))
    text += (f"{len(mono.reversals)} reversals ({counts}): recipe, beyond the noise where the runs were trained "
             "differently; noise, within it (or one seed and the same recipe); unexplained, beyond the seeds' "
             "spread with the same recipe. lr follows compute and n_steps follows D under any rule, so neither "
             f"alone makes a reversal the recipe's. Recipe columns in the runs table: "
             f"{', '.join(mono.recipe_columns) or 'none'}.")
    rows = [{"kind": r.kind.value, "where": r.where(), "from": r.smaller.name(), "to": r.larger.name(),
             "N": f"{si(r.smaller.n_params)} -> {si(r.larger.n_params)}",
             "D": f"{si(r.smaller.n_tokens)} -> {si(r.larger.n_tokens)}",
             "loss": f"{r.smaller.loss:.4f} -> {r.larger.loss:.4f}", "rise": f"{100 * r.relative_rise:+.1f}%",
             "tolerance": f"{100 * r.tolerance / r.smaller.loss:.1f}%", "changed": r.changed(),
             "run_ids": f"{', '.join(r.smaller.run_ids)} -> {', '.join(r.larger.run_ids)}"} for r in mono.reversals]
    return Section(title, text, rows)


def _isoflop_section(loss: LossAnalysis, runs: pl.DataFrame, flops: np.ndarray, images: dict[str, bytes]) -> Section:
    iso, problem = loss.isoflop, loss.isoflop_problem()
    if iso is None:
        return Section("Approach 2: isoFLOP profiles",
                       "Not fitted: " + loss.skipped.get("isoflop", "not asked for") + " (an isoFLOP grid sets "
                       "D = C/(6N) per size; see grid=chinchilla).")
    figure = add_figure(images, "isoflop", isoflop_profiles(runs["n_params"].to_numpy(),
                                                             runs["final_val_loss"].to_numpy(), flops, iso,
                                                             loss.frontier if loss.headlined else None,
                                                             pinned=problem is None))
    minima = [{"C (FLOPs)": m.flops, "N_opt": m.n_opt, "D_opt": m.d_opt, "loss_min": m.loss_min,
               "sizes": m.n_sizes, "inside sampled N": m.inside, "used": m.used} for m in iso.minima]
    if problem is not None:
        text = f"Not given: {problem}; the exponent is in fits.parquet (analysis 'isoflop')."
    else:
        text = (f"a = {iso.a:.3f} {_ci(iso.a_ci)}, b = {iso.b:.3f} {_ci(iso.b_ci)} ({_pct(iso.level)}, "
                f"{iso.ci_method}). ")
        text += (loss.agreement.statement() if loss.agreement and loss.headlined
                 else "No comparison with the loss law: the data do not pin it." if loss.agreement else "")
    if iso.skipped:
        text += f"\n{len(iso.skipped)} budgets skipped (fewer than 3 sizes or no minimum)."
    return Section("Approach 2: isoFLOP profiles", text, minima, [figure])


def _backtest_section(loss: LossAnalysis, images: dict[str, bytes]) -> Section:
    bt = loss.backtest
    if bt is None:
        return Section("Backtest on the largest model size", "Not run: " + loss.skipped.get("backtest", ""))
    if not loss.headlined:
        return Section("Backtest on the largest model size", _not_given(loss, "backtest"))
    figure = add_figure(images, "backtest", backtest_errors(bt))
    return Section("Backtest on the largest model size", bt.statement, [
        {"N": p.n_params, "D": p.n_tokens, "loss": p.loss, "predicted": p.predicted,
         "relative error": p.relative_error} for p in bt.points], [figure])


def loss_sections(loss: LossAnalysis, runs: pl.DataFrame, flops: np.ndarray, images: dict[str, bytes]
                  ) -> list[Section]:
    """The loss law, its frontier, Approach 2 and the backtest; `flops` the runs' training compute."""
    if loss.fit is None:
        figures = [add_figure(images, "loss_vs_compute", loss_vs_compute(runs, None))] if runs.height else []
        return [Section(LOSS_TITLE, "Not fitted: " + loss.skipped.get("loss_law", ""), None, figures),
                monotonicity_section(loss)]
    return [_law_section(loss, runs, images), monotonicity_section(loss), _frontier_section(loss),
            _isoflop_section(loss, runs, flops, images), _backtest_section(loss, images)]


def emergence_sections(emergence: EmergenceResult | None, skipped: str, images: dict[str, bytes]) -> list[Section]:
    if emergence is None:
        return [Section("Emergence", skipped)]
    sections = []
    for art in emergence.artifacts.iter_rows(named=True):
        task = art["task"]
        rows = [_emergence_row(r) for r in emergence.table.filter(pl.col("task") == task).iter_rows(named=True)]
        figure = add_figure(images, f"emergence_{_slug(task)}", emergence_figure(emergence, tasks=[task]))
        pl_text = ""
        if art["pl_r2"] is not None and np.isfinite(art["pl_r2"]):
            pl_text = (f"\nEM ≈ p^L with p = {art['pl_token_metric']}, L = {art['pl_L']:.3g} "
                       f"({art['pl_L_source']}): R² = {art['pl_r2']:.3f}; best-fitting L = {art['pl_L_fit']:.3g} "
                       f"(R² = {art['pl_r2_fit']:.3f}).")
        sections.append(Section(
            f"Emergence: {task} — {art['artifact_verdict']}",
            f"{art['artifact_reason']}{pl_text}\nThreshold N_c in parameters with its {_pct(emergence.level)} "
            "interval (bootstrap, widened to the two sizes around N_c when the sizes on the rise cannot place it: "
            "flag rise-unresolved), given only where the verdict locates one; 'between A and B (bracketed)': a "
            "jump between two neighbouring sizes with none on its rise, no N_c, k or R² fitted; n_sizes = the "
            "sizes the verdict stands on; width_frac = the 10-90% rise as a fraction of the observed log-N range; "
            "effect = the rise as a share of the metric's range; delta_ic = the sigmoid's information-criterion "
            "advantage over the best smooth model.", rows, [figure]))
    return sections


def _emergence_row(r: dict) -> dict:
    row = {c: r.get(c) for c in EMERGENCE_COLUMNS}
    row["threshold N_c"] = _threshold_text(r) if Verdict(r["verdict"]).has_threshold else ""
    return row


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def compute_section(spent: ComputeSummary) -> Section:
    """Which schedule produced each point, and the compute the sweep spent against independent runs."""
    return Section("Schedules and compute", compute_text(spent), [
        {"run_id": r["run_id"], "N": r["n_params"], "D": r["n_tokens"], "schedule": r["schedule"],
         "role": r["role"], "FLOPs (independent)": _num(r["flops"]), "FLOPs spent": _num(r["flops_spent"]),
         "final_val_loss": r["final_val_loss"]} for r in spent.points.iter_rows(named=True)])
