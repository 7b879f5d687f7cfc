"""`python -m analysis fit-loss|isoflop|emergence` on tables, and the dispatcher in analysis/cli.py."""

import json
import sys
import types

import numpy as np
import polars as pl
import pytest
from default_sweep import default_sweep_runs
from law_truth import A_TRUE, TRUTH, isoflop_grid, law

from analysis.cli import main


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    """Runs on 4 isoFLOP curves, 7 sizes each, 0.3% noise, plus a text column and one broken row."""
    rng = np.random.default_rng(0)
    n, d, _ = isoflop_grid(budgets=np.logspace(18, 21, 4), sizes=7)
    loss = law(n, d) * np.exp(rng.normal(0, 0.003, len(n)))
    loss[0] = float("nan")
    return pl.DataFrame({"params": n, "tokens": d, "val_loss": loss, "flops": 6 * n * d, "name": ["run"] * len(n)})


@pytest.fixture
def csv(tmp_path, table):
    path = tmp_path / "runs.csv"
    table.write_csv(path)
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


COLUMNS = ("--n", "params", "--d", "tokens", "--loss", "val_loss")


def test_fit_loss_json_has_the_estimates_intervals_and_options(capsys, csv):
    code, out, err = run(capsys, "fit-loss", csv, *COLUMNS, "--json", "--bootstrap", "60", "--seed", "3",
                         "--workers", "1", "--budgets", "1e20,1e22")
    assert code == 0, err
    doc = json.loads(out)  # exactly one JSON document
    for key in ("E", "A", "B", "alpha", "beta", "objective", "n_points", "ci", "options"):
        assert key in doc
    assert doc["n_points"] == 27 and doc["n_invalid"] == 1
    assert abs(doc["alpha"] - TRUTH["alpha"]) < 0.05
    for key in ("E", "A", "B", "alpha", "beta", "a", "b", "n_opt@C=1e+20", "tokens_per_param@C=1e+22"):
        lo, hi = doc["ci"][key]
        assert lo <= hi
    assert doc["options"]["n_column"] == "params" and doc["options"]["n_resamples"] == 60
    assert doc["options"]["seed"] == 3 and doc["options"]["level"] == 0.9 and doc["options"]["huber_delta"] == 1e-3
    assert doc["bootstrap"]["converged_fraction"] > 0.9
    assert [b["flops"] for b in doc["frontier"]["budgets"]] == [1e20, 1e22]


def test_fit_loss_table_parquet_backtest_and_plot(capsys, tmp_path, table):
    path = tmp_path / "runs.parquet"
    table.write_parquet(path)
    png = tmp_path / "loss.png"
    code, out, err = run(capsys, "fit-loss", str(path), *COLUMNS, "--bootstrap", "0", "--backtest", "1",
                         "--plot", str(png))
    assert code == 0, err
    assert "alpha" in out and "D*/N*" in out and "held-out" in out
    assert png.stat().st_size > 10_000


def test_fit_loss_json_checks_monotonicity_and_says_what_changed(capsys, tmp_path):
    """A table with the runs table's recipe columns: the reversals name the runs and what changed; the same
    numbers without those columns get the check all the same, with nothing to say about what changed."""
    runs = default_sweep_runs()
    full, bare = tmp_path / "runs.csv", tmp_path / "bare.csv"
    runs.write_csv(full)
    runs.select("n_params", "n_tokens", "final_val_loss").write_csv(bare)
    argv = ("--n", "n_params", "--d", "n_tokens", "--loss", "final_val_loss", "--json", "--bootstrap", "60",
            "--workers", "1")
    code, out, err = run(capsys, "fit-loss", str(full), *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["headlined"] is False and doc["diagnosis"]["findings"][0]["cause"] == "recipe"
    assert "recipe.source=calibrate" in doc["diagnosis"]["findings"][0]["fix"]
    rows = {(r["run_ids_before"], r["run_ids_after"]): r for r in doc["monotonicity"]["reversals"]}
    top = rows[("s6-D1085000-s0", "s7-D1085000-s0")]
    assert top["kind"] == "recipe"
    assert top["changed"] == "batch_size 16 -> 32, n_steps 530 -> 265, lr 0.00618 -> 0.00758"
    assert (top["label_before"], top["label_after"], top["n_params_after"]) == ("s6", "s7", 782544)
    assert doc["monotonicity"]["recipe_columns"] == ["batch_size", "n_steps", "lr", "precision", "schedule", "role"]

    code, out, err = run(capsys, "fit-loss", str(bare), *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["monotonicity"]["reversals"]) == len(rows) and doc["monotonicity"]["recipe_columns"] == []
    assert {r["changed"] for r in doc["monotonicity"]["reversals"]} == {""}
    assert {r["kind"] for r in doc["monotonicity"]["reversals"]} == {"noise"}  # one seed, recipe unknown


def test_fit_loss_table_says_why_a_law_is_not_headlined(capsys, tmp_path):
    path = tmp_path / "runs.csv"
    default_sweep_runs().write_csv(path)
    code, out, err = run(capsys, "fit-loss", str(path), "--n", "n_params", "--d", "n_tokens", "--loss",
                         "final_val_loss", "--bootstrap", "60", "--workers", "1", "--backtest")
    assert code == 0, err
    assert "Not headlined: the data do not pin the law: the recipe, not the law" in out
    assert "- The recipe, not the law: loss rises with N" in out and "trust it" not in out


def test_isoflop_json_has_exponents_minima_and_agreement(capsys, csv, tmp_path):
    png = tmp_path / "iso.png"
    code, out, err = run(capsys, "isoflop", csv, *COLUMNS, "--flops", "flops", "--json", "--bootstrap", "100",
                         "--workers", "1", "--plot", str(png))
    assert code == 0, err
    doc = json.loads(out)
    assert abs(doc["a"] - A_TRUE) < 0.03 and doc["b"] == pytest.approx(1 - doc["a"])
    assert set(doc["ci"]) == {"a", "b"} and doc["ci"]["a"][0] <= doc["a"] <= doc["ci"]["a"][1]
    assert len(doc["minima"]) == 4
    for m in doc["minima"]:
        assert {"C", "n_opt", "d_opt", "loss_min", "n_points"} <= set(m)
    assert doc["agreement"]["a_isoflop"] == doc["a"] and doc["agreement"]["a_cis_overlap"] is True
    assert doc["options"]["flops_column"] == "flops" and doc["options"]["rel_tol"] == 0.05
    assert png.stat().st_size > 10_000


def test_isoflop_table_without_comparison(capsys, csv):
    code, out, err = run(capsys, "isoflop", csv, *COLUMNS, "--no-compare", "--bootstrap", "0")
    assert code == 0, err
    assert "N_opt" in out and "regression t interval" in out


@pytest.mark.parametrize("argv, message", [
    (("fit-loss", "{csv}", "--n", "n_params", "--d", "tokens", "--loss", "val_loss"), "column 'n_params'"),
    (("isoflop", "{csv}", "--n", "params", "--d", "tokens", "--loss", "loss"), "column 'loss'"),
    (("isoflop", "{csv}", *COLUMNS, "--flops", "compute"), "column 'compute'"),
    (("fit-loss", "{csv}", "--n", "name", "--d", "tokens", "--loss", "val_loss"), "column 'name' (given as --n) must "
                                                                                  "be numeric"),
    (("fit-loss", "{missing}", *COLUMNS), "no such file"),
    (("fit-loss", "{text}", *COLUMNS), "name it .csv, .tsv or .parquet"),
    (("fit-loss", "{few}", *COLUMNS), "at least 5 valid points"),
    (("isoflop", "{few}", *COLUMNS), "2 or more compute budgets"),
])
def test_bad_input_is_one_message_and_exit_2(capsys, tmp_path, csv, table, argv, message):
    few = tmp_path / "few.csv"
    table.head(5).write_csv(few)  # the first row is NaN: 4 valid
    (tmp_path / "runs.txt.gz").write_text("")
    paths = {"csv": csv, "missing": str(tmp_path / "nope.csv"), "text": str(tmp_path / "runs.txt.gz"),
             "few": str(few)}
    code, out, err = run(capsys, *(a.format(**paths) for a in argv), "--bootstrap", "0")
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_emergence_is_dispatched_to_its_module(monkeypatch):
    seen = []
    fake = types.ModuleType("analysis.emergence.cli")
    fake.emergence_main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "analysis.emergence.cli", fake)
    assert main(["emergence", "table.csv", "--json"]) == 0
    assert seen == [["table.csv", "--json"]]


def test_emergence_without_its_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "analysis.emergence.cli", None)  # import fails as if missing
    assert main(["emergence", "table.csv"]) == 2
    assert "analysis.emergence.cli is missing" in capsys.readouterr().err


def test_a_directory_whose_name_starts_like_a_subcommand_is_a_sweep_dir(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "fit-loss"))
    assert code == 2 and "no such sweep directory" in err and "fit-loss" in err


@pytest.mark.parametrize("rows, message", [
    ({"params": [1e9] * 8, "tokens": np.logspace(9, 11, 8)}, "1 distinct N"),
    ({"params": np.logspace(8, 9, 8), "tokens": 10 * np.logspace(8, 9, 8)}, "collinear"),
])
def test_fit_loss_on_data_that_cannot_identify_the_law_exits_2(capsys, tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    pl.DataFrame({**rows, "val_loss": np.linspace(3.0, 2.5, 8)}).write_csv(path)
    code, out, err = run(capsys, "fit-loss", str(path), *COLUMNS, "--bootstrap", "10")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "cannot identify the loss law" in err and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (("fit-loss", "--n-best-starts", "0"), "--n-best-starts must be an integer >= 1, got 0"),  # was a traceback
    (("fit-loss", "--huber-delta", "0"), "--huber-delta must be a finite number > 0"),  # was exit 0
    (("fit-loss", "--huber-delta", "-1"), "--huber-delta must be a finite number > 0"),
    (("fit-loss", "--bootstrap", "-3"), "--bootstrap must be an integer >= 0"),
    (("fit-loss", "--workers", "0"), "--workers must be an integer >= 1"),
    (("fit-loss", "--budgets", "0,1e20"), "--budgets must be finite FLOP counts > 0"),
    (("fit-loss", "--backtest", "-1"), "--backtest must be an integer >= 0"),
    (("fit-loss", "--backtest", "x"), "--backtest takes no value or an integer >= 0"),
    (("fit-loss", "--backtest", "--holdout-fraction", "1.5"), "--holdout-fraction must be a number strictly"),
    (("isoflop", "--rel-tol", "-1"), "--rel-tol must be a finite number >= 0"),
    (("isoflop", "--bootstrap", "-1"), "--bootstrap must be an integer >= 0"),
])
def test_bad_numeric_options_exit_2_with_one_line(capsys, csv, argv, message):
    code, out, err = run(capsys, argv[0], csv, *COLUMNS, *argv[1:])
    assert code == 2 and out == "" and "Traceback" not in err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bare_backtest_holds_out_a_share_of_the_runs(capsys, csv):
    code, out, err = run(capsys, "fit-loss", csv, *COLUMNS, "--json", "--bootstrap", "0", "--backtest",
                         "--holdout-fraction", "0.2")
    assert code == 0, err
    bt = json.loads(out)["backtest"]
    assert bt["n_holdout_runs"] == 6 and "20% of the 27 runs" in bt["rule"]  # distinct N per run: 6 runs, 6 sizes
    assert bt["n_holdout_sizes"] == 6 and min(bt["held_out_sizes"]) > bt["largest_fitted_size"]


def test_isoflop_keeps_its_result_when_the_loss_law_cannot_be_fitted(capsys, csv, monkeypatch):
    import analysis.loss.run

    def collinear(*args, **kwargs):
        raise ValueError("these data cannot identify the loss law: log N and log D are collinear")

    monkeypatch.setattr(analysis.loss.run, "fit_loss_law", collinear)
    code, out, err = run(capsys, "isoflop", csv, *COLUMNS, "--json", "--bootstrap", "0")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["agreement"] is None and "collinear" in doc["agreement_skipped"] and abs(doc["a"] - A_TRUE) < 0.03


@pytest.mark.parametrize("command, column, flag, bad, message", [
    ("fit-loss", "params", "--n", -1.0, "column 'params' (--n) is <= 0 in data rows 1, 2, 3, 4, 5, ... (28 in all)"),
    ("fit-loss", "tokens", "--d", 0.0, "column 'tokens' (--d) is <= 0 in data rows 1, 2, 3, 4, 5, ... (28 in all)"),
    ("fit-loss", "val_loss", "--loss", float("nan"), "column 'val_loss' (--loss) is missing, NaN or infinite"),
    ("isoflop", "val_loss", "--loss", float("nan"), "column 'val_loss' (--loss) is missing, NaN or infinite"),
    ("isoflop", "params", "--n", -1.0, "column 'params' (--n) is <= 0"),
])
def test_a_table_with_no_usable_row_names_the_column_and_rows(capsys, tmp_path, table, command, column, flag, bad,
                                                             message):
    path = tmp_path / "bad.csv"
    table.with_columns(pl.lit(bad).alias(column)).write_csv(path)
    code, out, err = run(capsys, command, str(path), *COLUMNS, "--bootstrap", "0")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: no usable row: ") and message in err and len(err.strip().splitlines()) == 1


def test_rows_a_fit_drops_are_named_on_stderr(capsys, tmp_path, table):
    path = tmp_path / "some.csv"
    table.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(-5.0).otherwise(pl.col("tokens")).alias("tokens")
                       ).write_csv(path)
    code, out, err = run(capsys, "fit-loss", str(path), *COLUMNS, "--bootstrap", "0", "--json")
    assert code == 0 and json.loads(out)["n_invalid"] == 2  # the fixture's NaN loss in row 1, D <= 0 in row 4
    assert err.strip() == ("note: 2 of 28 rows dropped: column 'tokens' (--d) is <= 0 in data row 4; "
                           "column 'val_loss' (--loss) is missing, NaN or infinite in data row 1")
