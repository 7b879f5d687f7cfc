"""nanoGPT's model architecture, as the baseline our trainer's model is benchmarked against.

Written for this project from the description of karpathy/nanoGPT's model.py (MIT licence), not
copied from it: learned absolute position embeddings, LayerNorm without bias (nanoGPT's
`bias=False`), one fused qkv Linear, `F.scaled_dot_product_attention(is_causal=True)`, a GELU MLP
of width 4d, the lm_head tied to the token embedding, GPT-2's init (normal 0.02, and
0.02 / sqrt(2 L) for the two residual projections of every block), no dropout. `loss` returns the
mean cross-entropy over every position, as nanoGPT's forward does when given targets.

Only what the benchmark needs is here: no generation, no checkpoint loading, no optimizer helper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NanoConfig:
    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int = 256
    block_size: int = 128

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


def nanogpt_n_params(config: NanoConfig) -> int:
    """Every parameter once (the tied lm_head is the token embedding), position embedding included.

    Per block: two LayerNorm gains (2d), qkv (3d^2), attention output (d^2), MLP (8d^2); then the
    final LayerNorm gain (d), the token embedding (Vd) and the position embedding (Td). nanoGPT's
    `get_num_params(non_embedding=False)` reports this number for bias=False.
    """
    d = config.n_embd
    return config.n_layer * (12 * d * d + 2 * d) + d + config.vocab_size * d + config.block_size * d


class CausalSelfAttention(nn.Module):
    def __init__(self, config: NanoConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (t.view(batch, seq, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(batch, seq, d))


class MLP(nn.Module):
    def __init__(self, config: NanoConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: NanoConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    def __init__(self, config: NanoConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2's scaled init of the residual projections
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, vocab)."""
        seq = idx.shape[1]
        if seq > self.config.block_size:
            raise ValueError(f"sequence of {seq} tokens exceeds block_size={self.config.block_size}")
        pos = torch.arange(seq, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
