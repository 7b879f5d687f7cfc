"""A decoder-only transformer on one device: pre-norm, RoPE or learned positions, fused SDPA, GELU MLP.

Readable top to bottom in the manner of nanoGPT's model.py. The shape is given by `ModelShape`;
parameter and FLOP accounting for the same shape lives in `sweep/train/flops.py` and is tested
against this module's real parameter count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sweep.train.shape import ModelShape


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embeddings (Su et al. 2021) as two (seq_len, head_dim) tables, cos and signed sin.

    The pairs rotated are (x[i], x[i + head_dim/2]), by the angle position * base^(-2i/head_dim).
    With cos = [c, c] and sin = [-s, s], the rotation is x * cos + swap_halves(x) * sin.
    """
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., Dh) by position: first half x1*c - x2*s, second half x2*c + x1*s.

    cos and sin (from `rope_tables`) broadcast against x. Written as one multiply and one fused
    multiply-add over the whole head dimension: on CPU eager every kernel costs, and this form has
    3 forward kernels where the half-by-half form has 5, with fewer in backward too.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.addcmul(x * cos, torch.cat((x2, x1), dim=-1), sin)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool) -> torch.Tensor:
    """Fused scaled dot-product attention; on a CPU in fp32 even under bf16 autocast.

    Under CPU autocast the projections run in bf16 (AMX tiles: about twice as fast as fp32 there), but
    torch's CPU flash-attention backward in bf16 runs ~7x slower than in fp32 (40 ms vs 5.5 ms a layer at
    d_model 128, batch 32 x 128 tokens): attention alone would cost more than the matmuls save. On a GPU
    autocast keeps its bf16 flash attention.
    """
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=is_causal)
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)


def norm(d_model: int) -> nn.Module:
    """Pre-norm: LayerNorm with a gain and no bias (as nanoGPT's bias=False). Its fused kernel runs
    ~15% faster end to end on CPU than torch's RMSNorm at these widths (bench/trainer_throughput.py)."""
    return nn.LayerNorm(d_model, bias=False)


@dataclass
class KVCache:
    """Keys and values of every layer for batched incremental decoding, each (B, H, max_len, Dh)."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    length: int = 0  # positions filled so far

    @staticmethod
    def empty(shape: ModelShape, batch: int, max_len: int, device, dtype=torch.float32) -> KVCache:
        size = (batch, shape.n_head, max_len, shape.head_dim)
        return KVCache([torch.empty(size, device=device, dtype=dtype) for _ in range(shape.n_layer)],
                       [torch.empty(size, device=device, dtype=dtype) for _ in range(shape.n_layer)])


class Attention(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.n_head = shape.n_head
        self.qkv = nn.Linear(shape.d_model, 3 * shape.d_model, bias=False)
        self.proj = nn.Linear(shape.d_model, shape.d_model, bias=False)
        self.rope = shape.positions == "rope"

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        batch, seq, d_model = x.shape
        start = cache.length if cache is not None else 0
        qkv = self.qkv(x).view(batch, seq, 3, self.n_head, -1)  # (B, T, q|k|v, H, Dh)
        if self.rope:
            # Rotate queries and keys together, in (B, T, 2, H, Dh) layout: one rotation instead of two.
            qk, v = qkv.split([2, 1], dim=2)
            cos, sin = cos[start : start + seq, None, None], sin[start : start + seq, None, None]
            q, k = apply_rope(qk, cos, sin).unbind(2)
            v = v.squeeze(2)
        else:
            q, k, v = qkv.unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        if cache is not None:
            if start and seq > 1:
                raise ValueError("the KV cache takes a prompt first, then one token at a time")
            cache.k[layer][:, :, start : start + seq] = k
            cache.v[layer][:, :, start : start + seq] = v
            k, v = cache.k[layer][:, :, : start + seq], cache.v[layer][:, :, : start + seq]
        # A single new token attends to everything cached: no mask needed.
        y = attend(q, k, v, is_causal=seq > 1)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, d_model))


class MLP(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        hidden = shape.mlp_ratio * shape.d_model
        self.up = nn.Linear(shape.d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.norm1 = norm(shape.d_model)
        self.attn = Attention(shape)
        self.norm2 = norm(shape.d_model)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, cache, layer)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        if shape.d_model % shape.n_head:
            raise ValueError(f"d_model={shape.d_model} is not divisible by n_head={shape.n_head}")
        if shape.positions not in ("rope", "learned"):
            raise ValueError(f"positions={shape.positions!r}: expected 'rope' or 'learned'")
        self.shape = shape
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.d_model)
        self.pos_emb = nn.Embedding(shape.seq_len, shape.d_model) if shape.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.norm = norm(shape.d_model)
        self.lm_head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        if shape.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        if shape.positions == "rope":
            cos, sin = rope_tables(shape.seq_len, shape.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections (Radford et al. 2019, sec. 2.3).
        for name, param in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, vocab). With a cache, idx continues the cached positions."""
        start = cache.length if cache is not None else 0
        if start + idx.shape[1] > self.shape.seq_len:
            raise ValueError(f"sequence of {start + idx.shape[1]} tokens exceeds seq_len={self.shape.seq_len}")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + idx.shape[1], device=idx.device))
        for layer, block in enumerate(self.blocks):
            x = block(x, self.rope_cos, self.rope_sin, cache, layer)
        if cache is not None:
            cache.length = start + idx.shape[1]
        return self.lm_head(self.norm(x))

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self(idx)
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
