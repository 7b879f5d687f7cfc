"""The figure of the report's recipe section: at each calibration point, final loss against peak lr, one line
per batch size, with the fitted optimum lr and the grid's own run there (analysis.report.recipe holds the summary it
draws from and the lookups of a point's runs)."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis.report.recipe import RecipeSummary, g, grid_run_at, runs_at  # noqa: E402


def calibration_figure(summary: RecipeSummary):
    """Per calibration point a panel: final loss against lr (log x), one line per batch size; the grid's lr at
    the batch it uses (solid) and its run's loss (star), the fitted optimum lr (dotted). None without runs."""
    points = [p for p in (summary.calibration or {}).get("points", [])
              if not runs_at(summary.calibration_runs, p["label"], p["flops"]).is_empty()]
    if not points:
        return None
    cols = min(4, len(points))
    rows = math.ceil(len(points) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    batches = sorted(set(summary.calibration_runs["batch_size"].drop_nulls().to_list()))
    colours = dict(zip(batches, plt.cm.viridis(np.linspace(0, 0.9, max(len(batches), 1)))))
    for ax, p in zip(axes.ravel(), points):
        _panel(ax, summary, p, colours)
    for ax in axes.ravel()[len(points):]:
        ax.set_visible(False)
    legend: dict[str, Any] = {}
    for ax in axes.ravel()[:len(points)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if "grid run" in legend:  # its marker in a panel may be the ^ of a loss above the panel
        legend["grid run"] = matplotlib.lines.Line2D([], [], marker="*", ms=11, color="black", ls="")
    batch_first = sorted(legend, key=lambda label: (not label.startswith("batch "), _batch_of(label)))
    fig.legend([legend[k] for k in batch_first], batch_first, loc="upper center", ncol=min(len(legend), 6),
               fontsize=8, bbox_to_anchor=(0.5, 1.0 + 0.06 / rows))
    fig.suptitle("Calibration: final val loss against peak lr, one line per batch (sequences)", y=1.0 + 0.14 / rows)
    fig.tight_layout()
    return fig


def _batch_of(label: str) -> int:
    return int(label.split()[1]) if label.startswith("batch ") else 0


def _panel(ax, summary: RecipeSummary, point: dict[str, Any], colours: dict) -> None:
    runs = runs_at(summary.calibration_runs, point["label"], point["flops"])
    ok = runs.filter((pl.col("status") == "done") & pl.col("final_val_loss").is_not_null()
                     & pl.col("final_val_loss").is_finite())
    grid = grid_run_at(summary, point["label"], point["flops"])
    grid_loss = grid.get("final_val_loss") if grid is not None and grid.get("status") == "done" else None
    grid_loss = grid_loss if grid_loss is not None and math.isfinite(grid_loss) else None
    losses = np.append(ok["final_val_loss"].to_numpy(), [] if grid_loss is None else [grid_loss])
    top = float(min(losses.max(), 1.5 * losses.min())) if losses.size else math.inf
    for batch in sorted(set(ok["batch_size"].to_list())):
        sub = ok.filter(pl.col("batch_size") == batch).sort("lr")
        loss = sub["final_val_loss"].to_numpy()
        ax.plot(sub["lr"].to_numpy(), np.minimum(loss, top), "o-", color=colours[batch], ms=4, label=f"batch {batch}")
        clipped = loss > top
        if clipped.any():  # beyond 1.5x the panel's best (a blow-up): drawn at its top edge
            ax.scatter(sub["lr"].to_numpy()[clipped], np.full(clipped.sum(), top), marker="^", color=colours[batch])
    ax.axvline(point["lr"], color="grey", ls=":", lw=1.2, label="fitted optimum lr (at B*)")
    if grid is not None and grid.get("lr") is not None:
        ax.axvline(grid["lr"], color="black", lw=1.0, label="grid's lr at its batch")
        if grid_loss is not None:
            ax.scatter([grid["lr"]], [min(grid_loss, top)], marker="*" if grid_loss <= top else "^", s=120,
                       color="black", zorder=4, label="grid run")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    outside = "" if point.get("inside", True) else "\noptimum outside the runs tried"
    ax.set_title(f"{point['label']}, C = {g(point['flops'], 2)}{outside}", fontsize=9)
    ax.set_xlabel("peak lr")
    ax.set_ylabel("final val loss")
    ax.tick_params(labelsize=7)
