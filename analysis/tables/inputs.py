"""What the analysis of a grid reads, and a fingerprint of it, so a rerun can tell nothing changed.

The inputs: the grid's run list and recipe (its sweep.json), its calibration (its calibration.json, by content),
of each of its runs the files the analysis reads or that mark a run finished (run.parquet, evals.parquet,
status.json) and of each calibration run its run.parquet, by size and modification time; the analysis
settings; the analysis code itself. Nothing else: the cluster, logger and paths a sweep was run with are no
input, so a rerun with other cluster settings finds its analysis current. `analyze_sweep` records the
fingerprint it started from in the analysis directory's inputs.json after everything else is written;
`is_current` says whether that record still matches. Light on purpose (json, hashlib, pyarrow.fs; no polars,
scipy or matplotlib): `python -m sweep` asks before importing the analysis at all.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from analysis.tables.grids import ANALYSIS, RECORD, Grid, open_grid
from analysis.tables.io import exists, join, list_files, read_bytes, write_bytes

RECIPE_KEYS = ("recipe_source", "recipe", "calibration_run_ids")  # what sweep.json says of the grid's recipe
READ_FILES = ("run.parquet", "evals.parquet", "status.json")
OUTPUTS = ("report.html", "report.md", "fits.parquet")  # all present, or the analysis is not current


def settings(all_runs: bool = False, options: Any = None, emergence_boot: int | None = None) -> dict[str, Any]:
    """The analysis settings as recorded: None stands for a default."""
    from dataclasses import asdict, is_dataclass

    return {"all_runs": bool(all_runs), "options": asdict(options) if is_dataclass(options) else options,
            "emergence_boot": emergence_boot}


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of the analysis package's source: new analysis code makes every earlier analysis stale."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]  # the analysis package
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def analysis_dir(grid: Grid, analysis_settings: dict[str, Any]) -> str:
    """Where an analysis of `grid` with these settings is written: the grid's own analysis/, except that one of
    every run in the directory (all_runs) belongs to no grid and is written to <sweep>/analysis/."""
    return join(grid.sweep_dir, ANALYSIS) if analysis_settings.get("all_runs") else grid.analysis_dir


def fingerprint(grid: Grid, analysis_settings: dict[str, Any]) -> str:
    found = grid.manifest or {}
    ids = None if analysis_settings.get("all_runs") else grid.run_ids
    wanted = None if ids is None else {f"run_id={rid}" for rid in ids}
    calibration = {f"run_id={rid}" for rid in grid.calibration_run_ids}
    files = []
    for path, size, mtime_ns in list_files(join(grid.sweep_dir, "runs")):
        parts = path.split("/")
        if len(parts) != 2:
            continue
        if (parts[1] in READ_FILES and (wanted is None or parts[0] in wanted)) or (
                parts[1] == "run.parquet" and parts[0] in calibration):
            files.append([path, size, mtime_ns])
    calibration_file = grid.calibration_bytes()
    payload = {"run_ids": sorted(ids) if ids is not None else None, "files": sorted(files),
               "recipe": {key: found.get(key) for key in RECIPE_KEYS},
               "calibration": None if calibration_file is None else hashlib.sha256(calibration_file).hexdigest(),
               "settings": analysis_settings, "code": code_digest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def record(out: str, started_from: str, analysis_settings: dict[str, Any]) -> None:
    """Written last by the analysis into its directory `out`: the fingerprint of the inputs it read."""
    write_bytes(join(out, RECORD), json.dumps({"fingerprint": started_from, "settings": analysis_settings}, indent=2,
                                              default=str).encode())


def recorded(out: str) -> str | None:
    """The fingerprint the analysis in directory `out` was made from; None when absent or incomplete."""
    payload = read_bytes(join(out, RECORD))
    if payload is None or not all(exists(join(out, name)) for name in OUTPUTS):
        return None
    try:
        return str(json.loads(payload)["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None


def is_current(sweep_dir: str, analysis_settings: dict[str, Any] | None = None, grid_id: str | None = None) -> bool:
    """True when <sweep>/analysis/ holds an analysis of exactly these inputs (and settings) of the grid `grid_id`
    (None: the latest); for a grid other than the latest, when its own grids/<grid_id>/analysis/ does."""
    analysis_settings = analysis_settings if analysis_settings is not None else settings()
    grid = open_grid(sweep_dir, grid_id)
    out = join(sweep_dir, ANALYSIS) if grid.latest else analysis_dir(grid, analysis_settings)
    return recorded(out) == fingerprint(grid, analysis_settings)
