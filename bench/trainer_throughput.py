"""Training throughput of our trainer on nanoGPT's reference shapes, against the reference figures.

    .venv/bin/python bench/trainer_throughput.py [--threads 2] [--compile] [--seconds 5]

Byte vocabulary, sequence 128, batch 32, AdamW, one optimizer step per batch, as the reference
figures (nanoGPT's model, eager, on the 2-core CPU this project is developed on). Prints tokens/s,
the ratio to nanoGPT, and MFU on GPU; writes the numbers to bench/results/<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from sweep.train.flops import n_params, train_flops_per_token
from sweep.train.hardware import device_name, peak_flops
from sweep.train.model import GPT
from sweep.train.shape import ModelShape

# (n_layer, d_model) of the reference models, and nanoGPT's tokens/s on 2 CPU cores (eager).
REFERENCE_CPU = {(2, 64): 95_000, (3, 128): 35_000, (4, 192): 15_000, (6, 256): 5_900}


def measure(shape: ModelShape, device: str, seconds: float, compile_: bool, batch: int = 32) -> dict:
    torch.manual_seed(0)
    model = GPT(shape).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.compile(model.loss) if compile_ else model.loss
    x = torch.randint(0, shape.vocab_size, (batch, shape.seq_len), device=device)
    y = torch.randint(0, shape.vocab_size, (batch, shape.seq_len), device=device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32

    def step():
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = loss_fn(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    warmup = time.perf_counter() - t0
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
        if device == "cuda" and steps % 10 == 0:
            torch.cuda.synchronize()
    if device == "cuda":
        torch.cuda.synchronize()
    tok_s = steps * batch * shape.seq_len / (time.perf_counter() - t0)
    peak = peak_flops(device)
    return {"n_layer": shape.n_layer, "d_model": shape.d_model, "n_params": n_params(shape),
            "tokens_per_second": tok_s, "warmup_seconds": warmup,
            "mfu": tok_s * train_flops_per_token(shape) / peak if peak else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"device {device_name(args.device)}, threads {args.threads}, compile {args.compile}")
    print(f"{'shape':>10} {'params':>8} {'tok/s':>10} {'nanoGPT':>9} {'ratio':>6} {'warm-up':>8} {'MFU':>6}")
    for (n_layer, d_model), reference in REFERENCE_CPU.items():
        shape = ModelShape(n_layer=n_layer, d_model=d_model, n_head=max(1, d_model // 32))
        row = measure(shape, args.device, args.seconds, args.compile)
        ratio = row["tokens_per_second"] / reference if args.device == "cpu" else None
        row["nanogpt_reference_tokens_per_second"] = reference if args.device == "cpu" else None
        rows.append(row)
        ratio_text = f"{ratio:.2f}x" if ratio else ""
        mfu_text = f"{row['mfu']:.1%}" if row["mfu"] else ""
        print(f"{shape.describe():>10} {row['n_params'] / 1e6:7.2f}M {row['tokens_per_second']:10.0f} "
              f"{reference if ratio else '':>9} {ratio_text:>6} {row['warmup_seconds']:7.1f}s {mfu_text:>6}")
    out = Path(__file__).parent / "results" / f"trainer_{args.device}{'_compiled' if args.compile else ''}.json"
    out.write_text(json.dumps({"device": device_name(args.device), "threads": args.threads,
                               "compile": args.compile, "torch": torch.__version__,
                               "python": platform.python_version(), "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
