"""The model's math, pinned against a plain re-statement of it written for this test.

The reference below spells the architecture out op by op (pre-norm blocks, bias-free LayerNorm,
rotary embeddings rotating the pairs (x[i], x[i + Dh/2]) in the four-product form of Su et al. 2021,
explicit causal softmax attention, exact-erf GELU MLP, tied head) so that a faster rewrite of
`sweep/train/model.py` cannot change the function it computes for the same weights.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from sweep.train.model import GPT, KVCache
from sweep.train.shape import ModelShape


def reference_rope(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, Dh): rotate (x[i], x[i + Dh/2]) by position * 10000^(-2i/Dh)."""
    head_dim = x.shape[-1]
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(positions.double(), inv_freq)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def reference_loss(model: GPT, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    shape = model.shape
    batch, seq = idx.shape
    heads, head_dim = shape.n_head, shape.head_dim
    positions = torch.arange(seq)
    x = model.tok_emb.weight[idx]
    if shape.positions == "learned":
        x = x + model.pos_emb.weight[positions]
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    for block in model.blocks:
        h = F.layer_norm(x, (shape.d_model,), block.norm1.weight)
        q, k, v = (h @ block.attn.qkv.weight.T).split(shape.d_model, dim=-1)
        q, k, v = (t.reshape(batch, seq, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        if shape.positions == "rope":
            q, k = reference_rope(q, positions), reference_rope(k, positions)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        attention = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1) @ v
        x = x + attention.transpose(1, 2).reshape(batch, seq, shape.d_model) @ block.attn.proj.weight.T
        h = F.layer_norm(x, (shape.d_model,), block.norm2.weight)
        x = x + F.gelu(h @ block.mlp.up.weight.T) @ block.mlp.down.weight.T
    logits = F.layer_norm(x, (shape.d_model,), model.norm.weight) @ model.lm_head.weight.T
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


SHAPES = [
    ModelShape(n_layer=2, d_model=64, n_head=2),
    ModelShape(n_layer=3, d_model=96, n_head=3, positions="learned"),
    ModelShape(n_layer=2, d_model=128, n_head=4, seq_len=64, tie_embeddings=False),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.describe())
def test_loss_and_gradients_equal_the_reference(shape):
    torch.manual_seed(0)
    model = GPT(shape)
    with torch.no_grad():  # gains away from 1, so a mix-up of the norms would show
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(0.3 * torch.randn_like(param))
    generator = torch.Generator().manual_seed(1)
    idx, targets = torch.randint(0, shape.vocab_size, (2, 4, shape.seq_len), generator=generator)

    loss = model.loss(idx, targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = reference_loss(model, idx, targets)
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))

    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_kv_cached_decoding_equals_the_full_forward():
    torch.manual_seed(0)
    shape = ModelShape(n_layer=2, d_model=64, n_head=2, seq_len=16)
    model = GPT(shape).eval()
    idx = torch.randint(0, shape.vocab_size, (3, 12))
    with torch.no_grad():
        full = model(idx)
        cache = KVCache.empty(shape, 3, 12, "cpu")
        pieces = [model(idx[:, :5], cache)] + [model(idx[:, t : t + 1], cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
