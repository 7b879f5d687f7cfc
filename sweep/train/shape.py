"""The architecture of one model: a small frozen record, free of torch so the driver can use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes the architecture (and therefore the parameter count)."""

    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int = 256
    seq_len: int = 128
    mlp_ratio: int = 4
    positions: str = "rope"  # "rope" | "learned"
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def describe(self) -> str:
        return f"L{self.n_layer}-d{self.d_model}-h{self.n_head}"
