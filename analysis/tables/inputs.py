"""What the analysis of a sweep reads, and a fingerprint of it, so a rerun can tell nothing changed.

The inputs: the sweep's run list and recipe (sweep.json), its calibration (calibration.json, by content),
of each of its runs the files the analysis reads or that mark a run finished (run.parquet, evals.parquet,
status.json) and of each calibration run its run.parquet, by size and modification time; the analysis
settings; the analysis code itself. `analyze_sweep` records the fingerprint it
started from in <sweep>/analysis/inputs.json after everything else is written; `is_current` says
whether that record still matches. Light on purpose (json, hashlib, pyarrow.fs; no polars, scipy
or matplotlib): `python -m sweep` asks before importing the analysis at all.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from analysis.tables.io import exists, join, list_files, read_bytes, read_json, write_bytes

RECORD = "inputs.json"
MANIFEST = "sweep.json"
CALIBRATION = "calibration.json"
RECIPE_KEYS = ("recipe_source", "recipe", "calibration_run_ids")  # what sweep.json says of the grid's recipe
READ_FILES = ("run.parquet", "evals.parquet", "status.json")
OUTPUTS = ("report.html", "report.md", "fits.parquet")  # all present, or the analysis is not current


def manifest(sweep_dir: str) -> dict[str, Any] | None:
    """The sweep's manifest (sweep.json), or None when there is none."""
    return read_json(join(sweep_dir, MANIFEST))


def manifest_run_ids(sweep_dir: str) -> list[str] | None:
    """The run ids of the sweep's current grid (sweep.json), or None when there is no manifest."""
    found = manifest(sweep_dir)
    return None if found is None else list(found["run_ids"])


def calibration_run_ids(sweep_dir: str) -> list[str]:
    """The run ids of the sweep's calibration (sweep.json), never part of its grid; [] when none are listed."""
    return list((manifest(sweep_dir) or {}).get("calibration_run_ids") or [])


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


def fingerprint(sweep_dir: str, analysis_settings: dict[str, Any]) -> str:
    found = manifest(sweep_dir) or {}
    ids = None if analysis_settings.get("all_runs") or "run_ids" not in found else list(found["run_ids"])
    wanted = None if ids is None else {f"run_id={rid}" for rid in ids}
    calibration = {f"run_id={rid}" for rid in found.get("calibration_run_ids") or []}
    files = []
    for path, size, mtime_ns in list_files(join(sweep_dir, "runs")):
        parts = path.split("/")
        if len(parts) != 2:
            continue
        if (parts[1] in READ_FILES and (wanted is None or parts[0] in wanted)) or (
                parts[1] == "run.parquet" and parts[0] in calibration):
            files.append([path, size, mtime_ns])
    calibration_file = read_bytes(join(sweep_dir, CALIBRATION))
    payload = {"run_ids": sorted(ids) if ids is not None else None, "files": sorted(files),
               "recipe": {key: found.get(key) for key in RECIPE_KEYS},
               "calibration": None if calibration_file is None else hashlib.sha256(calibration_file).hexdigest(),
               "settings": analysis_settings, "code": code_digest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def record(sweep_dir: str, started_from: str, analysis_settings: dict[str, Any]) -> None:
    """Written last by the analysis: the fingerprint of the inputs it read."""
    write_bytes(join(sweep_dir, "analysis", RECORD),
                json.dumps({"fingerprint": started_from, "settings": analysis_settings}, indent=2,
                           default=str).encode())


def recorded(sweep_dir: str) -> str | None:
    """The fingerprint the analysis in <sweep>/analysis/ was made from; None when absent or incomplete."""
    payload = read_bytes(join(sweep_dir, "analysis", RECORD))
    if payload is None or not all(exists(join(sweep_dir, "analysis", name)) for name in OUTPUTS):
        return None
    try:
        return str(json.loads(payload)["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None


def is_current(sweep_dir: str, analysis_settings: dict[str, Any] | None = None) -> bool:
    """True when <sweep>/analysis/ holds an analysis of exactly these inputs (and settings)."""
    analysis_settings = analysis_settings if analysis_settings is not None else settings()
    return recorded(sweep_dir) == fingerprint(sweep_dir, analysis_settings)
