"""Which run goes to which worker: long-lived workers per resource shape, reused run after run.

Bookkeeping only (no Ray here; the scheduler passes in how to start, call and stop a worker), so the
rules are plain to read and test:

* Runs wait in one queue, in the order given (the grid's largest-compute-first).
* A run goes to an idle worker of its shape (its CPUs and GPU share) if there is one; otherwise a new
  worker of that shape is started, as long as the cluster could hold one more of them
  (`capacity(shape)`). Workers of a shape are never more than the runs of that shape still to do.
* A worker whose shape has no queued runs left is stopped as soon as it is idle, so its resources
  go to the runs of other shapes.
* A run whose worker died (a lost node, an out-of-memory kill) or that raised an allow-listed
  transient error goes back to the front of the queue while it has retries left.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    """One run to train: what the worker needs (`payload`), its resource shape and attempts so far."""

    key: str
    shape: Hashable
    payload: Any
    attempts: int = 0
    recorded: int = 0  # attempts the run's status.json held when the job was last handed out


@dataclass
class _Worker:
    handle: Any
    shape: Hashable


@dataclass
class RunPool:
    start: Callable[[Hashable], Any]  # shape -> a new worker handle
    call: Callable[[Any, Job], Any]  # (worker, job) -> a reference to the run's result
    stop: Callable[[Any], None]  # stop a worker (it is idle)
    capacity: Callable[[Hashable], int]  # how many workers of this shape the cluster can hold at once
    max_retries: int = 0
    queue: list[Job] = field(default_factory=list)
    running: dict[Any, tuple[_Worker, Job]] = field(default_factory=dict)  # result reference -> worker, job
    idle: list[_Worker] = field(default_factory=list)
    started: int = 0  # workers started over the pool's life

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def workers(self, shape: Hashable) -> int:
        return sum(w.shape == shape for w in self.idle) + sum(w.shape == shape for w, _ in self.running.values())

    def dispatch(self) -> None:
        """Hand queued runs to idle or new workers; stop idle workers nobody needs."""
        for job in list(self.queue):
            worker = next((w for w in self.idle if w.shape == job.shape), None)
            if worker is not None:
                self.idle.remove(worker)
            elif self.workers(job.shape) < self.capacity(job.shape):
                worker = _Worker(self.start(job.shape), job.shape)
                self.started += 1
            else:
                continue
            self.queue.remove(job)
            job.attempts += 1
            self.running[self.call(worker.handle, job)] = (worker, job)
        wanted = {job.shape for job in self.queue}
        for worker in [w for w in self.idle if w.shape not in wanted]:
            self.idle.remove(worker)
            self.stop(worker.handle)

    def finished(self, ref: Any) -> Job:
        """The run behind `ref` returned (its worker is idle again)."""
        worker, job = self.running.pop(ref)
        self.idle.append(worker)
        return job

    def failed(self, ref: Any, worker_lost: bool, started: bool = True) -> Job | None:
        """The run behind `ref` raised a retryable error, or its worker died (`worker_lost`). Returns
        the job when it has no retries left (the caller records it failed), else re-queues it. A run
        that never `started` (its worker died before running it, e.g. placed on a node that was
        dying) does not use up a retry."""
        worker, job = self.running.pop(ref)
        if not worker_lost:
            self.idle.append(worker)
        if not started:
            job.attempts -= 1
        if job.attempts > self.max_retries:
            return job
        self.queue.insert(0, job)
        return None

    def shutdown(self) -> None:
        """Stop every worker (those still running a run are stopped mid-run)."""
        for worker in self.idle + [w for w, _ in self.running.values()]:
            self.stop(worker.handle)
        self.idle.clear()
        self.running.clear()
