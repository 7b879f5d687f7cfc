"""Multi-step arithmetic with chained variables: `q=3,x=q+2,m=x-4,m?` -> `1`.

Each statement defines a new variable from the previous one with a single-digit + or -; the
answer needs every step (depth of them) carried out in order. Values stay in 0..99.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.problem import Problem

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class MultiStep:
    depth: int = 2

    def check(self) -> list[str]:
        return [] if 1 <= self.depth <= 20 else [f"depth must be in 1..20, got {self.depth}"]

    @property
    def max_target_chars(self) -> int:
        return 2

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        problems = []
        for _ in range(n):
            names = rng.choice(_LETTERS, size=self.depth + 1, replace=False).tolist()
            value = int(rng.integers(0, 10))
            parts = [f"{names[0]}={value}"]
            for prev, name in zip(names, names[1:]):
                k = int(rng.integers(1, 10))
                sign = "+" if value + k <= 99 and (value - k < 0 or rng.random() < 0.5) else "-"
                value = value + k if sign == "+" else value - k
                parts.append(f"{name}={prev}{sign}{k}")
            problems.append(Problem(",".join(parts) + f",{names[-1]}?", str(value)))
        return problems

    def chance(self) -> dict[str, float]:
        return {"exact_match": 0.01, "token_accuracy": 1 / 11}
