"""analysis/sections.py: what the report says about a threshold bracketed by two sizes."""

import numpy as np
import polars as pl

from analysis.emergence.run import run_emergence
from analysis.loss.run import LossAnalysis, LossOptions
from analysis.sections import emergence_sections, glance_section

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
