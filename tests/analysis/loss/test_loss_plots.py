"""analysis/loss/plots.py: the loss-vs-compute figure reads compute from the runs table and tells WSD
branches from independent runs (never 6ND where the table has `flops`, never a branch drawn like an
independent run)."""

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from law_truth import grid, law

from analysis.loss.fit import fit_loss_law
from analysis.loss.plots import loss_vs_compute

FLOPS_PER_PARAM_TOKEN = 9.0  # what the trainer counts at a short width: attention on top of 6ND


def _runs(roles=None) -> pl.DataFrame:
    n = np.repeat([1e6, 4e6, 1.6e7], 3)
    d = np.tile([2e7, 5e7, 3e8], 3)  # every N x D distinct
    frame = pl.DataFrame({"n_params": n, "n_tokens": d, "final_val_loss": law(n, d),
                          "flops": FLOPS_PER_PARAM_TOKEN * n * d, "flops_6nd": 6 * n * d})
    return frame if roles is None else frame.with_columns(role=pl.Series(roles), flops_spent=pl.col("flops"))


def _points(fig) -> list[np.ndarray]:
    """The data points of the figure's scatters (legend proxies are empty)."""
    return [c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets())]


def test_compute_is_the_runs_table_flops_column_not_6nd():
    runs = _runs()
    fig = loss_vs_compute(runs, None)
    x = np.sort(np.concatenate([p[:, 0] for p in _points(fig)]))
    np.testing.assert_allclose(x, np.sort(runs["flops"].to_numpy()))
    assert "'flops'" in fig.axes[0].get_xlabel()
    plt.close(fig)


def test_the_fitted_law_sits_on_the_same_compute_axis_as_the_points():
    n, d, loss = grid(noise=0.0, sizes=4, budgets=4)
    runs = pl.DataFrame({"n_params": n, "n_tokens": d, "final_val_loss": loss, "flops": FLOPS_PER_PARAM_TOKEN * n * d})
    fig = loss_vs_compute(runs, fit_loss_law(n, d, loss))
    size_lines = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("_")]
    smallest = size_lines[0]
    d_line = np.asarray(smallest.get_xdata()) / (FLOPS_PER_PARAM_TOKEN * n.min())  # x = 9 N D: D back
    np.testing.assert_allclose(smallest.get_ydata(), law(n.min(), d_line), rtol=1e-3)
    plt.close(fig)


def test_a_table_without_flops_falls_back_to_6nd_and_says_so():
    runs = _runs().drop("flops", "flops_6nd")
    fig = loss_vs_compute(runs, None)
    x = np.sort(np.concatenate([p[:, 0] for p in _points(fig)]))
    np.testing.assert_allclose(x, np.sort(6 * runs["n_params"].to_numpy() * runs["n_tokens"].to_numpy()))
    assert "6ND" in fig.axes[0].get_xlabel()
    plt.close(fig)


def test_wsd_branches_are_marked_apart_from_independent_runs():
    roles = ["independent"] * 3 + ["branch", "branch", "trunk"] * 2
    runs = _runs(roles)
    fig = loss_vs_compute(runs, None)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "independent run" in labels and "WSD trunk" in labels
    assert any(label.startswith("WSD branch") for label in labels)
    flops_of = dict(zip(runs["flops"].to_list(), roles))
    for points in _points(fig):  # each scatter holds one role only, so its marker names the role
        assert len({flops_of[min(flops_of, key=lambda f: abs(f / x - 1))] for x in points[:, 0]}) == 1
    plt.close(fig)


def test_independent_runs_alone_need_no_role_legend():
    fig = loss_vs_compute(_runs(["independent"] * 9), None)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert not any("WSD" in label or label == "independent run" for label in labels)
    plt.close(fig)
