"""How a run executes on its device: its precision and whether it is compiled, decided in one place.

`train.precision=auto` and `train.compile=auto` resolve here, together, because on a CPU they pay off
together. Measured side by side (bench/trainer_throughput.py and widths of the default grid, 2 threads,
batch 16-32 x 128 tokens, torch 2.13, Xeon with AMX, 2026-11-30), speed relative to fp32 eager:

| d_model        | 32   | 48   | 64        | 72   | 96   | 112  | 128  | 192  | 256  |
|----------------|------|------|-----------|------|------|------|------|------|------|
| bf16 eager     | 0.95 | 0.86 | 0.92-0.99 | 1.09 | 1.02 | 1.15 | 1.41 | 1.61 | 1.78 |
| fp32 compiled  | 1.15 | 1.01 | 1.06      | 1.19 | 1.03 | 1.07 | 1.05 | 0.98 | 0.99 |
| bf16 compiled  | 1.47 | 1.16 | 1.30      | 1.44 | 1.45 | 1.52 | 1.63 | 1.78 | 1.86 |

bf16 on a CPU means AMX tiles for the matmuls (sweep.train.hardware.native_bf16); attention stays in
fp32 there (sweep.train.model.attend). Without AMX bf16 matmuls are emulated: fp32.

Compiling costs 22-25 s the first time a shape is seen (cold inductor cache; 3 s warm, a worker's next
same-shape run). At the ~1.4x of bf16 compiled that is repaid after ~80 s of eager training, ~1e13 FLOPs
at these sizes: CPU_BF16_COMPILE_MIN_FLOPS. In fp32 compiling gains only 1.1x from d_model 128 up (and
nothing below), so it waits for runs three times longer (the rule of the fp32 measurements of
2026-11-30: first compile 18-90 s, repaid after 7.5e12-1.1e14 FLOPs).

Losses agree: default-grid runs trained both ways (two seeds, s2/s5/s7 at 3.8e5-1.1e6 tokens) give
final validation losses whose two-seed means differ by 0.1-0.3% between bf16 and fp32, less than the
seed-to-seed spread (up to 10% at s5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sweep.spec import RunSpec
from sweep.train.flops import train_flops
from sweep.train.hardware import native_bf16

CPU_BF16_COMPILE_MIN_FLOPS = 1e13
CPU_BF16_EAGER_MIN_D_MODEL = 72  # eager bf16 below this width is slower than fp32 (casts outweigh AMX)
CPU_FP32_COMPILE_MIN_FLOPS = 3e13
CPU_FP32_COMPILE_MIN_D_MODEL = 128

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Execution:
    dtype: torch.dtype  # autocast to this (fp32: no autocast)
    compiled: bool

    @property
    def precision(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"


def execution(spec: RunSpec, device: str, bf16_native: bool | None = None) -> Execution:
    """The run's precision and compilation on `device`; `bf16_native` overrides the hardware probe (tests)."""
    plan = spec.train
    gpu = device.startswith("cuda")
    bf16_native = native_bf16(device) if bf16_native is None else bf16_native
    asked = str(plan.compile).lower()
    if gpu:
        compiled = asked != "false"
    elif asked != "auto":
        compiled = asked == "true"
    else:
        compiled = _cpu_compile_pays(spec, bf16_native and plan.precision in ("auto", "bf16"))
    if plan.precision != "auto":
        return Execution(DTYPES[plan.precision], compiled)
    bf16 = gpu or (bf16_native and (compiled or spec.model.d_model >= CPU_BF16_EAGER_MIN_D_MODEL))
    return Execution(torch.bfloat16 if bf16 else torch.float32, compiled)


def _cpu_compile_pays(spec: RunSpec, bf16: bool) -> bool:
    flops = train_flops(spec.model, spec.train.n_tokens)
    if bf16:
        return flops >= CPU_BF16_COMPILE_MIN_FLOPS
    return spec.model.d_model >= CPU_FP32_COMPILE_MIN_D_MODEL and flops >= CPU_FP32_COMPILE_MIN_FLOPS
