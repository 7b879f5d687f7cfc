"""Metric functions against hand-computed values, and their aggregation per task."""

import math

import pytest

from sweep.store.schemas import EVALS, to_table
from sweep.tasks.metrics import (
    METRICS,
    VAL_LOSS,
    aggregate,
    chance_levels,
    complete_sample,
    edit_similarity,
    relative_error,
)
from sweep.tasks.problem import final_answer


@pytest.mark.parametrize("prediction, target, expected", [
    ("125", "125", 1.0),
    ("", "", 1.0),
    ("", "125", 0.0),  # empty prediction
    ("124", "125", 2 / 3),  # one substitution in three
    ("12", "125", 2 / 3),  # one deletion
    ("12500000", "125", 3 / 8),  # over-long output: five insertions over the longer length 8
    ("abc", "xyz", 0.0),
])
def test_edit_similarity(prediction, target, expected):
    assert edit_similarity(prediction, target) == pytest.approx(expected)


@pytest.mark.parametrize("prediction, target, expected", [
    ("125", "125", 0.0),
    ("100", "125", 25 / 125),
    ("-3", "-5", 2 / 5),
    ("1", "0", 1.0),  # |t| < 1: divide by 1
    ("", "125", 1.0),  # empty prediction: worst
    ("12x", "125", 1.0),  # unparseable
    ("99999", "125", 1.0),  # capped at 1
    (" 7", "7", 0.0),
    ("B", "B", None),  # not a numeric answer: not applicable
])
def test_relative_error(prediction, target, expected):
    assert relative_error(prediction, target) == (pytest.approx(expected) if expected is not None else None)


def _row(**kw):
    base = {"task": "t", "sample_id": 0, "prompt": "1+1=", "target": "2", "answer": "2", "prediction": "2",
            "n_target_tokens": 2, "correct": True, "token_correct": 1.0, "target_logprob": -0.4,
            "token_brier": 0.1}
    return {**base, **kw}


def test_complete_sample_scores_the_final_answer_of_a_chain_of_thought():
    row = _row(target="1+1=2#2", prediction="1+1=3#23", correct=False, n_target_tokens=8, target_logprob=-2.0)
    done = complete_sample(row, final_answer)
    assert done["edit_similarity"] == pytest.approx(0.5)  # "23" vs "2"
    assert done["relative_error"] == 1.0  # |23 - 2| / 2 capped at 1
    assert done["target_logprob_per_token"] == pytest.approx(-0.25)


def test_aggregate_means_kinds_directions_and_chance():
    rows = [complete_sample(_row(), str),
            complete_sample(_row(prediction="3", correct=False, token_correct=0.5, target_logprob=-3.0,
                                 token_brier=0.9), str)]
    chance = chance_levels({"exact_match": 0.1, "token_accuracy": 1 / 11}, vocab_size=256)
    by_name = {r["metric"]: r for r in aggregate(rows, chance)}
    assert set(by_name) == {m.name for m in METRICS} - {"mc_accuracy", "mc_brier"}  # no MC columns here
    assert by_name["exact_match"]["value"] == 0.5 and by_name["exact_match"]["metric_kind"] == "discontinuous"
    assert by_name["token_accuracy"]["value"] == 0.75 and by_name["token_accuracy"]["chance"] == pytest.approx(1 / 11)
    assert by_name["target_logprob"]["value"] == pytest.approx((-0.2 - 1.5) / 2)
    assert by_name["task_loss"]["value"] == pytest.approx((0.2 + 1.5) / 2)
    assert by_name["task_loss"]["higher_is_better"] is False
    assert by_name["task_loss"]["chance"] == pytest.approx(math.log(256))
    assert by_name["relative_error"]["value"] == pytest.approx(0.5 * 1 / 2)  # |3-2|/2 = 0.5, and 0
    assert by_name["edit_similarity"]["value"] == pytest.approx(0.5)
    assert all(r["n_samples"] == 2 and r["answer_tokens"] == 2 for r in by_name.values())


def test_a_metric_missing_on_some_samples_is_not_reported():
    rows = [complete_sample(_row(), str), complete_sample(_row(target="ab", answer="ab", prediction="ab"), str)]
    names = {r["metric"] for r in aggregate(rows, {})}
    assert "relative_error" not in names and "exact_match" in names
    assert aggregate([], {}) == []


def test_every_row_states_the_metric_range_and_whether_it_is_a_log_likelihood():
    """The analysis reads range and log-likelihood from these columns (TABLE_SCHEMA_VERSION 5), not by name."""
    by_name = {r["metric"]: r for r in aggregate([complete_sample(_row(), str)], {})}
    stated = {name: (r["metric_min"], r["metric_max"], r["metric_log_likelihood"]) for name, r in by_name.items()}
    assert stated["exact_match"] == (0.0, 1.0, False)
    assert stated["token_brier"] == (0.0, 2.0, False)
    assert stated["target_logprob"] == (None, 0.0, True)  # nats per answer token: unbounded below
    assert stated["task_loss"] == (0.0, None, True)
    assert VAL_LOSS.columns()["metric_max"] is None and VAL_LOSS.columns()["metric_log_likelihood"] is True
    assert to_table([{"run_id": "r", "task": "t", **r} for r in by_name.values()], EVALS).num_rows == len(by_name)
