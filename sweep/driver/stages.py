"""A sweep's two stages: the calibration of its recipe (when recipe.source calls for it), then its grid.

`plan_stages` decides which recipe the grid uses (sweep.plan.recipe.choose_source) and, when calibrating, which
runs calibrate it (sweep.plan.calibration.calibration_specs). Calibration runs already finished in the store are
fitted at once, so a rerun, a dry run and the analysis all see the grid that the calibration gave; while
some are unfinished the grid is provisional, expanded with the published laws. `after_calibration` fits
the finished calibration runs, writes calibration.json at the sweep's root, and expands the grid with the
fitted recipe. I/O is the store only; the fits are sweep.plan.calibration's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sweep.config.schema import SweepConfig
from sweep.plan.calibration import RUN_TAG, Calibration, calibration_specs, fit_calibration, planned_flops
from sweep.plan.grid import expand
from sweep.plan.recipe import DEEPSEEK, Recipe, choose_source
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec
from sweep.store.runs import DONE, FINISHED, Store
from sweep.train.flops import train_flops

CALIBRATION_FILE = "calibration.json"


class CalibrationError(RuntimeError):
    """The calibration runs cannot place an optimum; the grid is not started."""


@dataclass
class Stages:
    source: str  # deepseek | calibrate
    why: str  # why this source (recipe.source, or auto and the grid's compute)
    recipe: Recipe  # what the grid's batch and lr come from (the published laws while provisional)
    grid: list[RunSpec]
    calibration: list[RunSpec] = field(default_factory=list)  # [] unless calibrating
    fitted: Calibration | None = None  # the calibration, once its runs are all finished

    @property
    def provisional(self) -> bool:
        """The grid's batch, lr and ids wait for calibration runs still to train."""
        return self.source == "calibrate" and self.fitted is None

    def describe(self) -> list[str]:
        """What the dry run and the driver say about the recipe: which rules apply and where they come from."""
        if self.source == "deepseek":
            inside = all(self.recipe.covers(float(train_flops(s.model, s.n_tokens_budget))) for s in self.grid)
            return [f"recipe: the published laws ({self.why}): {self.recipe.describe()}"
                    + ("" if inside else "; the grid lies outside their fitted range: extrapolated")]
        cost, grid = planned_flops(self.calibration), planned_flops(self.grid)
        lines = [f"recipe: calibrated at this sweep's scale ({self.why}): {len(self.calibration)} calibration runs "
                 f"of {cost:.3g} FLOPs, {cost / grid:.0%} of the grid's {grid:.3g}"]
        if self.fitted is None:
            lines.append("  the grid below is provisional: its batch, lr and run ids are set by the calibration "
                         f"once its runs finish (shown with the published laws: {DEEPSEEK.describe()})")
            return lines
        fit = self.fitted
        lines.append(f"  {fit.recipe.describe()}")
        lo, hi = fit.ci.get("batch_tokens_at", (float("nan"),) * 2)
        lr_lo, lr_hi = fit.ci.get("lr_at", (float("nan"),) * 2)
        at = fit.at_flops
        lines.append(f"  at the grid's largest compute C={at:.3g}: B = {fit.recipe.batch_tokens(at):.3g} "
                     f"tokens [{lo:.3g}, {hi:.3g}], lr = {fit.recipe.lr(fit.at_flops):.3g} [{lr_lo:.3g}, {lr_hi:.3g}] "
                     f"({fit.level:.0%} intervals); the published laws give B = "
                     f"{DEEPSEEK.batch_tokens(fit.at_flops):.3g}, lr = {DEEPSEEK.lr(fit.at_flops):.3g}")
        lines += [f"  note: {note}" for note in fit.notes]
        return lines

    def manifest(self) -> dict[str, Any]:
        """What sweep.json says of the recipe: its source and the calibration runs (never analysed as the grid)."""
        out: dict[str, Any] = {"recipe_source": self.source, "recipe": dataclasses.asdict(self.recipe),
                               "calibration_run_ids": [run_id(s) for s in self.calibration]}
        return out


def largest_flops(grid: list[RunSpec]) -> float:
    return max(float(train_flops(s.model, s.n_tokens_budget)) for s in grid)


def plan_stages(cfg: SweepConfig, store: Store | None) -> Stages:
    """The stages of `cfg`: the recipe's source, the calibration runs, and the grid: expanded with the recipe of
    the store's calibration.json when it was fitted from these very calibration runs (it is never refitted
    then, so a rerun keeps the grid's ids even after a failed calibration run is redone), else fitted when the
    store holds every calibration run finished (and written unless cfg.dry_run), else provisional."""
    published = expand(cfg, DEEPSEEK)
    flops = [float(train_flops(s.model, s.n_tokens_budget)) for s in published]
    source, why = choose_source(cfg.recipe.source, flops)
    given = [f"train.{key}" for key in ("batch_size", "lr") if getattr(cfg.train, key) is not None]
    if len(given) == 2:
        source, why = "deepseek", "train.batch_size and train.lr are both given: nothing to calibrate"
    elif given and cfg.recipe.source == "auto":  # the calibration tunes the two together
        source, why = "deepseek", f"recipe.source=auto with {given[0]} given (recipe.source=calibrate tunes the other)"
    if source != "calibrate":
        return Stages(source, why, DEEPSEEK, published)
    stages = Stages(source, why, DEEPSEEK, published, calibration_specs(cfg, published))
    if store is None:
        return stages
    ids = [run_id(s) for s in stages.calibration]
    saved = store.root.read_json(CALIBRATION_FILE)
    if saved is not None and saved.get("run_ids") == ids:
        fitted = Calibration.from_dict(saved)
        return dataclasses.replace(stages, recipe=fitted.recipe, grid=expand(cfg, fitted.recipe), fitted=fitted)
    if all(state in FINISHED for state in store.states(ids).values()):
        return after_calibration(cfg, stages, store, write=not cfg.dry_run)
    return stages


def calibration_rows(specs: list[RunSpec], store: Store) -> list[dict[str, Any]]:
    """The runs-table row of every calibration run, with the compute of its (size, budget) point."""
    rows = []
    for spec in specs:
        table = store.run_dir(run_id(spec)).read_table("run.parquet")
        if table is None:
            continue
        for row in table.to_pylist():
            rows.append({**row, "flops_point": float(train_flops(spec.model, spec.n_tokens_budget))})
    return rows


def after_calibration(cfg: SweepConfig, stages: Stages, store: Store, write: bool = True) -> Stages:
    """Fit the finished calibration runs, write calibration.json (unless not `write`), and expand the grid with
    the fitted recipe. Raises CalibrationError when they cannot place an optimum."""
    rows = calibration_rows(stages.calibration, store)
    done = sum(r["status"] == DONE for r in rows)
    try:
        fitted = fit_calibration(rows, at_flops=largest_flops(stages.grid), reference=f"{store.uri}/{CALIBRATION_FILE}")
    except ValueError as exc:
        raise CalibrationError(f"the calibration ({done} of {len(stages.calibration)} runs done) cannot place an "
                               f"optimum: {exc}; rerun to retry failed runs, widen recipe.batch_factors / "
                               f"recipe.lr_factors, or use the published laws with recipe.source=deepseek") from exc
    if write:
        store.root.write_json(CALIBRATION_FILE, {**fitted.to_dict(), "run_ids": [run_id(s) for s in stages.calibration],
                                                 "tag": RUN_TAG})
    return dataclasses.replace(stages, recipe=fitted.recipe, grid=expand(cfg, fitted.recipe), fitted=fitted)
