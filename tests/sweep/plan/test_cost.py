"""The dry run's cost estimate: throughput by size from measured figures, GPU-hours, wall-clock with packing."""

import dataclasses
import json

import pytest

from sweep.plan.cost import (
    BUILT_IN_H200,
    CPU,
    GPU,
    H200_PEAK_FLOPS,
    Throughput,
    bench_documents,
    bench_throughput,
    built_in_throughput,
    choose_throughput,
    cost_lines,
    grid_cost,
    makespan_seconds,
    run_cost,
)
from sweep.plan.grid import expand
from sweep.plan.resources import Node, RunResources
from sweep.plan.run_id import run_id
from sweep.store.runs import Store
from sweep.store.schemas import RUNS, to_table
from sweep.train.flops import n_params, train_flops, train_flops_per_token
from sweep.train.shape import ModelShape

HOUR = 3600.0


def test_throughput_is_linear_in_log_n_between_figures_and_constant_beyond():
    t = Throughput(GPU, ((1e4, 1e10), (1e6, 3e10), (1e8, 4e10)), source="test")
    assert t.flops_per_second(1e5) == pytest.approx(2e10)  # halfway in log N
    assert t.flops_per_second(1e7) == pytest.approx(3.5e10)
    assert t.flops_per_second(1e6) == pytest.approx(3e10)
    assert t.flops_per_second(10.0) == 1e10 and t.flops_per_second(1e12) == 4e10


def test_the_built_in_figures_are_issue_9s_h200_measurements():
    from sweep.train.hardware import PEAK_BF16_FLOPS

    assert H200_PEAK_FLOPS == dict(PEAK_BF16_FLOPS)["H200"]
    t = built_in_throughput()
    sizes = [n for n, _ in t.points]
    g1, g4, g7 = (n_params(ModelShape(n_layer=layers, d_model=d, n_head=h))
                  for layers, d, h in ((2, 32, 2), (4, 192, 6), (12, 512, 8)))
    assert [round(n / 1e3) for n in sizes[:3]] == [round(g1 / 1e3), round(g4 / 1e3), round(g7 / 1e3)]
    assert round(g1, -3) == 33_000 and round(g4, -5) == 1_800_000 and round(g7, -6) == 38_000_000
    # train() where measured (the 30M model-alone figure is not used: train() at 38M is the measurement),
    # the model step alone above: 124M and 350M
    assert len(sizes) == 5 and 120e6 < sizes[3] < 130e6 and 350e6 < sizes[4] < 360e6
    mfu = [y / H200_PEAK_FLOPS for _, y in t.points]
    assert mfu[0] == pytest.approx(310e3 * train_flops_per_token(BUILT_IN_H200[0].shape) / H200_PEAK_FLOPS)
    assert mfu[2:] == pytest.approx([0.029, 0.421, 0.435])
    assert "before the GPU optimisations" in t.source


def test_a_runs_gpu_hours_are_its_flops_over_its_throughput_times_its_share(compose_cfg):
    spec = expand(compose_cfg("grid=tiny"))[0]
    t = Throughput(GPU, ((1e3, 1e12),), source="test", peak_flops=1e14)
    cost = run_cost(spec, RunResources(num_cpus=1, num_gpus=0.25), t)
    seconds = train_flops(spec.model, spec.train.n_tokens) / 1e12
    assert cost.seconds == pytest.approx(seconds) and cost.device_hours == pytest.approx(seconds * 0.25 / HOUR)
    on_cpu = run_cost(spec, RunResources(num_cpus=2, num_gpus=0), dataclasses.replace(t, kind=CPU))
    assert on_cpu.device_hours == pytest.approx(seconds * 2 / HOUR)  # core-hours


def test_wall_clock_packs_runs_on_gpus_and_respects_cpus():
    eighth = RunResources(num_cpus=1, num_gpus=1 / 8)
    assert makespan_seconds([(HOUR, eighth)] * 8, [Node(cpus=16, gpus=1)]) == HOUR  # eight at once
    assert makespan_seconds([(HOUR, eighth)] * 9, [Node(cpus=16, gpus=1)]) == 2 * HOUR
    assert makespan_seconds([(HOUR, eighth)] * 8, [Node(cpus=2, gpus=1)]) == 4 * HOUR  # two CPUs: two at once
    whole = RunResources(num_cpus=1, num_gpus=1)
    assert makespan_seconds([(HOUR, whole)] * 2, [Node(cpus=8, gpus=1)]) == 2 * HOUR
    assert makespan_seconds([(HOUR, whole)] * 2, [Node(cpus=8, gpus=1), Node(cpus=8, gpus=1)]) == HOUR
    # a smaller run starts beside a larger one that fills what is left (Ray does not queue in line)
    half = RunResources(num_cpus=1, num_gpus=0.5)
    assert makespan_seconds([(2 * HOUR, half), (HOUR, whole), (HOUR, half)], [Node(cpus=8, gpus=1)]) == 3 * HOUR
    two = RunResources(num_cpus=1, num_gpus=2)
    assert makespan_seconds([(HOUR, two), (HOUR, half)], [Node(cpus=8, gpus=2)]) == 2 * HOUR
    with pytest.raises(ValueError):
        makespan_seconds([(HOUR, two)], [Node(cpus=8, gpus=1)])
    cpu = RunResources(num_cpus=1, num_gpus=0)
    assert makespan_seconds([(HOUR, cpu)] * 4, [Node(cpus=2, gpus=0)]) == 2 * HOUR


def _finished(store, rows):
    for row in rows:
        store.run_dir(row["run_id"]).write_table("run.parquet", to_table([row], RUNS))


def test_throughput_comes_from_finished_runs_then_bench_then_built_in(tmp_path):
    store = Store(str(tmp_path), "s")
    h100_rows = [{"n_params": 1e6, "mfu": 0.01}, {"n_params": 1e8, "mfu": 0.4}]
    bench = [{"device": "NVIDIA H100 80GB HBM3", "rows": h100_rows},
             {"device": "cpu", "rows": [{"n_params": 1e6, "mfu": None, "tokens_per_second": 1e5}]}]
    assert choose_throughput(GPU, store.run_rows(), [], store.uri).source.startswith("built-in figures")
    assert choose_throughput(CPU, store.run_rows(), bench, store.uri) is None  # no CPU figures anywhere
    from_bench = choose_throughput(GPU, store.run_rows(), bench, store.uri)
    assert from_bench.source.startswith("2 GPU measurements in bench/results (NVIDIA H100 80GB HBM3")
    assert from_bench.points == ((1e6, 0.01 * 989.4e12), (1e8, 0.4 * 989.4e12))

    # finished runs of the same directory win: their wall time per FLOP (start-up and evaluation included)
    common = {"status": "done", "n_tokens": 1_000_000, "tokens_per_second": 2e5}
    _finished(store, [
        {**common, "run_id": "a", "n_params": 1_000_000, "flops": 6e15, "wall_seconds": 600.0, "mfu": 0.0012,
         "gpu_type": "NVIDIA H200", "device": "cuda"},
        {**common, "run_id": "b", "n_params": 4_000_000, "flops": 2.4e16, "wall_seconds": 800.0, "mfu": 0.0048,
         "gpu_type": "NVIDIA H200", "device": "cuda"},
        {**common, "run_id": "c", "n_params": 2_000_000, "flops": 1e15, "wall_seconds": 100.0, "device": "cpu"},
        {**common, "run_id": "d", "n_params": 9_000_000, "status": "failed", "flops": 1e15, "wall_seconds": 1.0,
         "device": "cpu"},
    ])
    gpu = choose_throughput(GPU, store.run_rows(), bench, store.uri)
    assert gpu.points == ((1e6, 1e13), (4e6, 3e13)) and gpu.device == "NVIDIA H200"
    assert gpu.source.startswith(f"the wall time per FLOP of 2 finished GPU run(s) in {store.uri}")
    assert gpu.peak_flops == pytest.approx(2e5 * 6e9 / 0.0012)  # tokens/s x FLOPs per token / MFU
    cpu = choose_throughput(CPU, store.run_rows(), bench, store.uri)
    assert cpu.points == ((2e6, 1e13),) and "1 finished CPU run(s)" in cpu.source


def test_bench_rows_of_train_are_used_where_measured_and_the_model_step_alone_above():
    rows = [{"what": "train", "n_params": 1e6, "mfu": 0.02}, {"what": "model_alone", "n_params": 1e6, "mfu": 0.3},
            {"what": "model_alone", "n_params": 1e8, "mfu": 0.42}, {"what": "train", "n_params": 3e7, "mfu": 0.1}]
    t = bench_throughput([{"device": "GPU X", "rows": rows}], peak_of=lambda name: 1e15)
    assert t.points == ((1e6, 0.02e15), (3e7, 0.1e15), (1e8, 0.42e15)) and "train()" in t.source


def test_bench_documents_reads_json_documents_and_json_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"device": "NVIDIA H200", "rows": []}))
    (tmp_path / "b.json").write_text('{"device": "NVIDIA H200", "n_params": 1e6, "mfu": 0.1}\n{"x": 1}\n')
    (tmp_path / "c.json").write_text("not json")
    assert [d.get("device") for d in bench_documents(tmp_path)] == ["NVIDIA H200", "NVIDIA H200", None]
    assert bench_documents(tmp_path / "absent") == []


def test_the_grid_cost_sums_gpu_hours_and_simulates_the_cluster(compose_cfg):
    specs = expand(compose_cfg("grid=tiny", "grid.n_tokens=[1e9]"))
    t = Throughput(GPU, ((1e3, 1e12),), source="test figures", peak_flops=1e15, device="GPU X")
    needs = {run_id(s): RunResources(num_cpus=1, num_gpus=0.5) for s in specs}
    cost = grid_cost(specs, needs, [Node(cpus=4, gpus=1)], t)
    seconds = [train_flops(s.model, s.train.n_tokens) / 1e12 for s in specs]
    assert cost.device_hours == pytest.approx(sum(seconds) * 0.5 / HOUR)
    assert cost.wall_hours == pytest.approx(max(seconds) / HOUR)  # both runs at once on one GPU
    lines = cost_lines(cost, len(specs))
    assert lines[0].startswith(f"estimated cost of the 2 run(s) to train: {cost.device_hours:.3g} GPU-hours of GPU X")
    assert "on 1 GPU (GPU shares per run: 1/2)" in lines[0] and lines[1] == "estimate from test figures"
    assert cost_lines(None, 2, "no finished CPU runs")[0] == "no estimate of the cost: no finished CPU runs"
