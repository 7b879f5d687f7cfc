import polars as pl
import pytest

from analysis.report.compute import compute_summary, compute_text


def _runs(**extra):
    base = {"run_id": ["t", "b1", "b2"], "label": ["s"] * 3, "n_params": [100] * 3, "n_tokens": [800, 400, 200],
            "flops": [8.0, 4.0, 2.0], "final_val_loss": [2.0, 2.2, 2.5]}
    return pl.DataFrame({**base, **extra})


def test_branches_count_their_cooldown_as_spent_and_the_saving_is_stated():
    summary = compute_summary(_runs(flops_spent=[8.0, 0.8, 0.4], role=["trunk", "branch", "branch"],
                                    schedule=["wsd-trunk 1-sqrt 2/10"] * 3, trunk_run_id=[None, "t", "t"]))
    assert summary.flops_spent == pytest.approx(9.2) and summary.flops_independent == pytest.approx(14.0)
    assert summary.saved_fraction == pytest.approx(1 - 9.2 / 14) and (summary.n_trunks, summary.n_branches) == (1, 2)
    assert "34.3% saved" in compute_text(summary)


def test_tables_from_before_branches_are_independent_runs():
    summary = compute_summary(_runs())
    assert summary.flops_spent == summary.flops_independent == 14.0 and summary.n_branches == 0
    assert summary.points["role"].to_list() == ["independent"] * 3
    assert "independent run" in compute_text(summary)
