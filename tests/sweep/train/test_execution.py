"""A run's precision and compilation (sweep/train/execution.py): the measured rules, and bf16 on a CPU
training for real with attention kept in fp32."""

import dataclasses

import pytest
import torch

from sweep.plan.grid import expand
from sweep.train.execution import CPU_COMPILE_MIN_FLOPS, execution
from sweep.train.flops import train_flops
from sweep.train.model import GPT, attend


@pytest.fixture
def spec(compose_cfg):
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[6e4]", "train.val_points=2", "train.log_every_steps=5")
    return min(expand(cfg), key=lambda s: s.model.n_layer)


def with_(spec, d_model, n_tokens, compile="auto", precision="auto"):
    model = dataclasses.replace(spec.model, d_model=d_model, n_head=d_model // 32)
    train = dataclasses.replace(spec.train, n_tokens=n_tokens, compile=compile, precision=precision)
    return dataclasses.replace(spec, model=model, train=train)


def tokens_for(spec, d_model, flops):
    return int(flops / train_flops(with_(spec, d_model, 1).model, 1))


def test_a_gpu_run_is_bf16_and_compiled_unless_told_otherwise(spec):
    assert execution(with_(spec, 64, 1000), "cuda") == execution(with_(spec, 64, 1000), "cuda:1")
    how = execution(with_(spec, 64, 1000), "cuda")
    assert how.dtype == torch.bfloat16 and how.compiled and how.precision == "bf16"
    how = execution(with_(spec, 64, 1000, compile="false", precision="fp32"), "cuda")
    assert how.dtype == torch.float32 and not how.compiled


def test_an_amx_cpu_trains_every_run_in_bf16_and_compiles_runs_that_repay_it(spec):
    long_, short = (tokens_for(spec, 64, f * CPU_COMPILE_MIN_FLOPS) for f in (2, 0.5))
    assert execution(with_(spec, 64, long_), "cpu", bf16_native=True).compiled
    tiny = execution(with_(spec, 32, tokens_for(spec, 32, 2 * CPU_COMPILE_MIN_FLOPS)), "cpu", bf16_native=True)
    assert tiny.compiled and tiny.dtype == torch.bfloat16
    # One precision per sweep: narrow or wide, compiled or eager, the same on one device.
    for width in (32, 64, 72, 256):
        eager = execution(with_(spec, width, tokens_for(spec, width, 0.5 * CPU_COMPILE_MIN_FLOPS)), "cpu",
                          bf16_native=True)
        assert not eager.compiled and eager.dtype == torch.bfloat16, width
    # A run asked for fp32 compiles on the fp32 rule: long, and only from d_model 128 up.
    fp32 = execution(with_(spec, 64, long_, precision="fp32"), "cpu", bf16_native=True)
    assert fp32.dtype == torch.float32 and not fp32.compiled


def test_a_cpu_without_amx_trains_fp32_and_compiles_only_long_wide_runs(spec):
    long_, short = (tokens_for(spec, 256, f * CPU_COMPILE_MIN_FLOPS) for f in (2, 0.5))
    assert execution(with_(spec, 256, long_), "cpu", bf16_native=False) == execution(
        with_(spec, 256, long_, precision="fp32"), "cpu", bf16_native=False)
    assert execution(with_(spec, 256, long_), "cpu", bf16_native=False).dtype == torch.float32
    assert execution(with_(spec, 256, long_), "cpu", bf16_native=False).compiled
    assert not execution(with_(spec, 256, short), "cpu", bf16_native=False).compiled
    assert not execution(with_(spec, 64, 10**12), "cpu", bf16_native=False).compiled  # 2x64: 0.93x compiled
    assert execution(with_(spec, 64, 1000, compile="true"), "cpu", bf16_native=False).compiled


def test_attention_runs_in_fp32_under_cpu_autocast_and_matches_fp32():
    q, k, v = torch.randn(3, 2, 4, 16, 8).unbind(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), is_causal=True)
    assert y.dtype == torch.float32
    exact = attend(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float(), is_causal=True)
    assert torch.equal(y, exact)


def test_bf16_on_cpu_trains_to_the_same_loss_as_fp32(spec):
    """The same run in both precisions (forced, so it holds on any CPU): the losses agree within bf16's
    rounding of a short run, and the runs table is told which precision ran."""
    from sweep.train.loop import train

    torch.set_num_threads(1)
    results = {p: train(dataclasses.replace(spec, train=dataclasses.replace(spec.train, precision=p)))
               for p in ("fp32", "bf16")}
    assert {p: r.precision for p, r in results.items()} == {"fp32": "fp32", "bf16": "bf16"}
    first = results["fp32"].curves[0]["train_loss"]
    assert results["fp32"].final_val_loss < 0.8 * first and results["bf16"].final_val_loss < 0.8 * first
    assert results["bf16"].final_val_loss == pytest.approx(results["fp32"].final_val_loss, rel=0.03)
    assert isinstance(results["bf16"].model, GPT)
