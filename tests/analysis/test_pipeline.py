"""The offline analysis on a sweep directory whose tables follow a known law."""

import numpy as np
import polars as pl
import pytest

from analysis.cli import main
from analysis.emergence import sigmoid
from sweep.schemas import EVALS, RUNS, to_table
from sweep.store import Store

LAW = dict(E=0.8, A=300.0, alpha=0.5, B=2000.0, beta=0.45)


def make_sweep(root, name="s"):
    store = Store(str(root), name)
    for n in (3e4, 1e5, 3e5, 1e6):
        for d in (5e5, 1e6, 2e6, 4e6):
            rid = f"N{int(n)}-D{int(d)}"
            loss = LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]
            run = store.run_dir(rid)
            run.write_table("run.parquet", to_table([{"run_id": rid, "status": "done", "n_params": int(n),
                                                      "n_tokens": int(d), "final_val_loss": loss}], RUNS))
            acc = float(sigmoid(np.log(n), 0.0, 1.0, 4.0, np.log(2e5)))
            run.write_table("evals.parquet", to_table([
                {"run_id": rid, "n_params": int(n), "n_tokens": int(d), "task": "add", "metric": "exact_match",
                 "metric_kind": "discontinuous", "value": acc, "chance": 0.0, "n_samples": 100},
            ], EVALS))
    return store


def test_analysis_recovers_the_law_and_writes_the_report(tmp_path):
    store = make_sweep(tmp_path)
    assert main([store.uri]) == 0
    out = tmp_path / "s" / "analysis"
    fits = pl.read_parquet(out / "fits.parquet")
    law = {r["quantity"]: r["estimate"] for r in fits.filter(pl.col("analysis") == "loss_law").iter_rows(named=True)}
    assert law["alpha"] == pytest.approx(LAW["alpha"], abs=0.01)
    assert law["beta"] == pytest.approx(LAW["beta"], abs=0.01)
    assert law["E"] == pytest.approx(LAW["E"], rel=0.02)
    n_c = fits.filter((pl.col("analysis") == "sigmoid") & (pl.col("quantity") == "n_c"))["estimate"][0]
    assert n_c == pytest.approx(2e5, rel=0.01)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert (out / "plots" / "loss_vs_compute.png").stat().st_size > 10_000
    assert "alpha" in (out / "report.md").read_text()


def test_analysis_of_an_empty_directory_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    assert "no run.parquet files" in capsys.readouterr().err
