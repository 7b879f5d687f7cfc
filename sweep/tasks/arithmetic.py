"""Arithmetic on n-digit numbers, each digit count its own task so difficulty is an axis.

`a+b=` -> sum, `a-b=` -> difference (may be negative), `a*b=` -> product (n by m digits),
`a+b%m=` -> (a + b) mod m. Operands are drawn uniformly among numbers with exactly n digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.problem import Problem

# Scores of a model that guesses each answer token uniformly among ten digits and the terminator.
DIGIT_TOKEN_CHANCE = 1 / 11


def operands(rng: np.random.Generator, digits: int, n: int) -> np.ndarray:
    """n numbers with exactly `digits` digits (0-9 for one digit)."""
    low, high = (0, 10) if digits == 1 else (10 ** (digits - 1), 10**digits)
    return rng.integers(low, high, size=n)


def _check_digits(**named: int) -> list[str]:
    return [f"{k} must be in 1..9, got {v}" for k, v in named.items() if not 1 <= v <= 9]


def numeric_chance(max_answer_digits: int) -> dict[str, float]:
    return {"exact_match": 10.0**-max_answer_digits, "token_accuracy": DIGIT_TOKEN_CHANCE}


@dataclass(frozen=True)
class Addition:
    digits: int

    def check(self) -> list[str]:
        return _check_digits(digits=self.digits)

    @property
    def max_target_chars(self) -> int:
        return self.digits + 1

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        a, b = operands(rng, self.digits, n).tolist(), operands(rng, self.digits, n).tolist()
        return [Problem(f"{x}+{y}=", str(x + y)) for x, y in zip(a, b)]

    def chance(self) -> dict[str, float]:
        return numeric_chance(self.digits)


@dataclass(frozen=True)
class Subtraction:
    digits: int

    def check(self) -> list[str]:
        return _check_digits(digits=self.digits)

    @property
    def max_target_chars(self) -> int:
        return self.digits + 1  # a minus sign

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        a, b = operands(rng, self.digits, n).tolist(), operands(rng, self.digits, n).tolist()
        return [Problem(f"{x}-{y}=", str(x - y)) for x, y in zip(a, b)]

    def chance(self) -> dict[str, float]:
        return numeric_chance(self.digits)


@dataclass(frozen=True)
class Multiplication:
    digits: int
    digits_b: int = 0  # 0: same as digits

    @property
    def _b(self) -> int:
        return self.digits_b or self.digits

    def check(self) -> list[str]:
        return _check_digits(digits=self.digits, digits_b=self._b)

    @property
    def max_target_chars(self) -> int:
        return self.digits + self._b

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        a, b = operands(rng, self.digits, n).tolist(), operands(rng, self._b, n).tolist()
        return [Problem(f"{x}*{y}=", str(x * y)) for x, y in zip(a, b)]

    def chance(self) -> dict[str, float]:
        return numeric_chance(self.digits + self._b)


@dataclass(frozen=True)
class Modular:
    """(a + b) mod m, or (a * b) mod m with op='*'."""

    digits: int
    modulus: int = 7
    op: str = "+"

    def check(self) -> list[str]:
        errors = _check_digits(digits=self.digits)
        if not 2 <= self.modulus <= 10**6:
            errors.append(f"modulus must be in 2..1e6, got {self.modulus}")
        if self.op not in ("+", "*"):
            errors.append(f"op must be '+' or '*', got {self.op!r}")
        return errors

    @property
    def max_target_chars(self) -> int:
        return len(str(self.modulus - 1))

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        a, b = operands(rng, self.digits, n).tolist(), operands(rng, self.digits, n).tolist()
        value = (lambda x, y: x + y) if self.op == "+" else (lambda x, y: x * y)
        return [Problem(f"{x}{self.op}{y}%{self.modulus}=", str(value(x, y) % self.modulus)) for x, y in zip(a, b)]

    def chance(self) -> dict[str, float]:
        return {"exact_match": 1.0 / self.modulus, "token_accuracy": DIGIT_TOKEN_CHANCE}
