"""analysis/emergence/points.py: what a metric is comes from the table's columns; its name decides only
for a table without them (an older sweep, a CSV of published curves)."""

import math

import polars as pl
import pytest

from analysis.emergence.points import metric_meta, validate_points


def _group(metric: str, values, **columns) -> pl.DataFrame:
    n = len(values)
    frame = pl.DataFrame({"task": ["t"] * n, "metric": [metric] * n, "n_params": [1e6 * 10**i for i in range(n)],
                          "value": values, **{k: [v] * n for k, v in columns.items()}},
                         schema_overrides={k: pl.Float64 for k in ("metric_min", "metric_max")})
    return validate_points(frame)


def test_a_stated_range_wins_over_the_name():
    meta = metric_meta(_group("exact_match", [0.0, 5.0, 40.0, 60.0], metric_min=0.0, metric_max=100.0), "exact_match")
    assert meta.bounds == (0.0, 100.0)
    assert meta.scale == 1.0 and meta.note == ""  # not "read as percent": the table says its range


def test_a_half_open_range_and_the_log_likelihood_flag_come_from_the_columns():
    meta = metric_meta(_group("score", [-3.0, -2.0, -1.0, -0.5], metric_min=None, metric_max=0.0,
                              metric_log_likelihood=True, chance=-3.0), "score")
    assert meta.bounds == (-math.inf, 0.0)
    assert meta.log_likelihood is True


def test_a_metric_stated_unbounded_is_not_taken_for_an_accuracy():
    meta = metric_meta(_group("rating", [0.1, 0.2, 0.4, 0.8], metric_min=None, metric_max=None,
                              metric_log_likelihood=False), "rating")
    assert meta.bounds is None


def test_flags_written_as_text_are_read():
    meta = metric_meta(_group("rating", [-3.0, -2.0, -1.0, -0.5], metric_max=0.0, metric_log_likelihood="yes"),
                       "rating")
    assert meta.log_likelihood is True and meta.bounds == (-math.inf, 0.0)


@pytest.mark.parametrize("metric, bounds, log_likelihood", [
    ("exact_match", (0.0, 1.0), False),
    ("target_logprob", (-math.inf, 0.0), True),
    ("rating", (0.0, 1.0), False),  # unknown name, values in [0, 1]: accuracy-like
])
def test_without_the_columns_the_name_decides(metric, bounds, log_likelihood):
    values = [-2.0, -1.5, -1.0, -0.5] if log_likelihood else [0.1, 0.2, 0.4, 0.8]
    meta = metric_meta(_group(metric, values), metric)
    assert (meta.bounds, meta.log_likelihood) == (bounds, log_likelihood)
