"""File I/O for the analysis on a local path or any pyarrow.fs URI (s3://, gs://): the only I/O edge."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pyarrow.fs as pafs


def _resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_bytes(uri: str) -> bytes | None:
    fs, path = _resolve(uri)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except (FileNotFoundError, OSError):
        return None


def read_json(uri: str) -> Any | None:
    """The JSON document at `uri`, or None when there is none."""
    payload = read_bytes(uri)
    return None if payload is None else json.loads(payload)


def write_bytes(uri: str, payload: bytes) -> None:
    """Write to a temporary name, then rename into place (atomic on local disks)."""
    fs, path = _resolve(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with fs.open_output_stream(tmp) as out:
        out.write(payload)
    fs.move(tmp, path)


def list_files(uri: str) -> list[tuple[str, int, int]]:
    """(path relative to `uri`, size, modification time in ns) of every file below `uri`; [] if absent."""
    fs, path = _resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return [(info.path[len(path):].lstrip("/"), info.size, info.mtime_ns or 0)
            for info in infos if info.type == pafs.FileType.File]


def remove(uri: str) -> None:
    """Delete the file at `uri`; nothing when there is none."""
    fs, path = _resolve(uri)
    try:
        fs.delete_file(path)
    except (FileNotFoundError, OSError):
        pass


def exists(uri: str) -> bool:
    fs, path = _resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def json_ready(value):
    """JSON-ready: numpy scalars to Python, NaN/inf to None, recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
