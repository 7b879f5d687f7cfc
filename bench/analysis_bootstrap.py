"""Speed of the loss-law bootstrap: a 250-point table, 1000 resamples (target: under 30 s on 2 cores).

    PYTHONPATH=. python bench/analysis_bootstrap.py [--points 250] [--resamples 1000] [--repeats 3]

The table is synthetic (Hoffmann et al.'s law, N in 1e7..1e10 and D in 1e8..1e11 drawn log-uniformly,
1% multiplicative noise). Times the full fit (init grid + 16 L-BFGS-B descents) and the bootstrap in
one process and in one process per CPU, each `repeats` times; prints absolute seconds, resamples/s and
the CPU seconds spent (this process and its workers), and writes bench/results/analysis_bootstrap.json
with the machine's load at the time: wall times are only comparable between runs on an idle machine,
CPU seconds less so affected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import scipy

from analysis.loss.bootstrap import _default_workers, bootstrap_loss_law
from analysis.loss.fit import fit_loss_law

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def table(points: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = 10 ** rng.uniform(7, 10, points), 10 ** rng.uniform(8, 11, points)
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    return n, d, loss * np.exp(rng.normal(0, 0.01, points))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the bootstrap's workers are reaped on return)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=250)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "analysis_bootstrap.json"))
    args = parser.parse_args()
    n, d, loss = table(args.points)
    load_before = os.getloadavg()
    fit_seconds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit = fit_loss_law(n, d, loss)
        fit_seconds.append(time.perf_counter() - t0)
    print(f"full fit ({args.points} points, {fit.n_starts} starts): median {statistics.median(fit_seconds):.3f} s "
          f"(all: {', '.join(f'{s:.3f}' for s in fit_seconds)})")
    runs = {}
    for workers in sorted({1, _default_workers()}):
        seconds, cpu_seconds = [], []
        for _ in range(args.repeats):
            cpu0 = _cpu_seconds()
            boot = bootstrap_loss_law(n, d, loss, fit, n_resamples=args.resamples, seed=0, n_workers=workers,
                                      flops_budgets=[1e21, 1e23])
            seconds.append(boot.seconds)
            cpu_seconds.append(_cpu_seconds() - cpu0)
        median = statistics.median(seconds)
        runs[str(workers)] = {"seconds": seconds, "median_seconds": median, "cpu_seconds": cpu_seconds,
                              "resamples_per_second": args.resamples / median,
                              "converged_fraction": boot.converged_fraction}
        print(f"bootstrap, {workers} process(es): median {median:.2f} s for {args.resamples} resamples = "
              f"{args.resamples / median:.0f} resamples/s (all: {', '.join(f'{s:.2f}' for s in seconds)}; CPU s: "
              f"{', '.join(f'{s:.2f}' for s in cpu_seconds)}); converged {boot.converged_fraction:.1%}; "
              f"alpha 90% CI {boot.ci['alpha'][0]:.4f}..{boot.ci['alpha'][1]:.4f}")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    result = {"points": args.points, "resamples": args.resamples, "repeats": args.repeats,
              "fit_seconds": fit_seconds, "bootstrap": runs, "target_seconds": 30.0,
              "cpus": os.cpu_count(), "usable_cpus": _default_workers(), "load_average_before": load_before,
              "load_average_after": load_after, "python": platform.python_version(), "numpy": np.__version__,
              "scipy": scipy.__version__, "machine": platform.machine(), "processor": platform.processor(),
              "note": "shared machine: other agents' jobs were running; see the load averages"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
