"""How a run executes on its device: its precision and whether it is compiled, decided in one place.

The rules for `train.precision=auto` (resolve_precision, applied once per sweep at plan time by
sweep.plan.device, so run ids hash it) and `train.compile=auto` live here, together, because on a CPU they pay
off together. bf16 on a CPU means AMX tiles for the matmuls (sweep.train.hardware.native_bf16), with
attention kept in fp32 (sweep.train.model.attend); without AMX bf16 matmuls are emulated: fp32 there.

Measured side by side, interleaved in one process (bench/trainer_throughput.py; 2 threads, Xeon with
AMX, torch 2.13, 2026-11-30; bench/results/trainer_throughput_cpu*.jsonl), training step against
nanoGPT's fp32 eager step:

| batch x 128 tokens, shape       | 32: 2x64 | 3x128 | 4x192 | 6x256 | 16: 4x32 | 3x64 | 4x96 | 5x128 |
|---------------------------------|----------|-------|-------|-------|----------|------|------|-------|
| ours fp32 eager (like for like) | 0.91     | 0.92  | 0.81  | 0.92  | 0.83     | 0.91 | 0.84 | 0.89  |
| ours bf16 eager                 |          | 1.39  | 1.65  | 1.70  |          |      | 1.06 | 1.16  |
| ours bf16 compiled              | 1.37     | 1.61  | 1.71  | 1.88  | 1.40     | 1.12 | 1.28 | 1.47  |

One precision per sweep: `auto` depends on the device alone (bf16 on a GPU and on a CPU with AMX, fp32 on
other CPUs), never on a run's width or length, so the runs of one sweep on one kind of hardware never
differ in precision along the grid (a switch from fp32 to bf16 between two neighbouring sizes would be a
confound in the very comparison the sweep makes). It costs the narrowest eager runs a little: bf16 eager
is 0.86-0.99x of fp32 at widths 32-64 (a separate probe at batch 16: the casts outweigh AMX at such small
matrices), while the wide runs, which hold most of a sweep's time, gain 1.06-1.70x.
Compiling costs 19-36 s the first time a process sees a shape (plus ~20 s of inductor start-up once per
process; 2-4 s for a shape already in the on-disk cache) and repays a cold compile after 80-615 s of
eager training (the wider the model, the smaller compile's gain over bf16 eager). CPU_COMPILE_MIN_FLOPS
is 120-490 s of eager training at these sizes: it repays a cold compile from 2x64 to 3x128 and loses at
most ~20 s on the widest (6x256), where a warm cache (a sweep's next run of the shape) repays it anyway.
In fp32 compiling gained nothing below d_model 128 (0.93x at 2x64 in the fp32 measurements of the same
day), hence the width floor there.

Losses agree: default-grid runs trained both ways (two seeds, s2/s5/s7 at 3.8e5-1.1e6 tokens) give
final validation losses whose two-seed means differ by 0.1-0.3% between bf16 and fp32, less than the
seed-to-seed spread (up to 10% at s5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sweep.plan.spec import RunSpec
from sweep.train.flops import train_flops
from sweep.train.hardware import native_bf16

CPU_COMPILE_MIN_FLOPS = 3e13
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
    asked = str(plan.compile).lower()
    if device.startswith("cuda"):
        compiled = asked != "false"
    elif asked != "auto":
        compiled = asked == "true"
    else:
        bf16_native = native_bf16(device) if bf16_native is None else bf16_native
        compiled = _cpu_compile_pays(spec, bf16_native and plan.precision in ("auto", "bf16"))
    return Execution(DTYPES[resolve_precision(plan.precision, device, bf16_native)], compiled)


def resolve_precision(requested: str, device: str, bf16_native: bool | None = None) -> str:
    """What train.precision becomes on `device`: fp32 or bf16 as given; auto: bf16 on a GPU and on a CPU with AMX,
    fp32 on other CPUs, the same for every run on one kind of device, whatever its shape. The plan resolves it
    once per sweep (sweep.plan.device), so a run's id hashes the precision it trains in; `bf16_native` overrides
    the hardware probe (tests)."""
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bf16"
    return "bf16" if (native_bf16(device) if bf16_native is None else bf16_native) else "fp32"


def _cpu_compile_pays(spec: RunSpec, bf16: bool) -> bool:
    long_enough = train_flops(spec.model, spec.train.n_tokens) >= CPU_COMPILE_MIN_FLOPS
    return long_enough and (bf16 or spec.model.d_model >= CPU_FP32_COMPILE_MIN_D_MODEL)
