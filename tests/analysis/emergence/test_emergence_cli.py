"""`python -m analysis emergence FILE` (analysis/emergence/cli.py): JSON contract and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis.emergence.cli import emergence_main
from analysis.emergence.rule import Verdict
from analysis.emergence.sigmoid import sigmoid

ROOT = Path(__file__).resolve().parents[3]
SIZES = np.logspace(6, 10, 8)


def write_table(path: Path, fmt: str = "csv") -> Path:
    x = np.log(SIZES)
    p = 0.2 + 0.79 * (x - x.min()) / np.ptp(x)
    rows = []
    for n, tok in zip(SIZES, p):
        rows.append({"task": "add", "metric": "exact_match", "n_params": n, "value": tok**8, "answer_tokens": 8.0})
        rows.append({"task": "add", "metric": "token_accuracy", "n_params": n, "value": tok, "answer_tokens": 8.0})
        rows.append({"task": "jump", "metric": "exact_match", "n_params": n,
                     "value": float(sigmoid(np.log(n), 0, 0.9, 3, np.log(3e8))), "answer_tokens": 3.0})
    frame = pl.DataFrame(rows)
    file = path / f"points.{fmt}"
    frame.write_csv(file) if fmt == "csv" else frame.write_parquet(file)
    return file


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_json_is_one_list_of_rows_with_the_contract_keys(tmp_path, capsys, fmt):
    file = write_table(tmp_path, fmt)
    assert emergence_main([str(file), "--json", "--bootstrap", "20", "--seed", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 3
    for row in rows:
        for key in ("task", "metric", "verdict", "n_c", "k", "n_c_lo", "n_c_hi", "k_lo", "k_hi", "artifact_verdict",
                    "r2_sigmoid", "aic_sigmoid", "aicc_linear", "bic_power", "reason", "pl_r2", "ci_level",
                    "sigmoid_converged", "spearman_rho", "note", "n_c_lower_bound", "threshold_bound"):
            assert key in row
    by = {(r["task"], r["metric"]): r for r in rows}
    assert by[("add", "exact_match")]["verdict"] == "emergent"
    assert by[("add", "token_accuracy")]["artifact_verdict"] == "metric-induced"
    assert by[("jump", "exact_match")]["n_c"] == pytest.approx(3e8, rel=0.05)
    assert by[("jump", "exact_match")]["artifact_verdict"] == "inconclusive"  # no continuous metric


def test_readable_table_and_figure(tmp_path, capsys):
    file = write_table(tmp_path)
    png = tmp_path / "fig.png"
    assert emergence_main([str(file), "--bootstrap", "10", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "metric-induced" in out and "emergent" in out
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("content, args, message", [
    (None, [], "no such file"),
    ("task,metric,value\na,m,1\n", [], "missing column(s) n_params"),
    ("task,metric,n_params,value\na,m,10,abc\na,m,20,0.5\n", [], "'value' must be numeric"),
    ("task,metric,n_params,value\n", [], "has no rows"),
    ("task,metric,n_params,value\na,m,10,0.5\n", ["--x", "log_flops"], "flops"),
    ("task,metric,n_params,value\na,m,10,0.5\n", ["--x", "sideways"], "invalid choice"),
    ("task,metric,n_params,value\na,m,10,0.5\n", ["--bootstrap", "-1"], "--bootstrap"),
    ("\x00\x01\x02garbage", [], "cannot read"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, capsys, content, args, message):
    file = tmp_path / "t.csv"
    if content is not None:
        file.write_text(content)
    assert emergence_main([str(file), "--json", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_module_entry_point(tmp_path):
    file = write_table(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "analysis.emergence.cli", str(file), "--json", "--bootstrap", "0"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {r["verdict"] for r in json.loads(done.stdout)} <= {v.value for v in Verdict}
    bad = subprocess.run([sys.executable, "-m", "analysis.emergence.cli", str(tmp_path / "missing.csv")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("column", ["task", "metric"])
def test_rows_with_an_empty_task_or_metric_are_dropped_and_counted(tmp_path, capsys, column):
    """A null task or metric cell drops its row, counted, never a traceback."""
    file = write_table(tmp_path)
    frame = pl.read_csv(file)
    blank = frame.head(4).with_columns(pl.lit(None, dtype=pl.String).alias(column))
    pl.concat([frame, blank]).write_csv(file)
    assert emergence_main([str(file), "--json", "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 3
    assert "4 rows with an empty task or metric dropped" in captured.err


@pytest.mark.parametrize("content, column", [
    ("task,metric,n_params,value\nt,,1e8,0\nt,,1e9,0.1\nt,,1e10,0.5\nt,,1e11,0.9\n", "metric"),
    ("task,metric,n_params,value\n,em,1e8,0\n,em,1e9,0.1\n,em,1e10,0.5\n,em,1e11,0.9\n", "task"),
    ("task,metric,n_params,value\n,em,1e8,0\n,em,1e9,0.1\nt,,1e10,0.5\nt,,1e11,0.9\n", "task"),
])
def test_a_table_with_no_labelled_rows_is_exit_2_naming_the_column(tmp_path, capsys, content, column):
    file = tmp_path / "t.csv"
    file.write_text(content)
    assert emergence_main([str(file), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and f"'{column}'" in err


def test_level_option_sets_the_interval_level(tmp_path, capsys):
    file = write_table(tmp_path)
    assert emergence_main([str(file), "--json", "--bootstrap", "50", "--level", "0.9"]) == 0
    assert {r["ci_level"] for r in json.loads(capsys.readouterr().out)} == {0.9}
    assert emergence_main([str(file), "--json", "--level", "1.5"]) == 2
    assert "--level" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("task,metric,n_params,value\nt,em,0,0.1\nt,em,-1e6,0.5\n",
     "no usable row: column 'n_params' is <= 0 in data rows 1, 2"),
    ("task,metric,n_params,value\nt,em,1e6,nan\nt,em,1e7,\n",
     "no usable row: column 'value' is missing, NaN or infinite in data rows 1, 2"),
    ("task,metric,n_params,value,flops\nt,em,1e6,0.1,0\nt,em,1e7,0.2,-3\n", "column 'flops' is <= 0"),
])
def test_a_table_without_a_usable_row_names_the_column_and_rows(tmp_path, capsys, content, message):
    file = tmp_path / "t.csv"
    file.write_text(content)
    x = ["--x", "log_flops"] if "flops" in content else []
    assert emergence_main([str(file), "--json", *x]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_rows_with_a_non_positive_size_or_nan_value_are_dropped_and_named(tmp_path, capsys):
    file = write_table(tmp_path)
    frame = pl.read_csv(file)
    bad = frame.head(2).with_columns(pl.Series("n_params", [0.0, -5.0]))
    nan = frame.head(1).with_columns(pl.lit(float("nan")).alias("value"))
    pl.concat([frame, bad, nan]).write_csv(file)
    assert emergence_main([str(file), "--json", "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 3
    assert ("note: 3 of 27 rows dropped: column 'n_params' is <= 0 in data rows 25, 26; column 'value' is missing, "
            "NaN or infinite in data row 27") in captured.err


def test_a_bracketed_threshold_says_so_in_json_and_the_table(tmp_path, capsys, monkeypatch):
    sizes = np.logspace(6, 10, 5)
    file = tmp_path / "step.csv"
    pl.DataFrame({"task": "step", "metric": "exact_match", "n_params": sizes, "value": [0.0, 0.01, 0.02, 0.8, 0.85],
                  "n_samples": 1000}).write_csv(file)
    assert emergence_main([str(file), "--json", "--bootstrap", "50"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"] == "emergent" and row["bracketed"] is True and row["flags"] == "bracketed"
    assert row["n_c"] is None and row["k"] is None and row["r2_sigmoid"] is None
    assert (row["n_c_lo"], row["n_c_hi"]) == (pytest.approx(1e8), pytest.approx(1e9))
    monkeypatch.setenv("COLUMNS", "400")  # one line per cell
    assert emergence_main([str(file), "--bootstrap", "50"]) == 0
    assert "in [1e+08, 1e+09] (bracketed)" in capsys.readouterr().out
