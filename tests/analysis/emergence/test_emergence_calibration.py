"""How often the verdicts are wrong on many simulated curves.

Known smooth shapes must rarely be called emergent, known sharp ones usually; the bootstrap interval
for the threshold must cover the truth most of the time. Noise is binomial-like with the sample count
given, as in the sweep's evals.parquet. The full runs (30 repeats per shape and size, 40 coverage
repeats) are slow (`make test-all`); a sample of them, the first repeats with the same seeds and bounds
the full runs imply, runs in the default suite in a few seconds.
"""

import collections

import numpy as np
import pytest

from analysis.emergence.curve import judge_curve
from analysis.emergence.rule import Criteria
from analysis.emergence.sigmoid import sigmoid

LO, HI = np.log(1e6), np.log(1e10)
CRIT = Criteria(max_width=np.log(100))
SHAPES = {
    "linear": (lambda x: 0.1 + 0.8 * (x - LO) / (HI - LO), False),
    "gompertz": (lambda x: np.exp(-0.69 * np.exp(-0.46 * (x - LO))), False),  # Schaeffer-style smooth p(N)
    "saturating": (lambda x: 0.9 - 0.8 * np.exp(-0.5 * (x - LO)), False),
    "constant": (lambda x: 0.3 + 0 * x, False),
    "sharp": (lambda x: sigmoid(x, 0.0, 0.9, 3.0, np.log(3e8)), True),
    "sharp_wide": (lambda x: sigmoid(x, 0.0, 0.9, 1.5, np.log(1e8)), True),
}


def verdict_counts(shape: str, n_sizes: int, repeats: int) -> collections.Counter:
    """Verdicts on `repeats` noisy draws of a known shape (seeds [n_sizes, rep]: a sample is a prefix)."""
    curve, _ = SHAPES[shape]
    counts = collections.Counter()
    n_samples = 500
    for rep in range(repeats):
        rng = np.random.default_rng([n_sizes, rep])
        x = np.log(np.logspace(6, 10, n_sizes))
        p = np.clip(curve(x), 0, 1)
        y = rng.binomial(n_samples, p) / n_samples
        v = judge_curve(x, y, chance=0.0, bounds=(0, 1), binomial=True, n_samples=np.full(n_sizes, n_samples),
                        criteria=CRIT, n_boot=0)
        counts[v.verdict] += 1
    return counts


def threshold_coverage(repeats: int, n_boot: int) -> int:
    """How many of `repeats` bootstrap intervals for the threshold contain the true one (seeds 0, 1, ...)."""
    covered = 0
    truth = np.log(3e8)
    for rep in range(repeats):
        rng = np.random.default_rng(rep)
        x = np.log(np.logspace(6, 10, 9))
        y = np.clip(sigmoid(x, 0, 0.9, 2.0, truth) + rng.normal(0, 0.03, len(x)), 0, 1)
        v = judge_curve(x, y, chance=0.0, bounds=(0, 1), criteria=CRIT, n_boot=n_boot, seed=rep)
        covered += v.x_c_ci[0] <= truth <= v.x_c_ci[1]
    return covered


@pytest.mark.slow
@pytest.mark.parametrize("n_sizes", [6, 8, 12])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_verdict_error_rates(shape, n_sizes):
    counts = verdict_counts(shape, n_sizes, repeats=30)
    if SHAPES[shape][1]:
        assert counts["emergent"] >= 27, counts
    else:
        assert counts["emergent"] <= 2, counts
    if shape == "constant":
        assert counts["flat"] >= 25, counts


@pytest.mark.slow
def test_threshold_interval_coverage():
    assert threshold_coverage(repeats=40, n_boot=200) / 40 >= 0.8


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_verdict_error_rates_sampled(shape):
    """Default suite: the first 10 repeats at 6, 8 and 12 sizes (6: the fewest a sigmoid with its floor at chance
    is judged on). Smooth shapes: at most 1 in 10 called emergent (the full run allows 2 in 30); sharp ones: at
    least 9 in 10 (27 in 30); a constant: flat. At 5 sizes no sigmoid is judged: a constant is flat, the sharp
    jump (0.03 -> 0.87 between 1e8 and 1e9) is bracketed by those two sizes, and nothing smooth is emergent."""
    five = verdict_counts(shape, 5, repeats=3)
    if shape == "constant":
        assert five == {"flat": 3}, five
    elif shape == "sharp":
        assert five == {"emergent": 3}, five
    else:
        assert five["emergent"] == 0, five
    for n_sizes in (6, 8, 12):
        counts = verdict_counts(shape, n_sizes, repeats=10)
        if SHAPES[shape][1]:
            assert counts["emergent"] >= 9, (n_sizes, counts)
        else:
            assert counts["emergent"] <= 1, (n_sizes, counts)
        if shape == "constant":
            assert counts["flat"] >= 8, (n_sizes, counts)


def test_threshold_interval_coverage_sampled():
    """Default suite: 15 repeats, 100 bootstrap replicates each; at least 11 of 15 intervals (the full run:
    80% of 40 with 200 replicates) contain the true threshold."""
    assert threshold_coverage(repeats=15, n_boot=100) >= 11
