"""Backtesting the loss law: fit without the largest model sizes, predict them, measure the error.

The honest test of a scaling law is extrapolation. The runs at the largest distinct N are held out,
the law is fitted (Approach 3, same options) on the rest, and every held-out run's loss is predicted.
Which sizes are held out (`choose_holdout_sizes`):
  * by default, the fewest largest sizes whose runs make up at least `min_holdout_fraction` (15%) of
    the valid runs and at least `min_holdout_runs` (2). On a grid (several runs per N) this is the
    top one or two sizes; on isoFLOP data or published tables, where every run has its own N,
    holding out "the largest size" would test a single run barely beyond the fit (1.0x), so the rule
    takes the top 15% of runs by N instead;
  * with `n_holdout_sizes = k`, exactly the k largest distinct sizes.
Sizes are held out whole, so every held-out N exceeds every fitted N. At least 2 sizes must remain, and
the remaining runs must identify the law (analysis.loss.fit.identifiability_problem). The rule used
is recorded in the result and its statement. The relative error (predicted - observed) / observed per
point and its mean absolute value are reported, beside the in-sample error of the same fit, which is
what noise alone gives. The law is called trustworthy for this extrapolation when the held-out mean
absolute error is at most `trust_factor` x the in-sample one plus `trust_slack` (defaults 2 and 0.005).
Pure function: arrays in, a dataclass out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.loss.fit import LossLawFit, fit_loss_law, identifiability_problem, used_rows, valid_rows
from analysis.options import check_options

MIN_HOLDOUT_FRACTION = 0.15  # default share of the runs held out (by largest N)
MIN_HOLDOUT_RUNS = 2


@dataclass(frozen=True)
class BacktestPoint:
    n_params: float
    n_tokens: float
    loss: float
    predicted: float
    relative_error: float  # (predicted - loss) / loss


@dataclass(frozen=True)
class Backtest:
    n_holdout_sizes: int  # distinct sizes held out (chosen by `rule`)
    held_out_sizes: tuple[float, ...]
    largest_fitted_size: float
    fit: LossLawFit  # fitted on the smaller sizes only
    points: tuple[BacktestPoint, ...]  # the held-out runs
    mean_abs_rel_error: float
    max_abs_rel_error: float
    in_sample_mean_abs_rel_error: float
    trusted: bool
    statement: str
    rule: str = ""  # how the held-out sizes were chosen, in words

    def as_dict(self) -> dict:
        return {"n_holdout_sizes": self.n_holdout_sizes, "held_out_sizes": list(self.held_out_sizes),
                "n_holdout_runs": len(self.points), "rule": self.rule,
                "largest_fitted_size": self.largest_fitted_size, "mean_abs_rel_error": self.mean_abs_rel_error,
                "max_abs_rel_error": self.max_abs_rel_error,
                "in_sample_mean_abs_rel_error": self.in_sample_mean_abs_rel_error, "trusted": self.trusted,
                "statement": self.statement, "fit": {**self.fit.params(), "n_points": self.fit.n_points},
                "points": [{"n_params": p.n_params, "n_tokens": p.n_tokens, "loss": p.loss, "predicted": p.predicted,
                            "relative_error": p.relative_error} for p in self.points]}


def choose_holdout_sizes(n_params, *, n_holdout_sizes: int | None = None,
                         min_holdout_fraction: float = MIN_HOLDOUT_FRACTION,
                         min_holdout_runs: int = MIN_HOLDOUT_RUNS) -> tuple[np.ndarray, str]:
    """(held-out sizes, the rule in words): the largest distinct N to hold out of runs at `n_params`.

    With `n_holdout_sizes = k`, the k largest; otherwise the fewest largest sizes holding at least
    max(`min_holdout_runs`, `min_holdout_fraction` x runs) runs (see the module docstring). NaN, inf and
    non-positive N are ignored. ValueError when fewer than 2 sizes would remain."""
    check_options(n_holdout_sizes=(n_holdout_sizes, "count"),
                  min_holdout_fraction=(min_holdout_fraction, "probability"),
                  min_holdout_runs=(min_holdout_runs, "count"))
    n = np.asarray(n_params, dtype=float).ravel()
    n = n[np.isfinite(n) & (n > 0)]
    sizes, runs_per_size = np.unique(n, return_counts=True)
    held_runs = np.cumsum(runs_per_size[::-1])  # runs in the top 1, 2, ... sizes
    if n_holdout_sizes is not None:
        k = n_holdout_sizes
        rule = f"the {k} largest model size{'s' if k > 1 else ''} (n_holdout_sizes={k})"
    else:
        wanted = max(min_holdout_runs, math.ceil(min_holdout_fraction * len(n) - 1e-9))
        k = int(np.searchsorted(held_runs, wanted)) + 1
        rule = (f"the largest sizes with >= {min_holdout_fraction:.0%} of the {len(n)} runs and >= "
                f"{min_holdout_runs} runs")
    if k > len(sizes) - 2:
        raise ValueError(f"cannot hold out {k} of {len(sizes)} model sizes: at least 2 must remain for the fit to "
                         f"see how loss falls with N (rule: {rule})")
    if n_holdout_sizes is None:
        rule += f" ({k} size{'s' if k > 1 else ''}, {int(held_runs[k - 1])} runs)"
    return sizes[-k:], rule


def _judgement(trusted: bool, rel: np.ndarray, reach: float, largest_fitted: float) -> str:
    """What the held-out errors say: trust within reach, a bend (every error of one sign), or scatter."""
    if trusted:
        return f"trust it about {reach:.2f}x beyond the fitted sizes at this accuracy."
    if np.all(rel > 0) or np.all(rel < 0):
        side = "over" if rel[0] > 0 else "under"
        return (f"the law {side}-predicts every held-out run: the data bend away from it; do not trust it beyond "
                f"N ~ {largest_fitted:.3g}.")
    return (f"the held-out errors are of mixed sign ({int(np.sum(rel > 0))} over, {int(np.sum(rel < 0))} under) "
            f"and larger than in-sample: scatter the law does not explain, not a bend; do not trust it beyond "
            f"N ~ {largest_fitted:.3g}.")


def backtest_loss_law(n_params, n_tokens, loss, *, n_holdout_sizes: int | None = None,
                      min_holdout_fraction: float = MIN_HOLDOUT_FRACTION, min_holdout_runs: int = MIN_HOLDOUT_RUNS,
                      trust_factor: float = 2.0, trust_slack: float = 0.005, **fit_options) -> Backtest:
    """Fit on all but the largest model sizes (`choose_holdout_sizes`) and predict those runs' loss.

    `fit_options` go to fit_loss_law (huber_delta, outlier_sd, n_column, ...). Bad options, too few
    sizes to hold out, or a remainder that cannot identify the law are a ValueError."""
    check_options(trust_factor=(trust_factor, "non-negative"), trust_slack=(trust_slack, "non-negative"))
    n, d, loss_, ok = valid_rows(n_params, n_tokens, loss)
    held_sizes, rule = choose_holdout_sizes(n[ok], n_holdout_sizes=n_holdout_sizes,
                                            min_holdout_fraction=min_holdout_fraction,
                                            min_holdout_runs=min_holdout_runs)
    held = ok & np.isin(n, held_sizes)
    train = ok & ~held
    problem = identifiability_problem(n[train], d[train])
    if train.sum() < 5 or problem is not None:
        raise ValueError(f"holding out {rule} leaves {int(train.sum())} runs to fit, which cannot identify the law: "
                         f"{problem or 'need at least 5'}")
    fit = fit_loss_law(n[train], d[train], loss_[train], **fit_options)
    fitted_rows = used_rows(fit, n[train], d[train], loss_[train])
    in_sample = np.abs(fit.predict(n[train][fitted_rows], d[train][fitted_rows]) / loss_[train][fitted_rows] - 1)
    predicted = fit.predict(n[held], d[held])
    rel = predicted / loss_[held] - 1
    points = tuple(BacktestPoint(float(a), float(b), float(c), float(p), float(r))
                   for a, b, c, p, r in zip(n[held], d[held], loss_[held], predicted, rel))
    mare, maxre, ins = float(np.mean(np.abs(rel))), float(np.max(np.abs(rel))), float(np.mean(in_sample))
    largest_fitted = float(n[train].max())
    trusted = mare <= trust_factor * ins + trust_slack
    low, high = float(held_sizes.min()) / largest_fitted, float(held_sizes.max()) / largest_fitted
    statement = (f"Holding out {rule}, fitted on N <= {largest_fitted:.3g} ({fit.n_points} runs), the law predicts "
                 f"{len(points)} held-out run{'s' if len(points) > 1 else ''} at N {held_sizes.min():.3g} to "
                 f"{held_sizes.max():.3g} ({low:.2f}x to {high:.2f}x the largest fitted N) with mean |relative error| "
                 f"{mare:.2%} (max {maxre:.2%}; in-sample {ins:.2%}): ")
    statement += _judgement(trusted, rel, high, largest_fitted)
    return Backtest(n_holdout_sizes=len(held_sizes), held_out_sizes=tuple(float(s) for s in held_sizes),
                    largest_fitted_size=largest_fitted, fit=fit, points=points, mean_abs_rel_error=mare,
                    max_abs_rel_error=maxre, in_sample_mean_abs_rel_error=ins, trusted=trusted, statement=statement,
                    rule=rule)
