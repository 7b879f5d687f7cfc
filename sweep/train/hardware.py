"""What the device is and how fast it could be: the denominator of MFU."""

from __future__ import annotations

import torch

# Dense bf16 tensor-core peaks from the vendors' datasheets, in FLOP/s (no sparsity).
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),  # SXM
    ("A100", 312.0e12),
    ("L40S", 362.1e12),
    ("L4", 121.0e12),
    ("A10G", 70.0e12),
    ("RTX 4090", 165.2e12),
    ("V100", 125.0e12),  # fp16
)


def resolve_device(requested: str, gpu_share: float | None = None) -> str:
    """'auto' -> 'cuda' when a GPU is visible to this process, else 'cpu' -- unless the run holds a GPU
    share (gpu_share > 0, from the scheduler): then no CUDA is an error, not a silent CPU run."""
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if gpu_share:  # the scheduler gave this run a GPU share: training on the CPU would waste it silently
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise RuntimeError(f"this run holds {gpu_share:g} of a GPU (cluster.gpus_per_run) but torch "
                               f"{torch.__version__} ({build}) sees no GPU; install the CUDA build of torch on GPU "
                               "nodes (make setup) or set cluster.gpus_per_run=0 to train on CPU")
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for but no GPU is visible to this worker")
    return requested


def native_bf16(device: str) -> bool:
    """Whether `device` multiplies bf16 matrices natively: a GPU, or a CPU with AMX tiles (Intel Sapphire
    Rapids and later). There bf16 autocast runs a training step 1.3-1.7x faster than fp32 at the default
    grid's widths (bench/trainer_throughput.py); without AMX, bf16 matmuls are emulated and slower."""
    if device.startswith("cuda"):
        return True
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(amx and amx())


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def peak_flops(device: str) -> float | None:
    """Peak bf16 FLOP/s of the device, or None where unknown (CPUs: MFU is not reported)."""
    if not device.startswith("cuda"):
        return None
    name = device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    return None


def memory_bytes(device: str) -> float:
    """Memory a run on `device` may fill: the GPU's total, or half of this machine's RAM on a CPU."""
    if device.startswith("cuda"):
        return float(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2
