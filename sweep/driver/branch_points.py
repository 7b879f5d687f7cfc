"""Every run-time WSD rule: when a branch may start, and when its trunk's branch point is deleted.

The plan (which budgets share a trunk, each branch's step) is sweep.plan.branches'; where a branch resumes
or starts from is read from the store (sweep.store.runs.BranchCheckpoints). The driver (sweep.driver.scheduler)
holds branches back with AwaitingTrunk and tidies branch points with BranchPoints.
"""

from __future__ import annotations

import time

from sweep.driver.pool import Job
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec
from sweep.store.runs import CheckpointFile, Store, checkpoints_for


class BranchPoints:
    """The rule for a WSD trunk's branch-point checkpoints (checkpoint/branch-<step>.pt in the trunk's run
    directory), decided here by the driver, the one process that knows the grid: a branch point is deleted
    once every branch of this grid that starts from it is finished (done or diverged: never rerun), and
    never before, so a branch lost at any time, even after its trunk is done, is redone from it. Checked
    when a sweep starts (after finished runs are verified: a corrupt branch is unfinished) and whenever a
    trunk or a branch commits (a trunk resumed from before a branch step writes that point again).
    A branch redone after its branch point is gone (its directory deleted, its files corrupt, or a budget
    added after the trunk finished) trains its trunk's stable phase itself (BranchCheckpoints.trains_prefix)."""

    def __init__(self, specs: list[RunSpec], store: Store):
        self.store = store
        self.users: dict[tuple[str, int], list[str]] = {}  # (trunk run_id, branch step) -> its branches
        for spec in specs:
            if spec.trunk_run_id is not None:
                self.users.setdefault((spec.trunk_run_id, spec.branch_step), []).append(run_id(spec))

    def release(self, spec: RunSpec | None = None) -> list[tuple[str, int]]:
        """Delete the branch points (of `spec`'s trunk when given, else of every trunk) whose branches are all
        finished; returns the (trunk, step) pairs deleted."""
        trunk = None if spec is None else spec.trunk_run_id or run_id(spec)
        released = []
        for (trunk_id, step), branches in self.users.items():
            if trunk is not None and trunk_id != trunk:
                continue
            trunk_dir = CheckpointFile(self.store.run_dir(trunk_id))
            if trunk_dir.has_branch_point(step) and all(self.store.run_dir(b).is_finished() for b in branches):
                trunk_dir.remove_branch_point(step)
                released.append((trunk_id, step))
        return released


class AwaitingTrunk:
    """WSD branches held back until their trunk has written the checkpoint at their branch step (or the
    branch has a checkpoint of its own), checked every POLL_SECONDS; then submitted like any run, so
    they train beside the trunk's continuation on the same workers. A branch whose trunk is no longer
    pending in this sweep (finished, failed, diverged) without that checkpoint is failed with the reason."""

    POLL_SECONDS = 2.0

    def __init__(self, store: Store):
        self.store = store
        self.jobs: dict[str, Job] = {}
        self.last = 0.0

    def ready(self, job: Job) -> bool:
        spec = job.payload
        if spec.trunk_run_id is None:
            return True
        return checkpoints_for(spec, self.store.run_dir(job.key)).ready()

    def add(self, job: Job) -> None:
        self.jobs[job.key] = job

    def hold_back(self, queue: list[Job]) -> None:
        """Take out of `queue` (and hold here) the branches that cannot start yet."""
        for job in list(queue):
            if not self.ready(job):
                queue.remove(job)
                self.add(job)

    def poll(self, pending: set[str]) -> list[tuple[Job, str | None]]:
        """(job, None) for branches now ready; (job, why) for those that never will be in this sweep.
        `pending`: the runs still queued, training or waiting in this sweep."""
        if not self.jobs or time.monotonic() - self.last < self.POLL_SECONDS:
            return []
        self.last = time.monotonic()
        released = []
        for key, job in list(self.jobs.items()):
            spec = job.payload
            if self.ready(job):
                released.append((self.jobs.pop(key), None))
            elif spec.trunk_run_id not in pending:
                state = self.store.run_dir(spec.trunk_run_id).state() or "not started"
                released.append((self.jobs.pop(key), f"its trunk {spec.trunk_run_id} is {state} without a checkpoint "
                                 f"at branch step {spec.branch_step}; rerun the sweep (a failed trunk is retrained), "
                                 "or delete the trunk's run directory to retrain it"))
        return released
