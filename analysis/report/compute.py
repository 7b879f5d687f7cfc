"""What a sweep's points cost: the schedule that produced each, and the compute WSD branches saved.

Reads the runs table only. `flops` is what an independent run to the point's tokens costs; `flops_spent`
is what the run computed itself (a WSD branch: its cooldown; the steps before it are its trunk's, spent
once for every branch). Tables written before these columns existed (schema version < 4) hold
independent runs only: their spent FLOPs are their FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ComputeSummary:
    flops_spent: float  # what the sweep's finished runs computed
    flops_independent: float  # what independent runs to the same points would have computed
    n_branches: int
    n_trunks: int
    points: pl.DataFrame  # run_id, label, n_params, n_tokens, schedule, role, flops, flops_spent, final_val_loss

    @property
    def saved_fraction(self) -> float:
        return 1.0 - self.flops_spent / self.flops_independent if self.flops_independent else 0.0


def compute_summary(runs: pl.DataFrame) -> ComputeSummary:
    """`runs`: the runs table of finished points (any schema version)."""
    frame = runs
    if "flops_spent" not in frame.columns:
        frame = frame.with_columns(pl.col("flops").alias("flops_spent"))
    defaults = {"schedule": pl.lit(None, pl.String), "role": pl.lit("independent"),
                "trunk_run_id": pl.lit(None, pl.String)}
    frame = frame.with_columns([expr.alias(name) for name, expr in defaults.items() if name not in frame.columns])
    frame = frame.with_columns(pl.col("flops_spent").fill_null(pl.col("flops")),
                               pl.col("role").fill_null("independent"))
    points = frame.select("run_id", "label", "n_params", "n_tokens", "schedule", "role", "trunk_run_id", "flops",
                          "flops_spent", "final_val_loss").sort("n_params", "n_tokens")
    return ComputeSummary(flops_spent=float(points["flops_spent"].sum()),
                          flops_independent=float(points["flops"].sum()),
                          n_branches=int((points["role"] == "branch").sum()),
                          n_trunks=int((points["role"] == "trunk").sum()), points=points)


def compute_text(summary: ComputeSummary) -> str:
    if not summary.n_branches:
        return (f"Every point is an independent run: {summary.flops_spent:.3g} training FLOPs, one run per "
                "(size, budget, seed). `grid.branches=true` with `train.schedule=wsd` trains one run per size "
                "and branches it into a cooldown per budget.")
    return (f"{summary.n_branches} points are WSD branches of {summary.n_trunks} trunk(s) (Hägele et al. 2024): "
            f"the sweep spent {summary.flops_spent:.3g} training FLOPs where independent runs to the same points "
            f"would spend {summary.flops_independent:.3g}, {100 * summary.saved_fraction:.1f}% saved "
            f"({100 * (1 - summary.saved_fraction):.1f}% of the independent cost). A branch's FLOPs (column flops) "
            "count its trunk's steps before its branch step plus its own cooldown (flops_spent).")
