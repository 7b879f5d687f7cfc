"""Loss-law figures: loss against compute, isoFLOP profiles, backtest errors. Data and fits in, a Figure out."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN  # noqa: E402
from analysis.loss.backtest import Backtest  # noqa: E402
from analysis.loss.fit import LossLawFit, compute_optimal  # noqa: E402
from analysis.loss.frontier import Frontier  # noqa: E402
from analysis.loss.isoflop import IsoFlopFit, group_by_compute  # noqa: E402


def loss_vs_compute(runs: pl.DataFrame, fit: LossLawFit | None, n_col: str = "n_params", d_col: str = "n_tokens",
                    loss_col: str = "final_val_loss"):
    """Final validation loss against training FLOPs, one colour per model size, with the fitted law."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(runs[n_col].unique().to_list())
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for size, colour in zip(sizes, colours):
        sub = runs.filter(pl.col(n_col) == size).sort(d_col)
        c = FLOPS_PER_PARAM_TOKEN * sub[n_col].to_numpy() * sub[d_col].to_numpy()
        ax.scatter(c, sub[loss_col], color=colour, label=f"N={size:,.0f}", zorder=3)
        if fit is not None:
            d = np.geomspace(sub[d_col].min() / 2, sub[d_col].max() * 2, 50)
            ax.plot(FLOPS_PER_PARAM_TOKEN * size * d, fit.predict(size, d), color=colour, alpha=0.7)
    if fit is not None:
        c_all = FLOPS_PER_PARAM_TOKEN * runs[n_col].to_numpy() * runs[d_col].to_numpy()
        grid = np.geomspace(c_all.min() / 2, c_all.max() * 2, 60)
        n_opt, d_opt = compute_optimal(fit, grid)
        ax.plot(grid, fit.predict(n_opt, d_opt), "k--", label="compute-optimal frontier")
        ax.set_title(f"L = {fit.E:.3f} + {fit.A:.3g}/N^{fit.alpha:.3f} + {fit.B:.3g}/D^{fit.beta:.3f}")
    _style(ax, "training compute C = 6ND (FLOPs)", "final validation loss (nats/token)", log_y=True)
    return fig


def _style(ax, xlabel: str, ylabel: str, title: str | None = None, log_y: bool = False, legend: int = 8) -> None:
    """Log x (and y), labels, legend and grid: the look every loss figure shares."""
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize=legend)
    ax.grid(True, which="both", alpha=0.3)


def isoflop_profiles(n_params, loss, flops, fit: IsoFlopFit, frontier: Frontier | None = None):
    """Left: loss against N per compute budget with the fitted parabolas and their minima (hollow when
    outside the sampled range). Right: N_opt against C, the isoFLOP power law and, when given, the
    loss-law (Approach 3) frontier with its interval."""
    n, l_, c = (np.asarray(x, dtype=float).ravel() for x in (n_params, loss, flops))
    ok = np.isfinite(n) & np.isfinite(l_) & np.isfinite(c) & (n > 0) & (l_ > 0) & (c > 0)
    n, l_, c = n[ok], l_[ok], c[ok]
    labels = group_by_compute(c, fit.rel_tol)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.cm.plasma(np.linspace(0, 0.85, max(1, labels.max() + 1 if len(labels) else 1)))
    for g in range(labels.max() + 1 if len(labels) else 0):
        rows = labels == g
        left.scatter(n[rows], l_[rows], color=colours[g], s=14, zorder=3)
    for m in fit.minima:
        g = labels[np.argmin(np.abs(np.log(c) - np.log(m.flops)))]
        grid = np.geomspace(min(m.n_min, m.n_opt) / 1.3, max(m.n_max, m.n_opt) * 1.3, 80)
        left.plot(grid, m.predict(grid), color=colours[g], alpha=0.8, label=f"C={m.flops:.2g}")
        left.plot([m.n_opt], [m.loss_min], "o", ms=7, mfc=colours[g] if m.inside else "none", mec="k", zorder=4)
    _style(left, "parameters N", "loss", "isoFLOP profiles (hollow: minimum outside the sampled N)", legend=7)

    used = [m for m in fit.minima if m.used]
    budgets = np.array([m.flops for m in fit.minima])
    right.scatter(budgets, [m.n_opt for m in fit.minima], c=["k" if m.used else "0.6" for m in fit.minima],
                  zorder=3, label="isoFLOP minima (grey: not used)")
    grid = np.geomspace(budgets.min() / 2, budgets.max() * 2, 50)
    ci = "" if fit.a_ci is None else f" [{fit.a_ci[0]:.3f}, {fit.a_ci[1]:.3f}]"
    right.plot(grid, fit.predict_n_opt(grid), "k-", label=f"Approach 2: a = {fit.a:.3f}{ci}")
    if frontier is not None and frontier.points:
        f_c = np.array([p.flops for p in frontier.points])
        order = np.argsort(f_c)
        right.plot(f_c[order], np.array([p.n_opt for p in frontier.points])[order], "C0--",
                   label=f"Approach 3: a = {frontier.a:.3f}")
        if all(p.n_opt_ci is not None for p in frontier.points):
            lo = np.array([p.n_opt_ci[0] for p in frontier.points])[order]
            hi = np.array([p.n_opt_ci[1] for p in frontier.points])[order]
            right.fill_between(f_c[order], lo, hi, color="C0", alpha=0.2)
    _style(right, "training compute C (FLOPs)", "compute-optimal N", f"N_opt(C) from {len(used)} budgets", log_y=True)
    fig.tight_layout()
    return fig


def backtest_errors(backtest: Backtest):
    """Relative prediction error of each held-out run against its token count, one marker per held-out size."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = sorted({p.n_params for p in backtest.points})
    for size in sizes:
        pts = sorted((p for p in backtest.points if p.n_params == size), key=lambda p: p.n_tokens)
        ax.plot([p.n_tokens for p in pts], [100 * p.relative_error for p in pts], "o-", label=f"N={size:.3g}")
    ax.axhline(0, color="k", lw=0.8)
    band = 100 * backtest.in_sample_mean_abs_rel_error
    ax.axhspan(-band, band, color="0.85", label="in-sample mean |error|")
    _style(ax, "tokens D", "(predicted - observed) / observed (%)", f"backtest: fitted on N <= "
           f"{backtest.largest_fitted_size:.3g}, mean |error| {backtest.mean_abs_rel_error:.2%}")
    return fig


def residuals(runs: pl.DataFrame, fit: LossLawFit, n_col: str = "n_params", d_col: str = "n_tokens",
              loss_col: str = "final_val_loss"):
    """log L - log L_hat of every run against N (left) and D (right): structure here is what the law misses."""
    n, d, loss = (runs[c].to_numpy().astype(float) for c in (n_col, d_col, loss_col))
    r = np.log(loss) - np.log(fit.predict(n, d))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, x, other, label, other_label in ((axes[0], n, d, "parameters N", "D"), (axes[1], d, n, "tokens D", "N")):
        points = ax.scatter(x, r, c=np.log10(other), cmap="viridis", zorder=3)
        fig.colorbar(points, ax=ax, label=f"log10 {other_label}")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on short ranges
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("log L - log L_hat")
    axes[0].set_title(f"residuals of the fit (Huber delta {fit.huber_delta:g})")
    fig.tight_layout()
    return fig
