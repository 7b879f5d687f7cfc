"""Multiple choice with option letters: `max? A:34 B:71 C:12 D:55>` -> `B` (chance 1/k).

Scored by the model's probabilities of the option letters at the answer position: accuracy of
their argmax and the Brier score of their normalised distribution (Brier 1950), besides greedy
exact match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.arithmetic import operands
from sweep.tasks.problem import Problem

LABELS = "ABCDEFGH"


@dataclass(frozen=True)
class LargestChoice:
    options: int = 4
    digits: int = 2

    def check(self) -> list[str]:
        errors = []
        if not 2 <= self.options <= len(LABELS):
            errors.append(f"options must be in 2..{len(LABELS)}, got {self.options}")
        if not 1 <= self.digits <= 9:
            errors.append(f"digits must be in 1..9, got {self.digits}")
        elif self.digits == 1 and self.options > 10:
            errors.append("one-digit numbers allow at most 10 distinct options")
        return errors

    @property
    def max_target_chars(self) -> int:
        return 1

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        labels = tuple(LABELS[: self.options])
        problems = []
        while len(problems) < n:
            values = operands(rng, self.digits, self.options).tolist()
            if len(set(values)) < self.options:  # a tie has no single right answer
                continue
            shown = " ".join(f"{label}:{v}" for label, v in zip(labels, values))
            problems.append(Problem(f"max? {shown}>", labels[int(np.argmax(values))], choices=labels))
        return problems

    def chance(self) -> dict[str, float]:
        k = self.options
        return {"exact_match": 1 / k, "mc_accuracy": 1 / k, "token_accuracy": 1 / k, "mc_brier": 1 - 1 / k}
