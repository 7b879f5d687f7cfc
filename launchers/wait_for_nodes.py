"""Wait until a Ray cluster has N live nodes, instead of sleeping (launchers/slurm.sbatch).

    python launchers/wait_for_nodes.py HOST:PORT N [--timeout SECONDS] [--pid PID ...]

Exits 0 once N nodes are alive and prints them; exits 1 saying what registered when the timeout passes
or when a watched process (the srun steps running `ray start --block`) ends first, so a node that failed
to start is reported at once rather than after the timeout.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie, not yet reaped by its parent, has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def describe(nodes: list[dict]) -> str:
    return ", ".join(f"{n['NodeManagerAddress']} ({n['Resources'].get('CPU', 0):g} CPUs, "
                     f"{n['Resources'].get('GPU', 0):g} GPUs)" for n in nodes)


def wait(address: str, n_nodes: int, timeout: float, pids: list[int]) -> int:
    start = time.monotonic()
    deadline = start + timeout
    alive: list[dict] = []
    connected = False

    def gone() -> list[int]:
        return [pid for pid in pids if not running(pid)]

    while time.monotonic() < deadline:
        if dead := gone():
            print(f"wait_for_nodes: the Ray step(s) {dead} ended before {n_nodes} node(s) registered at "
                  f"{address} ({len(alive)} did: {describe(alive) or 'none'}); see their output above",
                  file=sys.stderr)
            return 1
        if not connected:
            if not listening(address):
                time.sleep(0.5)
                continue
            import ray

            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            connected = True
        alive = [node for node in ray.nodes() if node["Alive"]]
        if len(alive) >= n_nodes:
            print(f"wait_for_nodes: {len(alive)} node(s) up at {address} after "
                  f"{time.monotonic() - start:.0f} s: {describe(alive)}", file=sys.stderr)
            return 0
        time.sleep(1)
    print(f"wait_for_nodes: {len(alive)} of {n_nodes} node(s) registered at {address} within {timeout:g} s "
          f"({describe(alive) or 'none'})", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="the head's HOST:PORT (GCS)")
    parser.add_argument("nodes", type=int, help="how many live nodes to wait for, the head included")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--pid", type=int, nargs="*", default=[], help="processes that must stay alive meanwhile")
    args = parser.parse_args()
    try:
        return wait(args.address, args.nodes, args.timeout, args.pid)
    finally:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            sys.modules["ray"].shutdown()


if __name__ == "__main__":
    sys.exit(main())
