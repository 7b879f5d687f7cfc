"""Figures for the report. Each function takes data and fits and returns a matplotlib Figure."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis.emergence import SigmoidFit  # noqa: E402
from analysis.plots_loss import loss_vs_compute  # noqa: E402, F401  (loss-side figures live there)


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


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
