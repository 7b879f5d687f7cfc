"""The per-run resource rule: GPU shares by work per step (packing small runs), CPUs by share, user values win."""

import dataclasses

import numpy as np
import pytest

from sweep.config.schema import ClusterConfig
from sweep.plan.grid import expand
from sweep.plan.resources import (
    Node,
    RunResources,
    cpus_for_share,
    flops_per_step,
    gpu_share,
    placeable,
    run_device,
    run_resources,
    runs_at_once,
    runs_fitting,
)
from sweep.train.shape import ModelShape

GPU_NODE = [Node(cpus=16, gpus=1)]


@pytest.fixture
def tiny_spec(compose_cfg):
    return expand(compose_cfg("grid=tiny"))[0]


def spec_of(base, n_layer, d_model, n_head, batch_size, seq_len=128, vocab_size=256):
    shape = ModelShape(n_layer=n_layer, d_model=d_model, n_head=n_head, seq_len=seq_len, vocab_size=vocab_size)
    return dataclasses.replace(base, model=shape, train=dataclasses.replace(base.train, batch_size=batch_size))


# (label, shape and batch, expected share): the grid=emergence sizes and the measured H200 shapes.
LADDER = [
    ("g1 (2x32), 16 x 128 tokens", (2, 32, 2, 16), 1 / 8),
    ("g4 (4x192), 64 x 128", (4, 192, 6, 64), 1 / 8),
    ("g7 (12x512), 64 x 128", (12, 512, 8, 64), 1 / 4),
    ("30M (6x384), 32 x 1024, vocab 50304", (6, 384, 6, 32, 1024, 50304), 1 / 2),
    ("g7 (12x512), 256 x 128", (12, 512, 8, 256), 1.0),
    ("124M (12x768), 16 x 1024: 42% MFU alone", (12, 768, 12, 16, 1024, 50304), 1.0),
    ("350M (24x1024), 8 x 1024", (24, 1024, 16, 8, 1024, 50304), 1.0),
]


def test_a_ladder_of_sizes_gets_power_of_two_shares_growing_with_size(tiny_spec):
    specs = [spec_of(tiny_spec, *args) for _, args, _ in LADDER]
    work = [flops_per_step(s) for s in specs]
    assert work == sorted(work)
    shares = [gpu_share(w) for w in work]
    assert shares == [expected for _, _, expected in LADDER], list(zip([label for label, _, _ in LADDER], shares))
    # the rule is monotone over a fine sweep of work per step, and only ever gives 1/2^k
    sweep = [gpu_share(w) for w in np.geomspace(1e6, 1e15, 400)]
    assert sweep == sorted(sweep) and set(sweep) == {1 / 8, 1 / 4, 1 / 2, 1.0}


def test_work_per_step_is_tokens_per_step_times_training_flops_per_token(tiny_spec):
    from sweep.train.flops import train_flops_per_token

    spec = spec_of(tiny_spec, 12, 768, 12, 16, 1024, 50304)
    assert flops_per_step(spec) == 16 * 1024 * train_flops_per_token(spec.model)
    assert flops_per_step(spec) == pytest.approx(1.4e13, rel=0.01)  # the measured step that fills an H200


def test_max_runs_per_gpu_and_the_full_gpu_figure_bound_the_packing():
    tiny = 1e8
    assert gpu_share(tiny, max_runs_per_gpu=8) == 1 / 8
    assert gpu_share(tiny, max_runs_per_gpu=2) == 1 / 2
    assert gpu_share(tiny, max_runs_per_gpu=1) == 1.0
    # a smaller GPU fills with less work: the same run gets a larger share
    assert gpu_share(2e12, full_gpu_flops_per_step=1.4e13) == 1 / 4
    assert gpu_share(2e12, full_gpu_flops_per_step=4.4e12) == 1 / 2


def test_auto_resources_follow_the_cluster(tiny_spec):
    auto = ClusterConfig()
    cpu_only = run_resources(tiny_spec, auto, [Node(cpus=2, gpus=0)])
    assert cpu_only == RunResources(num_cpus=1.0, num_gpus=0.0)
    assert run_device("auto", cpu_only) == "cpu"
    on_gpu = run_resources(tiny_spec, auto, GPU_NODE)
    assert on_gpu == RunResources(num_cpus=2.0, num_gpus=1 / 8)  # 16 CPUs / 1 GPU x 1/8
    assert run_device("auto", on_gpu) == "auto" and run_device("cpu", on_gpu) == "cpu"
    big = spec_of(tiny_spec, 12, 768, 12, 16, 1024, 50304)
    assert run_resources(big, auto, GPU_NODE) == RunResources(num_cpus=16.0, num_gpus=1.0)


def test_a_number_given_by_the_user_applies_to_every_run(tiny_spec):
    big = spec_of(tiny_spec, 12, 768, 12, 16, 1024, 50304)
    fixed = ClusterConfig(gpus_per_run=0.5, cpus_per_run=3)
    for spec in (tiny_spec, big):
        for nodes in (GPU_NODE, [Node(cpus=2, gpus=0)]):
            assert run_resources(spec, fixed, nodes) == RunResources(num_cpus=3.0, num_gpus=0.5)
    cpu = ClusterConfig(gpus_per_run=0)
    assert run_resources(big, cpu, GPU_NODE) == RunResources(num_cpus=1.0, num_gpus=0.0)


def test_cpus_of_a_gpu_run_are_its_share_of_the_leanest_gpu_node():
    nodes = [Node(cpus=16, gpus=2), Node(cpus=64, gpus=4), Node(cpus=8, gpus=0)]  # 8 CPUs per GPU at least
    assert [cpus_for_share(s, nodes) for s in (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0)] == [1, 2, 4, 8, 16]
    # packed runs of one GPU always fit on its node together
    for cpus, gpus in ((10, 1), (12, 8), (96, 8), (2, 1)):
        for share in (1 / 8, 1 / 4, 1 / 2, 1.0):
            per_run = cpus_for_share(share, [Node(cpus, gpus)])
            assert per_run >= 1 and (per_run == 1 or per_run * gpus / share <= cpus)


def test_one_rule_says_how_many_runs_fit_a_node_as_ray_packs_them():
    """Ray keeps a share of at most one GPU within one GPU, so 0.3-GPU runs pack three to a GPU (not 26 on 8);
    a run of several GPUs takes whole idle ones; CPUs bound both."""
    assert runs_fitting(RunResources(num_cpus=1, num_gpus=0.3), 64, [1.0] * 8) == 24
    assert runs_fitting(RunResources(num_cpus=1, num_gpus=0.125), 64, [1.0] * 8) == 64
    assert runs_fitting(RunResources(num_cpus=4, num_gpus=0.125), 16, [1.0]) == 4  # the CPUs bound it
    assert runs_fitting(RunResources(num_cpus=1, num_gpus=0.25), 8, [0.2, 0.5]) == 2  # room left on each GPU
    assert runs_fitting(RunResources(num_cpus=2, num_gpus=2), 8, [1.0, 0.5, 1.0, 1.0]) == 1  # whole idle GPUs
    assert runs_fitting(RunResources(num_cpus=1, num_gpus=0), 3, []) == 3  # a CPU run on a CPU node

    two_gpus = RunResources(num_cpus=4, num_gpus=2)  # data parallel: two ranks of 2 CPUs and 1 GPU
    assert runs_at_once(two_gpus, [Node(cpus=8, gpus=4)]) == 2
    assert runs_at_once(two_gpus, [Node(cpus=2, gpus=1), Node(cpus=2, gpus=1)]) == 1  # one rank per node
    assert not placeable(two_gpus, [Node(cpus=2, gpus=1)])
    assert placeable(RunResources(num_cpus=16, num_gpus=1), GPU_NODE)
    assert not placeable(RunResources(num_cpus=17, num_gpus=1), GPU_NODE)
