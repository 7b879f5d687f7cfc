"""Who is training a run right now: a lease in the run's directory, so two drivers never train it twice.

`lease.json` holds {owner, host, pid, token, expires}: `owner` names the driver invocation whose
worker trains the run, `expires` (Unix seconds) is pushed forward by a thread of that worker every
quarter of the lease while the run trains, and the file is deleted when the run ends. A lease whose
`expires` has passed belongs to a dead worker or driver and may be taken over.

Taking a lease works on any pyarrow filesystem (no locking primitive needed): read it; if someone
else holds a live one, back off; otherwise write ours (atomic rename), wait `settle` seconds and read
it back. Two takers racing both write, and the later rename wins: each reads back the winner's token,
and the loser backs off. This holds as long as the time between a taker's read and its write is
shorter than `settle` (milliseconds against a second).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sweep.store.runs import RunDir

NAME = "lease.json"


def driver_id() -> str:
    """This driver invocation's name in the leases its workers take."""
    return f"{socket.gethostname()}-{os.getpid()}-{int(time.time())}"


def live_lease(run_dir: RunDir, now: float | None = None) -> dict[str, Any] | None:
    """The run's lease if it has not expired, else None."""
    try:
        lease = run_dir.read_json(NAME)
    except ValueError:  # cut short: nobody holds it
        return None
    if not lease or lease.get("expires", 0) <= (time.time() if now is None else now):
        return None
    return lease


def holder(lease: dict[str, Any]) -> str:
    """Who holds a lease, as messages name it: 'owner (pid P on host)'."""
    return f"{lease.get('owner')} (pid {lease.get('pid')} on {lease.get('host')})"


def held_by_other(run_dir: RunDir, owner: str) -> dict[str, Any] | None:
    """The live lease of another driver's worker on this run, if any."""
    lease = live_lease(run_dir)
    return lease if lease is not None and lease.get("owner") != owner else None


@dataclass
class Lease:
    """A lease this process holds; `renewing()` keeps it alive while a run trains."""

    run_dir: RunDir
    owner: str
    seconds: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def record(self) -> dict[str, Any]:
        return {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                "expires": time.time() + self.seconds}

    def write(self) -> None:
        self.run_dir.write_json(NAME, self.record())

    def mine(self) -> bool:
        lease = live_lease(self.run_dir)
        return lease is not None and lease.get("token") == self.token

    def release(self) -> None:
        if self.mine():
            self.run_dir.delete(NAME)

    def renewing(self) -> _Renewal:
        return _Renewal(self)


class _Renewal:
    """Context manager: a daemon thread rewrites the lease every quarter of its length; released at exit."""

    def __init__(self, lease: Lease):
        self.lease, self.done = lease, threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.lease.seconds / 4):
            try:
                self.lease.write()
            except OSError:  # a storage hiccup: the next renewal tries again, well before expiry
                pass

    def __enter__(self) -> Lease:
        self.thread.start()
        return self.lease

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.lease.release()


def acquire(run_dir: RunDir, owner: str, seconds: float, settle: float = 1.0) -> Lease | None:
    """Take the run's lease for `owner`, or None when another owner holds a live one. A lease of the
    same owner (this driver's earlier, lost worker) is taken over."""
    if held_by_other(run_dir, owner) is not None:
        return None
    lease = Lease(run_dir, owner, seconds)
    lease.write()
    time.sleep(settle)
    return lease if lease.mine() else None
