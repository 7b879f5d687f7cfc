"""Backtesting the loss law: fit without the largest model sizes, predict them, measure the error.

The honest test of a scaling law is extrapolation. The runs of the `n_holdout_sizes` largest distinct
N are held out, the law is fitted (Approach 3, same options) on the rest, and every held-out run's
loss is predicted. The relative error (predicted - observed) / observed per point and its mean
absolute value are reported, beside the in-sample error of the same fit, which is what noise alone
gives. The law is called trustworthy for this extrapolation when the held-out mean absolute error
is at most `trust_factor` x the in-sample one plus `trust_slack` (defaults 2 and 0.005).
Pure function: arrays in, a dataclass out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.chinchilla import LossLawFit, fit_loss_law, used_rows, valid_rows


@dataclass(frozen=True)
class BacktestPoint:
    n_params: float
    n_tokens: float
    loss: float
    predicted: float
    relative_error: float  # (predicted - loss) / loss


@dataclass(frozen=True)
class Backtest:
    n_holdout_sizes: int
    held_out_sizes: tuple[float, ...]
    largest_fitted_size: float
    fit: LossLawFit  # fitted on the smaller sizes only
    points: tuple[BacktestPoint, ...]  # the held-out runs
    mean_abs_rel_error: float
    max_abs_rel_error: float
    in_sample_mean_abs_rel_error: float
    trusted: bool
    statement: str

    def as_dict(self) -> dict:
        return {"n_holdout_sizes": self.n_holdout_sizes, "held_out_sizes": list(self.held_out_sizes),
                "largest_fitted_size": self.largest_fitted_size, "mean_abs_rel_error": self.mean_abs_rel_error,
                "max_abs_rel_error": self.max_abs_rel_error,
                "in_sample_mean_abs_rel_error": self.in_sample_mean_abs_rel_error, "trusted": self.trusted,
                "statement": self.statement, "fit": {**self.fit.params(), "n_points": self.fit.n_points},
                "points": [{"n_params": p.n_params, "n_tokens": p.n_tokens, "loss": p.loss, "predicted": p.predicted,
                            "relative_error": p.relative_error} for p in self.points]}


def backtest_loss_law(n_params, n_tokens, loss, *, n_holdout_sizes: int = 1, trust_factor: float = 2.0,
                      trust_slack: float = 0.005, **fit_options) -> Backtest:
    """Fit on all but the `n_holdout_sizes` largest model sizes and predict those runs' loss.

    `fit_options` go to fit_loss_law (huber_delta, outlier_sd, n_column, ...)."""
    if n_holdout_sizes < 1:
        raise ValueError(f"n_holdout_sizes must be at least 1, got {n_holdout_sizes}")
    n, d, loss_, ok = valid_rows(n_params, n_tokens, loss)
    sizes = np.unique(n[ok])
    if n_holdout_sizes > len(sizes) - 2:
        raise ValueError(f"cannot hold out {n_holdout_sizes} of {len(sizes)} model sizes: at least 2 must remain "
                         "for the fit to see how loss falls with N")
    held_sizes = sizes[-n_holdout_sizes:]
    held = ok & np.isin(n, held_sizes)
    train = ok & ~held
    if train.sum() < 5:
        raise ValueError(f"holding out {n_holdout_sizes} sizes leaves {int(train.sum())} runs to fit; need 5")
    fit = fit_loss_law(n[train], d[train], loss_[train], **fit_options)
    fitted_rows = used_rows(fit, n[train], d[train], loss_[train])
    in_sample = np.abs(fit.predict(n[train][fitted_rows], d[train][fitted_rows]) / loss_[train][fitted_rows] - 1)
    predicted = fit.predict(n[held], d[held])
    rel = predicted / loss_[held] - 1
    points = tuple(BacktestPoint(float(a), float(b), float(c), float(p), float(r))
                   for a, b, c, p, r in zip(n[held], d[held], loss_[held], predicted, rel))
    mare, maxre, ins = float(np.mean(np.abs(rel))), float(np.max(np.abs(rel))), float(np.mean(in_sample))
    largest_fitted = float(sizes[-n_holdout_sizes - 1])
    trusted = mare <= trust_factor * ins + trust_slack
    reach = float(held_sizes.max()) / largest_fitted
    statement = (f"Fitted on N <= {largest_fitted:.3g} ({fit.n_points} runs), the law predicts the {len(points)} "
                 f"held-out runs at N up to {held_sizes.max():.3g} ({reach:.1f}x beyond) with mean |relative error| "
                 f"{mare:.2%} (max {maxre:.2%}; in-sample {ins:.2%}): ")
    statement += (f"trust it about {reach:.1f}x beyond the fitted sizes at this accuracy." if trusted else
                  f"the data bend away from the law; do not trust it beyond N ~ {largest_fitted:.3g}.")
    return Backtest(n_holdout_sizes=n_holdout_sizes, held_out_sizes=tuple(float(s) for s in held_sizes),
                    largest_fitted_size=largest_fitted, fit=fit, points=points, mean_abs_rel_error=mare,
                    max_abs_rel_error=maxre, in_sample_mean_abs_rel_error=ins, trusted=trusted, statement=statement)
