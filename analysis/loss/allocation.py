"""The compute-optimal allocation of a loss law L(N, D) = E + A/N^alpha + B/D^beta: formulas only.

Minimising L subject to C = k N D (k = 6, Kaplan et al. 2020) gives (Hoffmann et al. 2022, eq. 4)

    N*(C) = G (C/k)^a,   D*(C) = G^-1 (C/k)^b,   a = beta/(alpha+beta),   b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta)),

so a + b = 1 and the tokens per parameter D*/N* = G^-2 (C/k)^(b-a) drift with C unless alpha = beta.
The formulas broadcast over parameter arrays, so one call evaluates every bootstrap resample.
"""

from __future__ import annotations

import numpy as np

FLOPS_PER_PARAM_TOKEN = 6.0  # forward + backward, dense transformer (Kaplan et al. 2020, sec. 2.1)


def frontier_exponents(alpha, beta) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the exponents of N*(C) and D*(C) in C. Broadcasts."""
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = alpha + beta
        return beta / s, alpha / s


def optimal_allocation(A, B, alpha, beta, flops, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(N*, D*) at compute `flops` (eq. 4 above). Parameters and flops broadcast against each other:
    pass parameters of shape (R, 1) and flops of shape (m,) to get (R, m) arrays."""
    A, B, alpha, beta = (np.asarray(x, dtype=float) for x in (A, B, alpha, beta))
    c = np.asarray(flops, dtype=float) / flops_per_param_token
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = alpha + beta
        log_g = (np.log(alpha) + np.log(A) - np.log(beta) - np.log(B)) / s
        log_c = np.log(c)
        return np.exp(log_g + beta / s * log_c), np.exp(alpha / s * log_c - log_g)


def derived_quantities(A, B, alpha, beta, flops_budgets, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN
                       ) -> dict[str, np.ndarray]:
    """Every derived quantity by name: a, b, and n_opt / d_opt / tokens_per_param at each budget.

    Parameters of shape (R,) give arrays of shape (R,); the keys are those of `budget_key`."""
    A, B, alpha, beta = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (A, B, alpha, beta))
    a, b = frontier_exponents(alpha, beta)
    out = {"a": a, "b": b}
    budgets = np.asarray(flops_budgets, dtype=float).ravel()
    if budgets.size:
        n_opt, d_opt = optimal_allocation(A[:, None], B[:, None], alpha[:, None], beta[:, None], budgets,
                                          flops_per_param_token)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = d_opt / n_opt
        for j, c in enumerate(budgets):
            out[budget_key("n_opt", c)] = n_opt[:, j]
            out[budget_key("d_opt", c)] = d_opt[:, j]
            out[budget_key("tokens_per_param", c)] = ratio[:, j]
    return out


def budget_key(quantity: str, flops: float) -> str:
    """The name of a per-budget quantity in CI dictionaries, e.g. 'n_opt@C=1e+21'."""
    return f"{quantity}@C={flops:.4g}"
