"""bench/trainer_throughput.py works end to end: its quick mode runs and writes sane JSON lines.

Timings on a shared CI machine are noise, so nothing here asserts a speed or a ratio.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.train.hardware import native_bf16

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "throughput.jsonl"
    # PASSIVE: idle OpenMP threads sleep instead of spinning, so a busy machine does not stall the run.
    env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run([sys.executable, "-m", "bench.trainer_throughput", "--quick", "--out", str(out), *args],
                   cwd=ROOT, env=env, check=True, timeout=600)
    return [json.loads(line) for line in out.read_text().splitlines()]


def check_rows(rows: list[dict], variants: set[str], shapes: set[tuple[int, int]]) -> None:
    """`variants` of every shape, plus the like-for-like fp32 row wherever ours trained in bf16."""
    for shape in shapes:
        mine = [row for row in rows if (row["n_layer"], row["d_model"]) == shape]
        bf16 = any(row["precision"] == "bf16" for row in mine)
        assert sorted(row["variant"] for row in mine) == sorted(variants | ({"ours_eager_fp32"} if bf16 else set()))
    assert {(row["n_layer"], row["d_model"]) for row in rows} == shapes
    for row in rows:
        assert row["tokens_per_second"] > 0
        assert row["ratio_to_nanogpt_eager"] > 0
        assert row["device"] and row["torch"] and row["date"] and row["threads"] == 2
        assert row["n_head"] == row["d_model"] // 32 and row["batch"] == 32 and row["seq_len"] == 128
    nano = [row for row in rows if row["model"] == "nanogpt"]
    assert all(row["ratio_to_nanogpt_eager"] == 1.0 and row["precision"] == "fp32" for row in nano)
    # ours as the trainer runs it: bf16 on a CPU with AMX at every shape, fp32 elsewhere.
    for row in rows:
        if row["variant"] in ("ours_eager", "ours_compiled"):
            assert row["precision"] == ("bf16" if native_bf16("cpu") else "fp32")


def test_quick_mode_writes_both_models_for_every_reference_shape(tmp_path):
    rows = run_bench(tmp_path)
    check_rows(rows, {"nanogpt_eager", "ours_eager"}, {(2, 64), (3, 128), (4, 192), (6, 256)})
    params = {(row["n_layer"], row["d_model"], row["model"]): row["n_params"] for row in rows}
    # nanoGPT has learned positions (128 x d more), ours rotary ones; otherwise the same count.
    assert params[(2, 64, "nanogpt")] - params[(2, 64, "ours")] == 128 * 64


@pytest.mark.slow
def test_quick_mode_with_compile_reports_compile_seconds(tmp_path):
    rows = run_bench(tmp_path, "--compile", "--shapes", "2x64")
    check_rows(rows, {"nanogpt_eager", "ours_eager", "ours_compiled"}, {(2, 64)})
    compiled = next(row for row in rows if row["compiled"])
    assert compiled["compile_seconds_cold"] > 0 and compiled["compile_seconds_warm"] is not None
    assert "pays_off_after_eager_seconds_cold" in compiled
