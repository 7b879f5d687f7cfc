"""The driver: skip finished runs, submit the rest to Ray largest-first, watch, record, summarise.

Resources are declared per task, per run (sweep.resources: a GPU share by the run's size, so small
runs are packed several to a GPU and large ones get a whole GPU; or the user's cluster.gpus_per_run
and cluster.cpus_per_run for every run) and Ray's scheduler bounds concurrency. Results are
consumed in completion order with ray.wait. Retries are narrow: Ray retries a run after its worker
or node is lost (cluster.max_retries) and after an allow-listed transient error
(runner.TRANSIENT_ERRORS); a run that fails in its own code or diverges is recorded and never
retried. Each run is sweep.worker's
worker_entry; workers are reused across runs (max_calls=0), so process start-up and CUDA
initialisation are paid once per worker.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from sweep.config import SweepConfig
from sweep.progress import ProgressHub, SweepDisplay
from sweep.resources import RunResources, run_device, run_resources, share_text
from sweep.run_id import human_count, run_id
from sweep.runner import TRANSIENT_ERRORS, commit_failure
from sweep.spec import RunSpec
from sweep.store import DONE, FAILED, FINISHED, Store, now_iso
from sweep.tracking import decide_wandb_mode
from sweep.train.flops import n_params, train_flops
from sweep.worker import worker_entry


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


def plan_table(specs: list[RunSpec], states: dict[str, str | None], title: str, cost=None) -> Table:
    """The run table of a dry run; with a GridCost, each run to train also shows its resources and cost."""
    from sweep.cost import GPU, run_columns

    extra = ()
    if cost is not None:
        extra = ("GPU", "est. MFU", "hours", "GPU-h") if cost.kind == GPU else ("CPUs", "FLOP/s", "hours", "core-h")
    costs = {c.run_id: c for c in cost.runs} if cost is not None else {}
    table = Table(title=title)
    for column in ("run_id", "model", "N", "D", "FLOPs", "lr", *extra, "status"):
        table.add_column(column, justify="left" if column in ("run_id", "model", "status") else "right",
                         no_wrap=column == "run_id")
    for spec in specs:
        rid = run_id(spec)
        cells = run_columns(costs[rid], cost.kind, cost.throughput.peak_flops) if rid in costs else ("",) * len(extra)
        table.add_row(rid, spec.label, human_count(n_params(spec.model)), human_count(spec.train.n_tokens),
                      f"{train_flops(spec.model, spec.train.n_tokens):.2e}", f"{spec.train.lr:.2e}", *cells,
                      states.get(rid) or "pending")
    return table


def print_dry_run(cfg: SweepConfig, specs: list[RunSpec], todo: list[RunSpec], states: dict[str, str | None],
                  store: Store, console: Console) -> None:
    """The run table with each run's planned resources and estimated cost, and the grid's total (sweep.cost)."""
    from sweep.cluster import check_resources, planned_nodes
    from sweep.cost import CPU, GPU, bench_documents, choose_throughput, cost_lines, grid_cost

    nodes = planned_nodes(cfg.cluster)
    needs = {run_id(s): run_resources(s, cfg.cluster, nodes) for s in specs}
    kind = GPU if any(needs[run_id(s)].num_gpus > 0 for s in todo) else CPU
    throughput = choose_throughput(kind, store.run_rows(), bench_documents() if kind == GPU else [], store.uri)
    cost = grid_cost(todo, needs, nodes, throughput) if todo and throughput is not None else None
    console.print(plan_table(specs, states, "dry run: nothing launched", cost))
    console.print("planned for " + ", ".join(f"a node of {n.cpus:g} CPUs and {n.gpus:g} GPUs" for n in nodes)
                  + (f" ({cfg.cluster.kind}: cluster.num_cpus / cluster.num_gpus plan for another)"
                     if cfg.cluster.kind == "local" else ""), highlight=False)
    if todo:
        console.print(resources_line([needs[run_id(s)] for s in todo]), highlight=False)
    for line in cost_lines(cost, len(todo), f"no finished CPU runs in {store.uri} to measure throughput from "
                                            "(give the plan GPUs, e.g. cluster.num_gpus=1, for a GPU estimate)"):
        console.print(line, highlight=False)
    for problem in check_resources(cfg.cluster, [needs[run_id(s)] for s in todo], nodes):
        console.print(f"[yellow]warning:[/] this cluster cannot run the grid as planned: {problem}", highlight=False)


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
        style = {"done": "green", "diverged": "yellow", "failed": "red"}.get(row["status"], "")
        error = (row.get("error") or "").strip().splitlines()
        table.add_row(rid, f"[{style}]{row['status']}[/]", human_count(row["n_params"]), human_count(row["n_tokens"]),
                      _fmt(row.get("final_val_loss"), ".4f"), _fmt(row.get("tokens_per_second"), ".0f"),
                      _fmt(row.get("wall_seconds"), ".1f"), error[-1][:80] if error else "")
    return table


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def write_manifest(store: Store, cfg: SweepConfig, specs: list[RunSpec], code_version: str | None) -> None:
    """sweep.json: which runs make up this sweep (the analysis uses exactly these) and its config."""
    store.root.write_json("sweep.json", {
        "name": cfg.name, "updated": now_iso(), "code_version": code_version,
        "run_ids": [run_id(s) for s in specs], "config": dataclasses.asdict(cfg),
    })


def run_sweep(cfg: SweepConfig, specs: list[RunSpec], store: Store, console: Console,
              code_version: str | None = None) -> SweepOutcome:
    """Train every run of `specs` that is not finished yet. Returns what happened."""
    import ray

    from sweep.cluster import ClusterError, check_resources, connect, live_nodes

    states = store.states([run_id(s) for s in specs])
    todo = [s for s in specs if states[run_id(s)] not in FINISHED]
    outcome = SweepOutcome(skipped=[rid for rid, state in states.items() if state in FINISHED])
    console.print(f"sweep [bold]{cfg.name}[/]: {len(specs)} runs in the grid, {len(outcome.skipped)} already "
                  f"finished, {len(todo)} to train  ->  {store.uri}")
    if cfg.dry_run:
        print_dry_run(cfg, specs, todo, states, store, console)
        return outcome
    write_manifest(store, cfg, specs, code_version)
    if not todo:
        console.print("nothing to train: every run of this grid is finished (delete a run's directory to redo it)")
        return outcome

    wandb_mode, reason = decide_wandb_mode(cfg.logger)
    console.print(f"W&B: {wandb_mode} ({reason})")
    wandb = {"mode": wandb_mode, "project": cfg.logger.project, "entity": cfg.logger.entity, "group": cfg.name,
             "directory": f"{store.root.path}/wandb" if "://" not in store.uri else "wandb"}

    t0 = time.perf_counter()
    with connect(cfg.cluster):
        nodes = live_nodes()
        needs = {run_id(s): run_resources(s, cfg.cluster, nodes) for s in todo}
        problems = check_resources(cfg.cluster, list(needs.values()), nodes)
        if problems:
            raise ClusterError("; ".join(problems))
        console.print(f"Ray up in {time.perf_counter() - t0:.1f} s: {ray.cluster_resources().get('CPU', 0):g} CPUs, "
                      f"{ray.cluster_resources().get('GPU', 0):g} GPUs")
        console.print(resources_line(list(needs.values())))
        hub = ray.remote(num_cpus=0)(ProgressHub).remote()
        task = ray.remote(max_calls=0)(worker_entry)
        pending = {}
        for spec in todo:  # specs arrive largest-first from grid.expand
            need = needs[run_id(spec)]
            ref = task.options(num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_retries=cfg.cluster.max_retries,
                               retry_exceptions=list(TRANSIENT_ERRORS)).remote(
                spec.to_dict(), cfg.results_dir, cfg.name, run_device(cfg.cluster.device, need), need.threads,
                wandb, hub, code_version, gpu_share=need.num_gpus)
            pending[ref] = spec
        _watch(pending, hub, store, outcome, console)
    return outcome


def resources_line(needs: list[RunResources]) -> str:
    """'resources per run: 3 x (1 CPU, 1/8 GPU), 1 x (4 CPUs, 1 GPU)': what the runs ask Ray for."""
    counts: dict[tuple[float, float], int] = {}
    for need in needs:
        counts[(need.num_cpus, need.num_gpus)] = counts.get((need.num_cpus, need.num_gpus), 0) + 1
    parts = [f"{n} x ({cpus:g} CPU{'s' * (cpus != 1)}, {share_text(gpus) + ' GPU' if gpus else 'no GPU'})"
             for (cpus, gpus), n in sorted(counts.items(), key=lambda item: (-item[0][1], -item[0][0]))]
    return "resources per run: " + ", ".join(parts)


def _watch(pending: dict, hub, store: Store, outcome: SweepOutcome, console: Console) -> None:
    import ray

    total = {run_id(s): float(train_flops(s.model, s.train.n_tokens)) for s in pending.values()}
    per_token = {run_id(s): float(train_flops(s.model, 1)) for s in pending.values()}
    display = SweepDisplay(console, sum(total.values()), len(pending))
    finished_flops = 0.0
    try:
        with display:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    spec = pending.pop(ref)
                    rid = run_id(spec)
                    row = _result(ref, spec, rid, store)
                    outcome.rows[rid] = row
                    finished_flops += total[rid]
                    display.note(_one_line(row))
                tokens, started = ray.get(hub.snapshot.remote())
                live = [r for r in started if r not in outcome.rows]
                flops = finished_flops + sum(min(tokens.get(r, 0) * per_token[r], total[r]) for r in live if r in total)
                failed = sum(r["status"] != DONE for r in outcome.rows.values())
                display.update(done=len(outcome.rows) - failed, failed=failed, running=len(live), flops_done=flops)
    except KeyboardInterrupt:
        outcome.interrupted = True
        for ref in pending:
            ray.cancel(ref, force=True)
        console.print(f"[yellow]interrupted[/]: {len(outcome.rows)} runs finished in this invocation are kept; "
                      f"{len(pending)} unfinished runs resume from their last checkpoint when you rerun")


def _result(ref, spec: RunSpec, rid: str, store: Store) -> dict[str, Any]:
    """The run's row; Ray-level failures (lost worker after all retries, ...) are recorded here."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None) or exc
        return commit_failure(store.run_dir(rid), spec, rid, FAILED, f"{type(cause).__name__}: {cause}")


def _one_line(row: dict[str, Any]) -> str:
    style = {"done": "green", "diverged": "yellow", "failed": "red"}.get(row["status"], "")
    loss = row.get("final_val_loss")
    extra = f"val loss {loss:.4f}" if loss is not None else (row.get("error") or "").strip().splitlines()[-1:]
    seconds = row.get("wall_seconds")
    return (f"[{style}]{row['status']:>8}[/] {row['run_id']}  {extra if isinstance(extra, str) else ' '.join(extra)}"
            + (f"  ({seconds:.0f} s)" if seconds else ""))
