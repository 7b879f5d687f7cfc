"""What a grid will cost before it runs: GPU-hours (CPU core-hours on a CPU cluster) and wall-clock.

Each run's cost is its training FLOPs (sweep.train.flops.train_flops) divided by the throughput a
run of its size achieves, read off measured figures and interpolated linearly in log N (held
constant beyond the smallest and largest measured sizes):

    seconds = FLOPs / achieved FLOP/s(N),   GPU-hours = seconds x GPU share / 3600

(core-hours = seconds x CPUs / 3600 on CPU). A packed run's own throughput is taken to be what it
achieves alone: the GPU share rule (sweep.plan.resources) packs only runs too small to keep a GPU busy,
whose speed hardly drops when they share it (4 packed copies of a 3 x 128 model on one H200: 4.2x the
throughput of one).
Wall-clock simulates the cluster: runs start largest-first, each as soon as a node has its CPUs
and one of its GPUs room for its share, as Ray schedules them.

Where the throughput comes from, first found wins (`choose_throughput`):
  1. finished runs of the same results directory (run.parquet: n_params, flops, wall_seconds, and
     mfu / gpu_type on GPU): wall time per FLOP, so start-up and evaluation are included;
  2. GPU rows of bench/results/*.json (n_params and mfu, with the device name);
  3. GPU only: BUILT_IN_H200, figures measured on an H200 with a slower train() than today's (see there).
A CPU cluster is estimated from finished CPU runs only, or not at all.

Pure functions, plus the two loaders and `cost_lines` (the printer's text) at the end.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.plan.resources import Node, RunResources, fits, idle_gpus, share_text
from sweep.plan.run_id import human_count, run_id
from sweep.plan.spec import RunSpec
from sweep.train.flops import n_params, train_flops, train_flops_per_token
from sweep.train.shape import ModelShape

GPU, CPU = "gpu", "cpu"

# The peak the built-in MFU figures are fractions of: H200 dense bf16, as sweep.train.hardware's
# PEAK_BF16_FLOPS has it (tests/sweep/test_cost.py checks they agree; that module imports torch).
H200_PEAK_FLOPS = 989.4e12


@dataclass(frozen=True)
class Figure:
    """One measured throughput: a model shape and either its tokens/s or its MFU on the H200."""

    what: str  # "train": train() with the real task mixture | "model": the model + optimizer step alone
    shape: ModelShape
    tokens_per_second: float | None = None
    mfu: float | None = None

    def flops_per_second(self) -> float:
        if self.mfu is not None:
            return self.mfu * H200_PEAK_FLOPS
        return self.tokens_per_second * train_flops_per_token(self.shape)


# Measured on one H200 (bf16, torch 2.11) with a train() that lacked derived batch sizes, compile caches
# and batches made off the critical path: expect today's code to do better, and replace these with your own
# (bench/results/, or the finished runs of a sweep).
BUILT_IN_H200: tuple[Figure, ...] = (
    # train() with the real task mixture, grid=emergence as shipped: 16 x 128 tokens per step.
    Figure("train", ModelShape(n_layer=2, d_model=32, n_head=2), tokens_per_second=310e3),  # g1, 33K params
    Figure("train", ModelShape(n_layer=4, d_model=192, n_head=6), tokens_per_second=224e3),  # g4, 1.8M
    Figure("train", ModelShape(n_layer=12, d_model=512, n_head=8), mfu=0.029),  # g7, 38M (122K tok/s)
    # The model + fused AdamW step alone, compiled, nanoGPT's shapes (vocab 50304, T 1024): the ceiling.
    Figure("model", ModelShape(n_layer=6, d_model=384, n_head=6, seq_len=1024, vocab_size=50304), mfu=0.348),
    Figure("model", ModelShape(n_layer=12, d_model=768, n_head=12, seq_len=1024, vocab_size=50304), mfu=0.421),
    Figure("model", ModelShape(n_layer=24, d_model=1024, n_head=16, seq_len=1024, vocab_size=50304), mfu=0.435),
)


@dataclass(frozen=True)
class Throughput:
    """Achieved FLOP/s of one run against its parameter count, and where the figures come from."""

    kind: str  # GPU | CPU
    points: tuple[tuple[float, float], ...]  # (n_params, achieved FLOP/s per run), ascending n_params
    source: str  # one line for the user
    peak_flops: float | None = None  # GPU: what MFU is a fraction of
    device: str = ""  # "NVIDIA H200", "cpu": whose hours these are

    def flops_per_second(self, n_params_: float) -> float:
        """Linear in log N between measured sizes, constant beyond them."""
        xs = [math.log(n) for n, _ in self.points]
        ys = [y for _, y in self.points]
        x = math.log(n_params_)
        if x <= xs[0]:
            return ys[0]
        if x >= xs[-1]:
            return ys[-1]
        i = next(k for k in range(1, len(xs)) if x <= xs[k])
        t = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
        return ys[i - 1] + t * (ys[i] - ys[i - 1])


def train_points_first(train: Iterable[tuple[float, float]], model: Iterable[tuple[float, float]]
                       ) -> tuple[tuple[float, float], ...]:
    """train() figures where measured; the model-alone figures only above the largest of them (they are
    a ceiling train() has not reached: at 30M the model alone reaches 34.8% MFU, train() as shipped 2.9%).
    Several figures at one size: their median."""
    train, model = list(train), list(model)
    largest = max((n for n, _ in train), default=0.0)
    chosen = train + [(n, y) for n, y in model if n > largest]
    by_size: dict[float, list[float]] = {}
    for n, y in chosen:
        by_size.setdefault(float(n), []).append(float(y))
    return tuple((n, _median(ys)) for n, ys in sorted(by_size.items()))


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def built_in_throughput() -> Throughput:
    train = [(n_params(f.shape), f.flops_per_second()) for f in BUILT_IN_H200 if f.what == "train"]
    model = [(n_params(f.shape), f.flops_per_second()) for f in BUILT_IN_H200 if f.what == "model"]
    return Throughput(GPU, train_points_first(train, model), peak_flops=H200_PEAK_FLOPS, device="NVIDIA H200",
                      source="built-in figures measured on an H200 before the GPU optimisations: train() "
                             "as shipped (16 x 128 tokens per step) up to 38M params, the model step alone above; "
                             "training time only")


def finished_runs_throughput(rows: Sequence[dict[str, Any]], kind: str, where: str) -> Throughput | None:
    """From finished runs' run.parquet rows: FLOPs per wall second (start-up and evaluation included).
    GPU: runs with an MFU and a GPU type; CPU: runs on the CPU."""
    def usable(r: dict[str, Any]) -> bool:
        ok = r.get("status") == "done" and (r.get("wall_seconds") or 0) > 0 and (r.get("flops") or 0) > 0
        if kind == GPU:
            return ok and r.get("mfu") is not None and bool(r.get("gpu_type"))
        return ok and r.get("device") == "cpu"

    runs = [r for r in rows if usable(r)]
    if not runs:
        return None
    points = train_points_first([(r["n_params"], r["flops"] / r["wall_seconds"]) for r in runs], [])
    if kind == CPU:
        return Throughput(CPU, points, device="cpu",
                          source=f"the wall time per FLOP of {len(runs)} finished CPU run(s) in {where}")
    # MFU's denominator, recovered from each run: tokens/s x FLOPs per token / MFU.
    peaks = [r["tokens_per_second"] * r["flops"] / r["n_tokens"] / r["mfu"]
             for r in runs if r["mfu"] and r.get("tokens_per_second") and r.get("n_tokens")]
    gpu_types = sorted({r["gpu_type"] for r in runs})
    return Throughput(GPU, points, peak_flops=_median(peaks) if peaks else None, device=", ".join(gpu_types),
                      source=f"the wall time per FLOP of {len(runs)} finished GPU run(s) in {where} "
                             f"({', '.join(gpu_types)}; start-up and evaluation included)")


def bench_throughput(documents: Sequence[dict[str, Any]], peak_of=None) -> Throughput | None:
    """From bench/results documents: rows with n_params and mfu measured on a GPU.

    A document is {"device": ..., "rows": [...]} or one row (JSON lines); a row's own "device" wins.
    Rows whose "what" (or "kind", "stage") starts with "train" measured train(); the others the model
    step alone (see train_points_first). `peak_of(device name) -> FLOP/s or None` converts MFU.
    """
    candidates = []
    for doc in documents:
        for row in doc.get("rows", [doc]) if isinstance(doc, dict) else []:
            if not isinstance(row, dict):
                continue
            device = str(row.get("device") or doc.get("device") or "")
            if device and not device.lower().startswith("cpu") and row.get("n_params") is not None and row.get("mfu"):
                candidates.append((device, row))
    if not candidates:
        return None
    if peak_of is None:
        from sweep.train.hardware import PEAK_BF16_FLOPS  # imports torch: only when GPU rows exist

        def peak_of(name: str) -> float | None:
            return next((flops for key, flops in PEAK_BF16_FLOPS if key in name), None)

    train, model, devices, peaks = [], [], set(), []
    for device, row in candidates:
        peak = peak_of(device)
        if peak is None:
            continue
        label = str(row.get("what") or row.get("kind") or row.get("stage") or "").lower()
        (train if label.startswith("train") else model).append((float(row["n_params"]), row["mfu"] * peak))
        devices.add(device)
        peaks.append(peak)
    if not train and not model:
        return None
    which = "train()" if train else "the model step alone"
    names = ", ".join(sorted(devices))
    return Throughput(GPU, train_points_first(train, model), peak_flops=_median(peaks), device=names,
                      source=f"{len(train) + len(model)} GPU measurements in bench/results ({names}; {which}); "
                             "training time only")


def choose_throughput(kind: str, finished_rows: Sequence[dict[str, Any]], bench_documents: Sequence[dict[str, Any]],
                      where: str) -> Throughput | None:
    """The first source that has figures for this kind of cluster (the order in the module doc)."""
    found = finished_runs_throughput(finished_rows, kind, where)
    if found is None and kind == GPU:
        found = bench_throughput(bench_documents) if bench_documents else None
        found = found or built_in_throughput()
    return found


# ---- the estimate -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunCost:
    run_id: str
    resources: RunResources
    flops_per_second: float  # achieved by the run (estimated)
    seconds: float  # wall time of the run
    device_hours: float  # GPU-hours (seconds x share) or core-hours (seconds x CPUs)


@dataclass(frozen=True)
class GridCost:
    kind: str  # GPU | CPU
    runs: tuple[RunCost, ...]
    device_hours: float
    wall_hours: float
    n_devices: float  # GPUs (or CPUs) of the cluster the wall-clock is for
    throughput: Throughput


def run_cost(spec: RunSpec, resources: RunResources, throughput: Throughput, first_step: int | None = None) -> RunCost:
    """The run's training from `first_step` (None: spec.first_step, a WSD branch's cooldown only)."""
    fps = throughput.flops_per_second(n_params(spec.model))
    seconds = train_flops(spec.model, spec.tokens_from(first_step)) / fps
    held = resources.num_gpus if throughput.kind == GPU else resources.num_cpus
    return RunCost(run_id(spec), resources, fps, seconds, seconds * held / 3600)


def makespan_seconds(jobs: Sequence[tuple[float, RunResources]], nodes: Sequence[Node]) -> float:
    """Wall-clock of `jobs` (seconds, resources) on `nodes`, as Ray runs them: in order, each started as
    soon as one node has its CPUs free and one of its GPUs room for its share (a share above 1 takes
    that many whole GPUs of the node); a later job that fits starts before an earlier one that does
    not. Raises ValueError for a job no node can ever hold."""
    for _, need in jobs:
        if not any(fits(need, node.cpus, idle_gpus(node)) for node in nodes):
            raise ValueError(f"no node can hold a run of {need.num_cpus:g} CPUs and {need.num_gpus:g} GPUs")
    cpus = [node.cpus for node in nodes]
    gpus = [idle_gpus(node) for node in nodes]
    pending = list(jobs)
    running: list[tuple[float, int, int, float, list[tuple[int, float]]]] = []  # end, order, node, cpus, gpus
    now, order = 0.0, 0
    while pending:
        waiting = []
        for seconds, need in pending:
            node = next((i for i in range(len(nodes)) if fits(need, cpus[i], gpus[i])), None)
            if node is None:
                waiting.append((seconds, need))
                continue
            taken = _take_gpus(need.num_gpus, gpus[node])
            cpus[node] -= need.num_cpus
            heapq.heappush(running, (now + seconds, order, node, need.num_cpus, taken))
            order += 1
        pending = waiting
        if pending:
            now, _, node, held_cpus, taken = heapq.heappop(running)
            cpus[node] += held_cpus
            for g, amount in taken:
                gpus[node][g] += amount
    return max((end for end, *_ in running), default=now)


def _take_gpus(share: float, free_gpus: list[float]) -> list[tuple[int, float]]:
    """Take `share` from the node's GPUs (the first with room; whole empty GPUs above 1): [(gpu, amount)]."""
    if share <= 0:
        return []
    if share <= 1:
        g = next(g for g, room in enumerate(free_gpus) if room + 1e-9 >= share)
        taken = [(g, share)]
    else:
        taken = [(g, 1.0) for g, room in enumerate(free_gpus) if room >= 1 - 1e-9][:math.ceil(share - 1e-9)]
    for g, amount in taken:
        free_gpus[g] -= amount
    return taken


def grid_cost(specs: Sequence[RunSpec], resources: dict[str, RunResources], nodes: Sequence[Node],
              throughput: Throughput, first_steps: dict[str, int] | None = None) -> GridCost:
    """The cost of training `specs` (in this order, largest first) on `nodes`; `first_steps` (run_id -> step,
    sweep.driver.dry_run.first_steps) where a run trains more than its spec's own steps (a WSD branch from step 0)."""
    first_steps = first_steps or {}
    runs = tuple(run_cost(s, resources[run_id(s)], throughput, first_steps.get(run_id(s))) for s in specs)
    try:
        wall = makespan_seconds([(r.seconds, r.resources) for r in runs], nodes)
    except ValueError:  # a run no node can hold: check_resources says which; no wall-clock then
        wall = float("nan")
    n_devices = sum(n.gpus for n in nodes) if throughput.kind == GPU else sum(n.cpus for n in nodes)
    return GridCost(throughput.kind, runs, sum(r.device_hours for r in runs), wall / 3600, n_devices, throughput)


def cost_lines(cost: GridCost | None, n_todo: int, no_estimate: str = "") -> list[str]:
    """The dry run's summary: total device-hours, wall-clock on this cluster, and the estimate's source."""
    if n_todo == 0:
        return ["nothing to train: every run of this grid is finished"]
    if cost is None:
        return [f"no estimate of the cost: {no_estimate}"]
    unit = "GPU-hours" if cost.kind == GPU else "CPU core-hours"
    devices = f"{cost.n_devices:g} GPU{'s' * (cost.n_devices != 1)}" if cost.kind == GPU else \
        f"{cost.n_devices:g} CPUs"
    packing = ""
    if cost.kind == GPU:
        shares = sorted({r.resources.num_gpus for r in cost.runs})
        packing = " (GPU shares per run: " + ", ".join(share_text(s) for s in shares) + ")"
    device = f" of {cost.throughput.device}" if cost.kind == GPU and cost.throughput.device else ""
    return [f"estimated cost of the {len(cost.runs)} run(s) to train: {cost.device_hours:.3g} {unit}{device}; "
            f"about {_hours(cost.wall_hours)} wall-clock on {devices}{packing}",
            f"estimate from {cost.throughput.source}"]


def _hours(hours: float) -> str:
    if not math.isfinite(hours):
        return "? hours"
    if hours < 1:
        return f"{hours * 60:.3g} minutes"
    return f"{hours:.3g} hours"


def run_columns(cost: RunCost, kind: str, peak_flops: float | None) -> tuple[str, str, str, str]:
    """(held, speed, hours, device-hours) cells of one run in the dry-run table."""
    if kind == GPU:
        held = share_text(cost.resources.num_gpus)
        speed = f"{100 * cost.flops_per_second / peak_flops:.2g}%" if peak_flops else f"{cost.flops_per_second:.2e}"
    else:
        held = f"{cost.resources.num_cpus:g}"
        speed = human_count(cost.flops_per_second)
    return held, speed, f"{cost.seconds / 3600:.3g}", f"{cost.device_hours:.3g}"


# ---- loaders (the I/O edge) -----------------------------------------------------------------------------------

BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def bench_documents(directory: Path = BENCH_RESULTS) -> list[dict[str, Any]]:
    """Every JSON document (or JSON line) under bench/results; unreadable files are skipped."""
    documents: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        text = path.read_text(errors="replace")
        try:
            parsed = json.loads(text)
            documents.extend(parsed if isinstance(parsed, list) else [parsed])
        except json.JSONDecodeError:
            for line in text.splitlines():
                try:
                    documents.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return [d for d in documents if isinstance(d, dict)]
