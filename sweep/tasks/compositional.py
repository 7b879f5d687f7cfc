"""A compositional task: the answer is a chain of `steps` independent lookups in a fixed random map.

`map:kq ab zr=` -> `fw lo ty`: each key maps to its value in a table fixed by `map_seed`. Every
single lookup is learnable from training text (each key appears there in other combinations);
held-out problems are unseen combinations. If one lookup is right with probability p, the whole
answer is right with probability about p^steps, the compositional account of emergence of
Schaeffer et al. (2023), checkable here by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sweep.tasks.problem import Problem

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@lru_cache(maxsize=8)
def _table(n_keys: int, key_chars: int, value_chars: int, map_seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([map_seed, 11])
    space = 26**key_chars
    codes = rng.choice(space, size=n_keys, replace=False)
    keys = ["".join(_LETTERS[(c // 26**i) % 26] for i in range(key_chars)) for c in codes]
    values = ["".join(rng.choice(_LETTERS, size=value_chars)) for _ in range(n_keys)]
    return np.array(keys, dtype=object), np.array(values, dtype=object)


@dataclass(frozen=True)
class Compositional:
    steps: int = 3
    n_keys: int = 256
    key_chars: int = 2
    value_chars: int = 2
    map_seed: int = 0

    def check(self) -> list[str]:
        errors = []
        if not 1 <= self.steps <= 16:
            errors.append(f"steps must be in 1..16, got {self.steps}")
        if not 1 <= self.key_chars <= 4 or not 1 <= self.value_chars <= 8:
            errors.append("key_chars must be in 1..4 and value_chars in 1..8")
        elif not 2 <= self.n_keys <= min(26**self.key_chars, 100_000):
            errors.append(f"n_keys must be in 2..{min(26 ** self.key_chars, 100_000)}, got {self.n_keys}")
        return errors

    @property
    def max_target_chars(self) -> int:
        return self.steps * (self.value_chars + 1) - 1

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        keys, values = _table(self.n_keys, self.key_chars, self.value_chars, self.map_seed)
        picks = rng.integers(0, self.n_keys, size=(n, self.steps))
        return [Problem("map:" + " ".join(keys[row]) + "=", " ".join(values[row])) for row in picks]

    def chance(self) -> dict[str, float]:
        return {"exact_match": 26.0 ** -(self.steps * self.value_chars), "token_accuracy": 1 / 27}
