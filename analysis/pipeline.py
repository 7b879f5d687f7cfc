"""The analysis of one sweep directory: load tables, fit, write fits.parquet, plots and the report."""

from __future__ import annotations

import io
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl

from analysis.chinchilla import LossLawFit, fit_loss_law
from analysis.emergence import SigmoidFit, fit_sigmoid
from analysis.io import join, write_bytes
from analysis.load import load_evals, load_runs
from analysis.plots import emergence_grid, loss_vs_compute, to_png
from analysis.report import Section, html_page, markdown


def emergence_points(evals: pl.DataFrame) -> pl.DataFrame:
    """Per task x metric x size: the value of the best-trained model (largest budget), seeds averaged."""
    if evals.is_empty():
        return evals
    largest = evals.group_by("n_params").agg(pl.col("n_tokens").max().alias("max_tokens"))
    return (evals.join(largest, on="n_params").filter(pl.col("n_tokens") == pl.col("max_tokens"))
            .group_by("task", "metric", "metric_kind", "n_params")
            .agg(pl.col("value").mean(), pl.col("chance").first(), pl.col("n_samples").sum(), pl.len().alias("n_seeds"))
            .sort("task", "metric", "n_params"))


def fit_emergence(points: pl.DataFrame) -> dict[tuple[str, str], SigmoidFit | str]:
    """A sigmoid per (task, metric); a string says why there is none."""
    fits: dict[tuple[str, str], SigmoidFit | str] = {}
    for (task, metric), group in points.group_by("task", "metric", maintain_order=True):
        x = np.log(group["n_params"].to_numpy().astype(float))
        y = group["value"].to_numpy().astype(float)
        if len(np.unique(x)) < 3:
            fits[(task, metric)] = f"not enough model sizes ({len(np.unique(x))}; need 3)"
            continue
        accuracy_like = bool(np.all((y >= 0) & (y <= 1)))
        chance = group["chance"][0]
        floor = float(chance) if accuracy_like and chance is not None and math.isfinite(chance) else None
        try:
            fits[(task, metric)] = fit_sigmoid(x, y, floor=floor if floor is not None and floor <= y.min() + 0.05
                                               else None, y_range=(0.0, 1.0) if accuracy_like else None)
        except ValueError as exc:
            fits[(task, metric)] = str(exc)
    return fits


def fit_rows(loss_fit: LossLawFit | None, emergence: dict) -> list[dict[str, Any]]:
    """fits.parquet: one row per fitted quantity."""
    rows = []
    if loss_fit is not None:
        for name, value in {**loss_fit.params(), "objective": loss_fit.objective}.items():
            rows.append({"analysis": "loss_law", "task": None, "metric": None, "quantity": name,
                         "estimate": value, "n_points": loss_fit.n_points, "converged": loss_fit.converged})
    for (task, metric), fit in emergence.items():
        if isinstance(fit, str):
            continue
        for name in ("n_c", "k", "floor", "ceil", "r2"):
            rows.append({"analysis": "sigmoid", "task": task, "metric": metric, "quantity": name,
                         "estimate": float(getattr(fit, name)), "n_points": fit.n_points, "converged": fit.converged})
    return rows


def analyze_sweep(sweep_dir: str, console=None, all_runs: bool = False) -> dict[str, Any]:
    """Fit and report one sweep; returns the loss-law fit and emergence fits. Writes <sweep>/analysis/."""
    say = console.print if console is not None else print
    runs = load_runs(sweep_dir, all_runs=all_runs)
    done = runs.filter((pl.col("status") == "done") & pl.col("final_val_loss").is_not_null())
    evals = load_evals(sweep_dir, all_runs=all_runs)
    out = join(sweep_dir, "analysis")
    sections: list[Section] = []
    images: dict[str, bytes] = {}

    loss_fit = None
    if done.height >= 5:
        loss_fit = fit_loss_law(done["n_params"], done["n_tokens"], done["final_val_loss"])
        text = (f"Fitted on {loss_fit.n_points} runs (N = all parameters, D = tokens trained, L = final validation "
                f"loss); Huber delta {loss_fit.huber_delta}, L-BFGS-B from the {loss_fit.n_starts} best of "
                f"Hoffmann et al.'s init grid; converged: {loss_fit.converged}.")
        table = [{"E": loss_fit.E, "A": loss_fit.A, "B": loss_fit.B, "alpha": loss_fit.alpha, "beta": loss_fit.beta,
                  "a = beta/(alpha+beta)": loss_fit.beta / (loss_fit.alpha + loss_fit.beta),
                  "objective": loss_fit.objective}]
    else:
        text, table = f"Not fitted: {done.height} finished runs, the law needs at least 5.", None
    images["loss_vs_compute.png"] = to_png(loss_vs_compute(done, loss_fit)) if done.height else b""
    sections.append(Section("Loss law L(N, D) = E + A/N^alpha + B/D^beta", text, table,
                            ["loss_vs_compute.png"] if done.height else []))

    points = emergence_points(evals)
    emergence = fit_emergence(points) if not points.is_empty() else {}
    verdict_rows = []
    for (task, metric), fit in emergence.items():
        if isinstance(fit, str):
            verdict_rows.append({"task": task, "metric": metric, "N_c": None, "k": None, "R2": None, "note": fit})
        else:
            verdict_rows.append({"task": task, "metric": metric, "N_c": fit.n_c, "k": fit.k, "R2": fit.r2,
                                 "note": "threshold beyond the largest model" if fit.x_c > float(
                                     np.log(points["n_params"].max())) else ""})
    if not points.is_empty():
        good = {key: f for key, f in emergence.items() if not isinstance(f, str)}
        images["emergence.png"] = to_png(emergence_grid(points, good))
    sections.append(Section("Emergence: sigmoid in log N per task and metric",
                            "Each size's best-trained run (largest token budget), seeds averaged. Floor pinned at "
                            "chance where the task records one.", verdict_rows or None,
                            ["emergence.png"] if "emergence.png" in images else []))
    sections.append(Section("Runs", "", [
        {k: r[k] for k in ("run_id", "status", "n_params", "n_tokens", "final_val_loss", "wall_seconds")}
        for r in runs.sort("n_params", "n_tokens").iter_rows(named=True)]))

    rows = fit_rows(loss_fit, emergence)
    buffer = io.BytesIO()
    schema = {"analysis": pl.String, "task": pl.String, "metric": pl.String, "quantity": pl.String,
              "estimate": pl.Float64, "n_points": pl.Int64, "converged": pl.Boolean}
    pl.DataFrame(rows, schema=schema).write_parquet(buffer)
    write_bytes(join(out, "fits.parquet"), buffer.getvalue())
    for name, payload in images.items():
        if payload:
            write_bytes(join(out, "plots", name), payload)
    title = f"Scaling sweep report: {sweep_dir.rstrip('/').rsplit('/', 1)[-1]}"
    write_bytes(join(out, "report.md"), markdown(title, sections).encode())
    write_bytes(join(out, "report.html"), html_page(title, sections, images).encode())
    if loss_fit is not None:
        say(f"loss law: E={loss_fit.E:.4f} A={loss_fit.A:.4g} alpha={loss_fit.alpha:.3f} "
            f"B={loss_fit.B:.4g} beta={loss_fit.beta:.3f} ({loss_fit.n_points} runs)")
    say(f"analysis written to {out}/ (report.html, report.md, fits.parquet, plots/)")
    return {"loss_law": asdict(loss_fit) if loss_fit else None, "emergence": emergence, "out": out}
