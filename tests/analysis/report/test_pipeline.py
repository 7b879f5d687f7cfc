"""The offline analysis on a sweep directory whose tables follow a known law."""

import numpy as np
import polars as pl
import pytest

from analysis.cli import main
from sweep.store.runs import Store
from sweep.store.schemas import EVALS, RUNS, to_table

LAW = dict(E=0.8, A=300.0, alpha=0.5, B=2000.0, beta=0.45)


SIZES = tuple(np.geomspace(3e3, 3e6, 8))


def make_sweep(root, name="s", sizes=SIZES):
    """Runs whose loss follows LAW with 0.3% noise, and Schaeffer et al.'s account of a jump: the per-token
    loss falls as a power law, p_token = exp(-(N/2e3)^-1), and exact match on an 8-token answer is p^8."""
    store = Store(str(root), name)
    rng = np.random.default_rng(0)
    for n in sizes:
        for d in (5e5, 1e6, 2e6, 4e6):
            rid = f"N{int(n)}-D{int(d)}"
            loss = (LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]) * rng.normal(1, 0.003)
            run = store.run_dir(rid)
            run.write_table("run.parquet", to_table([{"run_id": rid, "status": "done", "n_params": int(n),
                                                      "n_tokens": int(d), "final_val_loss": loss}], RUNS))
            p_token = float(np.exp(-((n / 2e3) ** -1.0)))
            common = {"run_id": rid, "n_params": int(n), "n_tokens": int(d), "task": "add", "n_samples": 1000,
                      "answer_tokens": 8.0}
            run.write_table("evals.parquet", to_table([
                {**common, "metric": "exact_match", "metric_kind": "discontinuous", "value": p_token**8, "chance": 0.0},
                {**common, "metric": "token_accuracy", "metric_kind": "continuous", "value": p_token, "chance": 0.1},
            ], EVALS))
    return store


def test_analysis_recovers_the_law_and_writes_the_report(tmp_path):
    store = make_sweep(tmp_path)
    assert main([store.uri]) == 0
    out = tmp_path / "s" / "analysis"
    fits = pl.read_parquet(out / "fits.parquet")
    law = {r["quantity"]: r for r in fits.filter(pl.col("analysis") == "loss_law").iter_rows(named=True)}
    for name, truth in LAW.items():
        assert law[name]["ci_low"] <= truth <= law[name]["ci_high"], name
    assert law["alpha"]["estimate"] == pytest.approx(LAW["alpha"], abs=0.02)
    assert law["beta"]["estimate"] == pytest.approx(LAW["beta"], abs=0.02)
    frontier_rows = fits.filter(pl.col("analysis") == "frontier").iter_rows(named=True)
    frontier = {r["quantity"]: r["estimate"] for r in frontier_rows}
    assert frontier["a"] == pytest.approx(LAW["beta"] / (LAW["alpha"] + LAW["beta"]), abs=0.02)
    assert any(q.startswith("tokens_per_param@C=") for q in frontier)
    backtest = fits.filter((pl.col("analysis") == "backtest") & (pl.col("quantity") == "mean_abs_rel_error"))
    assert backtest["estimate"][0] < 0.01  # data from the law: it extrapolates to the held-out size

    emergence = pl.read_parquet(out / "emergence.parquet")
    em = emergence.filter(pl.col("metric") == "exact_match").row(0, named=True)
    assert em["verdict"] == "emergent" and em["artifact_verdict"] == "metric-induced"
    assert emergence.filter(pl.col("metric") == "token_accuracy")["verdict"][0] == "smooth"
    assert em["n_c_lo"] <= em["n_c"] <= em["n_c_hi"]

    html = (out / "report.html").read_text()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert {"loss_vs_compute.png", "residuals.png", "backtest.png", "emergence_add.png"} <= set(pngs)
    assert html.count("data:image/png;base64,") == len(pngs)  # self-contained: every figure embedded
    assert all((out / "plots" / p.replace(".png", ".svg")).stat().st_size > 5_000 for p in pngs)
    assert html.index("At a glance") < html.index("metric-induced") < html.index("Loss law")
    assert "alpha" in (out / "report.md").read_text()
    # one interval level in the whole report, and the number of sizes beside every verdict
    assert set(fits["level"].drop_nulls().to_list()) == {0.9} and set(emergence["ci_level"].to_list()) == {0.9}
    assert {"loss_law", "sigmoid"} <= set(fits.filter(pl.col("level").is_not_null())["analysis"].to_list())
    glance = html[html.index("At a glance"):html.index("<h2>", html.index("At a glance"))]
    assert "<th>sizes</th>" in glance and f"<td>{len(SIZES)}</td>" in glance
    assert html.count("<th>n_sizes</th>") == 1  # the task's section: one row per metric, each with its sizes


def test_a_grid_with_one_budget_reports_why_the_law_is_not_fitted(tmp_path):
    store = Store(str(tmp_path), "one")
    for n in (1e4, 3e4, 1e5, 3e5, 1e6):
        rid = f"N{int(n)}"
        row = {"run_id": rid, "status": "done", "n_params": int(n), "n_tokens": 10**6, "final_val_loss": 1 + 1 / n}
        store.run_dir(rid).write_table("run.parquet", to_table([row], RUNS))
    assert main([store.uri]) == 0
    report = (tmp_path / "one" / "analysis" / "report.md").read_text()
    assert "Loss law not fitted" in report and "1 distinct D" in report
    assert pl.read_parquet(tmp_path / "one" / "analysis" / "fits.parquet").is_empty()


def test_analysis_of_an_empty_or_missing_directory_is_one_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such sweep directory:") and err.count("\n") == 1 and "nothing" in err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run.parquet files under") and err.count("\n") == 1
    assert "polars" not in err.lower() and "PlRefPath" not in err  # our one line, not polars' multi-clause error
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "empty" / "analysis").exists()


def test_an_analysis_of_unchanged_runs_is_not_redone(tmp_path):
    """only_if_changed (what `make sweep` uses on a rerun): skipped while the runs' tables, status files, the
    settings and the analysis code are what the analysis on disk was made from; redone when any changes."""
    import os

    from analysis.loss.run import LossOptions
    from analysis.report.pipeline import analyze_sweep
    from analysis.tables import inputs

    sizes = SIZES[:4]
    store = make_sweep(tmp_path, sizes=sizes)
    quick = dict(emergence_boot=20, options=LossOptions(n_resamples=20))
    made_with = inputs.settings(**quick)
    assert not inputs.is_current(store.uri, made_with)
    assert analyze_sweep(store.uri, only_if_changed=True, **quick)["skipped"] is False
    report = tmp_path / "s" / "analysis" / "report.html"
    written = report.stat().st_mtime_ns
    assert inputs.is_current(store.uri, made_with)
    assert not inputs.is_current(store.uri)  # other settings (the defaults) are another analysis
    assert analyze_sweep(store.uri, only_if_changed=True, **quick)["skipped"] is True
    assert report.stat().st_mtime_ns == written

    evals = tmp_path / "s" / "runs" / f"run_id=N{int(sizes[1])}-D{int(5e5)}" / "evals.parquet"
    stamp = evals.stat().st_mtime_ns
    os.utime(evals, ns=(stamp + 10**9, stamp + 10**9))  # a table rewritten
    assert not inputs.is_current(store.uri, made_with)
    os.utime(evals, ns=(stamp, stamp))
    assert inputs.is_current(store.uri, made_with)
    # a run's status file changes (it finished, was retried, ...): the analysis is redone
    store.run_dir(f"N{int(sizes[0])}-D{int(5e5)}").write_json("status.json", {"state": "done", "attempts": []})
    assert analyze_sweep(store.uri, only_if_changed=True, **quick)["skipped"] is False
    assert report.stat().st_mtime_ns > written and inputs.is_current(store.uri, made_with)
    report.unlink()  # the analysis removed by hand
    assert not inputs.is_current(store.uri, made_with)


def test_only_finished_runs_of_the_current_grid_are_fitted(tmp_path):
    """Failed and diverged runs (whatever numbers their tables hold) and runs of an earlier grid (not in
    sweep.json) stay out of the loss law and the emergence curves; the report still lists the grid's runs."""
    import json

    from analysis.loss.run import LossOptions
    from analysis.report.pipeline import analyze_sweep

    store = make_sweep(tmp_path)
    good = [f"N{int(n)}-D{int(d)}" for n in SIZES for d in (5e5, 1e6, 2e6, 4e6)]
    intruders = {"failed-run": "failed", "diverged-run": "diverged", "older-grid-run": "done"}
    for rid, status in intruders.items():  # far off the law, at a size of their own, largest budget
        run = store.run_dir(rid)
        run.write_table("run.parquet", to_table([{"run_id": rid, "status": status, "n_params": 1000,
                                                  "n_tokens": int(4e6), "final_val_loss": 50.0}], RUNS))
        run.write_table("evals.parquet", to_table([
            {"run_id": rid, "n_params": 1000, "n_tokens": int(4e6), "task": "add", "n_samples": 1000,
             "answer_tokens": 8.0, "metric": "exact_match", "metric_kind": "discontinuous", "value": 1.0,
             "chance": 0.0}], EVALS))
    store.root.write_json("sweep.json", {"run_ids": good + ["failed-run", "diverged-run"]})
    quick = dict(options=LossOptions(n_resamples=20, n_workers=1), emergence_boot=20)

    result = analyze_sweep(store.uri, **quick)
    fit = result["loss"].fit
    assert fit.n_points == 32 and fit.alpha == pytest.approx(LAW["alpha"], abs=0.02)
    em = result["emergence"].table.filter(pl.col("metric") == "exact_match").row(0, named=True)
    assert em["n_sizes"] == 8 and em["verdict"] == "emergent"  # size 1000 (only in the intruders) absent
    report = (tmp_path / "s" / "analysis" / "report.md").read_text()
    assert "failed-run" in report and "diverged-run" in report and "older-grid-run" not in report

    everything = analyze_sweep(store.uri, all_runs=True, **quick)  # --all-runs: the earlier grid's done run too
    assert everything["loss"].fit.n_points == 33
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["run_ids"][-1] == "diverged-run"


def test_with_no_finished_run_no_evaluation_is_analysed(tmp_path):
    """Evaluations left by runs that did not finish are not emergence data, even when no run finished."""
    from analysis.loss.run import LossOptions
    from analysis.report.pipeline import analyze_sweep

    store = Store(str(tmp_path), "broken")
    for n in (1e4, 1e5, 1e6, 1e7, 1e8):
        rid = f"N{int(n)}"
        run = store.run_dir(rid)
        run.write_table("run.parquet", to_table([{"run_id": rid, "status": "failed", "n_params": int(n),
                                                  "n_tokens": 10**6}], RUNS))
        run.write_table("evals.parquet", to_table([{"run_id": rid, "n_params": int(n), "n_tokens": 10**6,
                                                    "task": "add", "metric": "exact_match", "value": 0.5,
                                                    "metric_kind": "discontinuous", "n_samples": 100}], EVALS))
    result = analyze_sweep(store.uri, options=LossOptions(n_resamples=10, n_workers=1), emergence_boot=10)
    assert result["loss"].fit is None and result["emergence"] is None
    assert "No evaluations of finished runs" in (tmp_path / "broken" / "analysis" / "report.md").read_text()


def test_training_compute_is_read_from_the_runs_table():
    """run.parquet's flops_6nd (the budget an isoFLOP grid sets), else its flops; 6ND only where it has neither."""
    from analysis.report.pipeline import run_flops

    runs = pl.DataFrame({"n_params": [10, 20], "n_tokens": [100, 100], "flops": [7e3, 1.3e4],
                         "flops_6nd": [6e3, 1.2e4]})
    assert run_flops(runs).tolist() == [6e3, 1.2e4]
    assert run_flops(runs.drop("flops_6nd")).tolist() == [7e3, 1.3e4]
    assert run_flops(runs.drop("flops_6nd", "flops")).tolist() == [6e3, 1.2e4]  # 6ND only without either


def _grid(store, grid_id: str, run_ids: list[str]) -> None:
    """What the sweep writes for a grid: its own manifest under grids/, and sweep.json naming it the latest."""
    manifest = {"name": "s", "grid_id": grid_id, "run_ids": run_ids}
    store.root.write_json(f"grids/{grid_id}/sweep.json", manifest)
    store.root.write_json("sweep.json", manifest)


def test_each_grid_keeps_its_analysis_and_the_sweeps_is_the_latest_grids(tmp_path, capsys):
    """A second grid under the same name (one budget changed) gets an analysis of its own beside the first's, which
    is not redone; going back to the first grid (a rerun with other cluster settings) redoes neither, it only makes
    the first's analysis the sweep's again; --grid analyses an older one; an unknown grid is one line, exit 2."""
    from analysis.loss.run import LossOptions
    from analysis.report.pipeline import analyze_sweep
    from analysis.tables import inputs

    sizes = SIZES[:4]
    store = make_sweep(tmp_path, sizes=sizes)
    ids = {d: [f"N{int(n)}-D{int(d)}" for n in sizes] for d in (5e5, 1e6, 2e6, 4e6)}
    first, second = ids[5e5] + ids[1e6] + ids[2e6], ids[1e6] + ids[2e6] + ids[4e6]
    quick = dict(emergence_boot=20, options=LossOptions(n_resamples=20, n_workers=1), only_if_changed=True)
    sweep, grids = tmp_path / "s", tmp_path / "s" / "grids"

    _grid(store, "first", first)
    assert analyze_sweep(store.uri, **quick)["loss"].fit.n_points == 12
    made_first = (grids / "first" / "analysis" / "report.html").stat().st_mtime_ns
    assert (sweep / "analysis" / "report.md").read_bytes() == (grids / "first" / "analysis" / "report.md").read_bytes()

    _grid(store, "second", second)
    result = analyze_sweep(store.uri, **quick)
    assert result["loss"].fit.n_points == 12 and result["out"] == f"{sweep}/grids/second/analysis"
    assert (grids / "first" / "analysis" / "report.html").stat().st_mtime_ns == made_first  # kept, not redone
    reports = {g: (grids / g / "analysis" / "report.md").read_text() for g in ("first", "second")}
    assert ids[5e5][0] in reports["first"] and ids[5e5][0] not in reports["second"]
    assert ids[4e6][0] in reports["second"] and ids[4e6][0] not in reports["first"]
    assert "grid second (12 runs" in reports["second"] and "its other grids: first" in reports["second"]
    assert (sweep / "analysis" / "report.md").read_text() == reports["second"]

    _grid(store, "first", first)  # the first grid again: nothing about its runs changed
    made_second = (grids / "second" / "analysis" / "report.html").stat().st_mtime_ns
    assert not inputs.is_current(store.uri, inputs.settings(False, quick["options"], 20))  # the sweep's is second's
    assert analyze_sweep(store.uri, **quick)["skipped"] is True
    assert (grids / "first" / "analysis" / "report.html").stat().st_mtime_ns == made_first
    assert (sweep / "analysis" / "report.md").read_text() == reports["first"]
    assert inputs.is_current(store.uri, inputs.settings(False, quick["options"], 20))
    assert sorted(p.name for p in (sweep / "analysis" / "plots").iterdir()) == sorted(
        p.name for p in (grids / "first" / "analysis" / "plots").iterdir())
    assert analyze_sweep(store.uri, grid="second", **quick)["skipped"] is True  # an older grid: current too
    assert (grids / "second" / "analysis" / "report.html").stat().st_mtime_ns == made_second
    assert (sweep / "analysis" / "report.md").read_text() == reports["first"]  # still the latest grid's

    capsys.readouterr()
    assert main([store.uri, "--grid", "third"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no grid third in") and "its grids: first (latest), second" in err
    assert err.count("\n") == 1
