"""The driver loop: skip finished runs, hand the rest to workers largest-first, watch, record.

Resources are declared per run (sweep.plan.resources: a GPU share by the run's size, so small runs are
packed several to a GPU and large ones get a whole GPU; or the user's cluster.gpus_per_run and
cluster.cpus_per_run for every run). Runs are trained by long-lived Ray actors (sweep.driver.worker.RunWorker)
holding one run's resources each, reused run after run (sweep.driver.pool decides which run goes where), so
process start-up, CUDA initialisation and compilation are paid once per worker, and a worker never
changes GPU. Results are consumed in completion order with ray.wait. Retries are narrow: a run whose
worker or node is lost, or that raised an allow-listed transient error (runner.TRANSIENT_ERRORS), is
retried up to cluster.max_retries times from its checkpoint; a run that fails in its own code or
diverges is recorded and never retried. Ctrl-C asks the runs in flight to checkpoint and stop
(`interrupted`); a second Ctrl-C stops them at once. What the driver prints before (the dry run) and after
(the summary) is sweep.driver.dry_run's; when a WSD branch may start and when a branch point goes,
sweep.driver.branch_points'.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from rich.console import Console

from sweep.config.schema import SweepConfig
from sweep.driver.branch_points import AwaitingTrunk, BranchPoints
from sweep.driver.dry_run import SweepOutcome, first_steps, print_dry_run, resources_line, resume_notes, run_line
from sweep.driver.pool import Job, RunPool
from sweep.driver.progress import SweepDisplay, start_hub
from sweep.driver.runner import TRANSIENT_ERRORS, commit_failure, run_row, spent_flops
from sweep.driver.worker import RunWorker
from sweep.plan.resources import Node, RunResources, run_device, run_resources, runs_at_once
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec
from sweep.store.lease import driver_id, held_by_other, holder
from sweep.store.runs import (
    CORRUPT,
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    LEASED,
    RUNNING,
    Store,
    checkpoints_for,
    now_iso,
)
from sweep.store.tracking import OFFLINE, decide_wandb_mode, sync_command
from sweep.train.flops import train_flops

STOP_GRACE_SECONDS = 120.0  # after Ctrl-C, how long runs in flight get to checkpoint and stop


def write_manifest(store: Store, cfg: SweepConfig, specs: list[RunSpec], code_version: str | None,
                   extra: dict[str, Any] | None = None) -> None:
    """sweep.json: which runs make up this sweep's grid (the analysis uses exactly these), its config, and
    `extra` (sweep.driver.stages: the recipe and the calibration runs, never analysed as the grid).

    Every grid run under the name is kept: grids/<grid_id>/sweep.json (grid_id: a hash of its sorted run ids),
    beside the calibration.json it was expanded with; sweep.json names the latest (analysis.tables.grids)."""
    import hashlib

    ids = [run_id(s) for s in specs]
    grid_id = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12]
    manifest = {"name": cfg.name, "updated": now_iso(), "code_version": code_version, "grid_id": grid_id,
                "run_ids": ids, **(extra or {}), "config": dataclasses.asdict(cfg)}
    calibration = store.root.read_json("calibration.json")
    if calibration is not None and calibration.get("run_ids") == manifest.get("calibration_run_ids"):
        store.root.write_json(f"grids/{grid_id}/calibration.json", calibration)
    store.root.write_json(f"grids/{grid_id}/sweep.json", manifest)
    store.root.write_json("sweep.json", manifest)


def run_sweep(cfg: SweepConfig, specs: list[RunSpec], store: Store, console: Console,
              code_version: str | None = None, stage: str = "grid", manifest: dict[str, Any] | None = None,
              wandb_mode: tuple[str, str] | None = None) -> SweepOutcome:
    """Train every run of `specs` that is not finished yet. Returns what happened. Raises ClusterError (the
    lines of sweep.driver.cluster.require_launchable) before any run starts when the cluster it joins cannot run them.
    stage: "grid" (writes sweep.json, with `manifest`'s keys) or "calibration" (sweep.driver.stages: the runs that
    fit the recipe, listed in sweep.json by the grid's stage). wandb_mode: decided by the caller once for
    both stages (sweep.store.tracking.decide_wandb_mode), else here."""
    states = verified_states(cfg, specs, store, console)
    todo = [s for s in specs if states[run_id(s)] not in FINISHED]
    branch_points = BranchPoints(specs, store)
    if not cfg.dry_run:
        branch_points.release()  # branches finished by a driver that died before it could tidy up
    outcome = SweepOutcome(skipped=[rid for rid, state in states.items() if state in FINISHED])
    what = "the recipe's calibration" if stage == "calibration" else "the grid"
    console.print(f"sweep [bold]{cfg.name}[/]: {len(specs)} runs in {what}, {len(outcome.skipped)} already "
                  f"finished, {len(todo)} to train  ->  {store.uri}")
    if cfg.dry_run:
        print_dry_run(cfg, specs, todo, states, store, console,
                      "dry run, the recipe's calibration: nothing launched" if stage == "calibration"
                      else "dry run: nothing launched")
        return outcome
    if stage == "grid":
        write_manifest(store, cfg, specs, code_version, manifest)
    if not todo:
        console.print(f"nothing to train: every run of {what} is finished (delete a run's directory to redo it)")
        return outcome

    wandb_mode, reason = wandb_mode or decide_wandb_mode(cfg.logger)
    console.print(f"W&B: {wandb_mode} ({reason})")
    wandb = {"mode": wandb_mode, "project": cfg.logger.project, "entity": cfg.logger.entity, "group": cfg.name,
             "directory": f"{store.root.path}/wandb" if "://" not in store.uri else "wandb"}
    _train(cfg, todo, store, console, outcome, branch_points, wandb, code_version)
    command = sync_command(wandb["directory"]) if wandb_mode == OFFLINE else None
    if command:
        console.print(f"W&B runs are offline; upload them with: {command}", highlight=False, soft_wrap=True)
    return outcome


def verified_states(cfg: SweepConfig, specs: list[RunSpec], store: Store, console: Console) -> dict[str, str | None]:
    """run_id -> state of every run; a finished run whose files fail verification counts as corrupt (and, unless
    this is a dry run, is marked so: it is redone)."""
    states = store.states([run_id(s) for s in specs])
    corrupt = store.verify([rid for rid, state in states.items() if state in FINISHED])
    for rid, problems in corrupt.items():
        console.print(f"[yellow]{rid}[/] was {states[rid]} but {'; '.join(problems)}: "
                      f"{'it would be redone' if cfg.dry_run else 'redoing it'}", highlight=False)
        states[rid] = CORRUPT
        if not cfg.dry_run:
            store.run_dir(rid).mark_corrupt(problems)
    return states


def _train(cfg: SweepConfig, todo: list[RunSpec], store: Store, console: Console, outcome: SweepOutcome,
           branch_points: BranchPoints, wandb: dict[str, Any], code_version: str | None) -> None:
    """Join (or start) Ray, check the cluster can hold the runs, submit them all largest-first and watch them."""
    import ray

    from sweep.driver.cluster import addable_nodes, connect, live_nodes, require_launchable

    t0 = time.perf_counter()
    with connect(cfg.cluster):
        addable = addable_nodes(cfg.cluster)
        nodes = live_nodes() + addable
        require_launchable(cfg.cluster, todo, nodes)  # what ready() checks, for callers that skip it
        needs = {run_id(s): run_resources(s, cfg.cluster, nodes) for s in todo}
        console.print(f"Ray up in {time.perf_counter() - t0:.1f} s: {ray.cluster_resources().get('CPU', 0):g} CPUs, "
                      f"{ray.cluster_resources().get('GPU', 0):g} GPUs"
                      + ("; the autoscaler may add nodes of " + ", ".join(f"{n.cpus:g} CPUs/{n.gpus:g} GPUs"
                                                                         for n in addable) if addable else ""))
        console.print(resources_line(list(needs.values())))
        for note in resume_notes(todo, store):
            console.print(note, highlight=False)
        hub = start_hub()
        owner = driver_id()
        pool = worker_pool(cfg, nodes, hub, wandb, code_version, owner, store)
        for spec in todo:  # specs arrive largest-first from grid.expand
            pool.submit(Job(run_id(spec), needs[run_id(spec)], spec))
        _watch(pool, hub, store, outcome, console, owner, branch_points)


def worker_pool(cfg: SweepConfig, nodes: list[Node], hub, wandb: dict[str, Any],
                code_version: str | None, owner: str, store: Store) -> RunPool:
    """A RunPool over RunWorker actors: one actor per (CPUs, GPU share) slot the runs need."""
    import ray

    actor = ray.remote(RunWorker)

    def start(need: RunResources):
        if need.ranks > 1:  # holds nothing itself: its Ray Train workers hold a GPU each
            return actor.options(num_cpus=0, num_gpus=0, max_restarts=0).remote(1, hub)
        return actor.options(num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_restarts=0,
                             max_concurrency=1).remote(need.threads, hub)

    def call(handle, job: Job):
        job.recorded = store.run_dir(job.key).attempts()  # to tell whether the call starts an attempt
        need = job.shape
        return handle.run.remote(job.payload.to_dict(), store.base, cfg.name,
                                 run_device(cfg.cluster.device, need), wandb, code_version,
                                 gpu_share=min(need.num_gpus, 1.0), ranks=need.ranks,
                                 cpus_per_rank=need.num_cpus / need.ranks, owner=owner,
                                 lease_seconds=cfg.cluster.lease_seconds)

    def capacity(need: RunResources) -> int:
        """Workers of this shape the live nodes hold at once (at least one: an autoscaler may add a node)."""
        return max(1, runs_at_once(need, nodes))

    return RunPool(start=start, call=call, stop=lambda handle: ray.kill(handle), capacity=capacity,
                   max_retries=cfg.cluster.max_retries)


def progress_plan(todo: list[RunSpec], store: Store) -> tuple[dict[str, float], dict[str, int]]:
    """What the progress bar counts for each run to train: (run_id -> FLOPs it trains itself, run_id -> tokens
    before its first step, where its token count starts to count): a WSD branch its cooldown, or every step
    when it trains its trunk's stable phase too (first_steps)."""
    first = first_steps(todo, store)
    total = {run_id(s): spent_flops(s, first[run_id(s)]) for s in todo}
    first_tokens = {run_id(s): first[run_id(s)] * s.train.batch_size * s.model.seq_len for s in todo}
    return total, first_tokens


class Progress:
    """The progress bar's numbers: runs done, failed and running, and FLOPs trained (finished runs in full,
    running ones by the tokens the workers last reported to the hub, counted from each run's first step)."""

    def __init__(self, console: Console, specs: dict[str, RunSpec], store: Store):
        self.total, self.first_tokens = progress_plan(list(specs.values()), store)
        self.per_token = {rid: float(train_flops(s.model, 1)) for rid, s in specs.items()}
        self.display = SweepDisplay(console, sum(self.total.values()), len(specs))
        self.finished_flops = 0.0
        self.tokens: dict[str, int] = {}  # the hub's last snapshot
        self.started: list[str] = []

    def finished(self, rid: str, note: str) -> None:
        self.finished_flops += self.total[rid]
        self.display.note(note)

    def refresh(self, hub, outcome: SweepOutcome) -> None:
        import ray

        try:
            self.tokens, self.started = ray.get(hub.snapshot.remote())
        except ray.exceptions.RayError:  # the hub is gone: the display stops moving, the sweep goes on
            pass
        live = [r for r in self.started if r not in outcome.rows]
        flops = self.finished_flops + sum(
            min(max(0, self.tokens.get(r, 0) - self.first_tokens[r]) * self.per_token[r], self.total[r])
            for r in live if r in self.total)
        failed = sum(r["status"] != DONE for r in outcome.rows.values())
        self.display.update(done=len(outcome.rows) - failed, failed=failed, running=len(live), flops_done=flops)


def _watch(pool: RunPool, hub, store: Store, outcome: SweepOutcome, console: Console, owner: str,
           branch_points: BranchPoints) -> None:
    """Dispatch, collect and record runs in completion order until none is queued, training or waiting."""
    import ray

    progress = Progress(console, {job.key: job.payload for job in pool.queue}, store)
    waiting = Waiting(store, owner, console)
    trunks = AwaitingTrunk(store)
    trunks.hold_back(pool.queue)  # a WSD branch whose trunk has not reached its branch step yet
    waiting.hold_back(pool.queue)  # another driver's worker trains it: wait for it instead
    try:
        with progress.display:
            while pool.queue or pool.running or waiting.jobs or trunks.jobs:
                _start_branches(pool, trunks, waiting, store, outcome, progress)
                pool.dispatch()
                ready, _ = ray.wait(list(pool.running), num_returns=1, timeout=1.0)
                for ref in ready:
                    _record(pool, ref, store, outcome, progress, waiting, branch_points)
                for job, state in waiting.poll():
                    if state in FINISHED:
                        branch_points.release(job.payload)
                        outcome.skipped.append(job.key)
                        progress.finished(job.key, f"{job.key} was finished by another driver")
                    else:
                        job.attempts = 0
                        pool.submit(job)
                progress.refresh(hub, outcome)
    except KeyboardInterrupt:
        outcome.interrupted = True
        _stop(pool, hub, store, outcome, console)
    finally:
        pool.shutdown()


def _start_branches(pool: RunPool, trunks: AwaitingTrunk, waiting: Waiting, store: Store, outcome: SweepOutcome,
                    progress: Progress) -> None:
    """Submit the held-back branches that may start now; fail, with the reason, those that never will."""
    pending = {job.key for job in pool.queue} | {job.key for _, job in pool.running.values()} | set(waiting.jobs)
    for job, problem in trunks.poll(pending):
        if problem is None:
            pool.submit(job)
            continue
        row = commit_failure(store.run_dir(job.key), job.payload, job.key, FAILED, problem)
        outcome.rows[job.key] = row
        progress.display.note(run_line(row))


def _record(pool: RunPool, ref, store: Store, outcome: SweepOutcome, progress: Progress, waiting: Waiting,
            branch_points: BranchPoints) -> None:
    """A run's worker returned: record its row (or wait for another driver, or leave it queued again)."""
    job, row = _collect(pool, ref, store)
    if row is None:  # queued again for another attempt
        return
    if row["status"] == LEASED:
        waiting.add(job, row["error"])
        return
    outcome.rows[row["run_id"]] = row
    progress.finished(row["run_id"], run_line(row))
    if row["status"] in FINISHED:
        branch_points.release(job.payload)


def _collect(pool: RunPool, ref, store: Store) -> tuple[Job | None, dict[str, Any] | None]:
    """(job, the finished run's row); the row is None when the run was queued again (a lost worker or
    a transient error with retries left). Failures Ray reports (lost worker after all retries, ...)
    are recorded here."""
    import ray

    try:
        row = ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None) or exc
        lost = isinstance(exc, ray.exceptions.RayActorError)
        if not lost and not isinstance(cause, TRANSIENT_ERRORS):
            job = pool.finished(ref)
        else:
            job = pool.running[ref][1]
            started = store.run_dir(job.key).attempts() > job.recorded
            job = pool.failed(ref, worker_lost=lost, started=started)
            if job is None:
                return None, None
        spec = job.payload
        return job, commit_failure(store.run_dir(job.key), spec, job.key, FAILED, f"{type(cause).__name__}: {cause}")
    return pool.finished(ref), row


class Waiting:
    """Runs another driver's worker is training (a live lease, sweep.store.lease): checked every
    POLL_SECONDS until they are finished (counted as done elsewhere) or their lease lapses (its owner
    died: trained here, resuming from its checkpoint)."""

    POLL_SECONDS = 5.0

    def __init__(self, store: Store, owner: str, console: Console):
        self.store, self.owner, self.console = store, owner, console
        self.jobs: dict[str, Job] = {}
        self.last = 0.0

    def hold_back(self, queue: list[Job]) -> None:
        """Take out of `queue` (and wait here for) the runs another driver's worker holds."""
        for job in list(queue):
            if self.held(job):
                queue.remove(job)

    def held(self, job: Job) -> bool:
        lease = held_by_other(self.store.run_dir(job.key), self.owner)
        if lease is not None:
            self.add(job, f"being trained by {holder(lease)}")
        return lease is not None

    def add(self, job: Job, why: str) -> None:
        self.jobs[job.key] = job
        self.console.print(f"{job.key} is {why}; waiting for it", highlight=False)

    def poll(self) -> list[tuple[Job, str | None]]:
        """(job, state) of the waiting runs that are finished or whose lease lapsed."""
        if not self.jobs or time.monotonic() - self.last < self.POLL_SECONDS:
            return []
        self.last = time.monotonic()
        released = []
        for key in list(self.jobs):
            run_dir = self.store.run_dir(key)
            state = run_dir.state()
            if state in FINISHED or held_by_other(run_dir, self.owner) is None:
                released.append((self.jobs.pop(key), state))
        return released


def _stop(pool: RunPool, hub, store: Store, outcome: SweepOutcome, console: Console) -> None:
    """Ctrl-C: no new runs; runs in flight checkpoint at their next log point and end `interrupted`
    (a second Ctrl-C, or STOP_GRACE_SECONDS, stops them at once: they resume from their last
    periodic checkpoint). Every run's status says what happened to it."""
    import ray

    pool.queue.clear()
    hub.request_stop.remote()
    console.print(f"[yellow]interrupted[/]: asking {len(pool.running)} run(s) in flight to checkpoint and stop "
                  "(Ctrl-C again to stop them now)")
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    try:
        while pool.running and time.monotonic() < deadline:
            for ref in ray.wait(list(pool.running), num_returns=1, timeout=1.0)[0]:
                _, row = _collect(pool, ref, store)
                if row is not None and row["status"] != LEASED:
                    outcome.rows[row["run_id"]] = row
    except KeyboardInterrupt:
        pass
    for _, job in list(pool.running.values()):
        run_dir = store.run_dir(job.key)
        if run_dir.state() == RUNNING:
            checkpoints = checkpoints_for(job.payload, run_dir)
            step = checkpoints.step()
            error = f"stopped by Ctrl-C before it could checkpoint; {checkpoints.start()}"
            status = run_dir.end_attempt(job.key, INTERRUPTED, error=error, checkpoint_step=step)
            outcome.rows[job.key] = run_row(job.payload, job.key, INTERRUPTED, len(status["attempts"]), error=error)
    stopped = [r for r in outcome.rows.values() if r["status"] == INTERRUPTED]
    kept = len(outcome.rows) - len(stopped)
    console.print(f"{kept} run(s) finished in this invocation are kept; {len(stopped)} interrupted run(s) resume "
                  "from their checkpoints when you rerun (see `dry_run=true`)")
