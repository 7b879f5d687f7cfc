"""The compute-optimal frontier of a fitted loss law: N*(C), D*(C), their exponents and D*/N*.

Minimising L(N, D) = E + A/N^alpha + B/D^beta subject to C = k N D (k = 6, Kaplan et al. 2020) gives
(Hoffmann et al. 2022, eq. 4)

    N*(C) = G (C/k)^a,   D*(C) = G^-1 (C/k)^b,   a = beta/(alpha+beta),   b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta)),

so a + b = 1 and the tokens per parameter D*/N* = G^-2 (C/k)^(b-a) drift with C unless alpha = beta.
The formulas here broadcast over parameter arrays, so one call evaluates every bootstrap resample.
Pure functions: arrays in, frozen dataclasses out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported for annotations only: chinchilla imports this module
    from analysis.bootstrap import LossLawBootstrap
    from analysis.chinchilla import LossLawFit

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


@dataclass(frozen=True)
class FrontierPoint:
    """The compute-optimal allocation at one budget; *_ci are None without a bootstrap."""

    flops: float
    n_opt: float
    d_opt: float
    tokens_per_param: float
    loss_opt: float
    n_opt_ci: tuple[float, float] | None = None
    d_opt_ci: tuple[float, float] | None = None
    tokens_per_param_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Frontier:
    a: float  # N* ∝ C^a
    b: float  # D* ∝ C^b
    points: tuple[FrontierPoint, ...]
    flops_per_param_token: float
    a_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    level: float | None = None  # confidence level of the intervals

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "a_ci": _pair(self.a_ci), "b_ci": _pair(self.b_ci), "level": self.level,
                "flops_per_param_token": self.flops_per_param_token,
                "budgets": [{"flops": p.flops, "n_opt": p.n_opt, "d_opt": p.d_opt,
                             "tokens_per_param": p.tokens_per_param, "loss_opt": p.loss_opt,
                             "n_opt_ci": _pair(p.n_opt_ci), "d_opt_ci": _pair(p.d_opt_ci),
                             "tokens_per_param_ci": _pair(p.tokens_per_param_ci)} for p in self.points]}


def _pair(ci) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


def compute_frontier(fit: LossLawFit, flops_budgets, bootstrap: LossLawBootstrap | None = None,
                     flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> Frontier:
    """The frontier of `fit` at the given budgets, with the bootstrap's percentile intervals when given
    (the intervals are recomputed from its resampled parameters, so any budgets may be asked for)."""
    budgets = np.asarray(flops_budgets, dtype=float).ravel()
    if np.any(~np.isfinite(budgets) | (budgets <= 0)):
        raise ValueError(f"compute budgets must be positive and finite, got {budgets.tolist()}")
    point = derived_quantities(fit.A, fit.B, fit.alpha, fit.beta, budgets, flops_per_param_token)
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap is not None:
        s = bootstrap.converged_samples()
        draws = derived_quantities(s[:, 1], s[:, 2], s[:, 3], s[:, 4], budgets, flops_per_param_token)
        ci = {name: bootstrap.interval(values) for name, values in draws.items()}
    points = []
    for c in budgets:
        n_opt, d_opt = (float(point[budget_key(q, c)][0]) for q in ("n_opt", "d_opt"))
        points.append(FrontierPoint(
            flops=float(c), n_opt=n_opt, d_opt=d_opt, tokens_per_param=d_opt / n_opt,
            loss_opt=float(fit.predict(n_opt, d_opt)), n_opt_ci=ci.get(budget_key("n_opt", c)),
            d_opt_ci=ci.get(budget_key("d_opt", c)), tokens_per_param_ci=ci.get(budget_key("tokens_per_param", c))))
    return Frontier(a=float(point["a"][0]), b=float(point["b"][0]), points=tuple(points),
                    flops_per_param_token=flops_per_param_token, a_ci=ci.get("a"), b_ci=ci.get("b"),
                    level=None if bootstrap is None else bootstrap.level)
