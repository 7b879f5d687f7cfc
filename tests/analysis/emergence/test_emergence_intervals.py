"""Intervals that hold: the threshold's interval covers the truth at its stated level (90%) when the size grid is
coarse against the transition, and a 10% change of the budget does not move the threshold out of it.

Synthetic families with known truth: accuracy p = 0.95 / (1 + exp(-k (ln N - x_c))), the threshold x_c drawn
uniformly between the second and the second-largest size (not on a grid point), k set so that the transition's
10-90% width is a given number of grid steps; every run (size, seed) shifts its own threshold by N(0, tau) (seeds
at different sizes are different runs), and its accuracy is read from n_samples binomial answers. An interval
"covers" when it holds the family's x_c; a located threshold is a fitted one or a bracket (its two sizes).

Budgets: x_c moves with the tokens D as x_c(D) = x_c0 - 0.5 ln(D / D0) (10% more tokens: 4.8% smaller N_c), each
(size, seed) keeps its shift at both budgets (same seed, same data order) and adds a run-to-run shift of its own;
the sizes are the default CPU grid's (7, 1.69x apart), 256 answers per evaluation. "Moved out": the threshold at
1.1 D (its fitted N_c, or its bracket) does not meet the interval at D.

The full runs (200-300 curves per setting) are slow (`make test-all`); the default suite runs a sample with the
same generator and seeds and asserts bounds the full runs imply.
"""

import collections

import numpy as np
import pytest

from analysis.emergence.curve import judge_curve
from analysis.emergence.rule import Criteria
from analysis.emergence.sigmoid import LN81

CRIT = Criteria.for_axis("log_n")
CEIL = 0.95
GRID_8 = np.log(np.logspace(6, 10, 8))
GRID_6 = np.log(np.logspace(6, 10, 6))
DEFAULT_GRID = np.log(3.3e4 * 1.69 ** np.arange(7))


def family(rng, x, x_c, k, seeds: int, tau: float, shared=None, n_samples: int = 500):
    """Per-run accuracies of a family: (x, y) with one row per run, seeds stacked."""
    shift = rng.normal(0.0, tau, (seeds, len(x))) if shared is None else shared + rng.normal(0.0, tau, shared.shape)
    p = CEIL / (1.0 + np.exp(-k * (x[None, :] - x_c - shift)))
    return np.tile(x, seeds), (rng.binomial(n_samples, p) / n_samples).ravel()


def judge(x, y, n_samples: int, seed: int, n_boot: int):
    return judge_curve(x, y, chance=0.0, bounds=(0, 1), binomial=True, n_samples=np.full(len(x), n_samples),
                       criteria=CRIT, n_boot=n_boot, seed=seed)


def coverage(grid, width_steps, seeds: int, tau: float, repeats: int, n_boot: int, seed: int = 0):
    """Counts over `repeats` families: located (fitted, bracketed), covered (fitted, bracketed)."""
    rng = np.random.default_rng([seed, len(grid), int(10 * width_steps), seeds])
    k = LN81 / (width_steps * (grid[1] - grid[0]))
    counts = collections.Counter()
    for rep in range(repeats):
        x_c = rng.uniform(grid[1], grid[-2])
        v = judge(*family(rng, grid, x_c, k, seeds, tau), 500, rep, n_boot)
        if v.verdict.has_threshold:
            kind = "bracketed" if v.decision.bracketed else "fitted"
            lo, hi = v.x_c_ci
            counts[kind] += 1
            counts[f"{kind} covered"] += lo <= x_c <= hi
    return counts


def stability(k: float, seeds: int, repeats: int, n_boot: int, seed: int = 0):
    """Counts over `repeats` families judged at D and 1.1 D: both located, moved out, verdict flipped, and how
    often the interval at D holds the truth."""
    rng = np.random.default_rng([seed, int(10 * k), seeds])
    counts = collections.Counter()
    for rep in range(repeats):
        x_c0 = rng.uniform(DEFAULT_GRID[1], DEFAULT_GRID[-2])
        shared = rng.normal(0.0, 0.1, (seeds, len(DEFAULT_GRID)))
        at_d, at_more = (judge(*family(rng, DEFAULT_GRID, x_c0 - 0.5 * np.log(budget), k, seeds, 0.05, shared,
                                       n_samples=256), 256, rep, n_boot) for budget in (1.0, 1.1))
        counts["flipped"] += at_d.verdict != at_more.verdict
        if at_d.verdict.has_threshold and at_more.verdict.has_threshold:
            lo, hi = at_d.x_c_ci
            s_lo, s_hi = at_more.threshold_span
            counts["both"] += 1
            counts["moved out"] += not (s_lo <= hi and s_hi >= lo)
            counts["covered"] += lo <= x_c0 <= hi
    return counts


SETTINGS = {  # grid, 10-90% width in grid steps, seeds, per-run threshold shift
    "8 sizes, 2 steps wide, 3 seeds": (GRID_8, 2.0, 3, 0.15),
    "8 sizes, 1 step wide, 3 seeds": (GRID_8, 1.0, 3, 0.15),
    "8 sizes, 3 steps wide, 1 seed": (GRID_8, 3.0, 1, 0.0),
    "6 sizes, 2 steps wide, 3 seeds": (GRID_6, 2.0, 3, 0.15),
    "default grid, 2 steps wide, 1 seed, unmeasured seed noise": (DEFAULT_GRID, 2.0, 1, 0.11),
}


@pytest.mark.slow
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_threshold_intervals_cover_on_coarse_grids(setting):
    """Nominal 90%, 300 families: at least 80% locate their threshold (one next to the smallest size is smooth: a
    single size before it), at least 88% of those intervals hold the truth, and at least 85% of the fitted ones.
    Measured: fitted 92-99% in every setting, 91% with one seed and unmeasured seed noise; brackets 100%."""
    counts = coverage(*SETTINGS[setting], repeats=300, n_boot=200)
    print(setting, dict(counts))
    located = counts["fitted"] + counts["bracketed"]
    assert located >= 0.8 * 300, counts
    assert counts["fitted covered"] + counts["bracketed covered"] >= 0.88 * located, counts
    if counts["fitted"] >= 30:
        assert counts["fitted covered"] >= 0.85 * counts["fitted"], counts


def test_threshold_intervals_cover_on_coarse_grids_sampled():
    """Default suite: 15 families per setting of 8 sizes and 3 seeds, 1, 2 and 3 grid steps wide, 100 replicates:
    at least 40 of the 45 locate their threshold (fitted or bracketed; a threshold next to the smallest size leaves
    one size before it: smooth), and at most 3 of those miss the truth (the full runs: >= 88% covered)."""
    counts = collections.Counter()
    for width in (1.0, 2.0, 3.0):
        counts.update(coverage(GRID_8, width, 3, 0.15, repeats=15, n_boot=100))
    located = counts["fitted"] + counts["bracketed"]
    assert located >= 40 and counts["fitted"] >= 15 and counts["bracketed"] >= 3, counts
    assert counts["fitted covered"] + counts["bracketed covered"] >= located - 3, counts


@pytest.mark.slow
@pytest.mark.parametrize("k, seeds", [(LN81 / np.log(1.69), 3), (LN81 / (2 * np.log(1.69)), 3),
                                      (LN81 / np.log(1.69), 1), (LN81 / (2 * np.log(1.69)), 1)])
def test_a_tenth_more_tokens_keeps_the_threshold_inside_its_interval(k, seeds):
    """200 families, transitions one and two grid steps wide. With 3 seeds (measured: moved out 4% and 10%, flipped
    2% and 3%, truth covered 96% and 91%): the threshold at 1.1 D leaves the interval at D in at most 12% of the
    families where both locate one, the verdict flips in at most 5%, the interval holds the truth in at least 88%.
    With one seed the run-to-run shifts are measured by nothing (12.9% and 7.9% moved out, 81% and 92% covered,
    4.5% flipped): at most 15% moved out, 6% flipped, at least 80% covered."""
    counts = stability(k, seeds, repeats=200, n_boot=200)
    print(k, seeds, dict(counts))
    moved, flipped, covered = (0.12, 0.05, 0.88) if seeds > 1 else (0.15, 0.06, 0.8)
    assert counts["both"] >= 0.8 * 200, counts
    assert counts["moved out"] <= moved * counts["both"], counts
    assert counts["flipped"] <= flipped * 200, counts
    assert counts["covered"] >= covered * counts["both"], counts


def test_a_tenth_more_tokens_keeps_the_threshold_inside_its_interval_sampled():
    """Default suite: 20 families with a transition one grid step wide and 3 seeds: at most 2 thresholds move out
    of their interval and at most 2 verdicts flip (the full runs: <= 12% and <= 5%)."""
    counts = stability(LN81 / np.log(1.69), 3, repeats=20, n_boot=100)
    assert counts["both"] >= 18, counts
    assert counts["moved out"] <= 2 and counts["flipped"] <= 2, counts
