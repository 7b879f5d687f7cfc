"""Compiled training over a long sweep in one process: no silent fall-back to eager, same-shape
runs reuse compiled code, a warm worker starts a run it has compiled before in seconds."""

import dataclasses

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from sweep.plan.grid import expand
from sweep.train import compiled
from sweep.train.loop import train


@pytest.fixture
def base(compose_cfg):
    torch.set_num_threads(1)
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[256]", "train.batch_size=2", "train.val_points=1",
                      "train.val_sequences=8", "train.compile=true", "model.seq_len=64")
    return min(expand(cfg), key=lambda s: s.model.n_layer)


def shaped(spec, n_layer, d_model):
    return dataclasses.replace(spec, model=dataclasses.replace(spec.model, n_layer=n_layer, d_model=d_model,
                                                               n_head=2))


@pytest.fixture
def strict_dynamo(monkeypatch):
    """Dynamo's cheap 'eager' backend (same caches and guards, no code generation), and a hard error
    where dynamo would silently fall back to eager after config.recompile_limit variants."""
    monkeypatch.setattr(compiled, "BACKEND", "eager")
    compiled.forget()
    counters.clear()
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        yield
    compiled.forget()


def test_sixty_runs_of_twelve_shapes_in_one_process_never_hit_the_recompile_limit(base, strict_dynamo):
    # 12 distinct shapes > the recompile limit of 8; each shape trained 5 times, in sweeps' order
    # (blocks of one shape) and interleaved.
    shapes = [(1 + i % 2, 16 * (1 + i)) for i in range(12)]
    order = [s for s in shapes for _ in range(3)] + shapes + shapes
    assert len(order) == 60 and len(set(order)) > torch._dynamo.config.recompile_limit
    key_changes = sum(1 for i, s in enumerate(order) if i == 0 or order[i - 1] != s)
    for n_layer, d_model in order:
        result = train(shaped(base, n_layer, d_model))
        assert result.compiled and result.final_train_loss > 0
    # One graph per change of shape: same-shape runs in a row reuse the compiled code.
    assert counters["stats"]["unique_graphs"] == key_changes


def test_without_the_policy_dynamo_falls_back_after_eight_shapes(base, strict_dynamo):
    # The negative control: compiling each new model's loss without clearing dynamo's caches, as the
    # trainer used to, hits the limit on the ninth shape.
    with pytest.raises(Exception, match="recompile_limit|RecompileLimit"):
        for i in range(12):
            model = __import__("sweep.train.model", fromlist=["GPT"]).GPT(shaped(base, 1, 16 * (1 + i)).model)
            x = torch.randint(0, 256, (2, 16))
            torch.compile(model.loss, backend="eager")(x, x).backward()


def test_a_warm_worker_starts_a_shape_it_compiled_before_from_the_caches(base):
    # Real inductor: the first run pays the compilation; after another shape has displaced it from
    # dynamo's caches, the shape comes back from the on-disk caches (about 1 s here, against 20-40 s
    # cold; bench/throughput.py measures the warm start).
    compiled.forget()
    train(base)
    train(shaped(base, 2, 32))
    counters.clear()
    result = train(base)
    assert result.compiled
    assert counters["aot_autograd"]["autograd_cache_hit"] >= 1 or counters["inductor"]["fxgraph_cache_hit"] >= 1
    assert counters["inductor"].get("fxgraph_cache_miss", 0) == 0
    compiled.forget()
