import json
import subprocess
import sys

import pytest

from bench.wsd_branches import theoretical_fraction


def test_the_saving_grows_with_the_number_of_budgets_not_their_range():
    assert theoretical_fraction([1, 2, 4, 8], 0.2) == pytest.approx(9.4 / 15)  # 63%: D..8D misses 50%
    assert theoretical_fraction([2 ** (k / 2) for k in range(6)], 0.2) < 0.47


@pytest.mark.slow
def test_the_comparison_trains_both_sweeps_and_prints_flops_losses_and_fits(tmp_path):
    sizes = ("[{name: a, n_layer: 1, d_model: 32, n_head: 1}, {name: b, n_layer: 1, d_model: 64}, "
             "{name: c, n_layer: 2, d_model: 64}]")
    out = subprocess.run([sys.executable, "-m", "bench.wsd_branches", "--results", str(tmp_path), "--sizes", sizes,
                          "--budgets", "2e4", "3e4", "4.5e4", "6e4", "--n-boot", "50", "--n-eval", "16"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    for line in ("branches / independent =", "final validation loss per point", "intervals overlapping:"):
        assert line in out.stdout
    summary = json.loads((tmp_path / "summary-independent-cosine-vs-branches-largest.json").read_text())
    assert len(summary["points"]) == 12 and summary["ratio"] < 1
    assert set(summary["fits"]) == {"E", "A", "alpha", "B", "beta"}
