import pytest
import torch

from bench.nanogpt_reference import NanoConfig, NanoGPT, nanogpt_n_params

CONFIGS = [NanoConfig(n_layer=2, n_embd=64, n_head=2), NanoConfig(n_layer=3, n_embd=96, n_head=3, block_size=64),
           NanoConfig(n_layer=6, n_embd=256, n_head=8, vocab_size=300)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_layer}-d{c.n_embd}")
def test_parameter_count_matches_nanogpt_formula(config):
    model = NanoGPT(config)
    assert sum(p.numel() for p in model.parameters()) == nanogpt_n_params(config)  # tied weight once
    assert model.lm_head.weight is model.wte.weight


def test_formula_gives_gpt2_small_count():
    """GPT-2 small (12 x 768, vocab 50257, context 1024) has 124,439,808 parameters with biases, the
    count nanoGPT's from_pretrained('gpt2') loads; bias=False drops 12 x 8,448 + 768 = 102,144 of them."""
    config = NanoConfig(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, block_size=1024)
    biases = 12 * (768 + 3 * 768 + 768 + 768 + 4 * 768 + 768) + 768
    assert nanogpt_n_params(config) + biases == 124_439_808


def test_loss_is_mean_cross_entropy_and_starts_near_log_vocab():
    torch.manual_seed(0)
    config = NanoConfig(n_layer=2, n_embd=64, n_head=2)
    model = NanoGPT(config)
    idx = torch.randint(0, config.vocab_size, (4, config.block_size))
    targets = torch.randint(0, config.vocab_size, (4, config.block_size))
    logits = model(idx)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert model.loss(idx, targets).item() == pytest.approx(expected.item())
    assert model.loss(idx, targets).item() == pytest.approx(torch.log(torch.tensor(256.0)).item(), abs=0.1)
