"""The Chinchilla loss law L(N, D) = E + A / N^alpha + B / D^beta, fitted as the careful replications do.

Hoffmann et al. (2022), Approach 3, with the corrections of Besiroglu et al. (2024, "Chinchilla
Scaling: A replication attempt"):
  * parameters a = log A, b = log B, e = log E; prediction in log space
        log L_hat = logsumexp(a - alpha log N, b - beta log D, e);
  * Huber loss (delta = 1e-3) on the residuals log L_hat - log L, summed over points;
  * L-BFGS-B with analytic gradients, started from the best points of Hoffmann's initialisation grid
    (alpha, beta in 0..2, e in -1..1, a, b in 0..25); the lowest objective wins.
Pure functions: arrays in, frozen dataclasses out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class InitGrid:
    """Starting values (Hoffmann et al. 2022, appendix D.2), in the fitted (log) parametrisation."""

    alpha: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    beta: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    e: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    a: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
    b: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)

    def points(self) -> np.ndarray:
        """All combinations as rows of (a, b, e, alpha, beta)."""
        return np.array(list(itertools.product(self.a, self.b, self.e, self.alpha, self.beta)), dtype=float)


@dataclass(frozen=True)
class LossLawFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n_points: int
    converged: bool
    huber_delta: float
    n_starts: int
    message: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def predict(self, n_params, n_tokens) -> np.ndarray:
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def params(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PARAM_NAMES}


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return loss, grad


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    a, b, e, alpha, beta = theta
    return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])


def objective_and_gradient(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
                           delta: float, weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Summed Huber loss of log residuals and its analytic gradient in (a, b, e, alpha, beta)."""
    terms = _terms(theta, log_n, log_d)
    residual = logsumexp(terms, axis=0) - log_loss
    loss, dloss = _huber(residual, delta)
    if weights is not None:
        loss, dloss = loss * weights, dloss * weights
    w = softmax(terms, axis=0)  # d logsumexp / d term
    grad = np.array([
        np.sum(dloss * w[0]),
        np.sum(dloss * w[1]),
        np.sum(dloss * w[2]),
        np.sum(dloss * w[0] * -log_n),
        np.sum(dloss * w[1] * -log_d),
    ])
    return float(np.sum(loss)), grad


def _grid_objectives(starts: np.ndarray, log_n, log_d, log_loss, delta) -> np.ndarray:
    """Objective at every start at once: (n_starts,)."""
    a, b, e, alpha, beta = (starts[:, i : i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(starts), len(log_n)))])
    residual = logsumexp(terms, axis=0) - log_loss
    return _huber(residual, delta)[0].sum(axis=1)


# Bounds keep the optimiser away from overflow; they are far outside any published fit.
BOUNDS = [(-20.0, 60.0), (-20.0, 60.0), (-20.0, 10.0), (0.0, 5.0), (0.0, 5.0)]


def fit_loss_law(n_params, n_tokens, loss, *, huber_delta: float = 1e-3, init_grid: InitGrid | None = None,
                 n_best_starts: int = 16, weights=None) -> LossLawFit:
    """Fit E, A, B, alpha, beta to points (N, D, L). Needs at least 5 points with positive values."""
    n, d, loss_ = (np.asarray(x, dtype=float).ravel() for x in (n_params, n_tokens, loss))
    if not (len(n) == len(d) == len(loss_)):
        raise ValueError(f"N, D and loss differ in length: {len(n)}, {len(d)}, {len(loss_)}")
    ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(loss_) & (n > 0) & (d > 0) & (loss_ > 0)
    if ok.sum() < 5:
        raise ValueError(f"the loss law has 5 parameters; need at least 5 valid points, got {int(ok.sum())}")
    log_n, log_d, log_loss = np.log(n[ok]), np.log(d[ok]), np.log(loss_[ok])
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()[ok]
    starts = (init_grid or InitGrid()).points()
    best_starts = starts[np.argsort(_grid_objectives(starts, log_n, log_d, log_loss, huber_delta))[:n_best_starts]]
    best = None
    for theta0 in best_starts:
        result = minimize(objective_and_gradient, theta0, args=(log_n, log_d, log_loss, huber_delta, w),
                          jac=True, method="L-BFGS-B", bounds=BOUNDS,
                          options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return LossLawFit(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha),
                      beta=float(beta), objective=float(best.fun), n_points=int(ok.sum()),
                      converged=bool(best.success), huber_delta=huber_delta, n_starts=len(best_starts),
                      message=str(best.message))


def fit_from_theta(theta: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = theta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha),
            "beta": float(beta)}


def compute_optimal(fit: LossLawFit, flops, flops_per_param_token: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """N*(C), D*(C) minimising the fitted loss at compute C = k N D (Hoffmann et al. 2022, eq. 4).

    N_opt = G (C/k)^(beta/(alpha+beta)), D_opt = G^-1 (C/k)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)).
    """
    c = np.asarray(flops, dtype=float) / flops_per_param_token
    s = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / s)
    return g * c ** (fit.beta / s), c ** (fit.alpha / s) / g
