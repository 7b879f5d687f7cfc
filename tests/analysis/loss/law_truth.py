"""The known truth the loss-law tests recover: Hoffmann et al.'s (2022) fitted Chinchilla law."""


TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])  # N* ∝ C^a
G = (TRUTH["alpha"] * TRUTH["A"] / (TRUTH["beta"] * TRUTH["B"])) ** (1 / (TRUTH["alpha"] + TRUTH["beta"]))


def law(n, d):
    """The true loss at N parameters and D tokens."""
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
