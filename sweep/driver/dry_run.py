"""What a sweep will do and cost (the dry run), and what it did (the summary): the driver's words to the user.

The dry run's table (each run's state, planned resources and estimated cost, sweep.plan.cost), its notes (WSD
branch savings, shared batches, renewed plans, where unfinished runs resume), and the summary table and run
lines of a sweep that trained. Reads the store; launches nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from sweep.config.schema import SweepConfig
from sweep.driver.runner import spent_flops
from sweep.plan.resources import RunResources, run_resources, share_text
from sweep.plan.run_id import human_count, run_id
from sweep.plan.spec import RunSpec
from sweep.store.lease import live_lease
from sweep.store.runs import (
    CORRUPT,
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    BranchCheckpoints,
    CheckpointFile,
    Store,
    checkpoints_for,
)
from sweep.train.flops import n_params, train_flops


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
    and seed: they share one plan (batch, peak LR, warm-up; sweep.plan.branches.plan_branches) derived at one budget
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



def run_line(row: dict[str, Any]) -> str:
    """One finished run, as the live display notes it: its status, id, and final loss or last error line."""
    style = {"done": "green", "diverged": "yellow", "failed": "red"}.get(row["status"], "")
    loss = row.get("final_val_loss")
    extra = f"val loss {loss:.4f}" if loss is not None else (row.get("error") or "").strip().splitlines()[-1:]
    seconds = row.get("wall_seconds")
    return (f"[{style}]{row['status']:>8}[/] {row['run_id']}  {extra if isinstance(extra, str) else ' '.join(extra)}"
            + (f"  ({seconds:.0f} s)" if seconds else ""))
