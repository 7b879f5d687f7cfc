"""In-context learning: a rule that changes with every problem and must be read off k examples.

`shift:cat>ecv,dog>fqi,sun>` -> `uwp`: every problem draws a new Caesar shift; the k example pairs
in the prompt are the only evidence of it (k = 0 is the zero-shot baseline: chance is 1/25).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.problem import Problem

_A = ord("a")


def _word(rng: np.random.Generator, low: int, high: int) -> list[int]:
    return rng.integers(0, 26, size=int(rng.integers(low, high + 1))).tolist()


def _text(letters: list[int], shift: int = 0) -> str:
    return "".join(chr(_A + (c + shift) % 26) for c in letters)


@dataclass(frozen=True)
class ShiftCipher:
    shots: int = 2
    min_chars: int = 3
    max_chars: int = 5

    def check(self) -> list[str]:
        errors = []
        if not 0 <= self.shots <= 16:
            errors.append(f"shots must be in 0..16, got {self.shots}")
        if not 1 <= self.min_chars <= self.max_chars <= 12:
            errors.append(f"need 1 <= min_chars <= max_chars <= 12, got {self.min_chars}, {self.max_chars}")
        return errors

    @property
    def max_target_chars(self) -> int:
        return self.max_chars

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        problems = []
        for _ in range(n):
            shift = int(rng.integers(1, 26))
            examples = [_word(rng, self.min_chars, self.max_chars) for _ in range(self.shots)]
            query = _word(rng, self.min_chars, self.max_chars)
            shown = "".join(f"{_text(w)}>{_text(w, shift)}," for w in examples)
            problems.append(Problem(f"shift:{shown}{_text(query)}>", _text(query, shift)))
        return problems

    def chance(self) -> dict[str, float]:
        return {"exact_match": 1 / 25, "token_accuracy": 1 / 25}
