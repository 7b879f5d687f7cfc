"""What the emergence analysis knows about a metric by its name: kind, direction, natural range.

The sweep writes `metric_kind`, `higher_is_better`, `metric_min`, `metric_max` and
`metric_log_likelihood` on every evals row (see sweep/tasks/metrics.py), and those columns always win
(analysis/emergence/points.py). This table is the fallback for tables that lack them (an older sweep,
a CSV of published curves). Kinds follow Schaeffer et al. 2023, "Are Emergent Abilities of Large Language Models a
Mirage?": a *discontinuous* metric scores a sample all-or-nothing (exact match, multiple-choice
accuracy); a *continuous* one gives partial credit (per-token accuracy, edit similarity,
log-likelihood, Brier score, numeric error, BLEU-like overlaps).

A name that is neither in the table nor matched by an unambiguous pattern gets kind "unknown": it
still gets its own emergence verdict, but it takes no side in the metric-artifact comparison, because
guessing a kind wrong would decide that comparison by accident. Direction of an unknown name is
inferred from its wording (brier, error, loss, perplexity, nll, distance: lower is better) and
otherwise taken as higher-is-better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class MetricInfo:
    kind: str  # "discontinuous" | "continuous" | "unknown"
    higher_is_better: bool
    bounds: tuple[float, float] | None  # the metric's natural range (may be infinite at one end); None: unknown
    log_likelihood: bool  # a log-probability or loss in nats: unbounded, never gets a chance-level floor
    source: str  # "table" (known name) | "pattern" (inferred from the wording) | "default"


BUILTIN: dict[str, MetricInfo] = {
    # all-or-nothing per sample
    "exact_match": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),
    "mc_accuracy": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),
    "accuracy": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),
    "em": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),
    "pass_at_1": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),
    "multiple_choice_grade": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),  # BIG-bench
    "exact_str_match": MetricInfo("discontinuous", True, (0.0, 1.0), False, "table"),  # BIG-bench
    # partial credit
    "token_accuracy": MetricInfo("continuous", True, (0.0, 1.0), False, "table"),
    "char_accuracy": MetricInfo("continuous", True, (0.0, 1.0), False, "table"),
    "edit_similarity": MetricInfo("continuous", True, (0.0, 1.0), False, "table"),
    "target_logprob": MetricInfo("continuous", True, (-INF, 0.0), True, "table"),  # nats per answer token
    "task_loss": MetricInfo("continuous", False, (0.0, INF), True, "table"),
    "val_loss": MetricInfo("continuous", False, (0.0, INF), True, "table"),
    "token_brier": MetricInfo("continuous", False, (0.0, 2.0), False, "table"),  # multi-class Brier is in [0, 2]
    "mc_brier": MetricInfo("continuous", False, (0.0, 2.0), False, "table"),
    "brier_score": MetricInfo("continuous", False, (0.0, 2.0), False, "table"),
    "relative_error": MetricInfo("continuous", False, (0.0, 1.0), False, "table"),  # capped at 1 by the sweep
    "bleu": MetricInfo("continuous", True, None, False, "table"),  # 0-1 or 0-100 depending on the tool
    "rouge": MetricInfo("continuous", True, None, False, "table"),
    "chrf": MetricInfo("continuous", True, None, False, "table"),
    "f1": MetricInfo("continuous", True, (0.0, 1.0), False, "table"),
}

_LOWER_WORDS = ("brier", "error", "loss", "perplexity", "ppl", "nll", "distance", "cross_entropy")
_LOGLIK_WORDS = ("logprob", "log_prob", "loglik", "log_lik", "nll", "loss", "cross_entropy")
_CONTINUOUS_WORDS = ("token", "char", "logprob", "log_prob", "loglik", "brier", "error", "loss", "similarity",
                     "bleu", "rouge", "chrf", "distance", "perplexity", "nll", "f1", "partial")
_DISCONTINUOUS_WORDS = ("exact", "accuracy", "acc", "pass@", "pass_at", "correct", "grade")


def infer_higher_is_better(name: str) -> bool:
    """Lower is better when the name says brier, error, loss, perplexity, nll or distance."""
    low = name.lower()
    return not any(word in low for word in _LOWER_WORDS)


def metric_info(name: str) -> MetricInfo:
    """The built-in entry for a known name, else what the wording of the name says (see module doc)."""
    low = name.lower().strip()
    if low in BUILTIN:
        return BUILTIN[low]
    higher = infer_higher_is_better(low)
    loglik = any(word in low for word in _LOGLIK_WORDS)
    if any(word in low for word in _CONTINUOUS_WORDS):  # checked first: "token_acc" is partial credit
        return MetricInfo("continuous", higher, None, loglik, "pattern")
    if any(word in low for word in _DISCONTINUOUS_WORDS):
        return MetricInfo("discontinuous", higher, (0.0, 1.0), False, "pattern")
    return MetricInfo("unknown", higher, None, loglik, "default")
