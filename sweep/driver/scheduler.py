"""The driver: skip finished runs, hand the rest to workers largest-first, watch, record, summarise.

Resources are declared per run (sweep.plan.resources: a GPU share by the run's size, so small runs are
packed several to a GPU and large ones get a whole GPU; or the user's cluster.gpus_per_run and
cluster.cpus_per_run for every run). Runs are trained by long-lived Ray actors (sweep.driver.worker.RunWorker)
holding one run's resources each, reused run after run (sweep.driver.pool decides which run goes where), so
process start-up, CUDA initialisation and compilation are paid once per worker, and a worker never
changes GPU. Results are consumed in completion order with ray.wait. Retries are narrow: a run whose
worker or node is lost, or that raised an allow-listed transient error (runner.TRANSIENT_ERRORS), is
retried up to cluster.max_retries times from its checkpoint; a run that fails in its own code or
diverges is recorded and never retried. Ctrl-C asks the runs in flight to checkpoint and stop
(`interrupted`); a second Ctrl-C stops them at once.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from sweep.config.schema import SweepConfig
from sweep.driver.pool import Job, RunPool
from sweep.driver.progress import SweepDisplay, start_hub
from sweep.driver.runner import TRANSIENT_ERRORS, commit_failure, run_row, spent_flops
from sweep.driver.worker import RunWorker
from sweep.plan.resources import Node, RunResources, run_device, run_resources, runs_at_once, share_text
from sweep.plan.run_id import human_count, run_id
from sweep.plan.spec import RunSpec
from sweep.store.lease import driver_id, held_by_other, holder, live_lease
from sweep.store.runs import (
    CORRUPT,
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    LEASED,
    RUNNING,
    BranchCheckpoints,
    CheckpointFile,
    Store,
    checkpoints_for,
    now_iso,
)
from sweep.store.tracking import OFFLINE, decide_wandb_mode, sync_command
from sweep.train.flops import n_params, train_flops

STOP_GRACE_SECONDS = 120.0  # after Ctrl-C, how long runs in flight get to checkpoint and stop


@dataclass
class SweepOutcome:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_id -> runs-table row, this invocation
    skipped: list[str] = field(default_factory=list)  # finished before this invocation
    interrupted: bool = False

    @property
    def failed(self) -> list[str]:
        return [rid for rid, row in self.rows.items() if row["status"] == FAILED]

    @property
    def trained(self) -> list[str]:
        return [rid for rid, row in self.rows.items() if row["status"] == DONE]


def plan_table(specs: list[RunSpec], states: dict[str, str | None], title: str, cost=None,
               first: dict[str, int] | None = None) -> Table:
    """The run table of a dry run; with a GridCost, each run to train also shows its resources and cost. FLOPs:
    what each run trains itself, from its step in `first` (first_steps) where given, else its spec's first step."""
    from sweep.plan.cost import GPU, run_columns

    first = first or {}

    extra = ()
    if cost is not None:
        extra = ("GPU", "est. MFU", "hours", "GPU-h") if cost.kind == GPU else ("CPUs", "FLOP/s", "hours", "core-h")
    costs = {c.run_id: c for c in cost.runs} if cost is not None else {}
    table = Table(title=title)
    for column in ("run_id", "model", "N", "D", "FLOPs", "batch", "lr", *extra, "status"):
        table.add_column(column, justify="left" if column in ("run_id", "model", "status") else "right",
                         no_wrap=column == "run_id")
    for spec in specs:
        rid = run_id(spec)
        cells = run_columns(costs[rid], cost.kind, cost.throughput.peak_flops) if rid in costs else ("",) * len(extra)
        model = spec.label + {"trunk": " trunk", "branch": f" branch@{spec.branch_step}"}.get(spec.role, "")
        table.add_row(rid, model, human_count(n_params(spec.model)), human_count(spec.train.n_tokens),
                      f"{spent_flops(spec, first.get(rid)):.2e}", str(spec.train.batch_size), f"{spec.train.lr:.2e}",
                      *cells,
                      states.get(rid) or "pending")
    return table


def describe_state(run_dir, state: str | None, checkpoints: CheckpointFile | None = None) -> str | None:
    """A run's state as the dry run shows it: whether a `running` run is alive (its lease) or was left
    behind by a worker or driver that died, and where an unfinished run would resume. `checkpoints`
    (sweep.store.runs.checkpoints_for) says where: a WSD branch's start is its own checkpoint, its trunk's,
    or a wait for its trunk, whatever its state, so every unfinished branch says which."""
    checkpoints = checkpoints or CheckpointFile(run_dir)
    branch = isinstance(checkpoints, BranchCheckpoints)
    if branch and state in (None, FAILED):
        return f"{state or 'pending'}; {checkpoints.start()}"
    if state not in (RUNNING, INTERRUPTED, CORRUPT):
        return state
    resume = checkpoints.start()
    if state == RUNNING:
        lease = live_lease(run_dir)
        if lease is not None:
            return f"running (pid {lease.get('pid')} on {lease.get('host')})"
        return f"stale: its worker died; {resume}"
    if state == INTERRUPTED:
        return f"{state}; {resume}"
    return f"{state}: redone; {resume}" if branch else f"{state}: redone"


def print_dry_run(cfg: SweepConfig, specs: list[RunSpec], todo: list[RunSpec], states: dict[str, str | None],
                  store: Store, console: Console, title: str = "dry run: nothing launched") -> None:
    """The run table with each run's planned resources and estimated cost, and the grid's total (sweep.plan.cost)."""
    from sweep.driver.cluster import check_resources, planned_nodes
    from sweep.plan.cost import CPU, GPU, bench_documents, choose_throughput, cost_lines, grid_cost

    nodes = planned_nodes(cfg.cluster)
    needs = {run_id(s): run_resources(s, cfg.cluster, nodes) for s in specs}
    kind = GPU if any(needs[run_id(s)].num_gpus > 0 for s in todo) else CPU
    rows = store.run_rows()
    throughput = choose_throughput(kind, rows, bench_documents() if kind == GPU else [], store.uri)
    first = first_steps(todo, store)
    cost = grid_cost(todo, needs, nodes, throughput, first) if todo and throughput is not None else None
    described = {run_id(s): describe_state(store.run_dir(run_id(s)), states[run_id(s)],
                                           checkpoints_for(s, store.run_dir(run_id(s)))) for s in specs}
    console.print(plan_table(specs, described, title, cost, first))
    console.print("planned for " + ", ".join(f"a node of {n.cpus:g} CPUs and {n.gpus:g} GPUs" for n in nodes)
                  + (f" ({cfg.cluster.kind}: cluster.num_cpus / cluster.num_gpus plan for another)"
                     if cfg.cluster.kind == "local" else ""), highlight=False)
    if todo:
        console.print(resources_line([needs[run_id(s)] for s in todo]), highlight=False)
    if any(s.role == "branch" for s in specs):
        spent = sum(spent_flops(s, first.get(run_id(s))) for s in specs)
        full = sum(train_flops(s.model, s.train.n_tokens) for s in specs)
        console.print(f"WSD branches: the grid trains {spent:.3g} FLOPs where independent runs would train "
                      f"{full:.3g} ({spent / full:.0%}); the FLOPs column is what each run trains itself",
                      highlight=False)
    for note in batch_notes(cfg, specs) + replan_notes(cfg, specs, rows):
        console.print(note, highlight=False)
    for line in cost_lines(cost, len(todo), f"no finished CPU runs in {store.uri} to measure throughput from "
                                            "(give the plan GPUs, e.g. cluster.num_gpus=1, for a GPU estimate)"):
        console.print(line, highlight=False)
    for problem in check_resources(cfg.cluster, [needs[run_id(s)] for s in todo], nodes):
        console.print(f"[yellow]warning:[/] this cluster cannot run the grid as planned: {problem}", highlight=False)


def first_steps(todo: list[RunSpec], store: Store) -> dict[str, int]:
    """run_id -> the first step each run still to train will train itself (sweep.store.runs, CheckpointFile.first_step):
    0, or a WSD branch's branch step, or 0 for a branch whose trunk is done without the checkpoint it needs
    (BranchCheckpoints.trains_prefix). What the dry run's FLOPs and cost and the progress bar count."""
    return {run_id(s): checkpoints_for(s, store.run_dir(run_id(s))).first_step() for s in todo}


def batch_notes(cfg: SweepConfig, specs: list[RunSpec]) -> list[str]:
    """Where a shared WSD plan gives branches another batch than their own budgets derive (grid.branch_plan
    largest or smallest with a derived batch): they then train other step counts than the independent
    runs they stand for (bench/wsd_branches.py: at half the steps, +9-17% in loss). Says which, and what
    grid.branch_plan=batch, a trunk per derived batch, would cost instead."""
    if not cfg.grid.branches or cfg.grid.branch_plan == "batch" or cfg.train.batch_size is not None:
        return []
    from sweep.plan.grid import expand, plan_training

    notes = []
    for trunk in (s for s in specs if s.role == "trunk" and s.seed == cfg.grid.seeds[0]):
        family = [s for s in specs if s.trunk_run_id == run_id(trunk)]
        own = {s.n_tokens_budget: plan_training(cfg.train, s.model, s.n_tokens_budget).batch_size for s in family}
        off = sorted((s.n_tokens_budget, own[s.n_tokens_budget]) for s in family
                     if own[s.n_tokens_budget] != s.train.batch_size)
        if off:
            budgets = ", ".join(f"D={human_count(d)} ({b})" for d, b in off)
            notes.append(f"{trunk.label}: branches train at the shared batch of {trunk.train.batch_size} sequences "
                         f"where their own budgets derive another: {budgets}; they take other step counts than "
                         "the independent runs they stand for")
    if notes:
        batch = dataclasses.replace(cfg, grid=dataclasses.replace(cfg.grid, branch_plan="batch"))
        alternative = expand(batch)
        spent = sum(spent_flops(s) for s in alternative)
        full = sum(train_flops(s.model, s.train.n_tokens) for s in alternative)
        notes.append(f"grid.branch_plan=batch gives each budget its own batch, with a trunk per batch size: "
                     f"{spent:.3g} FLOPs, {spent / full:.0%} of independent runs")
    return notes


PLAN_AT = {"largest": "largest budget", "smallest": "smallest budget", "batch": "largest budget of its batch"}


def replan_notes(cfg: SweepConfig, specs: list[RunSpec], rows: list[dict[str, Any]]) -> list[str]:
    """Why a size's WSD trunk and branches are all new although the store holds finished ones of that size
    and seed: they share one plan (batch, peak LR, warm-up; sweep.plan.grid.plan_branches) derived at one budget
    of grid.branch_plan, so a budget added beyond that end (a larger one with `largest`, a smaller one
    with `smallest`) changes every run of the size (with `batch`: of that trunk's family). A budget added
    on the other side re-ids nothing (a trunk's id leaves out its branch points, sweep.plan.run_id.EXCLUDED)."""
    ids = {run_id(s) for s in specs}
    notes = []
    for trunk in (s for s in specs if s.role == "trunk"):
        trunk_id = run_id(trunk)
        budgets = sorted(s.n_tokens_budget for s in specs if s is trunk or s.trunk_run_id == trunk_id)
        whole_size = cfg.grid.branch_plan != "batch"  # else a size has a trunk per batch: its own budgets only
        earlier = [r for r in rows if r["label"] == trunk.label and r["seed"] == trunk.seed and r["status"] == DONE
                   and r["n_params"] == n_params(trunk.model) and r.get("role") in ("trunk", "branch")
                   and r["run_id"] not in ids and (whole_size or r.get("n_tokens_budget") in budgets)]
        plan = trunk.train
        changed = [r for r in earlier if (r["batch_size"], r["lr"]) != (plan.batch_size, plan.lr)]
        if not changed:
            continue
        before = changed[0]
        at = budgets[0] if cfg.grid.branch_plan == "smallest" else budgets[-1]
        notes.append(f"{trunk.label} seed {trunk.seed}: {len(changed)} finished WSD run(s) of this size are not "
                     f"reused, every run of it is new: its trunk and branches share one plan derived at the "
                     f"{PLAN_AT[cfg.grid.branch_plan]} (grid.branch_plan), now D={human_count(at)}, and it changed "
                     f"from batch {before['batch_size']}, peak lr {before['lr']:.3g} to batch {plan.batch_size}, "
                     f"peak lr {plan.lr:.3g} (and the warm-up with it)")
    return notes


def summary_table(specs: list[RunSpec], outcome: SweepOutcome, store: Store) -> Table:
    table = Table(title="sweep summary")
    for column in ("run_id", "status", "N", "D", "val loss", "tok/s", "seconds", "note"):
        table.add_column(column, no_wrap=column == "run_id")
    for spec in specs:
        rid = run_id(spec)
        row = outcome.rows.get(rid)
        if row is None:
            state = store.run_dir(rid).state() or "pending"
            table.add_row(rid, state, human_count(n_params(spec.model)), human_count(spec.train.n_tokens),
                          "", "", "", "finished earlier" if state in FINISHED else "")
            continue
        style = {"done": "green", "diverged": "yellow", "failed": "red", "interrupted": "yellow"}.get(
            row["status"], "")
        error = (row.get("error") or "").strip().splitlines()
        table.add_row(rid, f"[{style}]{row['status']}[/]", human_count(row["n_params"]), human_count(row["n_tokens"]),
                      _fmt(row.get("final_val_loss"), ".4f"), _fmt(row.get("tokens_per_second"), ".0f"),
                      _fmt(row.get("wall_seconds"), ".1f"), error[-1][:80] if error else "")
    return table


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def write_manifest(store: Store, cfg: SweepConfig, specs: list[RunSpec], code_version: str | None,
                   extra: dict[str, Any] | None = None) -> None:
    """sweep.json: which runs make up this sweep's grid (the analysis uses exactly these), its config, and
    `extra` (sweep.driver.stages: the recipe and the calibration runs, never analysed as the grid)."""
    store.root.write_json("sweep.json", {
        "name": cfg.name, "updated": now_iso(), "code_version": code_version,
        "run_ids": [run_id(s) for s in specs], **(extra or {}), "config": dataclasses.asdict(cfg),
    })


def run_sweep(cfg: SweepConfig, specs: list[RunSpec], store: Store, console: Console,
              code_version: str | None = None, stage: str = "grid", manifest: dict[str, Any] | None = None,
              wandb_mode: tuple[str, str] | None = None) -> SweepOutcome:
    """Train every run of `specs` that is not finished yet. Returns what happened. Raises ClusterError (the
    lines of sweep.driver.cluster.require_launchable) before any run starts when the cluster it joins cannot run them.
    stage: "grid" (writes sweep.json, with `manifest`'s keys) or "calibration" (sweep.driver.stages: the runs that
    fit the recipe, listed in sweep.json by the grid's stage). wandb_mode: decided by the caller once for
    both stages (sweep.store.tracking.decide_wandb_mode), else here."""
    import ray

    from sweep.driver.cluster import addable_nodes, connect, live_nodes, require_launchable

    states = store.states([run_id(s) for s in specs])
    corrupt = store.verify([rid for rid, state in states.items() if state in FINISHED])
    for rid, problems in corrupt.items():
        console.print(f"[yellow]{rid}[/] was {states[rid]} but {'; '.join(problems)}: "
                      f"{'it would be redone' if cfg.dry_run else 'redoing it'}", highlight=False)
        states[rid] = CORRUPT
        if not cfg.dry_run:
            store.run_dir(rid).mark_corrupt(problems)
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
            need = needs[run_id(spec)]
            pool.submit(Job(run_id(spec), need, spec))
        _watch(pool, hub, store, outcome, console, owner, branch_points)
    command = sync_command(wandb["directory"]) if wandb_mode == OFFLINE else None
    if command:
        console.print(f"W&B runs are offline; upload them with: {command}", highlight=False, soft_wrap=True)
    return outcome


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


def resume_notes(todo: list[RunSpec], store: Store) -> list[str]:
    """Where each unfinished run of an earlier invocation picks up: its checkpoint's step, or 0; a WSD
    branch its own checkpoint, its trunk's, or a wait for its trunk (sweep.store.runs.BranchCheckpoints.start)."""
    notes = []
    for spec in todo:
        run_dir = store.run_dir(run_id(spec))
        state = run_dir.state()
        if state is None:
            continue
        notes.append(f"{run_id(spec)} ({state} earlier; {spec.train.n_steps} steps) "
                     f"{checkpoints_for(spec, run_dir).start()}")
    return notes


def resources_line(needs: list[RunResources]) -> str:
    """'resources per run: 3 x (1 CPU, 1/8 GPU), 1 x (4 CPUs, 1 GPU)': what the runs ask Ray for."""
    counts: dict[tuple[float, float], int] = {}
    for need in needs:
        counts[(need.num_cpus, need.num_gpus)] = counts.get((need.num_cpus, need.num_gpus), 0) + 1
    parts = [f"{n} x ({cpus:g} CPU{'s' * (cpus != 1)}, {share_text(gpus) + ' GPU' if gpus else 'no GPU'})"
             for (cpus, gpus), n in sorted(counts.items(), key=lambda item: (-item[0][1], -item[0][0]))]
    return "resources per run: " + ", ".join(parts)


def progress_plan(todo: list[RunSpec], store: Store) -> tuple[dict[str, float], dict[str, int]]:
    """What the progress bar counts for each run to train: (run_id -> FLOPs it trains itself, run_id -> tokens
    before its first step, where its token count starts to count): a WSD branch its cooldown, or every step
    when it trains its trunk's stable phase too (first_steps)."""
    first = first_steps(todo, store)
    total = {run_id(s): spent_flops(s, first[run_id(s)]) for s in todo}
    first_tokens = {run_id(s): first[run_id(s)] * s.train.batch_size * s.model.seq_len for s in todo}
    return total, first_tokens


def _watch(pool: RunPool, hub, store: Store, outcome: SweepOutcome, console: Console, owner: str,
           branch_points: BranchPoints) -> None:
    import ray

    specs = {job.key: job.payload for job in pool.queue}
    total, first_tokens = progress_plan(list(specs.values()), store)
    per_token = {rid: float(train_flops(s.model, 1)) for rid, s in specs.items()}
    display = SweepDisplay(console, sum(total.values()), len(specs))
    finished_flops = 0.0
    waiting = Waiting(store, owner, console)
    trunks = AwaitingTrunk(store)
    tokens, started = {}, []  # the hub's last snapshot
    for job in list(pool.queue):  # a WSD branch whose trunk has not reached its branch step yet: held back
        if not trunks.ready(job):
            pool.queue.remove(job)
            trunks.add(job)
    for job in list(pool.queue):  # another driver's worker trains it: wait for it instead
        if waiting.held(job):
            pool.queue.remove(job)
    try:
        with display:
            while pool.queue or pool.running or waiting.jobs or trunks.jobs:
                pending = {job.key for job in pool.queue} | {job.key for _, job in pool.running.values()} | set(
                    waiting.jobs)
                for job, problem in trunks.poll(pending):
                    if problem is None:
                        pool.submit(job)
                        continue
                    row = commit_failure(store.run_dir(job.key), job.payload, job.key, FAILED, problem)
                    outcome.rows[job.key] = row
                    display.note(_one_line(row))
                pool.dispatch()
                ready, _ = ray.wait(list(pool.running), num_returns=1, timeout=1.0)
                for ref in ready:
                    job, row = _collect(pool, ref, store)
                    if row is None:  # queued again for another attempt
                        continue
                    if row["status"] == LEASED:
                        waiting.add(job, row["error"])
                        continue
                    outcome.rows[row["run_id"]] = row
                    finished_flops += total[row["run_id"]]
                    display.note(_one_line(row))
                    if row["status"] in FINISHED:
                        branch_points.release(job.payload)
                for job, state in waiting.poll():
                    if state in FINISHED:
                        branch_points.release(job.payload)
                        outcome.skipped.append(job.key)
                        finished_flops += total[job.key]
                        display.note(f"{job.key} was finished by another driver")
                    else:
                        job.attempts = 0
                        pool.submit(job)
                try:
                    tokens, started = ray.get(hub.snapshot.remote())
                except ray.exceptions.RayError:  # the hub is gone: the display stops moving, the sweep goes on
                    pass
                live = [r for r in started if r not in outcome.rows]
                flops = finished_flops + sum(min(max(0, tokens.get(r, 0) - first_tokens[r]) * per_token[r], total[r])
                                             for r in live if r in total)
                failed = sum(r["status"] != DONE for r in outcome.rows.values())
                display.update(done=len(outcome.rows) - failed, failed=failed, running=len(live), flops_done=flops)
    except KeyboardInterrupt:
        outcome.interrupted = True
        _stop(pool, hub, store, outcome, console)
    finally:
        pool.shutdown()


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


def _one_line(row: dict[str, Any]) -> str:
    style = {"done": "green", "diverged": "yellow", "failed": "red"}.get(row["status"], "")
    loss = row.get("final_val_loss")
    extra = f"val loss {loss:.4f}" if loss is not None else (row.get("error") or "").strip().splitlines()[-1:]
    seconds = row.get("wall_seconds")
    return (f"[{style}]{row['status']:>8}[/] {row['run_id']}  {extra if isinstance(extra, str) else ' '.join(extra)}"
            + (f"  ({seconds:.0f} s)" if seconds else ""))
