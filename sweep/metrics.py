"""Task metrics: how per-sample rows aggregate into one value per (task, metric), and each metric's kind.

`discontinuous` metrics score a sample all-or-nothing (exact match); `continuous` ones give partial
credit (per-token accuracy, log-likelihood). The analysis compares the two kinds on the same samples
to tell a real jump from one the metric creates (Schaeffer et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "discontinuous" | "continuous"
    per_sample: Callable[[dict[str, Any]], float]
    higher_is_better: bool = True


METRICS: tuple[Metric, ...] = (
    Metric("exact_match", "discontinuous", lambda r: float(r["correct"])),
    Metric("token_accuracy", "continuous", lambda r: r["token_correct"]),
    # Mean log-probability per answer token (nats); chance is a uniform guess over the vocabulary.
    Metric("target_logprob", "continuous", lambda r: r["target_logprob"] / r["n_target_tokens"]),
)


def chance_levels(generator_chance: dict[str, float], vocab_size: int) -> dict[str, float]:
    return {**generator_chance, "target_logprob": -math.log(vocab_size)}


def aggregate(rows: list[dict[str, Any]], chance: dict[str, float]) -> list[dict[str, Any]]:
    """One row per metric for the samples of one task: value, kind, n_samples, chance, answer length."""
    n = len(rows)
    if n == 0:
        return []
    answer_tokens = sum(r["n_target_tokens"] for r in rows) / n
    return [{"metric": m.name, "metric_kind": m.kind, "value": sum(m.per_sample(r) for r in rows) / n,
             "n_samples": n, "chance": chance.get(m.name), "answer_tokens": answer_tokens}
            for m in METRICS]
