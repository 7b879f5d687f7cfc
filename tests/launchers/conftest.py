"""What the launcher tests share: the repository's paths, the pinned Ray version, and a private network
and process namespace in which real Ray clusters start on loopback only and cannot outlive the test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = ROOT / "launchers"
VENV_BIN = Path(sys.executable).parent


def pinned_ray_version() -> str:
    """The X.Y.Z of the project's `ray[...]==X.Y.Z` requirement."""
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]  # tomllib is Python >= 3.11
    pins = re.findall(r'^\s*"ray\[[\w,]+\]==([\d.]+)"', dependencies, flags=re.MULTILINE)
    assert len(pins) == 1, f"pyproject.toml's dependencies pin Ray exactly once (ray[...]==X.Y.Z), found {pins}"
    return pins[0]


def _namespace_prefix() -> list[str] | None:
    """`unshare` arguments for a new network, PID and mount namespace (root, or a user namespace otherwise).

    In it the only interface is loopback, so Ray binds and connects to 127.0.0.1 alone; ports cannot
    collide with other Ray instances on the machine; and when the test's process ends, the kernel kills
    every process left in the namespace (--kill-child on its init)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    base = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    for prefix in (base, [*base, "--map-root-user"]):
        try:
            probe = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="session")
def loopback_namespace():
    """run(script, env=None, timeout=300) -> CompletedProcess: a bash script in a fresh namespace whose
    network is loopback only (skips where namespaces cannot be made)."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("needs `unshare` and `ip` for a private loopback-only network namespace")

    def run(script: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        return subprocess.run([*prefix, "bash", "-c", f"set -u; ip link set lo up\n{script}"], env=full_env,
                              capture_output=True, text=True, timeout=timeout)

    return run
