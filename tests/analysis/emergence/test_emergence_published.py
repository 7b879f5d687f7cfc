"""Verdicts on real published curves: zero-shot accuracy of the six OPT models, as stored in
EleutherAI/pythia (evals/opt/*.json; repository, paths and commits in opt_zero_shot.csv's header).

What a careful reader of these numbers signs: LAMBADA rises steadily over three decades of N, fast at
first and slower later, nothing switching on (smooth, no threshold); MMLU abstract algebra stays within
binomial noise of chance at every size (flat); ARC-Easy without a chance level leaves the sigmoid's floor
free, and six sizes cannot carry a four-parameter sigmoid against its rivals (insufficient data, not a
guess either way). Curves published as emergent (few-shot arithmetic for Pythia and OPT) are in
test_emergence_published_jumps.py.
"""

from pathlib import Path

import polars as pl
import pytest

from analysis.emergence.run import analyze_emergence

FIXTURE = Path(__file__).with_name("opt_zero_shot.csv")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    points = pl.read_csv(FIXTURE, comment_prefix="#")
    out = analyze_emergence(points, n_boot=200, seed=0)
    return {r["task"]: r for r in out.iter_rows(named=True)}


def test_the_fixture_is_six_sizes_per_task_as_stored():
    points = pl.read_csv(FIXTURE, comment_prefix="#")
    assert points.group_by("task").agg(pl.col("n_params").n_unique())["n_params"].to_list() == [6, 6, 6]
    assert points.filter(pl.col("model") == "opt-66b", pl.col("task") == "lambada_openai")["value"].item() == \
        0.7389869978653212


def test_lambada_rises_smoothly_and_claims_no_threshold(rows):
    row = rows["lambada_openai"]
    assert row["verdict"] == "smooth", row["reason"]
    assert row["n_sizes"] == 6 and row["floor_pinned"]
    assert row["n_c"] != row["n_c"]  # NaN: no threshold is claimed for a smooth curve
    assert row["rise"] == pytest.approx(0.357, abs=0.01)  # 0.379 at 125M to 0.739 at 66B, less the pinned floor


def test_abstract_algebra_is_flat_at_chance(rows):
    row = rows["hendrycksTest-abstract_algebra"]
    assert row["verdict"] == "flat", row["reason"]
    assert row["chance"] == 0.25 and row["n_sizes"] == 6
    assert row["n_c"] != row["n_c"]


def test_six_sizes_without_a_chance_level_are_insufficient_for_a_free_floor_sigmoid(rows):
    row = rows["arc_easy"]
    assert row["verdict"] == "insufficient-data", row["reason"]
    assert "6 sizes" in row["reason"] and not row["floor_pinned"]
