"""analysis/report/sections.py: what the report headlines about the loss law, and about a threshold two sizes
bracket. A sweep shaped like the project's default one (bigger models worse where the derived batch doubles,
3 budgets 2.9x apart, one seed) gets no law, frontier or backtest number, and At a glance names each cause and its
fix; a sweep that pins the law still gets all three."""

import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "loss"))
from default_sweep import default_sweep_runs  # noqa: E402

from analysis.emergence.run import run_emergence  # noqa: E402
from analysis.loss.run import LossAnalysis, LossOptions  # noqa: E402
from analysis.report.pipeline import analyze_sweep  # noqa: E402
from analysis.report.sections import emergence_sections, glance_section  # noqa: E402
from sweep.store.runs import Store  # noqa: E402
from sweep.store.schemas import RUNS, to_table  # noqa: E402

QUICK = dict(options=LossOptions(n_resamples=50, n_workers=1), emergence_boot=20)


def _sweep(root, name: str, runs: pl.DataFrame) -> Store:
    store = Store(str(root), name)
    for row in runs.iter_rows(named=True):
        store.run_dir(row["run_id"]).write_table("run.parquet", to_table([row], RUNS))
    return store


def _section(report: str, title: str) -> str:
    start = report.index(f"## {title}")
    end = report.find("\n## ", start + 1)
    return report[start:end if end > 0 else None]


def _svg_text(path: Path) -> list[str]:
    """The text a matplotlib SVG draws (it keeps each string as a comment beside its glyphs)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


@pytest.fixture(scope="module")
def default_like(tmp_path_factory):
    root = tmp_path_factory.mktemp("default")
    store = _sweep(root, "default", default_sweep_runs())
    result = analyze_sweep(store.uri, **QUICK)
    return root / "default" / "analysis", result


def test_a_law_the_data_do_not_pin_is_not_headlined_anywhere(default_like):
    out, result = default_like
    assert not result["loss"].headlined
    report = (out / "report.md").read_text()
    glance = _section(report, "At a glance")
    assert "alpha =" not in glance and "N* ∝" not in glance and "Backtest" not in glance
    assert "Compute-optimal frontier\n\nNot given: the data do not pin the law" in report
    assert "| N* |" not in report and "N*(C) ∝ C^a" not in report
    backtest = _section(report, "Backtest on the largest model size")
    assert "Not given" in backtest and "trust" not in backtest and "beyond the fitted sizes" not in report
    assert not (out / "plots" / "backtest.png").exists()
    titles = _svg_text(out / "plots" / "loss_vs_compute.svg")
    assert not any(t.startswith("L = ") for t in titles) and any(t.startswith("Fitted curves only") for t in titles)
    fits = pl.read_parquet(out / "fits.parquet")  # the numbers stay, as data with their intervals
    assert {"loss_law", "frontier", "backtest"} <= set(fits["analysis"].to_list())


def test_at_a_glance_names_each_cause_with_its_numbers_and_fix(default_like):
    out, _ = default_like
    glance = _section((out / "report.md").read_text(), "At a glance")
    lines = [line for line in glance.splitlines() if line.startswith("- ")]
    recipe, budgets, e = lines[:3]
    assert recipe.startswith("- The recipe, not the law: loss rises with N at fixed D in 3 places and with D at fixed "
                             "N in 1 place, each where the batch doubles")
    assert "N 95.6k -> 164k at D = 643k (s3 -> s4): 0.894 -> 1.050 (+17.4%); batch_size 8 -> 16" in recipe
    assert "recipe.source=calibrate" in recipe and "train.batch_size=16" in recipe and "grid.seeds=[0,1,2]" in recipe
    assert "A's interval spans" in recipe and "alpha in [" in recipe
    assert budgets.startswith("- Too few or too close token budgets: D spans 2.85x over 3 budgets (381k to 1.09M)")
    assert "grid.n_tokens=[3.8e5," in budgets and "train.schedule=wsd grid.branches=true" in budgets
    assert e.startswith("- E is not estimable here: the loss is still falling") and "E's interval spans" in e
    recipe_line, lead = glance.splitlines()[2:4]  # the recipe, then the law's causes first, not interval widths
    assert recipe_line.startswith("Recipe: ")
    assert lead.startswith("Loss law: not headlined; the data do not pin the law: the recipe, not the law; too few or "
                           "too close token budgets; E is not estimable here.")
    assert "decades" not in lead and "[" not in lead


def test_monotonicity_is_a_section_and_a_table_naming_the_runs(default_like):
    out, _ = default_like
    table = pl.read_parquet(out / "monotonicity.parquet")
    recipe = table.filter(pl.col("kind") == "recipe")
    assert set(zip(recipe["run_ids_before"], recipe["run_ids_after"])) == {
        ("s3-D642000-s0", "s4-D642000-s0"), ("s4-D380000-s0", "s5-D380000-s0"),
        ("s6-D1085000-s0", "s7-D1085000-s0"), ("s4-D380000-s0", "s4-D642000-s0")}
    top = recipe.filter(pl.col("run_ids_after") == "s7-D1085000-s0").row(0, named=True)
    assert top["changed"] == "batch_size 16 -> 32, n_steps 530 -> 265, lr 0.00618 -> 0.00758"
    assert (top["loss_before"], top["loss_after"]) == (0.801, 0.867)
    noise = table.filter(pl.col("kind") == "noise")
    assert ("s5-D1085000-s0", "s6-D1085000-s0") in set(zip(noise["run_ids_before"], noise["run_ids_after"]))
    section = _section((out / "report.md").read_text(), "Monotonicity: loss falls with N and with D")
    assert "without seeds, noise cannot be told from a real break" in section
    assert "s6-D1085000-s0 -> s7-D1085000-s0" in section


LAW = dict(E=0.8, A=300.0, alpha=0.5, B=2000.0, beta=0.45)


def test_a_law_the_data_pin_is_still_headlined_with_its_frontier_and_backtest(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(np.geomspace(3e3, 3e6, 7)):
        for j, d in enumerate(np.geomspace(5e5, 8e6, 5)):
            loss = (LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]) * rng.normal(1, 0.002)
            rows.append({"run_id": f"N{i}-D{j}", "status": "done", "n_params": int(n), "n_tokens": int(d),
                         "final_val_loss": loss, "batch_size": 16, "lr": 1e-3})
    result = analyze_sweep(_sweep(tmp_path, "pinned", pl.DataFrame(rows)).uri, **QUICK)
    assert result["loss"].headlined and result["loss"].monotonicity.reversals == ()
    out = tmp_path / "pinned" / "analysis"
    report = (out / "report.md").read_text()
    glance = _section(report, "At a glance")
    assert "Loss law: alpha = 0.5" in glance and "N* ∝ C^" in glance and "Backtest: " in glance
    assert "trust it" in _section(report, "Backtest on the largest model size")
    assert "| N* |" in _section(report, "Compute-optimal frontier")
    assert any(t.startswith("L = 0.") for t in _svg_text(out / "plots" / "loss_vs_compute.svg"))
    assert "Loss falls with N at every D and with D at every N" in report
    assert pl.read_parquet(out / "monotonicity.parquet").is_empty()


SIZES = np.logspace(6, 10, 5)


def test_a_bracketed_threshold_reads_as_the_two_sizes_it_lies_between():
    curves = {"exact_match": [0.0, 0.01, 0.02, 0.8, 0.85], "token_accuracy": [0.1, 0.12, 0.15, 0.9, 0.95]}
    rows = [{"task": "step", "metric": m, "n_params": n, "value": v, "n_samples": 1000, "chance": 0.0}
            for m, values in curves.items() for n, v in zip(SIZES, values)]
    emergence = run_emergence(pl.DataFrame(rows), n_boot=0)
    glance = glance_section(LossAnalysis(LossOptions(), n_runs=0, skipped={"loss_law": "no runs"}), emergence)
    (row,) = glance.table
    assert row["threshold N_c (90%)"] == "between 1e+08 and 1e+09 (bracketed)"
    assert row["flags"] == "bracketed" and "(bracketed)" in glance.text
    (section,) = emergence_sections(emergence, "", {})
    assert {r["threshold N_c"] for r in section.table} == {"between 1e+08 and 1e+09 (bracketed)"}
    assert "no N_c, k or R² fitted" in section.text


def test_a_bracketed_threshold_is_a_row_of_fits_parquet_with_the_two_sizes_and_no_estimate():
    from analysis.report.fits_table import sigmoid_rows

    rows = [{"task": "step", "metric": "exact_match", "n_params": n, "value": v, "n_samples": 1000, "chance": 0.0}
            for n, v in zip(SIZES, [0.0, 0.01, 0.02, 0.8, 0.85])]
    (row,) = sigmoid_rows(run_emergence(pl.DataFrame(rows), n_boot=0))
    assert row["quantity"] == "n_c" and row["estimate"] is None and row["level"] is None
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1e8, 1e9)) and row["method"].startswith("bracket")
