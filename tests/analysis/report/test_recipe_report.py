"""analysis/recipe.py: the report says which recipe set the grid's batch and lr and where it comes from. A
calibrated sweep (real Parquet, calibration.json and sweep.json as the sweep writes them) gets the laws with
their intervals, every note of the calibration, a table of its points and a figure, and At a glance names the
recipe; a sweep on the published laws says so and that its grid lies outside their range; an older sweep
without the recipe keys still gets a report. The calibration runs never enter the loss fit."""

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from analysis.loss.run import LossOptions
from analysis.report.pipeline import analyze_sweep
from analysis.report.recipe import PUBLISHED, Origin, glance_line, recipe_section, summarize
from analysis.tables import inputs
from analysis.tables.grids import open_grid
from analysis.tables.load import load_runs
from sweep.plan.calibration import Calibration, PointOptimum
from sweep.plan.recipe import DEEPSEEK, PowerLaw, Recipe
from sweep.store.runs import Store
from sweep.store.schemas import RUNS, to_table

QUICK = dict(options=LossOptions(n_resamples=20, n_workers=1), emergence_boot=10)
SEQ_LEN = 128
FLOPS_PER_PARAM_TOKEN = 6.5  # the synthetic trainer's count (the real one adds attention to 6ND)
SIZES = {"s1": 40_000, "s2": 90_000, "s3": 200_000}
BUDGETS = (400_000, 800_000, 1_600_000)
POINTS = (("s1", BUDGETS[0]), ("s2", BUDGETS[-1]))  # calibrated at: C = 1.04e11 and 9.36e11
POINT_FLOPS = tuple(FLOPS_PER_PARAM_TOKEN * SIZES[label] * d for label, d in POINTS)
LARGEST = FLOPS_PER_PARAM_TOKEN * SIZES["s3"] * BUDGETS[-1]  # 2.08e12
CALIBRATED = Recipe("calibrated", PowerLaw(0.05, 0.30), PowerLaw(0.40, -0.12), POINT_FLOPS,
                    "results/cal/calibration.json", 0.35)
NOTES = ("s2 calib at C=9.36e+11: the recipe's optimum (batch 3.1e+03 tokens, lr 0.009) lies outside the runs "
         "tried there (batch 1.02e+03..4.1e+03, lr 0.002..0.008)",
         "12% of the bootstrap refits found no bottom in the resampled runs")
CI = {"b": (0.031, 0.083), "e_B": (0.21, 0.39), "l": (0.22, 0.71), "e_eta": (-0.19, -0.05),
      "batch_tokens_at": (1.1e3, 3.4e3), "lr_at": (0.0041, 0.0097), "lr_batch_slope": (0.12, 0.61)}


def _grid_rows(recipe: str | None) -> list[dict]:
    """Runs whose loss follows a Chinchilla law; n_tokens a little over the budget (whole batches)."""
    rows = []
    for label, n in SIZES.items():
        for d in BUDGETS:
            n_tokens = d + 1_000
            loss = 0.8 + 300.0 / n**0.5 + 2000.0 / n_tokens**0.45
            rows.append({"run_id": f"{label}-D{d}", "label": label, "status": "done", "n_params": n, "seq_len": SEQ_LEN,
                         "n_tokens_budget": d, "n_tokens": n_tokens, "flops": FLOPS_PER_PARAM_TOKEN * n * n_tokens,
                         "batch_size": 8 + 2 * BUDGETS.index(d), "lr": 0.01 - 0.001 * BUDGETS.index(d),
                         "final_val_loss": loss, "role": "independent", "recipe": recipe})
    return rows


def _calibration_rows() -> list[dict]:
    """A batch x lr grid at (s1, smallest budget) and (s2, largest budget), loss a bowl in (ln B, ln lr); one
    run at the highest lr and batch blew up."""
    rows = []
    for label, d in POINTS:
        n = SIZES[label]
        for batch in (8, 16, 32):
            for lr in (0.002, 0.004, 0.008):
                loss = 1.2 * np.exp(0.05 * np.log(batch / 14) ** 2 + 0.08 * np.log(lr / 0.005) ** 2)
                if batch == 32 and lr == 0.008 and label == "s2":
                    loss = 7.5
                n_tokens = d + 2_000
                rows.append({"run_id": f"{label}-D{d}-b{batch}-lr{lr}", "label": f"{label} calib", "status": "done",
                             "n_params": n, "seq_len": SEQ_LEN, "n_tokens_budget": d, "n_tokens": n_tokens,
                             "flops": FLOPS_PER_PARAM_TOKEN * n * n_tokens, "batch_size": batch, "lr": lr,
                             "final_val_loss": float(loss), "role": "independent", "recipe": "calibration"})
    return rows


def _calibration(cal_rows: list[dict]) -> dict:
    """calibration.json as the sweep writes it (sweep.plan.calibration.Calibration.to_dict, run ids and tag)."""
    points = []
    for (label, _), flops in zip(POINTS, POINT_FLOPS):
        points.append(PointOptimum(f"{label} calib", flops, 9, CALIBRATED.batch_tokens(flops), CALIBRATED.lr(flops),
                                   {"batch_tokens": 16.0 * SEQ_LEN, "lr": 0.004, "loss": 1.2}, label == "s1"))
    cal = Calibration(CALIBRATED, len(cal_rows), tuple(points), True, CI, LARGEST, NOTES, 0.9, 0.021)
    return {**cal.to_dict(), "run_ids": [r["run_id"] for r in cal_rows], "tag": "calibration"}


def _write(root, name: str, grid: list[dict], calibration_runs: list[dict], manifest: dict | None,
           calibration: dict | None) -> Store:
    store = Store(str(root), name)
    for row in grid + calibration_runs:
        store.run_dir(row["run_id"]).write_table("run.parquet", to_table([row], RUNS))
    if manifest is not None:
        store.root.write_json("sweep.json", manifest)
    if calibration is not None:
        store.root.write_json("calibration.json", calibration)
    return store


def _manifest(grid: list[dict], cal_rows: list[dict], source: str, recipe: Recipe) -> dict:
    return {"name": "s", "run_ids": [r["run_id"] for r in grid], "recipe_source": source,
            "recipe": dataclasses.asdict(recipe), "calibration_run_ids": [r["run_id"] for r in cal_rows]}


def _section(report: str, title: str) -> str:
    start = report.index(f"## {title}")
    end = report.find("\n## ", start + 1)
    return report[start:end if end > 0 else None]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    grid, cal_rows = _grid_rows("calibrated"), _calibration_rows()
    store = _write(root, "cal", grid, cal_rows, _manifest(grid, cal_rows, "calibrate", CALIBRATED),
                   _calibration(cal_rows))
    result = analyze_sweep(store.uri, **QUICK)
    return store, root / "cal" / "analysis", result


def test_calibrated_sweep_reports_the_laws_intervals_and_every_note(calibrated):
    _, out, _ = calibrated
    section = _section((out / "report.md").read_text(), "Recipe: batch and learning rate")
    assert ("laws calibrated at this sweep's scale (results/cal/calibration.json): 18 calibration runs at 2 "
            "points") in section
    assert "s1 calib at C = 1.04e11, s2 calib at C = 9.36e11; C = 1.04e11-9.36e11 FLOPs" in section
    assert "b = 0.05 [0.031, 0.083], e_B = 0.3 [0.21, 0.39]" in section
    assert "l = 0.4 [0.22, 0.71], e_eta = -0.12 [-0.19, -0.05]" in section
    assert "slope = 0.35 [0.12, 0.61]" in section
    assert "Intervals at 90%" in section and "Exponents: fitted on the 2 points." in section
    at = LARGEST
    assert (f"At the grid's largest compute C = 2.08e12: B* = {CALIBRATED.batch_tokens(at):.3g} tokens "
            f"({CALIBRATED.batch_tokens(at) / SEQ_LEN:.3g} sequences) [1.1e3, 3.4e3], lr* = {CALIBRATED.lr(at):.3g} "
            f"[0.0041, 0.0097]; the published laws give B* = ") in section
    assert "extrapolated 2.22x beyond the calibration's largest compute" in section
    for note in NOTES:
        assert f"- {note}\n" in section + "\n"
    assert "The largest run of the grid (s3, C = 2.08e12) trains at batch 12 sequences and lr 0.008." in section


def test_calibrated_sweep_tables_its_points_and_draws_the_figure(calibrated):
    _, out, _ = calibrated
    section = _section((out / "report.md").read_text(), "Recipe: batch and learning rate")
    table = [line for line in section.splitlines() if line.startswith("| s")]
    assert [line.split(" | ")[:3] for line in table] == [["| s1 calib", "1.04e+11", "9"],
                                                         ["| s2 calib", "9.36e+11", "9"]]
    assert table[0].split(" | ")[-2:] == ["yes", "batch 8 seq, lr 0.01 |"]
    assert table[1].split(" | ")[-2:] == ["no", "batch 12 seq, lr 0.008 |"]
    assert "![recipe_calibration.png](plots/recipe_calibration.png)" in section
    assert (out / "plots" / "recipe_calibration.png").stat().st_size > 0
    assert (out / "plots" / "recipe_calibration.svg").stat().st_size > 0
    assert "recipe_calibration.png" in (out / "report.html").read_text()


def test_at_a_glance_names_the_calibrated_recipe(calibrated):
    _, out, _ = calibrated
    glance = _section((out / "report.md").read_text(), "At a glance")
    at = LARGEST
    line = (f"Recipe: calibrated at this scale from 18 runs (2 points, C 1e11-9.4e11): batch 12 sequences, lr 0.008 "
            f"at the largest run (published: {DEEPSEEK.batch_tokens(at) / SEQ_LEN:.0f} and {DEEPSEEK.lr(at):.2g}).")
    assert line in glance.splitlines()
    assert glance.index(line) < glance.index("Loss law")


def test_calibration_runs_never_enter_the_loss_fit(calibrated):
    store, _, result = calibrated
    assert result["loss"].fit.n_points == len(SIZES) * len(BUDGETS)
    for all_runs in (False, True):
        runs = load_runs(open_grid(store.uri), all_runs=all_runs)
        assert runs.height == len(SIZES) * len(BUDGETS) and "calibration" not in runs["recipe"].to_list()


def test_a_changed_calibration_makes_the_analysis_stale(calibrated):
    store, _, _ = calibrated
    settings = inputs.settings(False, QUICK["options"], QUICK["emergence_boot"])
    before = inputs.fingerprint(open_grid(store.uri), settings)
    saved = store.root.read_json("calibration.json")
    store.root.write_json("calibration.json", {**saved, "notes": [*saved["notes"], "one more"]})
    try:
        assert inputs.fingerprint(open_grid(store.uri), settings) != before
    finally:
        store.root.write_json("calibration.json", saved)
    assert inputs.fingerprint(open_grid(store.uri), settings) == before


def test_published_sweep_says_so_and_that_its_grid_lies_outside_their_range():
    grid = _grid_rows("deepseek")
    summary = summarize(_manifest(grid, [], "deepseek", DEEPSEEK), None, pl.DataFrame(grid), pl.DataFrame())
    images: dict[str, bytes] = {}
    section = recipe_section(summary, images)
    assert section.text.startswith(
        "The grid's batch and peak lr follow the published laws of DeepSeek LLM, Bi et al. 2024, sec. 3.1: B*(C) = "
        "0.292 C^0.3271 tokens per step, lr*(C) = 0.3118 C^-0.125, and lr*(C) (B/B*)^0.5 at a batch B off the "
        "optimum; fitted on C = 1e17-2e19 FLOPs. The grid's runs train at C = 1e11-2.1e12 FLOPs")
    assert "9 of 9 lie outside it" in section.text and "recipe.source=calibrate" in section.text
    assert not section.figures and not images and section.table is None
    assert glance_line(summary) == ("Recipe: published laws (DeepSeek LLM, Bi et al. 2024, sec. 3.1), fitted on C "
                                    "1e17-2e19, extrapolated to this grid's C 1e11-2.1e12: batch 12 sequences, lr "
                                    "0.008 at the largest run.")


def test_older_sweep_without_the_recipe_keys_still_gets_a_report(tmp_path):
    grid = _grid_rows(None)
    store = _write(tmp_path, "old", grid, [], {"name": "old", "run_ids": [r["run_id"] for r in grid]}, None)
    analyze_sweep(store.uri, **QUICK)
    report = (tmp_path / "old" / "analysis" / "report.md").read_text()
    assert "sweep.json does not record which recipe" in _section(report, "Recipe: batch and learning rate")
    assert ("Recipe: not recorded in sweep.json; batch 12 sequences, lr 0.008 at the largest run."
            in _section(report, "At a glance"))
    no_manifest = summarize(None, None, pl.DataFrame(grid), pl.DataFrame())  # a directory without sweep.json
    assert no_manifest.origin is Origin.UNRECORDED and not recipe_section(no_manifest, {}).figures


def test_a_calibration_not_yet_fitted_is_provisional():
    grid, cal_rows = pl.DataFrame(_grid_rows("deepseek")), pl.DataFrame(_calibration_rows()[:5])
    manifest = _manifest(_grid_rows("deepseek"), _calibration_rows(), "calibrate", DEEPSEEK)
    summary = summarize(manifest, None, grid, cal_rows)
    assert summary.origin is Origin.PROVISIONAL
    assert glance_line(summary).startswith("Recipe: calibration not fitted: the grid is provisional, on the "
                                           "published laws")
    section = recipe_section(summary, {})
    assert "5 of 5 calibration runs in the runs table are done" in section.text and not section.figures


def test_a_calibration_json_without_lr_batch_slope_reads_as_the_square_root_rule():
    saved = _calibration(_calibration_rows())
    del saved["recipe"]["lr_batch_slope"], saved["ci"]["lr_batch_slope"]
    manifest = _manifest(_grid_rows("calibrated"), [], "calibrate", CALIBRATED)
    del manifest["recipe"]["lr_batch_slope"]
    summary = summarize(manifest, json.loads(json.dumps(saved)), pl.DataFrame(_grid_rows("calibrated")),
                        pl.DataFrame())
    assert summary.origin is Origin.CALIBRATED and summary.laws.lr_batch_slope == 0.5
    assert "slope = 0.5 (calibration.json records no slope: the square-root rule" in recipe_section(summary, {}).text


def test_the_published_laws_are_the_sweeps():
    assert (PUBLISHED.batch_tokens.coefficient, PUBLISHED.batch_tokens.exponent) == (
        DEEPSEEK.batch_tokens.coefficient, DEEPSEEK.batch_tokens.exponent)
    assert (PUBLISHED.lr.coefficient, PUBLISHED.lr.exponent) == (DEEPSEEK.lr.coefficient, DEEPSEEK.lr.exponent)
    assert PUBLISHED.fitted_flops == DEEPSEEK.fitted_flops and PUBLISHED.reference == DEEPSEEK.reference
    assert PUBLISHED.lr_batch_slope == DEEPSEEK.lr_batch_slope
