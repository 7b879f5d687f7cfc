"""Which grid pins the loss law: simulated sweeps from a known truth with the noise a real sweep measured,
fitted as the analysis fits them (Approach 3 and its bootstrap), against the targets a law worth its name
must meet: A and B each within one decade, alpha and beta each within +-0.2, no parameter at a bound.

    python -m bench.law_power                    # the candidate grids below, 12 draws each
    python -m bench.law_power --draws 40 --out bench/results/law_power.jsonl

The truth and the noise default to what the default grid measured with 3 seeds on the calibrated recipe
(bench/results/law_power.jsonl says where): the fit's point estimates, and the seeds' SD of ln L pooled per
budget, 5.1% at 380k tokens, 3.8% at 642k and 2.0% at 1.085M, about D^-0.9 (short runs vary most). A grid
that fails here fails on real runs too; one that passes is worth training.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from analysis.loss.bootstrap import bootstrap_loss_law
from analysis.loss.fit import fit_loss_law

TRUTH = {"E": 0.6994, "A": 1.612e5, "alpha": 1.256, "B": 1.173e6, "beta": 1.162}
NOISE_AT, NOISE_D, NOISE_SLOPE = 0.020, 1.085e6, -0.9  # relative SD of a run's loss at D, and its slope in D
DEFAULT_SIZES = (32.9e3, 57.6e3, 95.6e3, 164e3, 268e3, 468e3, 783e3)  # total parameters of the default grid
SMALL_SIZES = (7.2e3, 20.6e3)  # 1x16 (one head) and 1x32: the smallest models the family has


@dataclass(frozen=True)
class Grid:
    name: str
    sizes: tuple[float, ...]
    budgets: tuple[float, ...]
    seeds: int


def _budgets(lo: float, hi: float, k: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.logspace(math.log10(lo), math.log10(hi), k))


CANDIDATES = (
    Grid("default: 7 sizes x 3 budgets (380k-1.085M)", DEFAULT_SIZES, (3.8e5, 6.42e5, 1.085e6), 3),
    Grid("7 sizes x 5 budgets (250k-4M)", DEFAULT_SIZES, _budgets(2.5e5, 4e6, 5), 3),
    Grid("7 sizes x 6 budgets (250k-8M)", DEFAULT_SIZES, _budgets(2.5e5, 8e6, 6), 3),
    Grid("8 sizes (7k-783k) x 4 budgets (500k-4M)", SMALL_SIZES + DEFAULT_SIZES[1:], _budgets(5e5, 4e6, 4), 3),
    Grid("8 sizes (7k-783k) x 6 budgets (250k-8M)", SMALL_SIZES + DEFAULT_SIZES[1:], _budgets(2.5e5, 8e6, 6), 3),
)


def law(n: np.ndarray, d: np.ndarray, truth: dict[str, float]) -> np.ndarray:
    return truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]


def noise(d: np.ndarray) -> np.ndarray:
    return NOISE_AT * (d / NOISE_D) ** NOISE_SLOPE


def draw(grid: Grid, truth: dict[str, float], seed: int, n_boot: int) -> dict[str, float]:
    """One simulated sweep of `grid`: its fit's interval widths and whether they meet the targets."""
    rng = np.random.default_rng(seed)
    n = np.repeat(grid.sizes, len(grid.budgets) * grid.seeds)
    d = np.tile(np.repeat(grid.budgets, grid.seeds), len(grid.sizes))
    loss = law(n, d, truth) * np.exp(rng.normal(0.0, 1.0, len(n)) * noise(d))
    fit = fit_loss_law(n, d, loss)
    ci = bootstrap_loss_law(n, d, loss, fit, n_resamples=n_boot, n_workers=1, seed=seed).ci
    decades = {k: math.log10(ci[k][1] / ci[k][0]) for k in ("A", "B")}
    widths = {k: ci[k][1] - ci[k][0] for k in ("alpha", "beta")}
    meets = max(decades.values()) <= 1 and max(widths.values()) <= 0.4 and not fit.at_bound()
    return {"meets": meets, "A_decades": decades["A"], "B_decades": decades["B"], "alpha_width": widths["alpha"],
            "beta_width": widths["beta"], "at_bound": len(fit.at_bound())}


def power(grid: Grid, truth: dict[str, float] = TRUTH, draws: int = 12, n_boot: int = 200) -> dict:
    """The share of `draws` simulated sweeps that meet the targets, and the median widths."""
    rows = [draw(grid, truth, seed, n_boot) for seed in range(draws)]
    medians = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k != "meets"}
    return {"grid": asdict(grid), "runs": len(grid.sizes) * len(grid.budgets) * grid.seeds, "draws": draws,
            "meets": float(np.mean([r["meets"] for r in rows])), "median": medians, "truth": truth,
            "noise": {"sd_at": NOISE_AT, "at_tokens": NOISE_D, "slope_in_d": NOISE_SLOPE}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=12)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--out", default=None, help="append one JSON line per grid")
    args = parser.parse_args(argv)
    for grid in CANDIDATES:
        started = time.perf_counter()
        result = power(grid, draws=args.draws, n_boot=args.boot)
        m = result["median"]
        print(f"{grid.name:45s} {result['runs']:3d} runs: meets {result['meets']:.0%}; median A {m['A_decades']:.2f} "
              f"decades, B {m['B_decades']:.2f}, alpha width {m['alpha_width']:.2f}, beta width {m['beta_width']:.2f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
