"""Training batches produced ahead of the step, off the critical path.

Batch `i` of a run is a pure function of (seed, i) (sweep.tasks.mixture), so any process can build
it. `batch_stream` hands them to the loop through torch's DataLoader: with `workers > 0`, that many
worker processes build the next batches while the device trains on the current one (prefetch
`PREFETCH_PER_WORKER` each), and on CUDA a pinning thread copies them into page-locked memory (torch's
caching host allocator reuses those buffers), so the host-to-device copy is asynchronous. With
`workers == 0` batches are built in the loop's own thread, which is the right choice on CPU, where
the generator would only compete with the model for the same cores.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from sweep.tasks.mixture import Mixture

PREFETCH_PER_WORKER = 4


class StepBatches(Dataset):
    """Batches `start`, `start + 1`, ... `stop - 1` of a run's training stream, as int64 tensors."""

    def __init__(self, mixture: Mixture, seed: int, batch_size: int, seq_len: int, start: int, stop: int):
        self.mixture, self.seed, self.batch_size, self.seq_len = mixture, seed, batch_size, seq_len
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> torch.Tensor:
        rows = self.mixture.batch(self.seed, self.start + i, self.batch_size, self.seq_len)
        return torch.from_numpy(rows)


def data_workers(requested: int | None, device: str, cpus: int) -> int:
    """Worker processes for a run: as requested, else 0 on CPU and, on a GPU, every CPU of the run
    but the one that drives the device (at least one)."""
    if requested is not None:
        return requested
    return max(1, cpus - 1) if device.startswith("cuda") else 0


def batch_stream(mixture: Mixture, seed: int, batch_size: int, seq_len: int, start: int, stop: int,
                 device: str, workers: int) -> Iterator[torch.Tensor]:
    """Each batch of steps start..stop-1 in order, on `device`, shape (batch_size, seq_len + 1)."""
    cuda = device.startswith("cuda")
    loader = DataLoader(StepBatches(mixture, seed, batch_size, seq_len, start, stop), batch_size=None,
                        shuffle=False, num_workers=workers, pin_memory=cuda,
                        prefetch_factor=PREFETCH_PER_WORKER if workers else None)
    for rows in loader:
        yield rows.to(device, non_blocking=True) if cuda else rows
