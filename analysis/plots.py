"""Figures for the report. Each function takes data and fits and returns a matplotlib Figure."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis.chinchilla import LossLawFit, compute_optimal  # noqa: E402
from analysis.emergence import SigmoidFit  # noqa: E402


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def loss_vs_compute(runs: pl.DataFrame, fit: LossLawFit | None, n_col: str = "n_params"):
    """Final validation loss against training FLOPs, one colour per model size, with the fitted law."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(runs[n_col].unique().to_list())
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for size, colour in zip(sizes, colours):
        sub = runs.filter(pl.col(n_col) == size).sort("n_tokens")
        c = 6.0 * sub[n_col].to_numpy() * sub["n_tokens"].to_numpy()
        ax.scatter(c, sub["final_val_loss"], color=colour, label=f"N={size:,.0f}", zorder=3)
        if fit is not None:
            d = np.geomspace(sub["n_tokens"].min() / 2, sub["n_tokens"].max() * 2, 50)
            ax.plot(6.0 * size * d, fit.predict(size, d), color=colour, alpha=0.7)
    if fit is not None:
        c_all = 6.0 * runs[n_col].to_numpy() * runs["n_tokens"].to_numpy()
        grid = np.geomspace(c_all.min() / 2, c_all.max() * 2, 60)
        n_opt, d_opt = compute_optimal(fit, grid)
        ax.plot(grid, fit.predict(n_opt, d_opt), "k--", label="compute-optimal frontier")
        ax.set_title(f"L = {fit.E:.3f} + {fit.A:.3g}/N^{fit.alpha:.3f} + {fit.B:.3g}/D^{fit.beta:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def emergence_grid(points: pl.DataFrame, fits: dict[tuple[str, str], SigmoidFit]):
    """Metric value against N, one panel per task, one line per metric, with fitted sigmoids."""
    tasks = sorted(points["task"].unique().to_list())
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        sub = points.filter(pl.col("task") == task)
        for metric in sorted(sub["metric"].unique().to_list()):
            m = sub.filter(pl.col("metric") == metric).sort("n_params")
            if m["value"].min() < 0 or m["value"].max() > 1:  # log-likelihoods: not on the accuracy axis
                continue
            (line,) = ax.plot(m["n_params"], m["value"], "o", label=metric)
            fit = fits.get((task, metric))
            if fit is not None:
                x = np.linspace(np.log(m["n_params"].min()) - 0.5, np.log(m["n_params"].max()) + 0.5, 100)
                ax.plot(np.exp(x), fit.predict(x), color=line.get_color(), alpha=0.7)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(task)
        ax.set_xlabel("parameters N")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
