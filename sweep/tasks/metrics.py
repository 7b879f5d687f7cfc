"""Task metrics: per-sample values, how they aggregate per task, each metric's kind, direction and range.

`discontinuous` metrics score a sample all-or-nothing (exact match, multiple-choice accuracy);
`continuous` ones give partial credit (per-token accuracy, edit similarity, log-likelihood, Brier,
numeric error). The analysis compares the two kinds on the same samples to tell a real jump from
one the metric creates (Schaeffer et al. 2023). Every aggregated row carries the metric's kind, its
direction, its natural range, whether it is a log-likelihood, and the task's chance level
(`Metric.columns`), so the analysis needs nothing from this package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein


def edit_similarity(prediction: str, target: str) -> float:
    """1 - Levenshtein distance / length of the longer string (1.0 for two empty strings)."""
    return float(Levenshtein.normalized_similarity(prediction, target))


def relative_error(prediction: str, target: str) -> float | None:
    """|p - t| / max(1, |t|), capped at 1 (also for an unparseable prediction); None if t is not a number."""
    try:
        truth = int(target)
    except ValueError:
        return None
    try:
        guess = int(prediction.strip())
    except ValueError:
        return 1.0
    return min(1.0, abs(guess - truth) / max(1, abs(truth)))


def complete_sample(row: dict[str, Any], problem_answer_in: Callable[[str], str]) -> dict[str, Any]:
    """Add the string metrics to an evaluation row (from sweep.train.evaluate)."""
    answer = problem_answer_in(row["prediction"])
    return {**row,
            "target_logprob_per_token": row["target_logprob"] / row["n_target_tokens"],
            "edit_similarity": edit_similarity(answer, row["answer"]),
            "relative_error": relative_error(answer, row["answer"])}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "discontinuous" | "continuous"
    column: str  # the samples.parquet column it averages
    higher_is_better: bool = True
    transform: Callable[[float], float] = float
    # The natural range of the value (None: unbounded on that side). A log-likelihood (a log-probability
    # or a loss in nats) never gets its floor pinned at chance by the analysis.
    minimum: float | None = 0.0
    maximum: float | None = 1.0
    log_likelihood: bool = False

    def columns(self) -> dict[str, Any]:
        """What an evals row says about the metric itself (sweep/store/schemas.py EVALS)."""
        return {"metric": self.name, "metric_kind": self.kind, "higher_is_better": self.higher_is_better,
                "metric_min": self.minimum, "metric_max": self.maximum,
                "metric_log_likelihood": self.log_likelihood}


METRICS: tuple[Metric, ...] = (
    Metric("exact_match", "discontinuous", "correct"),
    Metric("mc_accuracy", "discontinuous", "mc_correct"),
    Metric("token_accuracy", "continuous", "token_correct"),
    Metric("edit_similarity", "continuous", "edit_similarity"),
    Metric("target_logprob", "continuous", "target_logprob_per_token",  # nats per answer token
           minimum=None, maximum=0.0, log_likelihood=True),
    Metric("task_loss", "continuous", "target_logprob_per_token", higher_is_better=False, transform=lambda v: -v,
           maximum=None, log_likelihood=True),
    Metric("token_brier", "continuous", "token_brier", higher_is_better=False, maximum=2.0),  # multi-class: [0, 2]
    Metric("mc_brier", "continuous", "mc_brier", higher_is_better=False, maximum=2.0),
    Metric("relative_error", "continuous", "relative_error", higher_is_better=False),  # capped at 1
)

# The held-out loss of the training mixture (nats per token), one row per run beside the task metrics.
VAL_LOSS = Metric("val_loss", "continuous", "", higher_is_better=False, maximum=None, log_likelihood=True)


def chance_levels(generator_chance: dict[str, float], vocab_size: int) -> dict[str, float]:
    """Chance per metric: the task's own figures plus a uniform guess over the vocabulary."""
    uniform = {"target_logprob": -math.log(vocab_size), "task_loss": math.log(vocab_size),
               "token_brier": 1.0 - 1.0 / vocab_size}
    return {**uniform, **generator_chance}


def aggregate(rows: list[dict[str, Any]], chance: dict[str, float]) -> list[dict[str, Any]]:
    """One row per metric the samples support: mean value, what the metric is, chance, answer length."""
    if not rows:
        return []
    answer_tokens = sum(r["n_target_tokens"] for r in rows) / len(rows)
    out = []
    for m in METRICS:
        values = [m.transform(float(r[m.column])) for r in rows if r.get(m.column) is not None]
        if len(values) < len(rows):  # the metric does not apply to this task (e.g. numeric error on words)
            continue
        out.append({**m.columns(), "value": sum(values) / len(values), "n_samples": len(values),
                    "chance": chance.get(m.name), "answer_tokens": answer_tokens})
    return out
