"""The emergence figure: one row per task, its metrics side by side, each with the per-size values,
the fitted sigmoid and its bootstrap band, the best smooth model (dashed) and the threshold (dotted).
Takes an analysis.emergence_analysis.EmergenceResult and returns a matplotlib Figure."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.emergence_analysis import EmergenceResult  # noqa: E402

_XLABEL = {"log_n": "parameters N", "log_flops": "training FLOPs C", "val_loss": "validation loss (nats/token)"}
_COLOUR = {"emergent": "tab:red", "smooth": "tab:blue", "flat": "tab:gray", "beyond-range": "tab:orange",
           "non-monotone": "tab:purple", "insufficient-data": "tab:gray"}


def _to_axis(x: np.ndarray, axis: str) -> np.ndarray:
    return -x if axis == "val_loss" else np.exp(x)


def emergence_figure(result: EmergenceResult, tasks: list[str] | None = None, ci: float | None = None):
    """Per task a row of panels, one per metric (see the module doc); bands at `ci` (default: the result's level)."""
    ci = result.ci_level if ci is None else ci
    by_task: dict[str, list[str]] = {}
    for task, metric in sorted(result.curves):
        if tasks is None or task in tasks:
            by_task.setdefault(task, []).append(metric)
    rows = max(len(by_task), 1)
    cols = max((len(m) for m in by_task.values()), default=1)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    artifact = {r["task"]: r["artifact_verdict"] for r in result.artifacts.iter_rows(named=True)}
    for i, (task, metrics) in enumerate(by_task.items()):
        for j in range(cols):
            ax = axes[i, j]
            if j >= len(metrics):
                ax.set_visible(False)
                continue
            metric = metrics[j]
            curve = result.curves[(task, metric)]
            colour = _COLOUR.get(curve.verdict, "k")
            if len(curve.x):
                ax.plot(_to_axis(curve.x, result.x_axis), curve.y, "o", color="k", ms=4, zorder=3)
            if curve.sigmoid is not None and len(curve.x) >= 2:
                span = np.ptp(curve.x)
                grid = np.linspace(curve.x.min() - 0.1 * span, curve.x.max() + 0.1 * span, 200)
                gx = _to_axis(grid, result.x_axis)
                lo, hi = curve.band(grid, ci)
                if np.isfinite(lo).any():
                    ax.fill_between(gx, lo, hi, color=colour, alpha=0.2, lw=0)
                ax.plot(gx, curve.predict(grid), color=colour, lw=1.5, label="sigmoid")
                ax.plot(gx, curve.predict_smooth(grid), "--", color="0.4", lw=1, label="best smooth")
                x_c = curve.sigmoid.x_c
                if math.isfinite(x_c) and grid.min() <= x_c <= grid.max():
                    ax.axvline(_to_axis(np.array([x_c]), result.x_axis)[0], color=colour, ls=":", lw=1)
            if result.x_axis == "val_loss":
                ax.invert_xaxis()  # lower loss (bigger model) to the right
            else:
                ax.set_xscale("log")
            direction = "" if curve.higher_is_better else " (lower is better)"
            ax.set_title(f"{metric}{direction}\n{curve.verdict}", fontsize=8, color=colour)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.set_ylabel(f"{task}\n[{artifact.get(task, '')}]", fontsize=8)
            if i == rows - 1:
                ax.set_xlabel(_XLABEL[result.x_axis], fontsize=8)
    fig.tight_layout()
    return fig
