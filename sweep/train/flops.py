"""Parameter and FLOP accounting for `ModelShape`, torch-free so the driver can plan with it.

The counts match `sweep.train.model.GPT` exactly (tests/sweep/train/test_flops.py builds the real
model and compares). Conventions:

* `n_params` counts every trainable parameter once (tied embedding counted once), as Chinchilla's N
  (Hoffmann et al. 2022) does.
* `n_nonembed_params` drops the token (and learned position) embeddings, as Kaplan et al. (2020)
  do. With tied embeddings the output projection shares the embedding matrix, so it is dropped too.
* FLOPs per token follow Chinchilla's appendix F / PaLM's appendix B: a matmul of an (m x k) by a
  (k x n) matrix costs 2mkn; the backward pass costs twice the forward; attention scores are counted
  over the whole context (no halving for the causal mask), as nanoGPT's `estimate_mfu` does.
  Norms, softmax and activations are left out (under 1% at these shapes).
"""

from __future__ import annotations

from sweep.train.shape import ModelShape


def layer_params(shape: ModelShape) -> int:
    """One block: fused qkv (3d^2) + output proj (d^2) + MLP (2 * ratio * d^2) + two norm gains."""
    d = shape.d_model
    return 4 * d * d + 2 * shape.mlp_ratio * d * d + 2 * d


def n_nonembed_params(shape: ModelShape) -> int:
    """Kaplan's N: all blocks plus the final norm; no token/position embedding, no tied head."""
    head = 0 if shape.tie_embeddings else shape.vocab_size * shape.d_model
    return shape.n_layer * layer_params(shape) + shape.d_model + head


def n_embedding_params(shape: ModelShape) -> int:
    positions = shape.seq_len * shape.d_model if shape.positions == "learned" else 0
    return shape.vocab_size * shape.d_model + positions


def n_params(shape: ModelShape) -> int:
    """Chinchilla's N: every parameter once."""
    return n_nonembed_params(shape) + n_embedding_params(shape)


def forward_flops_per_token(shape: ModelShape) -> int:
    """Matmul FLOPs of one token's forward pass with a full context of `seq_len` tokens."""
    d, layers, ctx = shape.d_model, shape.n_layer, shape.seq_len
    qkv_and_proj = 2 * 4 * d * d
    attention_scores_and_values = 2 * 2 * ctx * d
    mlp = 2 * 2 * shape.mlp_ratio * d * d
    logits = 2 * d * shape.vocab_size
    return layers * (qkv_and_proj + attention_scores_and_values + mlp) + logits


def train_flops_per_token(shape: ModelShape) -> int:
    """Forward + backward (twice the forward): the analytic count with attention."""
    return 3 * forward_flops_per_token(shape)


def train_flops(shape: ModelShape, n_tokens: int) -> int:
    return train_flops_per_token(shape) * n_tokens


def flops_6nd(shape: ModelShape, n_tokens: int) -> int:
    """The usual approximation C = 6 N D (Kaplan et al. 2020, sec. 2.1), N counting all parameters."""
    return 6 * n_params(shape) * n_tokens
