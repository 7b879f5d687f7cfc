"""Training and validation token streams: a weighted mixture of task documents, optionally with a corpus.

Batch `index` of a stream is a pure function of (seed, index, split), so a resumed run continues
exactly where it stopped and every run with the same data seed sees the same validation batches.
Task documents are packed into rows with no padding (as nanoGPT packs text); corpus rows are
windows of the user's token stream. Each row is a corpus row with probability `corpus_weight`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sweep.tasks.corpus import TokenCorpus, open_corpus
from sweep.tasks.problem import TERMINATOR, Problem
from sweep.tasks.registry import NamedTask, build_generator
from sweep.tasks.split import is_heldout
from sweep.tasks.tokenizer import Tokenizer, load_tokenizer

_SPLIT_CODE = {"train": 0, "heldout": 1}


@dataclass(frozen=True)
class Mixture:
    tasks: tuple[NamedTask, ...]
    weights: tuple[float, ...]
    heldout_fraction: float
    tokenizer: Tokenizer
    corpus: TokenCorpus | None = None
    corpus_weight: float = 0.0

    def __post_init__(self):
        if len(self.tasks) != len(self.weights):
            raise ValueError("a mixture needs one weight per task")
        if sum(self.weights) <= 0 and (self.corpus is None or self.corpus_weight < 1):
            raise ValueError("nothing to train on: every task weight is 0 and there is no corpus at weight 1")

    def problems(self, rng: np.random.Generator, n: int, split: str) -> list[Problem]:
        """`n` problems drawn by weight; those on the other side of the split are dropped."""
        probs = np.asarray(self.weights, dtype=float) / sum(self.weights)
        counts = rng.multinomial(n, probs)
        want_heldout = split == "heldout"
        out: list[Problem] = []
        for task, count in zip(self.tasks, counts.tolist()):
            if count:
                out.extend(p for p in task.generator.sample(rng, count)
                           if is_heldout(p.key, self.heldout_fraction) == want_heldout)
        order = rng.permutation(len(out))
        return [out[i] for i in order]

    def _task_tokens(self, rng: np.random.Generator, need: int, split: str) -> np.ndarray:
        chunks, have = [], 0
        while have < need:
            # Over-draw so one or two rounds suffice: ~12 tokens per problem at most task sizes.
            docs = self.problems(rng, max(16, (need - have) // 6), split)
            # Prompt and target are encoded apart, exactly as evaluation encodes them.
            tokens = self.tokenizer.encode_documents([part for p in docs for part in (p.prompt, p.target + TERMINATOR)])
            chunks.append(tokens)
            have += len(tokens)
        return np.concatenate(chunks)[:need].astype(np.int64)

    def batch(self, seed: int, index: int, batch_size: int, seq_len: int, split: str = "train") -> np.ndarray:
        """Rows of seq_len + 1 tokens (inputs and shifted targets), int64, shape (batch_size, seq_len + 1)."""
        rng = np.random.default_rng([seed, index, _SPLIT_CODE[split]])
        n_corpus = 0
        if self.corpus is not None and self.corpus_weight > 0:
            n_corpus = batch_size if self.corpus_weight >= 1 else int(rng.binomial(batch_size, self.corpus_weight))
        rows = []
        if n_corpus:
            rows.append(self.corpus.rows(rng, n_corpus, seq_len + 1, split))
        if n_corpus < batch_size:
            need = (batch_size - n_corpus) * (seq_len + 1)
            rows.append(self._task_tokens(rng, need, split).reshape(batch_size - n_corpus, seq_len + 1))
        return np.concatenate(rows) if len(rows) > 1 else rows[0]


def eval_problems(task: NamedTask, n: int, seed: int, heldout_fraction: float) -> list[Problem]:
    """Up to `n` distinct held-out problems of one task, fixed by `seed` (fewer if the space is small)."""
    rng = np.random.default_rng([seed, 2])
    seen: dict[str, Problem] = {}
    for _ in range(200):
        for p in task.generator.sample(rng, max(4 * n, 64)):
            if p.prompt not in seen and is_heldout(p.key, heldout_fraction):
                seen[p.prompt] = p
                if len(seen) == n:
                    return list(seen.values())
    return list(seen.values())


def named_tasks(suite: Sequence) -> tuple[NamedTask, ...]:
    """The generators of a task suite (sequence of TaskConfig)."""
    return tuple(NamedTask(t.name, build_generator(t.kind, dict(t.args))) for t in suite)


def mixture_for(suite: Sequence, data) -> Mixture:
    """The training mixture of a task suite and a DataConfig (tokenizer, held-out share, corpus)."""
    tokenizer = load_tokenizer(data.tokenizer)
    corpus = None
    if data.corpus.path and data.corpus.weight > 0:
        corpus = open_corpus(data.corpus.path, data.corpus.format, tokenizer, bin_dtype=data.corpus.dtype,
                             text_column=data.corpus.text_column, heldout_fraction=data.heldout_fraction,
                             cache_dir=data.corpus.cache_dir)
    return Mixture(named_tasks(suite), tuple(float(t.train_weight) for t in suite), data.heldout_fraction,
                   tokenizer, corpus, float(data.corpus.weight))
