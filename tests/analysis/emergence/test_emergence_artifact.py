"""Metric artifact or real jump (analysis/artifact.py): simulated tasks where the truth is known."""

import numpy as np
import polars as pl
import pytest

from analysis.emergence.artifact import COMPOSITION_FAILS, composition_test
from analysis.emergence.run import analyze_emergence, artifact_table
from analysis.emergence.sigmoid import sigmoid

SIZES = np.logspace(6, 10, 10)
X = np.log(SIZES)
T = (X - X.min()) / np.ptp(X)


def task_rows(task: str, p_token: np.ndarray, length: int, *, seed: int, answer_tokens: bool = True,
              with_token: bool = True) -> list[dict]:
    """exact_match = p^L (independent tokens) and the continuous metrics on the same samples, with noise."""
    rng = np.random.default_rng(seed)
    p = np.clip(p_token + rng.normal(0, 0.004, len(SIZES)), 1e-3, 1.0)
    em = np.clip(p**length + rng.normal(0, 0.004, len(SIZES)), 0.0, 1.0)
    metrics = {"exact_match": em}
    if with_token:
        metrics.update(token_accuracy=p, target_logprob=np.log(p), edit_similarity=0.3 + 0.7 * p)
    rows = []
    for metric, values in metrics.items():
        for n, v in zip(SIZES, values):
            row = {"task": task, "metric": metric, "n_params": n, "value": float(v), "n_samples": 2000,
                   "chance": 0.0 if metric in ("exact_match", "token_accuracy") else None}
            if answer_tokens:
                row["answer_tokens"] = float(length)
            rows.append(row)
    return rows


@pytest.mark.parametrize("length", [5, 8, 10])
def test_smooth_token_accuracy_with_em_equal_p_to_the_l_is_metric_induced(length):
    p = 0.2 + 0.79 * T  # per-token accuracy rising steadily in log N (digit chance is 0.1)
    out = analyze_emergence(pl.DataFrame(task_rows("add", p, length, seed=length)), n_boot=0)
    verdict = dict(zip(out["metric"], out["verdict"]))
    assert verdict["exact_match"] == "emergent"
    assert verdict["token_accuracy"] == verdict["target_logprob"] == verdict["edit_similarity"] == "smooth"
    row = out.row(0, named=True)
    assert row["artifact_verdict"] == "metric-induced", row["artifact_reason"]
    assert row["pl_L"] == length and row["pl_L_source"] == "answer_tokens"
    assert row["pl_r2"] > 0.98 and row["pl_L_fit"] == pytest.approx(length, rel=0.1)


def test_a_real_step_in_token_accuracy_is_genuine():
    p = sigmoid(X, 0.1, 0.99, 3.0, np.log(3e8))  # per-token accuracy itself jumps
    table = artifact_table(pl.DataFrame(task_rows("mul", p, 6, seed=1)), n_boot=0)
    row = table.row(0, named=True)
    assert row["artifact_verdict"] == "genuine", row["artifact_reason"]
    assert row["pl_r2"] > 0.95


def test_answer_length_from_the_option_or_fitted():
    p = 0.45 + 0.54 * T
    frame = pl.DataFrame(task_rows("add", p, 7, seed=2, answer_tokens=False))
    fitted = artifact_table(frame, n_boot=0).row(0, named=True)
    assert fitted["pl_L_source"] == "" and np.isnan(fitted["pl_r2"])
    assert fitted["pl_L_fit"] == pytest.approx(7, rel=0.1) and fitted["pl_r2_fit"] > 0.98
    given = artifact_table(frame, n_boot=0, answer_tokens=7.0).row(0, named=True)
    assert given["pl_L_source"] == "option" and given["pl_r2"] > 0.98


def test_p_to_the_l_fails_when_em_is_not_a_power_of_token_accuracy():
    x = np.arange(6.0)
    p = np.linspace(0.5, 0.99, 6)
    test = composition_test(x, [0.0, 0.9, 0.0, 0.9, 0.0, 0.9], x, p, length=5, length_source="option")
    assert test.r2 < 0.2 and test.r2_fit < 0.2


def test_without_a_continuous_metric_the_task_is_inconclusive():
    p = 0.45 + 0.54 * T
    row = artifact_table(pl.DataFrame(task_rows("add", p, 8, seed=3, with_token=False)), n_boot=0).row(0, named=True)
    assert row["artifact_verdict"] == "inconclusive"
    assert "no continuous metric" in row["artifact_reason"]


def test_no_emergent_discontinuous_metric_is_inconclusive_with_the_reason():
    p = 0.9 + 0.09 * T  # EM = p^2 rises smoothly
    row = artifact_table(pl.DataFrame(task_rows("easy", p, 2, seed=4)), n_boot=0).row(0, named=True)
    assert row["artifact_verdict"] == "inconclusive"
    assert "no discontinuous metric is emergent" in row["artifact_reason"]


def test_kinds_come_from_the_column_before_the_name():
    p = 0.45 + 0.54 * T
    frame = pl.DataFrame(task_rows("add", p, 8, seed=5)).with_columns(
        pl.when(pl.col("metric") == "exact_match").then(pl.lit("continuous")).otherwise(pl.lit("continuous"))
        .alias("metric_kind"))
    out = analyze_emergence(frame, n_boot=0)
    assert set(out["metric_kind"]) == {"continuous"}
    assert out["artifact_verdict"][0] == "inconclusive"  # nothing discontinuous left to explain


def test_unknown_metric_names_take_no_side():
    p = 0.45 + 0.54 * T
    rows = task_rows("add", p, 8, seed=6)
    rows += [{**r, "metric": "mystery_score"} for r in rows if r["metric"] == "token_accuracy"]
    out = analyze_emergence(pl.DataFrame(rows), n_boot=0)
    assert out.filter(pl.col("metric") == "mystery_score")["metric_kind"][0] == "unknown"
    assert "unknown kind left out: mystery_score" in out["artifact_reason"][0]


def _with_jumping_edit_similarity(rows: list[dict]) -> list[dict]:
    """Replace edit similarity by a curve that jumps at the exact-match threshold."""
    for row in rows:
        if row["metric"] == "edit_similarity":
            row["value"] = float(sigmoid(np.log(row["n_params"]), 0.3, 1.0, 8.0, np.log(3e9)))
    return rows


def test_disagreeing_continuous_metrics_are_inconclusive_never_metric_induced_although_they_jump():
    """Never 'metric-induced ... although edit_similarity jumps', which would contradict the README's rule. A
    partial-credit metric jumping while the log-likelihood and token accuracy improve smoothly is a
    disagreement, said as such, even where EM follows p^L."""
    p = 0.2 + 0.79 * T
    rows = _with_jumping_edit_similarity(task_rows("add", p, 8, seed=3))
    row = artifact_table(pl.DataFrame(rows), n_boot=0).row(0, named=True)
    assert row["artifact_verdict"] == "inconclusive", row["artifact_reason"]
    assert "continuous metrics disagree" in row["artifact_reason"] and "although" not in row["artifact_reason"]


def test_a_jumping_log_likelihood_makes_the_jump_genuine_whatever_token_accuracy_does():
    """compose_3 of the default sweep: edit_similarity, target_logprob and task_loss jump with exact match,
    token accuracy rises smoothly; the README's rule (continuous metrics jump too) says genuine."""
    p = 0.2 + 0.79 * T
    rows = _with_jumping_edit_similarity(task_rows("add", p, 8, seed=3))
    for row in rows:
        if row["metric"] == "target_logprob":
            row["value"] = float(np.log(sigmoid(np.log(row["n_params"]), 0.05, 0.99, 8.0, np.log(3e9))))
    row = artifact_table(pl.DataFrame(rows), n_boot=0).row(0, named=True)
    assert row["artifact_verdict"] == "genuine", row["artifact_reason"]
    assert "target_logprob" in row["artifact_reason"] and "although" not in row["artifact_reason"]


def test_disagreeing_continuous_metrics_without_the_p_to_the_l_law_stay_inconclusive():
    p = 0.2 + 0.79 * T
    rows = _with_jumping_edit_similarity(task_rows("add", p, 8, seed=3))
    em = sigmoid(X, 0.0, 1.0, 6.0, np.log(3e9))  # a jump that p^8 does not predict
    for row, value in zip([r for r in rows if r["metric"] == "exact_match"], em):
        row["value"] = float(value)
    row = artifact_table(pl.DataFrame(rows), n_boot=0).row(0, named=True)
    assert row["artifact_verdict"] == "inconclusive", row["artifact_reason"]


def _rows(task: str, em, token, length: float | None) -> list[dict]:
    sizes = np.array([125e6, 350e6, 760e6, 1.3e9, 2.7e9, 6.7e9, 13e9, 175e9])
    extra = {} if length is None else {"answer_tokens": length}
    return [{"task": task, "metric": metric, "n_params": n, "value": float(v), "n_samples": 1000, **extra}
            for metric, values in (("exact_match", em), ("token_accuracy", token)) for n, v in zip(sizes, values)]


@pytest.mark.parametrize("task, em, token", [
    ("late", [0, 0, 0, 0, 0, .01, .45, .75], np.linspace(0.55, 0.95, 8)),  # p^5 rises far earlier than EM
    ("mismatch", [0, 0, 0, 0, .01, .2, .75, .85], [.5, .52, .53, .55, .56, .58, .6, .62]),  # EM > p^5: impossible
])
def test_a_failing_p_to_the_l_check_at_the_stated_length_is_not_metric_induced(task, em, token):
    """EM jumps and token accuracy is smooth, but EM does not follow p^L at the stated L: not metric-induced."""
    out = analyze_emergence(pl.DataFrame(_rows(task, em, token, 5.0)), n_boot=0)
    verdict = dict(zip(out["metric"], out["verdict"]))
    assert verdict == {"exact_match": "emergent", "token_accuracy": "smooth"}
    row = out.row(0, named=True)
    assert row["pl_r2"] < COMPOSITION_FAILS
    assert row["artifact_verdict"] == "inconclusive", row["artifact_reason"]
    assert "does not follow token_accuracy^L" in row["artifact_reason"]


def test_without_a_stated_length_a_failing_fitted_length_is_not_metric_induced():
    em, token = [0, 0, 0, 0, .01, .2, .75, .85], [.5, .52, .53, .55, .56, .58, .6, .62]
    row = artifact_table(pl.DataFrame(_rows("mismatch", em, token, None)), n_boot=0).row(0, named=True)
    assert np.isnan(row["pl_r2"]) and row["pl_r2_fit"] < COMPOSITION_FAILS
    assert row["artifact_verdict"] == "inconclusive", row["artifact_reason"]


def test_a_bracketed_exact_match_with_smoothly_rising_token_accuracy_is_metric_induced():
    """EM = p^30 with p rising evenly from 0.5 to 0.999: EM stays under 0.2 until the largest size, where it is 0.97,
    so the threshold is bracketed by the two largest sizes, while p itself rises smoothly: the jump is the metric's."""
    p = 0.5 + 0.499 * T
    out = analyze_emergence(pl.DataFrame(task_rows("long", p, 30, seed=7)), n_boot=0)
    em = out.filter(pl.col("metric") == "exact_match").row(0, named=True)
    assert em["verdict"] == "emergent" and em["bracketed"], em["reason"]
    assert out.filter(pl.col("metric") == "token_accuracy")["verdict"][0] == "smooth"
    assert em["artifact_verdict"] == "metric-induced", em["artifact_reason"]


def test_brackets_at_the_same_two_sizes_on_five_sizes_are_genuine():
    """Five sizes, no sigmoid judged: exact match, token accuracy and the log-likelihood all jump between the third
    and fourth size with none on the rise: every metric jumps at the same scale, so the jump is genuine."""
    sizes = np.logspace(6, 10, 5)
    token = np.array([0.1, 0.12, 0.15, 0.9, 0.95])
    metrics = {"exact_match": np.array([0.0, 0.01, 0.02, 0.8, 0.85]), "token_accuracy": token,
               "target_logprob": np.log(token)}
    rows = [{"task": "step", "metric": m, "n_params": n, "value": float(v), "n_samples": 1000,
             "chance": {"exact_match": 0.0, "token_accuracy": 0.1}.get(m)}
            for m, values in metrics.items() for n, v in zip(sizes, values)]
    out = analyze_emergence(pl.DataFrame(rows), n_boot=0)
    assert out["bracketed"].all() and set(out["verdict"]) == {"emergent"}, out.select("metric", "reason").rows()
    assert out["n_c_lo"].to_list() == pytest.approx([sizes[2]] * 3) and out["n_c_hi"].to_list() == pytest.approx(
        [sizes[3]] * 3)
    assert out["artifact_verdict"][0] == "genuine", out["artifact_reason"][0]
