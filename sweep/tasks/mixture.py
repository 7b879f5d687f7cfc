"""Training and validation token streams: documents from a weighted mixture of tasks, packed.

Batch `index` of a stream is a pure function of (seed, index, split), so a resumed run continues
exactly where it stopped and every run with the same data seed sees the same validation batches.
Rows are cut from concatenated documents with no padding (as nanoGPT packs text).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.tasks.problem import Problem
from sweep.tasks.registry import NamedTask
from sweep.tasks.split import is_heldout
from sweep.tasks.tokenizer import encode

_SPLIT_CODE = {"train": 0, "heldout": 1}


@dataclass(frozen=True)
class Mixture:
    tasks: tuple[NamedTask, ...]
    weights: tuple[float, ...]
    heldout_fraction: float

    def __post_init__(self):
        if len(self.tasks) != len(self.weights) or not self.tasks:
            raise ValueError("a mixture needs one weight per task and at least one task")

    def problems(self, rng: np.random.Generator, n: int, split: str) -> list[Problem]:
        """`n` problems drawn by weight; those on the other side of the split are dropped."""
        probs = np.asarray(self.weights, dtype=float) / sum(self.weights)
        counts = rng.multinomial(n, probs)
        want_heldout = split == "heldout"
        out: list[Problem] = []
        for task, count in zip(self.tasks, counts.tolist()):
            if count:
                out.extend(p for p in task.generator.sample(rng, count)
                           if is_heldout(p.prompt, self.heldout_fraction) == want_heldout)
        order = rng.permutation(len(out))
        return [out[i] for i in order]

    def batch(self, seed: int, index: int, batch_size: int, seq_len: int, split: str = "train") -> np.ndarray:
        """Rows of seq_len + 1 tokens (inputs and shifted targets), shape (batch_size, seq_len + 1)."""
        rng = np.random.default_rng([seed, index, _SPLIT_CODE[split]])
        need = batch_size * (seq_len + 1)
        chunks, have = [], 0
        while have < need:
            # Over-draw so one or two rounds suffice: ~12 bytes per problem at most task sizes.
            docs = self.problems(rng, max(16, (need - have) // 6), split)
            text = encode("".join(p.document() for p in docs))
            chunks.append(text)
            have += len(text)
        tokens = np.concatenate(chunks)[:need]
        return tokens.reshape(batch_size, seq_len + 1)


def eval_problems(task: NamedTask, n: int, seed: int, heldout_fraction: float) -> list[Problem]:
    """Up to `n` distinct held-out problems of one task, fixed by `seed` (fewer if the space is small)."""
    rng = np.random.default_rng([seed, 2])
    seen: dict[str, Problem] = {}
    for _ in range(200):
        for p in task.generator.sample(rng, max(4 * n, 64)):
            if p.prompt not in seen and is_heldout(p.prompt, heldout_fraction):
                seen[p.prompt] = p
                if len(seen) == n:
                    return list(seen.values())
    return list(seen.values())


def mixture_for(suite, heldout_fraction: float) -> Mixture:
    """The training mixture of a task suite (sequence of TaskConfig)."""
    from sweep.tasks.registry import build_generator

    tasks = tuple(NamedTask(t.name, build_generator(t.kind, dict(t.args))) for t in suite)
    return Mixture(tasks, tuple(float(t.train_weight) for t in suite), heldout_fraction)
