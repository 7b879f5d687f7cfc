"""What is measured about the noise of a curve's per-size means: the spread of seeds and, for an
all-or-nothing metric, binomial sampling of the evaluation set.

Per size i with m_i seeds and n_i samples evaluated in all:
  seeds     the variance of one seed's value: pooled over the sizes with at least two seeds
            (dof = sum of m_i - 1), or the size's own where larger, since seeds differ most on the rise,
            where a seed's shift in threshold moves its value most; the mean of m_i seeds has it / m_i
  binomial  p (1 - p) / n_i at the value p, clipped to [0.5 / n_i, 1 - 0.5 / n_i]
A size's measured variance is the larger of the two, not their sum: when the seeds see different
samples their spread already holds the sampling noise, and when they share one evaluation set the
binomial error is what that set alone carries. Neither known: NaN. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Noise:
    n_seeds: np.ndarray  # per size
    seed_own: np.ndarray  # per size, the variance of its seeds' values (NaN with fewer than two)
    seed_var: np.ndarray  # per size, the pooled variance or its own where larger (NaN where no size has two seeds)
    seed_dof: int  # of the pooled seed variance (0: none)
    samples: np.ndarray  # per size, samples evaluated in all (NaN: unknown)
    binomial: bool  # values are means of 0/1 outcomes over `samples`

    @property
    def has_seeds(self) -> bool:
        return self.seed_dof > 0

    @property
    def has_binomial(self) -> bool:
        return self.binomial and bool(np.all(np.isfinite(self.samples)) and np.all(self.samples > 0))

    @property
    def seed_mean_var(self) -> np.ndarray:
        """Per-size variance of the seeds' mean (NaN where no size has two seeds)."""
        return self.seed_var / self.n_seeds

    def binomial_var(self, p: np.ndarray) -> np.ndarray:
        """Per-size variance of the mean from sampling at values p (metric units); NaN when not binomial."""
        if not self.has_binomial:
            return np.full(len(self.n_seeds), math.nan)
        q = np.clip(np.asarray(p, dtype=float), 0.5 / self.samples, 1 - 0.5 / self.samples)
        return q * (1 - q) / self.samples

    def variances(self, p: np.ndarray) -> np.ndarray:
        """Per-size variance of the mean at values p: the larger known source at each size (NaN: none)."""
        return np.fmax(self.seed_mean_var, self.binomial_var(p))

    def standard_errors(self, p: np.ndarray) -> np.ndarray:
        return np.sqrt(self.variances(p))


def measure(seeds: list[np.ndarray], samples: np.ndarray, binomial: bool) -> Noise:
    """The noise of per-size means from the seeds' values at each size and the samples evaluated there."""
    counts = np.array([len(s) for s in seeds], dtype=int)
    dof = int(np.sum(np.maximum(counts - 1, 0)))
    own = np.array([float(np.var(s, ddof=1)) if len(s) >= 2 else math.nan for s in seeds])
    pooled = float(np.nansum(own * np.maximum(counts - 1, 0)) / dof) if dof else math.nan
    return Noise(counts, own, np.fmax(np.full(len(seeds), pooled), own), dof, np.asarray(samples, dtype=float),
                 binomial)
