"""Arithmetic on n-digit numbers: `a+b=` -> `c`. Each digit count is its own task (difficulty axis)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.problem import Problem


def _operand_range(digits: int) -> tuple[int, int]:
    """Numbers with exactly `digits` digits (0-9 for one digit), as a half-open range."""
    return (0, 10) if digits == 1 else (10 ** (digits - 1), 10**digits)


@dataclass(frozen=True)
class Addition:
    digits: int

    def check(self) -> list[str]:
        return [] if 1 <= self.digits <= 18 else [f"digits must be in 1..18, got {self.digits}"]

    @property
    def max_target_chars(self) -> int:
        return self.digits + 1

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        low, high = _operand_range(self.digits)
        a = rng.integers(low, high, size=n)
        b = rng.integers(low, high, size=n)
        return [Problem(f"{x}+{y}=", str(x + y)) for x, y in zip(a.tolist(), b.tolist())]

    def chance(self) -> dict[str, float]:
        """Scores of a model that guesses uniformly among the 10 digits (and the terminator)."""
        return {"exact_match": 0.0, "token_accuracy": 1 / 11}
