"""How much memory a training step needs, and the micro-batch that fits a memory budget.

Torch-free, so the driver can plan with it too. Estimates, per component:

* weights, gradients and AdamW's two moments in fp32: 16 bytes per parameter, plus the bf16 copies
  autocast caches of the weights (2 bytes) when training in bf16;
* activations kept for the backward pass: 34 * d_model bytes per token and layer with 16-bit
  activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
  Models", sec. 4.1, eq. 1, without its 5 a s / h term: fused attention (SDPA) stores no s x s score
  matrix), twice that in fp32;
* the logits: vocab_size values per token in the compute dtype, their fp32 copy for the loss and
  its gradient (4 + 4 bytes).

tests/sweep/train/test_memory.py checks the estimate against the peak memory a real step allocates
on a GPU (skipped without one).
"""

from __future__ import annotations

from sweep.train.flops import n_params
from sweep.train.shape import ModelShape

HEADROOM = 0.85  # of the budget: the CUDA context, the allocator's fragmentation, compile workspaces


def state_bytes(shape: ModelShape, dtype_bytes: int) -> int:
    """Parameters, gradients and optimizer state."""
    return n_params(shape) * (16 + (2 if dtype_bytes == 2 else 0))


def activation_bytes_per_token(shape: ModelShape, dtype_bytes: int) -> float:
    """Memory one token of a micro-batch holds until the backward pass."""
    layers = shape.n_layer * 34 * shape.d_model * dtype_bytes / 2
    logits = shape.vocab_size * (dtype_bytes + 8)
    return layers + logits


def step_bytes(shape: ModelShape, micro_batch_size: int, dtype_bytes: int) -> float:
    return state_bytes(shape, dtype_bytes) + micro_batch_size * shape.seq_len * activation_bytes_per_token(
        shape, dtype_bytes)


class DoesNotFit(ValueError):
    """Not even one sequence per micro-batch fits the budget: the run needs more than one device."""


def micro_batch_size(shape: ModelShape, batch_size: int, dtype_bytes: int, budget_bytes: float) -> int:
    """The largest divisor of `batch_size` whose step fits `HEADROOM * budget_bytes`.

    The optimizer step sees the same gradient either way (the loop averages the micro-batches), so
    this changes memory and speed, never the run's numbers.
    """
    usable = HEADROOM * budget_bytes
    for size in sorted((d for d in range(1, batch_size + 1) if batch_size % d == 0), reverse=True):
        if step_bytes(shape, size, dtype_bytes) <= usable:
            return size
    raise DoesNotFit(f"{shape.describe()} needs {step_bytes(shape, 1, dtype_bytes) / 2**30:.1f} GiB for one "
                     f"sequence per micro-batch, more than {usable / 2**30:.1f} GiB usable on its device share")
