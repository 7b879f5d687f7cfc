"""Loading a sweep's tables with polars. Reads only Parquet (and the sweep's run list), never `sweep`."""

from __future__ import annotations

import polars as pl

from analysis.inputs import manifest_run_ids
from analysis.io import join


class NoResults(ValueError):
    """The directory holds no finished runs to analyse."""


def _scan(sweep_dir: str, table: str, run_ids: list[str] | None) -> pl.DataFrame:
    pattern = join(sweep_dir, "runs", "*", f"{table}.parquet")
    try:
        frame = pl.scan_parquet(pattern, hive_partitioning=True).collect()
    except (FileNotFoundError, pl.exceptions.ComputeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if "expanded paths were empty" in detail or isinstance(exc, FileNotFoundError):
            detail = "no run has written one yet, or this is not a sweep directory"
        raise NoResults(f"no {table}.parquet files under {join(sweep_dir, 'runs')} to read ({detail})") from exc
    if run_ids is not None:
        frame = frame.filter(pl.col("run_id").is_in(run_ids))
    return frame


def load_runs(sweep_dir: str, all_runs: bool = False) -> pl.DataFrame:
    """One row per run (every status). Only the manifest's runs unless all_runs."""
    return _scan(sweep_dir, "run", None if all_runs else manifest_run_ids(sweep_dir))


def load_evals(sweep_dir: str, all_runs: bool = False) -> pl.DataFrame:
    ids = None if all_runs else manifest_run_ids(sweep_dir)
    try:
        return _scan(sweep_dir, "evals", ids)
    except NoResults:
        return pl.DataFrame()


def load_curves(sweep_dir: str, all_runs: bool = False) -> pl.DataFrame:
    ids = None if all_runs else manifest_run_ids(sweep_dir)
    try:
        return _scan(sweep_dir, "curves", ids)
    except NoResults:
        return pl.DataFrame()
