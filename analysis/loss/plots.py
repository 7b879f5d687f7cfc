"""Loss-law figures: loss against compute, isoFLOP profiles, backtest errors. Data and fits in, a Figure out.

Compute is read from the runs table (`flops`), never recomputed; the fitted law's curves, defined in N and
D, are placed on that axis with the table's own FLOPs per parameter-token of each size."""

from __future__ import annotations

import textwrap

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

# How a run was trained, told apart on the loss-vs-compute figure: (marker, filled, legend label). A WSD
# branch shares its trunk's steps up to its cooldown (runs table: role, trunk_run_id).
ROLE_MARKERS = {"independent": ("o", True, "independent run"),
                "trunk": ("s", True, "WSD trunk"),
                "branch": ("D", False, "WSD branch (cooldown from its trunk's checkpoint)")}


def _flops_per_param_token(runs: pl.DataFrame, n_col: str, d_col: str, flops_col: str):
    """C/(N D) as the runs table states it (column `flops_col`: the trainer's count, attention included),
    interpolated in log N between the sizes; None when the table has no such column (then C = 6ND)."""
    if flops_col not in runs.columns or runs[flops_col].is_null().any():
        return None
    ratio = runs.group_by(n_col).agg((pl.col(flops_col) / (pl.col(n_col) * pl.col(d_col))).median()).sort(n_col)
    log_n, log_k = np.log(ratio[n_col].to_numpy().astype(float)), np.log(ratio[flops_col].to_numpy().astype(float))
    return lambda n: np.exp(np.interp(np.log(n), log_n, log_k))


def _scatter_roles(ax, sub: pl.DataFrame, c: np.ndarray, loss_col: str, colour) -> None:
    """One scatter per role present, each with its marker (hollow for branches)."""
    for role, (marker, filled, _) in ROLE_MARKERS.items():
        rows = (sub["_role"] == role).to_numpy()
        if rows.any():
            ax.scatter(c[rows], sub[loss_col].to_numpy()[rows], marker=marker, zorder=3,
                       facecolors=colour if filled else "none", edgecolors=colour)


def loss_vs_compute(runs: pl.DataFrame, fit: LossLawFit | None, n_col: str = "n_params", d_col: str = "n_tokens",
                    loss_col: str = "final_val_loss", flops_col: str = "flops", not_pinned: str = ""):
    """Final validation loss against training FLOPs (the runs table's `flops_col`; 6ND for a table without
    it), one colour per model size, one marker per role (WSD branches hollow), with the fitted law: its
    curves, its compute-optimal frontier and the law in the title. `not_pinned`, why the data do not pin the
    law: the fitted curves only, dotted, and that reason as the title in place of the law."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    per_token = _flops_per_param_token(runs, n_col, d_col, flops_col)
    k = per_token or (lambda n: np.full(np.shape(n), FLOPS_PER_PARAM_TOKEN))
    role = pl.col("role").fill_null("independent") if "role" in runs.columns else pl.lit("independent")
    runs = runs.with_columns(role.alias("_role"))
    sizes = sorted(runs[n_col].unique().to_list())
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for size, colour in zip(sizes, colours):
        sub = runs.filter(pl.col(n_col) == size).sort(d_col)
        c = sub[flops_col].to_numpy() if per_token else FLOPS_PER_PARAM_TOKEN * size * sub[d_col].to_numpy()
        _scatter_roles(ax, sub, c.astype(float), loss_col, colour)
        ax.scatter([], [], color=colour, label=f"N={size:,.0f}")
        if fit is not None:
            d = np.geomspace(sub[d_col].min() / 2, sub[d_col].max() * 2, 50)
            ax.plot(k(size) * size * d, fit.predict(size, d), ":" if not_pinned else "-", color=colour, alpha=0.7)
    if fit is not None and not_pinned:
        ax.set_title(textwrap.fill(f"Fitted curves only; {not_pinned}", 80), fontsize=9)
    elif fit is not None:
        c_6nd = FLOPS_PER_PARAM_TOKEN * runs[n_col].to_numpy() * runs[d_col].to_numpy()
        n_opt, d_opt = compute_optimal(fit, np.geomspace(c_6nd.min() / 2, c_6nd.max() * 2, 60))
        ax.plot(k(n_opt) * n_opt * d_opt, fit.predict(n_opt, d_opt), "k--", label="compute-optimal frontier")
        ax.set_title(f"L = {fit.E:.3f} + {fit.A:.3g}/N^{fit.alpha:.3f} + {fit.B:.3g}/D^{fit.beta:.3f}")
    if set(runs["_role"].to_list()) != {"independent"}:
        for role, (marker, filled, label) in ROLE_MARKERS.items():
            if role in runs["_role"].to_list():
                ax.scatter([], [], marker=marker, facecolors="0.4" if filled else "none", edgecolors="0.4",
                           label=label)
    xlabel = f"training compute C (FLOPs, column '{flops_col}')" if per_token else "training compute C = 6ND (FLOPs)"
    _style(ax, xlabel, "final validation loss (nats/token)", log_y=True)
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


def isoflop_profiles(n_params, loss, flops, fit: IsoFlopFit, frontier: Frontier | None = None, pinned: bool = True):
    """Left: loss against N per compute budget with the fitted parabolas and their minima (hollow when
    outside the sampled range). Right: N_opt against C, the isoFLOP power law (its exponent in the legend
    only when `pinned`) and, when given, the loss-law (Approach 3) frontier with its interval."""
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
    right.plot(grid, fit.predict_n_opt(grid), "k-" if pinned else "k:",
               label=f"Approach 2: a = {fit.a:.3f}{ci}" if pinned else "Approach 2 (exponent not pinned)")
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
