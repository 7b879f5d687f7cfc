"""Live sweep progress: a Ray actor that runs report to, and the rich display the driver draws.

Progress is measured in training FLOPs (a 10x larger run counts 10x more), so the bar and its ETA
move at the speed the cluster actually works, not per finished run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is the driver's: workers and the hub import this module without it
    from rich.console import Console



class ProgressHub:
    """Collects (run_id -> tokens trained) from the workers. Wrapped with ray.remote by the scheduler."""

    def __init__(self):
        self.tokens: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.stopping = False

    def report(self, run_id: str, tokens: int) -> bool:
        """Record a run's progress; returns whether the driver asked the runs to stop."""
        self.started.setdefault(run_id, time.time())
        self.tokens[run_id] = tokens
        return self.stopping

    def request_stop(self) -> None:
        """Ctrl-C on the driver: runs checkpoint at their next log point and end `interrupted`."""
        self.stopping = True

    def snapshot(self) -> tuple[dict[str, int], list[str]]:
        return dict(self.tokens), list(self.started)


def start_hub():
    """A ProgressHub actor on the driver's node (a lost worker node must not take the display with it)."""
    import ray

    from sweep.driver.cluster import on_driver_node

    return ray.remote(num_cpus=0)(ProgressHub).options(**on_driver_node()).remote()


class HubSink:
    """A metrics sink that forwards the token count to the hub, at most every `every_seconds`, and
    learns from the answer whether the driver asked the runs to stop (`should_stop`)."""

    def __init__(self, hub, run_id: str, every_seconds: float = 2.0):
        self.hub, self.run_id, self.every = hub, run_id, every_seconds
        self.last = 0.0
        self.pending = hub.report.remote(run_id, 0)
        self.stopping = False

    def log(self, row: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._collect()
            self.pending = self.hub.report.remote(self.run_id, int(row["tokens"]))

    def _collect(self) -> None:
        """The answer to the previous report, if it has arrived (never waits)."""
        import ray

        if self.pending is not None and ray.wait([self.pending], timeout=0)[0]:
            try:
                self.stopping = bool(ray.get(self.pending)) or self.stopping
            except ray.exceptions.RayError:  # the hub is gone: progress is lost, never the run
                pass
            self.pending = None

    def should_stop(self) -> bool:
        self._collect()
        return self.stopping


class SweepDisplay:
    """A FLOP-weighted progress bar with done / running / failed counts and an ETA."""

    def __init__(self, console: Console, total_flops: float, n_runs: int):
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console, self.n_runs = console, n_runs
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, speed_estimate_period=300, transient=False)
        self.task = self.progress.add_task("", total=max(total_flops, 1.0))

    def __enter__(self) -> SweepDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, *, done: int, failed: int, running: int, flops_done: float) -> None:
        queued = self.n_runs - done - failed - running
        description = (f"[green]done {done}[/]/{self.n_runs}  [cyan]running {running}[/]  "
                       f"[red]failed {failed}[/]  queued {queued}")
        self.progress.update(self.task, completed=flops_done, description=description)

    def note(self, message: str) -> None:
        self.progress.console.print(message)
