"""Loading a grid's tables with polars. Reads only Parquet (and the grid's run list), never `sweep`."""

from __future__ import annotations

import warnings

import polars as pl

from analysis.tables.grids import Grid
from analysis.tables.io import join, list_files, read_bytes

CALIBRATION_TAG = "calibration"  # the runs table's recipe column on a run of the calibration stage


class NoResults(ValueError):
    """The directory holds no finished runs to analyse."""


def _scan(sweep_dir: str, table: str, run_ids: list[str] | None) -> pl.DataFrame:
    """Every run's `table`, one file at a time: a file that cannot be read (cut short, overwritten) is
    left out with a warning naming it, instead of failing the whole analysis."""
    wanted = None if run_ids is None else {f"run_id={rid}" for rid in run_ids}
    names = [path for path, _, _ in list_files(join(sweep_dir, "runs"))
             if path.endswith(f"/{table}.parquet") and path.count("/") == 1
             and (wanted is None or path.split("/")[0] in wanted)]
    frames = []
    for name in sorted(names):
        try:
            frames.append(pl.read_parquet(read_bytes(join(sweep_dir, "runs", name))))
        except (pl.exceptions.PolarsError, OSError, TypeError) as exc:
            warnings.warn(f"left out {join(sweep_dir, 'runs', name)}: not readable Parquet ({type(exc).__name__}); "
                          "rerun the sweep to redo that run", stacklevel=2)
    if not frames:
        raise NoResults(f"no {table}.parquet files under {join(sweep_dir, 'runs')} to read ("
                        + (f"{len(names)} found, none readable)" if names
                           else "no run has written one yet, or this is not a sweep directory)"))
    return pl.concat(frames, how="diagonal_relaxed")


def load_runs(grid: Grid, all_runs: bool = False) -> pl.DataFrame:
    """One row per run (every status). Only the grid's runs unless all_runs; never a calibration run (those
    sweep.json lists, or tagged so in the runs table's recipe column): they train off the optimum on purpose."""
    runs = _scan(grid.sweep_dir, "run", None if all_runs else grid.run_ids)
    if not all_runs:
        return runs
    calibration = pl.col("run_id").is_in(grid.calibration_run_ids)
    if "recipe" in runs.columns:
        calibration = calibration | (pl.col("recipe") == CALIBRATION_TAG).fill_null(False)
    return runs.filter(~calibration)


def load_calibration_runs(grid: Grid) -> pl.DataFrame:
    """One row per run of the grid's calibration (sweep.json's calibration_run_ids); empty when there are none."""
    ids = grid.calibration_run_ids
    if not ids:
        return pl.DataFrame()
    try:
        return _scan(grid.sweep_dir, "run", ids)
    except NoResults:
        return pl.DataFrame()


def _load_optional(grid: Grid, table: str, all_runs: bool) -> pl.DataFrame:
    """Every run's `table`, or an empty frame when no run has written one."""
    try:
        return _scan(grid.sweep_dir, table, None if all_runs else grid.run_ids)
    except NoResults:
        return pl.DataFrame()


def load_evals(grid: Grid, all_runs: bool = False) -> pl.DataFrame:
    return _load_optional(grid, "evals", all_runs)


def load_curves(grid: Grid, all_runs: bool = False) -> pl.DataFrame:
    return _load_optional(grid, "curves", all_runs)
