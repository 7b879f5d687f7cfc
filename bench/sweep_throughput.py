"""The trainer as a sweep uses it, measured side by side in one run: model-alone step vs `train()`.

    python bench/sweep_throughput.py --prepare          # here (needs Hydra): write bench/specs/*.json
    python bench/sweep_throughput.py [--quick] [--seconds S] [--sections ladder,packing,warm]

For a ladder of sizes (GPU: ~1M, 30M, 124M, 350M parameters; CPU --quick: two tiny ones), at the
batch the grid derives for them (sweep.plan.grid.derive_batch_size), it measures

* `model`: the training step alone (forward, backward, clip, fused AdamW) on random tokens, compiled
  as the trainer compiles it, with the same micro-batches;
* `train`: sweep.train.loop.train() with the real task mixture (tasks/emergence), batches built by
  its data workers, validation excluded from the timed intervals;
* `packing`: 1 vs K copies of the smallest run training at once in K processes (aggregate tokens/s);
* `warm`: how long a worker takes to start a run of a shape it compiled before (after another shape
  displaced it) against the first, cold start.

Prints a table and appends JSON lines (device name, torch version, date) to
bench/results/sweep_throughput.jsonl. Needs only torch and numpy at run time (the specs are JSON), so
it runs on a machine without Ray or Hydra. MFU is against the device's dense bf16 peak
(sweep.train.hardware).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweep.plan.spec import RunSpec  # noqa: E402
from sweep.train.compiled import compile_loss  # noqa: E402
from sweep.train.distributed import wrap  # noqa: E402
from sweep.train.execution import execution  # noqa: E402
from sweep.train.flops import n_params, train_flops_per_token  # noqa: E402
from sweep.train.hardware import device_name, peak_flops  # noqa: E402
from sweep.train.loop import train  # noqa: E402
from sweep.train.resume import fresh  # noqa: E402
from sweep.train.steps import micro_batch_for  # noqa: E402

SPECS = Path(__file__).parent / "specs"
RESULTS = Path(__file__).parent / "results" / "sweep_throughput.jsonl"

# name -> (n_layer, d_model, n_head, seq_len, tokens per parameter of the budget the batch is derived at)
LADDERS = {
    "gpu": {"1M": (4, 192, 6, 256, 20), "30M": (8, 512, 8, 1024, 20), "124M": (12, 768, 12, 1024, 20),
            "350M": (24, 1024, 16, 1024, 20)},
    "cpu": {"70k": (2, 64, 2, 128, 20), "800k": (4, 128, 4, 128, 20)},
}


# --- preparing the specs (here, with Hydra) ---------------------------------------------------------


def prepare() -> None:
    """One RunSpec per ladder entry, composed from the real config (tasks/emergence, derived batch)."""
    from sweep.cli import compose
    from sweep.plan.grid import expand

    SPECS.mkdir(parents=True, exist_ok=True)
    for ladder, sizes in LADDERS.items():
        for name, (n_layer, d_model, n_head, seq_len, ratio) in sizes.items():
            cfg = compose(["grid=tiny", "tasks=emergence", f"model.seq_len={seq_len}", "train.val_points=1",
                           f"grid.models=[{{name: {name}, n_layer: {n_layer}, d_model: {d_model}, n_head: {n_head}}}]",
                           "grid.n_tokens=[]", f"grid.tokens_per_param=[{ratio}]"])
            (spec,) = expand(cfg)
            path = SPECS / f"{ladder}_{name}.json"
            path.write_text(json.dumps(spec.to_dict(), indent=1, sort_keys=True))
            print(f"wrote {path.relative_to(ROOT)}: batch {spec.train.batch_size} x {seq_len}, lr {spec.train.lr:.2e}")


def load_spec(ladder: str, name: str) -> RunSpec:
    return RunSpec.from_dict(json.loads((SPECS / f"{ladder}_{name}.json").read_text()))


def with_steps(spec: RunSpec, n_steps: int, log_every: int) -> RunSpec:
    tokens = n_steps * spec.train.batch_size * spec.model.seq_len
    plan = dataclasses.replace(spec.train, n_steps=n_steps, n_tokens=tokens, log_every_steps=log_every,
                               val_every_steps=n_steps, val_sequences=8,
                               warmup_steps=min(spec.train.warmup_steps, n_steps), checkpoint_every_seconds=1e9)
    return dataclasses.replace(spec, train=plan)


# --- measurements ----------------------------------------------------------------------------------


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def model_alone(spec: RunSpec, device: str, seconds: float) -> dict:
    """The step train() runs, without data, logging or validation: tokens/s after compilation."""
    how = execution(spec, device)
    dtype, compiled = how.dtype, how.compiled
    micro = micro_batch_for(spec, device, dtype, 1.0)
    model, optimizer = fresh(spec, device)
    net = wrap(model, device)
    loss_fn = compile_loss(net, key=(spec.model, micro, dtype, device, 1)) if compiled else net
    rows = torch.randint(0, spec.model.vocab_size, (spec.train.batch_size, spec.model.seq_len + 1), device=device)
    autocast = torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype,
                              enabled=dtype != torch.float32)
    accumulation = spec.train.batch_size // micro

    def step():
        for chunk in rows.split(micro):
            with autocast:
                loss = loss_fn(chunk[:, :-1], chunk[:, 1:])
            (loss / accumulation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    sync(device)
    startup = time.perf_counter() - t0
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 3:
        step()
        steps += 1
        if steps % 10 == 0:
            sync(device)
    sync(device)
    tok_s = steps * spec.train.batch_size * spec.model.seq_len / (time.perf_counter() - t0)
    return {"tokens_per_second": tok_s, "startup_seconds": startup, "micro_batch_size": micro, "compiled": compiled}


def steady_rate(curves: list[dict]) -> float:
    """Median tokens/s of the log intervals after the first (which holds compilation)."""
    rates = [row["tok_per_s"] for row in curves[1:]] or [row["tok_per_s"] for row in curves]
    return statistics.median(rates)


def train_rate(spec: RunSpec, device: str, seconds: float, expected_tok_s: float,
               memory_fraction: float = 1.0) -> dict:
    tokens_per_step = spec.train.batch_size * spec.model.seq_len
    n_steps = max(20, int(seconds * expected_tok_s / tokens_per_step))
    result = train(with_steps(spec, n_steps, max(1, n_steps // 10)), device=device, memory_fraction=memory_fraction)
    return {"tokens_per_second": steady_rate(result.curves), "startup_seconds": result.first_log_seconds,
            "data_workers": result.data_workers, "n_steps": n_steps}


def mfu(tok_s: float, spec: RunSpec, device: str) -> float | None:
    peak = peak_flops(device)
    return tok_s * train_flops_per_token(spec.model) / peak if peak else None


def _packed_worker(spec_dict: dict, device: str, seconds: float, expected: float, share: float, threads: int,
                   barrier, out) -> None:
    torch.set_num_threads(threads)
    spec = RunSpec.from_dict(spec_dict)
    train(with_steps(spec, 4, 2), device=device, memory_fraction=share)  # compile before the timed run
    barrier.wait()
    out.put(train_rate(spec, device, seconds, expected, memory_fraction=share)["tokens_per_second"])


def packed(spec: RunSpec, device: str, copies: int, seconds: float, expected: float, threads: int) -> float:
    """Aggregate steady tokens/s of `copies` processes training `spec` at once (each its share)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(copies), ctx.Queue()
    procs = [ctx.Process(target=_packed_worker, args=(spec.to_dict(), device, seconds, expected, 1 / copies,
                                                       threads, barrier, out)) for _ in range(copies)]
    for p in procs:
        p.start()
    rates = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


# --- the run ---------------------------------------------------------------------------------------


def emit(record: dict, common: dict, sink) -> None:
    line = {**common, **record}
    sink.write(json.dumps(line) + "\n")
    sink.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="write bench/specs/*.json from the config (Hydra)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="the CPU ladder, short intervals (CI)")
    parser.add_argument("--seconds", type=float, default=None, help="timed interval per measurement")
    parser.add_argument("--sections", default="ladder,packing,warm")
    parser.add_argument("--sizes", default="", help="comma-separated ladder names (default: all)")
    parser.add_argument("--copies", type=int, default=4, help="runs packed at once in the packing section")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per process")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.prepare:
        prepare()
        return 0
    torch.set_num_threads(args.threads)
    device = args.device
    ladder = "gpu" if device.startswith("cuda") and not args.quick else "cpu"
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    names = [n for n in LADDERS[ladder] if not args.sizes or n in args.sizes.split(",")]
    sections = set(args.sections.split(","))
    common = {"bench": "sweep_throughput", "device": device_name(device), "torch": torch.__version__,
              "python": platform.python_version(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "quick": args.quick}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(f"device {common['device']}, torch {torch.__version__}, {seconds:g} s per measurement")
    alone: dict[str, float] = {}
    with open(args.out, "a") as sink:
        if "ladder" in sections:
            print(f"{'size':>6} {'params':>8} {'batch':>11} {'model tok/s':>12} {'MFU':>6} {'train tok/s':>12} "
                  f"{'MFU':>6} {'train/model':>11}")
            for name in names:
                spec = load_spec(ladder, name)
                m = model_alone(spec, device, seconds)
                t = train_rate(spec, device, seconds, m["tokens_per_second"])
                alone[name] = m["tokens_per_second"]
                ratio = t["tokens_per_second"] / m["tokens_per_second"]
                record = {"section": "ladder", "size": name, "n_params": n_params(spec.model),
                          "shape": spec.model.describe(), "seq_len": spec.model.seq_len,
                          "batch_size": spec.train.batch_size, "micro_batch_size": m["micro_batch_size"],
                          "compiled": m["compiled"], "model_tokens_per_second": m["tokens_per_second"],
                          "model_mfu": mfu(m["tokens_per_second"], spec, device),
                          "train_tokens_per_second": t["tokens_per_second"],
                          "train_mfu": mfu(t["tokens_per_second"], spec, device), "train_over_model": ratio,
                          "data_workers": t["data_workers"], "train_startup_seconds": t["startup_seconds"]}
                emit(record, common, sink)
                fmt = lambda x: f"{x:.1%}" if x is not None else ""  # noqa: E731
                print(f"{name:>6} {n_params(spec.model) / 1e6:7.2f}M "
                      f"{spec.train.batch_size:>4} x {spec.model.seq_len:<4} {m['tokens_per_second']:12.0f} "
                      f"{fmt(record['model_mfu']):>6} {t['tokens_per_second']:12.0f} "
                      f"{fmt(record['train_mfu']):>6} {ratio:10.2f}x")
        if "packing" in sections:
            spec = load_spec(ladder, names[0])
            expected = alone.get(names[0]) or model_alone(spec, device, seconds)["tokens_per_second"]
            threads = 1 if device == "cpu" else args.threads
            copies = args.copies if device.startswith("cuda") else 2
            one = packed(spec, device, 1, seconds, expected, threads)
            many = packed(spec, device, copies, seconds, expected / copies, threads)
            emit({"section": "packing", "size": names[0], "n_params": n_params(spec.model), "copies": copies,
                  "one_tokens_per_second": one, "packed_tokens_per_second": many, "speedup": many / one}, common, sink)
            print(f"packing {names[0]}: 1 run {one:.0f} tok/s, {copies} at once {many:.0f} tok/s aggregate "
                  f"({many / one:.2f}x)")
        if "warm" in sections:
            a, b = load_spec(ladder, names[0]), load_spec(ladder, names[-1])
            if device == "cpu":  # compile on CPU too, so the start-up is what a compiled run pays
                a, b = (dataclasses.replace(s, train=dataclasses.replace(s.train, compile="true")) for s in (a, b))
            from sweep.train import compiled

            compiled.forget()
            starts = []
            for spec in (a, b, a):
                t0 = time.perf_counter()
                result = train(with_steps(spec, 2, 1), device=device)
                starts.append({"run_seconds": time.perf_counter() - t0,
                               "startup_seconds": result.first_log_seconds})
            emit({"section": "warm", "size": names[0], "cold_startup_seconds": starts[0]["startup_seconds"],
                  "warm_startup_seconds": starts[2]["startup_seconds"],
                  "warm_run_seconds": starts[2]["run_seconds"]}, common, sink)
            print(f"start-up of a {names[0]} run: cold {starts[0]['startup_seconds']:.1f} s, warm (after "
                  f"{names[-1]} displaced it) {starts[2]['startup_seconds']:.1f} s")
    print(f"appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
