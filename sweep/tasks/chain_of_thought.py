"""Addition with a scratchpad (chain of thought) on the very problems of the direct-answer task.

`cot:58+67=` -> `8+7=15,5+6+1=12#125`: one column per step from the least significant digit, with
the carry written out, then the answer after `#`. Problems are drawn exactly as `Addition` draws
them and split by the direct prompt, so `cot_addition` and `addition` with the same digits and seed
hold out the same problems and their scores compare like for like (Wei et al. 2022; Nye et al. 2021).
Exact match is judged on the final answer of the generated scratchpad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.arithmetic import DIGIT_TOKEN_CHANCE, operands
from sweep.tasks.problem import ANSWER_MARKER, Problem


def scratchpad(a: int, b: int, digits: int) -> str:
    steps, carry = [], 0
    for i in range(digits):
        x, y = (a // 10**i) % 10, (b // 10**i) % 10
        total = x + y + carry
        steps.append(f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={total}")
        carry = total // 10
    return ",".join(steps) + ANSWER_MARKER + str(a + b)


@dataclass(frozen=True)
class CotAddition:
    digits: int

    def check(self) -> list[str]:
        return [] if 1 <= self.digits <= 9 else [f"digits must be in 1..9, got {self.digits}"]

    @property
    def max_target_chars(self) -> int:
        return self.digits * 9 + 1 + self.digits + 1

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        a, b = operands(rng, self.digits, n).tolist(), operands(rng, self.digits, n).tolist()
        return [Problem(f"cot:{x}+{y}=", scratchpad(x, y, self.digits), chain_of_thought=True,
                        split_key=f"{x}+{y}=") for x, y in zip(a, b)]

    def chance(self) -> dict[str, float]:
        return {"exact_match": 10.0 ** -self.digits, "token_accuracy": DIGIT_TOKEN_CHANCE}
