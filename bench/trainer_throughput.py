"""Training-step throughput of our model against nanoGPT's, measured side by side in one process.

    .venv/bin/python -m bench.trainer_throughput [--quick] [--no-compile] [--threads 2] [--rounds 25]

nanoGPT's reference CPU shapes: byte vocabulary (256), sequence 128, batch 32, (n_layer, d_model) in
(2, 64), (3, 128), (4, 192), (6, 256), n_head = d_model / 32. One training step is forward (mean
cross-entropy), backward, a fused AdamW step and zero_grad, for each of:

* nanoGPT eager: `bench/nanogpt_reference.py`, the baseline, in nanoGPT's precision: bf16 autocast on a
  GPU, fp32 on a CPU (its train.py autocasts on CUDA only);
* ours eager: `sweep.train.model.GPT` (pre-norm, RoPE, tied embeddings), in the precision the trainer
  picks (`train.precision=auto`: bf16 autocast on a GPU and on a CPU with AMX tiles, else fp32);
* ours compiled: the same with `torch.compile(model.loss)`, as the trainer compiles it;
* ours eager fp32, only where the trainer's precision differs from nanoGPT's (an AMX CPU): the
  like-for-like ratio, so a gain from bf16 is told apart from one in the model code.

The machine this runs on is usually shared, so absolute timings drift by 2x within a minute. The
variants are therefore interleaved: every round times a segment of each (same number of steps, the
order reversed every other round), and the ratios reported are medians over rounds of the per-round
ratios, which a slow minute affects on both sides alike. Tokens/s are medians over rounds too. With
--threads 1 --clock thread the steps are timed in this thread's CPU seconds, which other processes
disturb less than wall time (still through shared caches and the hypervisor): a steadier comparison
of the work each step does (compile seconds stay wall time).

Compile seconds are the first compiled step's wall time less a compiled step's: "cold" with an empty
inductor cache (a fresh temporary cache directory unless --cache-dir is given), "warm" after
`torch._dynamo.reset()` in the same process on a new model of the same shape (inductor's FX-graph
and AOTAutograd caches hit: a worker starting its next same-shape run). A process's first compile
also pays a one-time start-up (imports, compile workers), measured apart on a one-line function and
reported as inductor_startup_seconds. From these and the step times, the eager run time above which
compiling pays for itself: compile_s / (1 - t_compiled / t_eager).

On a busy 2-core machine the default OpenMP wait policy (idle threads spin) makes 2-thread steps 2-10x
slower whenever another process holds a core, eager and compiled alike; OMP_WAIT_POLICY=PASSIVE (set
before Python starts) avoids that and is recorded in the JSON lines.

Prints a table and writes one JSON line per (shape, variant) to
bench/results/trainer_throughput_<device>.jsonl (…_quick.jsonl with --quick), with the date, device,
CPU model, torch version, threads and the load average during the run. --quick (eager only, 2 short
rounds) finishes in well under a minute on 2 cores: it checks the benchmark works, not the speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.nanogpt_reference import NanoConfig, NanoGPT, nanogpt_n_params
from sweep.train.execution import resolve_precision
from sweep.train.flops import n_params
from sweep.train.hardware import device_name
from sweep.train.model import GPT
from sweep.train.shape import ModelShape

REFERENCE_SHAPES = ((2, 64), (3, 128), (4, 192), (6, 256))  # (n_layer, d_model); n_head = d_model / 32
VOCAB, SEQ_LEN, BATCH = 256, 128, 32
VARIANTS = ("nanogpt_eager", "ours_eager", "ours_compiled", "ours_eager_fp32")


def uses_bf16(variant: str, device: str, d_model: int) -> bool:
    """nanoGPT autocasts on CUDA only; ours as the trainer does (sweep.train.execution.resolve_precision);
    ours_eager_fp32 never."""
    if variant == "nanogpt_eager":
        return device.startswith("cuda")
    return variant != "ours_eager_fp32" and resolve_precision("auto", device) == "bf16"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def training_step(variant: str, n_layer: int, d_model: int, device: str, batch: int) -> Callable[[], None]:
    """A closure running one training step of a freshly initialised model (seed 0) on a fixed batch."""
    torch.manual_seed(0)
    if variant == "nanogpt_eager":
        model = NanoGPT(NanoConfig(n_layer, d_model, d_model // 32, VOCAB, SEQ_LEN))
    else:
        model = GPT(ModelShape(n_layer, d_model, d_model // 32, VOCAB, SEQ_LEN))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.compile(model.loss) if variant == "ours_compiled" else model.loss
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, VOCAB, (2, batch, SEQ_LEN), generator=generator).to(device)
    device_type, use_autocast = torch.device(device).type, uses_bf16(variant, device, d_model)

    def step() -> None:
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=use_autocast):
            loss = loss_fn(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed(fn: Callable[[], None], n_steps: int, device: str, clock: Callable[[], float] = time.perf_counter) -> float:
    t0 = clock()
    for _ in range(n_steps):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clock() - t0


def first_step_seconds(variant: str, n_layer: int, d_model: int, device: str, batch: int) -> tuple[Callable, float]:
    step = training_step(variant, n_layer, d_model, device, batch)
    return step, timed(step, 1, device)


def compare_shape(n_layer: int, d_model: int, args) -> list[dict]:
    bf16 = {v: uses_bf16(v, args.device, d_model) for v in VARIANTS}
    variants = [v for v in VARIANTS[:3] if v != "ours_compiled" or args.compile]
    if any(bf16[v] != bf16["nanogpt_eager"] for v in variants):
        variants.append("ours_eager_fp32")  # the like-for-like row
    steps, compile_cold = {}, None
    for variant in variants:  # nanoGPT first, so the compiled model is built last, timed alone
        steps[variant], first = first_step_seconds(variant, n_layer, d_model, args.device, args.batch)
        if variant == "ours_compiled":
            compile_cold = first
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    warmup = {v: timed(step, args.warmup_steps, args.device, clock) for v, step in steps.items()}  # allocator, caches
    per_step = warmup["nanogpt_eager"] / args.warmup_steps
    n_steps = max(1, round(args.segment_seconds / per_step))

    seconds = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants if r % 2 == 0 else variants[::-1]:
            seconds[variant].append(timed(steps[variant], n_steps, args.device, clock))

    first_steps = {}
    if args.compile:
        step_compiled = timed(steps["ours_compiled"], 3, args.device) / 3  # wall seconds, as the first steps
        torch._dynamo.reset()  # forget compiled code in memory; the on-disk caches stay
        _, first_warm = first_step_seconds("ours_compiled", n_layer, d_model, args.device, args.batch)
        first_steps = {"first_step_seconds_cold": compile_cold, "first_step_seconds_warm": first_warm,
                       "compiled_step_seconds": step_compiled}
        # A first step faster than a later one is noise (a busy machine): no compile cost seen, 0.
        compile_cold, compile_warm = max(compile_cold - step_compiled, 0.0), max(first_warm - step_compiled, 0.0)

    shape = ModelShape(n_layer, d_model, d_model // 32, VOCAB, SEQ_LEN)
    params = {"nanogpt_eager": nanogpt_n_params(NanoConfig(n_layer, d_model, d_model // 32, VOCAB, SEQ_LEN)),
              "ours_eager": n_params(shape), "ours_compiled": n_params(shape), "ours_eager_fp32": n_params(shape)}
    tokens = n_steps * args.batch * SEQ_LEN
    rows = []
    for variant in variants:
        ratios = [b / t for b, t in zip(seconds["nanogpt_eager"], seconds[variant])]
        row = {"variant": variant, "model": variant.split("_")[0], "compiled": variant == "ours_compiled",
               "precision": "bf16" if bf16[variant] else "fp32",
               "n_layer": n_layer, "d_model": d_model, "n_head": d_model // 32, "n_params": params[variant],
               "tokens_per_second": tokens / statistics.median(seconds[variant]),
               "ratio_to_nanogpt_eager": statistics.median(ratios),
               "ratio_min": min(ratios), "ratio_max": max(ratios),
               "steps_per_segment": n_steps, "rounds": args.rounds}
        if variant == "ours_compiled":
            eager = statistics.median([c / e for c, e in zip(seconds[variant], seconds["ours_eager"])])
            row["ratio_to_ours_eager"] = 1 / eager
            row["compile_seconds_cold"], row["compile_seconds_warm"] = compile_cold, compile_warm
            row.update(first_steps)
            row["inductor_startup_seconds"] = args.inductor_startup_seconds
            saving = 1 - eager  # the fraction of an eager run's time that compiling saves
            costs = {"cold": compile_cold, "warm": compile_warm,
                     "cold_fresh_process": compile_cold + args.inductor_startup_seconds}
            for kind, cost in costs.items():
                row[f"pays_off_after_eager_seconds_{kind}"] = cost / saving if saving > 0 else None
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'shape':>8} {'params':>7} {'nanoGPT':>9} {'ours':>9} {'ours/nano':>16} {'compiled':>9} "
              f"{'comp/nano':>16} {'comp/ours':>9} {'compile s':>11} {'pays off after':>15}")
    print(header)
    print(f"{'':>8} {'':>7} {'tok/s':>9} {'tok/s':>9} {'median [min-max]':>16} {'tok/s':>9} "
          f"{'median [min-max]':>16} {'':>9} {'cold/warm':>11} {'eager s c/w':>15}")
    precisions = sorted({f"{row['model']} {row['precision']}" for row in rows if row["variant"] != "ours_eager_fp32"})
    print("precision: " + ", ".join(precisions))
    by_shape: dict[tuple[int, int], dict[str, dict]] = {}
    for row in rows:
        by_shape.setdefault((row["n_layer"], row["d_model"]), {})[row["variant"]] = row

    def ratio(row):
        return f"{row['ratio_to_nanogpt_eager']:.2f} [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"

    for (n_layer, d_model), v in by_shape.items():
        nano, ours, comp = v["nanogpt_eager"], v["ours_eager"], v.get("ours_compiled")
        line = (f"{n_layer}x{d_model:<6} {ours['n_params'] / 1e6:6.2f}M {nano['tokens_per_second']:9.0f} "
                f"{ours['tokens_per_second']:9.0f} {ratio(ours):>16}")
        if comp:
            pay = "/".join("never" if comp[f"pays_off_after_eager_seconds_{k}"] is None
                           else f"{comp[f'pays_off_after_eager_seconds_{k}']:.0f}" for k in ("cold", "warm"))
            line += (f" {comp['tokens_per_second']:9.0f} {ratio(comp):>16} {comp['ratio_to_ours_eager']:9.2f}"
                     f" {comp['compile_seconds_cold']:5.1f}/{comp['compile_seconds_warm']:<5.1f}{pay:>15}")
        if "ours_eager_fp32" in v:
            line += f"   fp32 (like for like): {ratio(v['ours_eager_fp32'])}"
        print(line, flush=True)


def write_jsonl(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="eager only, 2 short rounds: checks that it works")
    parser.add_argument("--no-compile", dest="compile", action="store_false", default=None)
    parser.add_argument("--compile", dest="compile", action="store_true", help="with --quick: compile too")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 25, quick 2)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed steps (default 2, quick 1)")
    parser.add_argument("--segment-seconds", type=float, default=None,
                        help="length of one variant's segment in a round (default 0.25, quick 0.15)")
    parser.add_argument("--shapes", default=None, help="e.g. 2x64,4x192 (default: the four reference shapes)")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall",
                        help="thread: CPU seconds of this thread, less disturbed by other processes (--threads 1 only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cache-dir", default=None, help="inductor cache (default: a fresh one, so 'cold' is)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.clock == "thread" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock thread counts this thread's CPU time only: use it with --threads 1 on CPU")
    if args.compile is None:
        args.compile = not args.quick
    args.rounds = args.rounds or (2 if args.quick else 25)
    args.warmup_steps = args.warmup_steps or (1 if args.quick else 2)
    args.segment_seconds = args.segment_seconds or (0.15 if args.quick else 0.25)
    shapes = (REFERENCE_SHAPES if args.shapes is None
              else [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")])
    torch.set_num_threads(args.threads)
    args.inductor_startup_seconds = None
    if args.compile:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="inductor_")
        t0 = time.perf_counter()
        torch.compile(lambda t: t * 2)(torch.ones(4, device=args.device))
        args.inductor_startup_seconds = time.perf_counter() - t0

    started = datetime.datetime.now(datetime.timezone.utc)
    common = {"bench": "trainer_throughput", "date": started.isoformat(timespec="seconds"),
              "device": device_name(args.device), "cpu": cpu_model(), "torch": torch.__version__,
              "python": platform.python_version(), "threads": args.threads, "batch": args.batch,
              "seq_len": SEQ_LEN, "vocab_size": VOCAB, "quick": args.quick,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "clock": args.clock}
    print(f"{common['date']} {common['device']} ({common['cpu']}), torch {common['torch']}, "
          f"{args.threads} threads, batch {args.batch} x {SEQ_LEN}, {args.rounds} interleaved rounds, "
          f"{args.clock} clock, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for n_layer, d_model in shapes:
        load_before = os.getloadavg()[0]
        shape_rows = compare_shape(n_layer, d_model, args)
        for row in shape_rows:
            row["load_average"] = round((load_before + os.getloadavg()[0]) / 2, 2)
        rows += shape_rows
    rows = [common | row for row in rows]
    print_table(rows)
    if args.compile:
        print(f"inductor start-up {args.inductor_startup_seconds:.1f} s: a process's first compile pays it on top")
    out = args.out or (Path(__file__).parent / "results" /
                       f"trainer_throughput_{common['device'].replace(' ', '_')}{'_quick' if args.quick else ''}.jsonl")
    write_jsonl(rows, out)
    print(f"written {out}")
    return rows


if __name__ == "__main__":
    main()
