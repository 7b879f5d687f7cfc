"""The results store: one directory per run on any pyarrow filesystem, every write atomic.

Layout (DESIGN.md):
    <results_dir>/<sweep name>/sweep.json                 the resolved sweep config (informational)
    <results_dir>/<sweep name>/runs/run_id=<id>/config.json  status.json  run.parquet
                                               curves.parquet evals.parquet samples.parquet
                                               checkpoint/latest.pt
                                               checkpoint/branch-<step>.pt  (a WSD trunk, until its branches finish)
    <results_dir>/<sweep name>/analysis/                    written by `python -m analysis`

Each run writes only inside its own directory. Files are written to a temporary name and renamed
into place; status.json is written last and is the commit point: a run is finished exactly when its
status.json says `done` (or `diverged`). The results root may be a local path or a URI that
pyarrow.fs understands (s3://bucket/prefix, gs://bucket/prefix).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# Statuses a run can be in. FINISHED ones are never rerun.
RUNNING, DONE, DIVERGED, FAILED, INTERRUPTED = "running", "done", "diverged", "failed", "interrupted"
CORRUPT = "corrupt"  # was finished, but its files no longer match what was written: redone
LEASED = "leased"  # not a state on disk: a worker found another driver's worker training the run
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
        tmp = f"{final}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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

    def write_table(self, name: str, table: pa.Table) -> dict[str, Any]:
        """Write `table` as Parquet; returns what a later check compares against (fingerprint)."""
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        payload = buffer.getvalue()
        self.write_bytes(name, payload)
        return {**fingerprint(payload), "rows": table.num_rows}

    def read_table(self, name: str) -> pa.Table | None:
        payload = self.read_bytes(name)
        return None if payload is None else pq.read_table(io.BytesIO(payload))

    def delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self.file(name))
        except FileNotFoundError:
            pass


def fingerprint(payload: bytes) -> dict[str, Any]:
    return {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def file_problem(name: str, payload: bytes | None, expected: dict[str, Any]) -> str | None:
    """Why a file does not match what was recorded when its run committed (None: it does)."""
    if payload is None:
        return f"{name} is missing"
    got = fingerprint(payload)
    if got["bytes"] != expected["bytes"]:
        return f"{name} has {got['bytes']} bytes, {expected['bytes']} when written"
    if got["sha256"] != expected["sha256"]:
        return f"{name} does not match its checksum"
    if "rows" in expected:
        rows = pq.ParquetFile(io.BytesIO(payload)).metadata.num_rows
        if rows != expected["rows"]:
            return f"{name} has {rows} rows, {expected['rows']} when written"
    return None


def footer_problem(name: str, payload: bytes) -> str | None:
    """Whether a Parquet file's footer reads (a file cut short loses it)."""
    try:
        pq.read_metadata(io.BytesIO(payload))
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends for a broken footer
        return f"{name} is not readable Parquet ({type(exc).__name__})"
    return None


class RunDir(Location):
    """One run's directory. Status transitions: (none) -> running -> done | diverged | failed."""

    def sibling(self, run_id: str) -> RunDir:
        """Another run of the same sweep (a branch's trunk)."""
        return RunDir(self.fs, f"{self.path.rsplit('/', 1)[0]}/run_id={run_id}")

    def status(self) -> dict[str, Any] | None:
        try:
            return self.read_json("status.json")
        except (json.JSONDecodeError, UnicodeDecodeError):  # cut short or overwritten: the run is redone
            return {"state": CORRUPT, "attempts": [], "error": "status.json is unreadable"}

    def verify(self) -> list[str]:
        """Problems with the files of a finished run: each must match the size, checksum and row count
        status.json recorded when the run committed. Runs committed before checksums were recorded
        get their tables' Parquet footers checked."""
        status = self.status() or {}
        recorded = status.get("files")
        if recorded is None:
            recorded = {name: None for name in ("run.parquet", "evals.parquet") if status.get("state") == DONE}
        problems = []
        for name, expected in sorted(recorded.items()):
            payload = self.read_bytes(name)
            if expected is not None:
                problem = file_problem(name, payload, expected)
            elif payload is None:
                problem = f"{name} is missing"
            else:
                problem = footer_problem(name, payload)
            if problem:
                problems.append(problem)
        return problems

    def mark_corrupt(self, problems: list[str]) -> None:
        """A finished run whose files failed verification: no longer finished, so the next sweep redoes it."""
        status = self.status() or {"attempts": []}
        status.update(state=CORRUPT, updated=now_iso(), error="; ".join(problems))
        self.write_json("status.json", status)

    def attempts(self) -> int:
        """How many attempts status.json records (0 before the first)."""
        return len((self.status() or {}).get("attempts", []))

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
        status.pop("files", None)  # an earlier commit's files are rewritten by this attempt
        self.write_json("status.json", status)
        return status

    def end_attempt(self, run_id: str, state: str, error: str | None = None,
                    files: dict[str, dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
        """Commit point: close the current attempt with `state` and write status.json. `files`: the
        fingerprints (bytes, sha256, rows) of the tables the run wrote, checked by verify()."""
        status = self.status() or {"run_id": run_id, "attempts": [{"attempt": 1, "started": None}]}
        if not status.get("attempts"):
            status["attempts"] = [{"attempt": 1, "started": None}]
        attempt = status["attempts"][-1]
        attempt.update(ended=now_iso(), state=state, error=error, **extra)
        status.update(state=state, updated=now_iso(), error=error)
        if files is not None:
            status["files"] = files
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

    def candidates(self) -> tuple[Callable[[], bytes | None], ...]:
        """Where the run may start from, best first, each read only when asked: the store hands back bytes, the
        trainer unpacks them (sweep.train.checkpoint.first_usable)."""
        return (self.load,)

    def save(self, payload: bytes, step: int) -> None:
        self.run_dir.write_bytes(self.NAME, payload)
        self.run_dir.write_json(self.INFO, {"step": step, "saved": now_iso()})

    def step(self) -> int | None:
        """The step of the checkpoint on disk (None: no checkpoint)."""
        info = self.run_dir.read_json(self.INFO) if self.run_dir.exists(self.NAME) else None
        return None if info is None else int(info["step"])

    def clear(self) -> None:
        """Remove the rolling checkpoint (a finished run needs it no more); branch points stay (the driver
        removes them: sweep.driver.scheduler.BranchPoints)."""
        self.run_dir.delete(self.NAME)
        self.run_dir.delete(self.INFO)

    def start(self) -> str:
        """Where the run's next attempt starts, as the dry run, the resume notes and Ctrl-C say it."""
        step = self.step()
        return f"resumes at step {step}" if step else "restarts at step 0"

    def first_step(self) -> int:
        """The first optimizer step the run trains itself, the start of the work its attempts do together (a
        resumed attempt picks up inside it): 0 for a run of its own."""
        return 0

    @staticmethod
    def branch_point_name(step: int) -> str:
        return f"checkpoint/branch-{step}.pt"

    def save_branch_point(self, payload: bytes, step: int) -> None:
        """A WSD trunk's state after `step` steps, where a branch starts: its own file, never replaced
        by the rolling checkpoint and kept when the trunk is done, so a branch lost at any time is
        redone from it, until every branch that starts from it is finished (sweep.driver.scheduler.BranchPoints).
        Written once (a resumed trunk that passes the step again rewrites the same state)."""
        self.run_dir.write_bytes(self.branch_point_name(step), payload)

    def has_branch_point(self, step: int) -> bool:
        return self.run_dir.exists(self.branch_point_name(step))

    def remove_branch_point(self, step: int) -> None:
        self.run_dir.delete(self.branch_point_name(step))


class BranchCheckpoints(CheckpointFile):
    """CheckpointIO of a WSD branch: its own rolling checkpoint when it has a usable one (a branch interrupted in
    its cooldown resumes there), else its trunk's checkpoint at the branch step. Saves go to its own."""

    def __init__(self, run_dir: RunDir, trunk_dir: RunDir, branch_step: int):
        super().__init__(run_dir)
        self.trunk, self.branch_step = CheckpointFile(trunk_dir), branch_step

    def candidates(self) -> tuple[Callable[[], bytes | None], ...]:
        """Its own rolling checkpoint, then its trunk's at the branch step: the trainer passes over its own when
        that does not unpack (cut short or planted: the cooldown starts again from the trunk's)."""
        return (self.load, self.trunk_point)

    def trunk_point(self) -> bytes | None:
        return self.trunk.run_dir.read_bytes(self.branch_point_name(self.branch_step))

    def trains_prefix(self) -> bool:
        """Whether the branch trains its trunk's first branch_step steps itself, from step 0: it has no checkpoint
        of its own and its trunk is done without the checkpoint at the branch step (removed once every branch
        then in the grid was finished, sweep.driver.scheduler.BranchPoints; or never written: the budget was added
        after the trunk finished). The same run all the same: batch i is a pure function of (seed, i), the
        initial model of the seed, and a branch's plan and schedule equal its trunk's before the branch step
        (sweep.plan.grid.plan_branches). It costs the branch step's worth of steps again."""
        return (not self.run_dir.exists(self.NAME) and not self.trunk.has_branch_point(self.branch_step)
                and self.trunk.run_dir.state() == DONE)

    def first_step(self) -> int:
        """The branch step, or 0 when the branch trains its trunk's stable phase itself (trains_prefix): what the
        worker trains (sweep.driver.runner.execute) and what the dry run and the progress bar count
        (sweep.driver.scheduler).
        Asked of a run still to train: a finished branch whose branch point was released looks like one that
        would train the prefix."""
        return 0 if self.trains_prefix() else self.branch_step

    def ready(self) -> bool:
        """Whether the branch can start: its trunk has reached the branch step, it has its own checkpoint, or
        it trains its trunk's stable phase itself (trains_prefix)."""
        if self.trunk.has_branch_point(self.branch_step) or self.run_dir.exists(self.NAME):
            return True
        return self.trunk.run_dir.state() == DONE  # trains_prefix, its other two checks just made (polled: I/O)

    def start(self) -> str:
        own = self.step()
        if own:
            return f"resumes from its own checkpoint at step {own}"
        if self.trunk.has_branch_point(self.branch_step):
            return f"starts from its trunk's checkpoint at step {self.branch_step}"
        trunk = self.trunk.run_dir.state()
        if trunk == DONE:
            return (f"trains its trunk's first {self.branch_step} steps itself (the trunk is done and its "
                    f"checkpoint at step {self.branch_step} is gone), then its cooldown")
        if trunk == DIVERGED:
            return f"cannot start: its trunk diverged without a checkpoint at step {self.branch_step}"
        return f"waits for its trunk to reach step {self.branch_step}"


def checkpoints_for(spec, run_dir: RunDir) -> CheckpointFile:
    """Where a run's checkpoints live: its own directory, and for a WSD branch its trunk's branch point."""
    if spec.trunk_run_id is not None:
        return BranchCheckpoints(run_dir, run_dir.sibling(spec.trunk_run_id), spec.branch_step)
    return CheckpointFile(run_dir)


class Store:
    """The results of one sweep: `<results_dir>/<name>`."""

    def __init__(self, results_dir: str, name: str):
        self.results_dir, self.name = results_dir, name
        fs, root = resolve_filesystem(results_dir)
        self.root = Location(fs, f"{root}/{name}")

    @property
    def base(self) -> str:
        """results_dir resolved here, on the driver: a URI as given, a local path made absolute. Workers get
        this, never the path as typed: a relative path would name a different directory on every node."""
        return self.results_dir if "://" in self.results_dir else os.path.abspath(self.results_dir)

    @property
    def uri(self) -> str:
        """Where the sweep lives, as the user would type it (a local path or URI)."""
        return f"{self.base.rstrip('/')}/{self.name}"

    def run_dir(self, run_id: str) -> RunDir:
        return RunDir(self.root.fs, f"{self.root.path}/runs/run_id={run_id}")

    def states(self, run_ids: list[str]) -> dict[str, str | None]:
        return {rid: self.run_dir(rid).state() for rid in run_ids}

    def verify(self, run_ids: list[str]) -> dict[str, list[str]]:
        """run_id -> problems, for the runs whose files fail RunDir.verify (checked in parallel)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = dict(zip(run_ids, pool.map(lambda rid: self.run_dir(rid).verify(), run_ids)))
        return {rid: problems for rid, problems in found.items() if problems}

    def run_rows(self) -> list[dict[str, Any]]:
        """The run.parquet row of every run directory here, of any grid: what ran before (for planning)."""
        selector = pafs.FileSelector(f"{self.root.path}/runs", allow_not_found=True)
        rows: list[dict[str, Any]] = []
        for info in self.root.fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory:
                table = RunDir(self.root.fs, info.path).read_table("run.parquet")
                rows.extend(table.to_pylist() if table is not None else [])
        return rows
