"""What a results directory holds across grids: each grid's manifest, calibration and analysis, and the latest.

results/<name>/runs/ is shared by every grid run under the name: a run's id is a hash of what it computes, so a
run two grids share is trained once. Each grid keeps a directory of its own, grids/<grid_id>/ (grid_id: a short
hash of its sorted run ids, which the sweep writes into the manifest): sweep.json (its runs, config and recipe),
calibration.json (the calibration it was expanded with, when it has one) and analysis/. results/<name>/sweep.json
is the latest grid's manifest and results/<name>/analysis/ a copy of its analysis, so a path that names the sweep
names its latest grid. A manifest without a grid id (or no manifest at all) makes the sweep directory itself the
grid's directory. Light on purpose (json and pyarrow.fs through analysis.tables.io): `python -m sweep` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.tables.io import join, list_files, read_bytes, read_json, remove, write_bytes

MANIFEST = "sweep.json"
CALIBRATION = "calibration.json"
GRIDS = "grids"
ANALYSIS = "analysis"
RECORD = "inputs.json"  # written last into an analysis directory: the inputs it was made from


class UnknownGrid(ValueError):
    """The sweep directory has no grid of the id asked for; the message lists those it has."""


@dataclass(frozen=True)
class Grid:
    """One grid of a sweep directory: its manifest (None when there is none) and where its files live."""

    sweep_dir: str
    grid_id: str | None  # None: the sweep directory itself is the grid's directory
    manifest: dict[str, Any] | None
    latest: bool  # the grid results/<name>/sweep.json names

    @property
    def home(self) -> str:
        """Where the grid's sweep.json, calibration.json and analysis/ live."""
        return self.sweep_dir if self.grid_id is None else join(self.sweep_dir, GRIDS, self.grid_id)

    @property
    def analysis_dir(self) -> str:
        return join(self.home, ANALYSIS)

    @property
    def run_ids(self) -> list[str] | None:
        """The grid's runs (sweep.json), or None without a manifest (then every run is the grid's)."""
        return None if self.manifest is None or "run_ids" not in self.manifest else list(self.manifest["run_ids"])

    @property
    def calibration_run_ids(self) -> list[str]:
        """The runs of the grid's calibration, never part of the grid; [] when none are listed."""
        return list((self.manifest or {}).get("calibration_run_ids") or [])

    def calibration(self) -> dict[str, Any] | None:
        """The grid's calibration.json, or None."""
        return read_json(join(self.home, CALIBRATION))

    def calibration_bytes(self) -> bytes | None:
        return read_bytes(join(self.home, CALIBRATION))


def grid_ids(sweep_dir: str) -> list[str]:
    """The ids of every grid kept under <sweep>/grids/, sorted."""
    return sorted(path.split("/")[0] for path, _, _ in list_files(join(sweep_dir, GRIDS))
                  if path.count("/") == 1 and path.endswith(f"/{MANIFEST}"))


def open_grid(sweep_dir: str, grid_id: str | None = None) -> Grid:
    """The grid `grid_id` of the sweep directory; None: the latest (the one <sweep>/sweep.json names).
    Raises UnknownGrid when no grids/<grid_id>/sweep.json exists."""
    latest = read_json(join(sweep_dir, MANIFEST))
    latest_id = None if latest is None else latest.get("grid_id")
    if grid_id is None or grid_id == latest_id:
        return Grid(sweep_dir, latest_id, latest, True)
    manifest = read_json(join(sweep_dir, GRIDS, grid_id, MANIFEST))
    if manifest is None:
        known = [f"{gid} (latest)" if gid == latest_id else gid for gid in grid_ids(sweep_dir)]
        raise UnknownGrid(f"no grid {grid_id} in {sweep_dir} (no {join(sweep_dir, GRIDS, grid_id, MANIFEST)}); "
                          + (f"its grids: {', '.join(known)}" if known else "it keeps no grids"))
    return Grid(sweep_dir, grid_id, manifest, False)


def publish(grid: Grid) -> bool:
    """Make the latest grid's analysis the sweep's (<sweep>/analysis/): a copy of grids/<grid_id>/analysis/, its
    record copied last and files of another analysis removed. False (nothing copied) when the grid is not the
    latest, is the sweep directory itself, or <sweep>/analysis/ already holds this very analysis."""
    if not grid.latest or grid.grid_id is None:
        return False
    source, target = grid.analysis_dir, join(grid.sweep_dir, ANALYSIS)
    record = read_bytes(join(source, RECORD))
    names = {path for path, _, _ in list_files(source)} - {RECORD}
    there = {path for path, _, _ in list_files(target)}
    if record is None or (read_bytes(join(target, RECORD)) == record and there == names | {RECORD}):
        return False
    remove(join(target, RECORD))  # first: a copy cut short is never taken for a finished one
    for name in sorted(names):
        write_bytes(join(target, name), read_bytes(join(source, name)))
    for path in there - names:
        remove(join(target, path))
    write_bytes(join(target, RECORD), record)
    return True
