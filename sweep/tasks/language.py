"""A synthetic language: sentences from a fixed random Markov chain over a Zipfian vocabulary.

The language (words and transition table) is fixed by `language_seed`; documents are sentences
sampled from it. Its structure is learnable from data and generalises to held-out sentences, and
its many rare transitions are learned gradually as models and budgets grow, which gives smoothly
falling loss (the quanta picture of Michaud et al. 2023) where pure arithmetic learns in jumps.

As an evaluation task: the prompt is a sentence without its last word; the target is the most
likely successor of the previous word (always the sentence's last word, so it is learnable).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sweep.tasks.problem import Problem

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@lru_cache(maxsize=8)
def _language(n_words: int, successors: int, zipf: float, language_seed: int):
    rng = np.random.default_rng([language_seed, 7])
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n_words:
        w = "".join(rng.choice(_LETTERS, size=int(rng.integers(2, 7))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    ranks = np.arange(1, successors + 1, dtype=float)
    probs = ranks**-zipf / np.sum(ranks**-zipf)
    # Successor ids of each word, most likely first; popular words are more often successors.
    word_probs = np.arange(1, n_words + 1, dtype=float) ** -zipf
    word_probs /= word_probs.sum()
    table = np.stack([rng.choice(n_words, size=successors, replace=False, p=word_probs) for _ in range(n_words)])
    return np.array(words, dtype=object), table, np.cumsum(probs), word_probs


@dataclass(frozen=True)
class Language:
    n_words: int = 1024
    successors: int = 32
    zipf: float = 1.2
    min_words: int = 4
    max_words: int = 12
    language_seed: int = 0

    def check(self) -> list[str]:
        errors = []
        if self.n_words < 2:
            errors.append(f"n_words must be >= 2, got {self.n_words}")
        if not 1 <= self.successors <= self.n_words:
            errors.append(f"successors must be in 1..n_words, got {self.successors}")
        if not 2 <= self.min_words <= self.max_words:
            errors.append(f"need 2 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        if self.zipf <= 0:
            errors.append(f"zipf must be > 0, got {self.zipf}")
        return errors

    @property
    def max_target_chars(self) -> int:
        return 6

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]:
        words, table, cdf, word_probs = _language(self.n_words, self.successors, self.zipf, self.language_seed)
        lengths = rng.integers(self.min_words, self.max_words + 1, size=n)
        ids = np.empty((n, self.max_words), dtype=np.int64)
        ids[:, 0] = rng.choice(self.n_words, size=n, p=word_probs)
        for pos in range(1, self.max_words):
            picks = np.minimum(np.searchsorted(cdf, rng.random(n)), self.successors - 1)
            ids[:, pos] = table[ids[:, pos - 1], picks]
        problems = []
        for row, length in zip(ids, lengths.tolist()):
            prompt = " ".join(words[row[: length - 1]]) + " "
            problems.append(Problem(prompt, words[table[row[length - 2], 0]]))
        return problems

    def chance(self) -> dict[str, float]:
        return {"exact_match": 1.0 / self.successors, "token_accuracy": 1 / 27}
