"""The results store: one directory per run on any pyarrow filesystem, every write atomic.

Layout (DESIGN.md):
    <results_dir>/<sweep name>/sweep.json                 the resolved sweep config (informational)
    <results_dir>/<sweep name>/runs/run_id=<id>/config.json  status.json  run.parquet
                                               curves.parquet evals.parquet samples.parquet
                                               checkpoint/latest.pt
    <results_dir>/<sweep name>/analysis/                    written by `python -m analysis`

Each run writes only inside its own directory. Files are written to a temporary name and renamed
into place; status.json is written last and is the commit point: a run is finished exactly when its
status.json says `done` (or `diverged`). The results root may be a local path or a URI that
pyarrow.fs understands (s3://bucket/prefix, gs://bucket/prefix).
"""

from __future__ import annotations

import io
import json
import os
import socket
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# Statuses a run can be in. FINISHED ones are never rerun.
RUNNING, DONE, DIVERGED, FAILED, INTERRUPTED = "running", "done", "diverged", "failed", "interrupted"
FINISHED = (DONE, DIVERGED)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path (relative allowed) or a pyarrow.fs URI."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


class Location:
    """A directory on a pyarrow filesystem with atomic whole-file writes."""

    def __init__(self, fs: pafs.FileSystem, path: str):
        self.fs, self.path = fs, path.rstrip("/")

    def child(self, name: str) -> Location:
        return Location(self.fs, f"{self.path}/{name}")

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.file(name)).type == pafs.FileType.File

    def write_bytes(self, name: str, payload: bytes) -> None:
        final = self.file(name)
        parent = final.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{final}.tmp-{socket.gethostname()}-{os.getpid()}"
        with self.fs.open_output_stream(tmp) as out:
            out.write(payload)
        self.fs.move(tmp, final)

    def read_bytes(self, name: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.file(name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_json(self, name: str, obj: Any) -> None:
        self.write_bytes(name, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, name: str) -> Any | None:
        payload = self.read_bytes(name)
        return None if payload is None else json.loads(payload)

    def write_table(self, name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.write_bytes(name, buffer.getvalue())

    def read_table(self, name: str) -> pa.Table | None:
        payload = self.read_bytes(name)
        return None if payload is None else pq.read_table(io.BytesIO(payload))

    def delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self.file(name))
        except FileNotFoundError:
            pass


class RunDir(Location):
    """One run's directory. Status transitions: (none) -> running -> done | diverged | failed."""

    def status(self) -> dict[str, Any] | None:
        return self.read_json("status.json")

    def state(self) -> str | None:
        status = self.status()
        return None if status is None else status.get("state")

    def is_finished(self) -> bool:
        return self.state() in FINISHED

    def begin_attempt(self, run_id: str, host_info: dict[str, Any]) -> dict[str, Any]:
        """Mark the run running and append an attempt; returns the new status."""
        status = self.status() or {"run_id": run_id, "attempts": []}
        status["attempts"].append({"attempt": len(status["attempts"]) + 1, "started": now_iso(), **host_info})
        status.update(state=RUNNING, updated=now_iso(), error=None)
        self.write_json("status.json", status)
        return status

    def end_attempt(self, run_id: str, state: str, error: str | None = None, **extra: Any) -> dict[str, Any]:
        """Commit point: close the current attempt with `state` and write status.json."""
        status = self.status() or {"run_id": run_id, "attempts": [{"attempt": 1, "started": None}]}
        attempt = status["attempts"][-1]
        attempt.update(ended=now_iso(), state=state, error=error, **extra)
        status.update(state=state, updated=now_iso(), error=error)
        self.write_json("status.json", status)
        return status


class CheckpointFile:
    """CheckpointIO over a RunDir: checkpoint/latest.pt, replaced atomically, and beside it
    checkpoint/latest.json saying which step it holds (read by the driver without unpickling)."""

    NAME = "checkpoint/latest.pt"
    INFO = "checkpoint/latest.json"

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def load(self) -> bytes | None:
        return self.run_dir.read_bytes(self.NAME)

    def save(self, payload: bytes, step: int) -> None:
        self.run_dir.write_bytes(self.NAME, payload)
        self.run_dir.write_json(self.INFO, {"step": step, "saved": now_iso()})

    def step(self) -> int | None:
        """The step of the checkpoint on disk (None: no checkpoint)."""
        info = self.run_dir.read_json(self.INFO) if self.run_dir.exists(self.NAME) else None
        return None if info is None else int(info["step"])

    def clear(self) -> None:
        self.run_dir.delete(self.NAME)
        self.run_dir.delete(self.INFO)


class Store:
    """The results of one sweep: `<results_dir>/<name>`."""

    def __init__(self, results_dir: str, name: str):
        self.results_dir, self.name = results_dir, name
        fs, root = resolve_filesystem(results_dir)
        self.root = Location(fs, f"{root}/{name}")

    @property
    def uri(self) -> str:
        """Where the sweep lives, as the user would type it (a local path or URI)."""
        base = self.results_dir if "://" in self.results_dir else os.path.abspath(self.results_dir)
        return f"{base.rstrip('/')}/{self.name}"

    def run_dir(self, run_id: str) -> RunDir:
        return RunDir(self.root.fs, f"{self.root.path}/runs/run_id={run_id}")

    def states(self, run_ids: list[str]) -> dict[str, str | None]:
        return {rid: self.run_dir(rid).state() for rid in run_ids}

    def run_rows(self) -> list[dict[str, Any]]:
        """The run.parquet row of every run directory here, of any grid: what ran before (for planning)."""
        selector = pafs.FileSelector(f"{self.root.path}/runs", allow_not_found=True)
        rows: list[dict[str, Any]] = []
        for info in self.root.fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory:
                table = RunDir(self.root.fs, info.path).read_table("run.parquet")
                rows.extend(table.to_pylist() if table is not None else [])
        return rows
