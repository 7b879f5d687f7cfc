"""The emergence figure: per task a grid of panels (at most COLUMNS across), one per metric, each with the
per-size values and what its verdict stands on: the sigmoid with its bootstrap band and threshold (dotted)
where a fitted transition carries the verdict, the two sizes shaded where a jump between them brackets
the threshold, else the best smooth model (none for a jump onto the largest size). Colours and what is drawn
come from the verdict (analysis.emergence.rule: Verdict, Decision). Takes an EmergenceResult and returns a
matplotlib Figure."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.emergence.curve import CurveVerdict  # noqa: E402
from analysis.emergence.run import EmergenceResult  # noqa: E402

COLUMNS = 3
_XLABEL = {"log_n": "parameters N", "log_flops": "training FLOPs C", "val_loss": "validation loss (nats/token)"}


def _to_axis(x: np.ndarray, axis: str) -> np.ndarray:
    return -x if axis == "val_loss" else np.exp(x)


def _draw_fits(ax, curve: CurveVerdict, axis: str, level: float) -> None:
    span = np.ptp(curve.x)
    grid = np.linspace(curve.x.min() - 0.1 * span, curve.x.max() + 0.1 * span, 200)
    gx = _to_axis(grid, axis)
    colour = curve.verdict.colour
    if curve.decision.bracketed:
        lo, hi = _to_axis(np.array(curve.decision.resolution), axis)
        ax.axvspan(min(lo, hi), max(lo, hi), color=colour, alpha=0.15, lw=0, label="threshold bracket")
        ax.plot(_to_axis(curve.x, axis), curve.y, "-", color=colour, lw=1)
    elif curve.sigmoid is not None and curve.decision.draws_sigmoid:
        lo, hi = curve.band(grid, level)
        if np.isfinite(lo).any():
            ax.fill_between(gx, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.plot(gx, curve.predict(grid), color=colour, lw=1.5, label="sigmoid")
        x_c = curve.sigmoid.x_c
        if math.isfinite(x_c) and grid.min() <= x_c <= grid.max():
            ax.axvline(_to_axis(np.array([x_c]), axis)[0], color=colour, ls=":", lw=1)
    elif curve.decision.draws_smooth and curve.smooth.get(curve.best_smooth) is not None:
        ax.plot(gx, curve.predict_smooth(grid), "--", color=colour, lw=1.2, label=curve.best_smooth)


def _panel(ax, result: EmergenceResult, metric: str, curve: CurveVerdict) -> None:
    if len(curve.x):
        ax.plot(_to_axis(curve.x, result.x_axis), curve.y, "o", color="k", ms=4, zorder=3)
    if len(curve.x) >= 2 and np.ptp(curve.x) > 0:
        _draw_fits(ax, curve, result.x_axis, result.level)
    if result.x_axis == "val_loss":
        ax.invert_xaxis()  # lower loss (bigger model) to the right
    else:
        ax.set_xscale("log")
    direction = "" if curve.higher_is_better else " (lower is better)"
    flags = f" [{', '.join(curve.flags)}]" if curve.flags else ""
    ax.set_title(f"{metric}{direction}\n{curve.verdict.value}, {curve.n_sizes} sizes{flags}", fontsize=9,
                 color=curve.verdict.colour)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(_XLABEL[result.x_axis], fontsize=8)


def emergence_figure(result: EmergenceResult, tasks: list[str] | None = None):
    """Per task a grid of metric panels, COLUMNS across (see the module doc)."""
    by_task: dict[str, list[str]] = {}
    for task, metric in sorted(result.curves):
        if tasks is None or task in tasks:
            by_task.setdefault(task, []).append(metric)
    cols = max(1, min(COLUMNS, max((len(m) for m in by_task.values()), default=1)))
    task_rows = {task: math.ceil(len(metrics) / cols) for task, metrics in by_task.items()}
    rows = max(1, sum(task_rows.values()))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    artifact = {r["task"]: r["artifact_verdict"] for r in result.artifacts.iter_rows(named=True)}
    top = 0
    for task, metrics in by_task.items():
        for j in range(task_rows[task] * cols):
            ax = axes[top + j // cols, j % cols]
            if j >= len(metrics):
                ax.set_visible(False)
                continue
            _panel(ax, result, metrics[j], result.curves[(task, metrics[j])])
            if j % cols == 0:
                ax.set_ylabel(f"{task}\n[{artifact.get(task, '')}]", fontsize=9)
        top += task_rows[task]
    fig.tight_layout()
    return fig
