"""The memory estimate and the micro-batch that fits a budget (checked against a real GPU step when one is here)."""

import pytest
import torch

from sweep.train.memory import HEADROOM, DoesNotFit, activation_bytes_per_token, micro_batch_size, step_bytes
from sweep.train.shape import ModelShape

GPT2 = ModelShape(n_layer=12, d_model=768, n_head=12, vocab_size=50304, seq_len=1024)


def test_activation_estimate_follows_korthikanti_without_the_score_matrix():
    # 34 * d bytes per token and layer in 16-bit, plus the logits (bf16 + fp32 copy + fp32 gradient)
    assert activation_bytes_per_token(GPT2, 2) == 12 * 34 * 768 + 50304 * 10
    assert activation_bytes_per_token(GPT2, 4) == 2 * 12 * 34 * 768 + 50304 * 12


def test_micro_batch_is_the_largest_divisor_that_fits():
    one = step_bytes(GPT2, 1, 2)
    per_sequence = step_bytes(GPT2, 2, 2) - one
    budget = (one + 5 * per_sequence) / HEADROOM  # room for 6 sequences
    assert micro_batch_size(GPT2, 16, 2, budget) == 4  # 8 does not fit, 6 does not divide 16
    assert micro_batch_size(GPT2, 12, 2, budget) == 6
    assert micro_batch_size(GPT2, 16, 2, 1e15) == 16
    with pytest.raises(DoesNotFit, match="needs .* GiB for one sequence"):
        micro_batch_size(GPT2, 16, 2, one / 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_estimate_bounds_a_real_bf16_step_on_the_gpu():
    from sweep.train.model import GPT

    shape = ModelShape(n_layer=6, d_model=512, n_head=8, vocab_size=50304, seq_len=1024)
    model = GPT(shape).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), fused=True)
    x = torch.randint(0, shape.vocab_size, (8, shape.seq_len), device="cuda")
    for _ in range(2):  # the second step has the optimizer state allocated
        torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.loss(x, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated()
    estimate = step_bytes(shape, 8, 2)
    assert peak <= estimate <= 2.5 * peak, (peak, estimate)
