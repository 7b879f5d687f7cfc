"""How often the verdicts are wrong on many simulated curves (slow: `make test-all`).

Known smooth shapes must rarely be called emergent, known sharp ones usually; the bootstrap interval
for the threshold must cover the truth most of the time. Noise is binomial-like with the sample count
given, as in the sweep's evals.parquet."""

import collections

import numpy as np
import pytest

from analysis.emergence import sigmoid
from analysis.verdicts import Criteria, judge_curve

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


@pytest.mark.slow
@pytest.mark.parametrize("n_sizes", [5, 8, 12])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_verdict_error_rates(shape, n_sizes):
    curve, emergent = SHAPES[shape]
    counts = collections.Counter()
    n_samples = 500
    for rep in range(30):
        rng = np.random.default_rng([n_sizes, rep])
        x = np.log(np.logspace(6, 10, n_sizes))
        p = np.clip(curve(x), 0, 1)
        y = rng.binomial(n_samples, p) / n_samples
        v = judge_curve(x, y, chance=0.0, bounds=(0, 1), binomial=True, n_samples=np.full(n_sizes, n_samples),
                        criteria=CRIT, n_boot=0)
        counts[v.verdict] += 1
    if emergent:
        assert counts["emergent"] >= 27, counts
    else:
        assert counts["emergent"] <= 2, counts
    if shape == "constant":
        assert counts["flat"] >= 25, counts


@pytest.mark.slow
def test_threshold_interval_coverage():
    covered = 0
    truth = np.log(3e8)
    for rep in range(40):
        rng = np.random.default_rng(rep)
        x = np.log(np.logspace(6, 10, 9))
        y = np.clip(sigmoid(x, 0, 0.9, 2.0, truth) + rng.normal(0, 0.03, len(x)), 0, 1)
        v = judge_curve(x, y, chance=0.0, bounds=(0, 1), criteria=CRIT, n_boot=200, seed=rep)
        covered += v.x_c_ci[0] <= truth <= v.x_c_ci[1]
    assert covered / 40 >= 0.8
