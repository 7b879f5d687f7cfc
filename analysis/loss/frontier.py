"""The compute-optimal frontier of a fitted loss law at given budgets: N*, D*, D*/N* and the exponents,
with bootstrap intervals. The formulas: analysis.loss.allocation. Pure: fits in, frozen dataclasses out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN, budget_key, derived_quantities
from analysis.loss.bootstrap import LossLawBootstrap
from analysis.loss.fit import LossLawFit


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
