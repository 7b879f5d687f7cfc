"""The known truth the loss-law tests recover: Hoffmann et al.'s (2022) fitted Chinchilla law, and the
synthetic runs drawn from it."""

import numpy as np

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])  # N* ∝ C^a
G = (TRUTH["alpha"] * TRUTH["A"] / (TRUTH["beta"] * TRUTH["B"])) ** (1 / (TRUTH["alpha"] + TRUTH["beta"]))


def law(n, d):
    """The true loss at N parameters and D tokens."""
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def grid(noise: float, seed: int = 0, sizes: int = 8, budgets: int = 6, n_decades=(7, 10), d_decades=(8, 11)):
    """Every N (`sizes` of them, log-spaced over n_decades) trained on every D (log-spaced over d_decades),
    with multiplicative noise: (n, d, loss)."""
    n = np.repeat(np.logspace(*n_decades, sizes), budgets)
    d = np.tile(np.logspace(*d_decades, budgets), sizes)
    loss = law(n, d)
    return n, d, loss * np.exp(np.random.default_rng(seed).normal(0, noise, len(loss)))


def isoflop_grid(budgets=None, sizes=9, span=0.6, noise=0.0, seed=0, jitter=0.0):
    """Runs on isoFLOP curves: at each budget, `sizes` N spaced evenly in log around the true optimum."""
    rng = np.random.default_rng(seed)
    n, d = [], []
    for c in np.logspace(18, 22, 5) if budgets is None else budgets:
        n_star = G * (c / 6) ** A_TRUE
        for size in n_star * np.logspace(-span, span, sizes):
            c_run = c * (1 + jitter * rng.uniform(-1, 1))
            n.append(size)
            d.append(c_run / (6 * size))
    n, d = np.array(n), np.array(d)
    return n, d, law(n, d) * np.exp(rng.normal(0, noise, len(n)))
