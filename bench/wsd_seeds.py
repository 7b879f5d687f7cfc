"""Several seeds of bench/wsd_branches.py together: per-point agreement against the seed noise, and the fits
of both sweeps on every seed's points.

    .venv/bin/python -m bench.wsd_seeds results/bench_wsd_s0/summary-*.json results/bench_wsd_s1/summary-*.json

Per point the stated tolerance is |mean L_branch - mean L_indep| / mean L_indep <= max(2%, the independent
runs' own seed-to-seed spread there, (max - min) / mean over the seeds): a branch cannot be asked to agree
with one point better than that point agrees with itself under another seed. The fits pool every seed's
points of a sweep (L(N, D) with 90% bootstrap intervals), which the single-seed fits of wsd_branches.py
cannot: there each interval comes from 18 points.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

PARAMS = ("E", "A", "alpha", "B", "beta")
FLOOR = 0.02


def per_point(summaries: list[dict]) -> list[dict]:
    """Means over seeds of both sweeps' final losses per (size, budget), the independent spread, the verdict."""
    points: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for summary in summaries:
        for p in summary["points"]:
            key = (p["n_params"], p["n_tokens_budget"], p["label"])
            for name in ("L_ind", "L_br", "D_ind", "D_br"):
                points[key][name].append(p[name])
    out = []
    for (n, budget, label), v in sorted(points.items()):
        ind, br = np.array(v["L_ind"]), np.array(v["L_br"])
        spread = float((ind.max() - ind.min()) / ind.mean())
        rel = float((br.mean() - ind.mean()) / ind.mean())
        tolerance = max(FLOOR, spread)
        out.append({"label": label, "n_params": n, "n_tokens_budget": budget, "seeds": len(ind),
                    "L_ind": float(ind.mean()), "L_br": float(br.mean()), "rel": rel, "spread_ind": spread,
                    "spread_br": float((br.max() - br.min()) / br.mean()), "tolerance": tolerance,
                    "within": abs(rel) <= tolerance, "D_ind": v["D_ind"], "D_br": v["D_br"]})
    return out


def pooled_fits(rows: list[dict], n_boot: int) -> dict:
    from analysis.loss.run import LossOptions, run_loss_analysis

    fits = {}
    for side, loss, tokens in (("independent", "L_ind", "D_ind"), ("branches", "L_br", "D_br")):
        n = [r["n_params"] for r in rows for _ in r[tokens]]
        d = [t for r in rows for t in r[tokens]]
        losses = [v for r in rows for v in r["losses"][loss]]
        out = run_loss_analysis(n, d, losses, options=LossOptions(n_resamples=n_boot, level=0.90, seed=0))
        if out.fit is None:
            raise SystemExit(f"{side}: not fitted: {out.skipped}")
        fits[side] = {name: [getattr(out.fit, name), *out.bootstrap.ci[name]] for name in PARAMS}
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", help="summary-*.json of wsd_branches.py, one per seed")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", default=None, help="write the table and fits as JSON here")
    args = parser.parse_args()
    summaries = [json.load(open(path)) for path in args.summaries]
    rows = per_point(summaries)
    print(f"{len(summaries)} seeds; tolerance per point: max({FLOOR:.0%}, independent seed-to-seed spread)")
    print(f"  {'size':<5}{'N':>9}{'D budget':>11}{'L indep':>9}{'L branch':>10}{'dL/L':>8}{'spread ind':>12}"
          f"{'spread br':>11}  within")
    for r in rows:
        print(f"  {r['label']:<5}{r['n_params']:>9}{r['n_tokens_budget']:>11}{r['L_ind']:>9.4f}{r['L_br']:>10.4f}"
              f"{r['rel']:>+8.2%}{r['spread_ind']:>12.2%}{r['spread_br']:>11.2%}  {'yes' if r['within'] else 'NO'}")
    rel = np.array([r["rel"] for r in rows])
    print(f"  mean |dL/L| {np.abs(rel).mean():.2%}, max {np.abs(rel).max():.2%}; "
          f"{sum(r['within'] for r in rows)}/{len(rows)} points within tolerance, "
          f"{int((np.abs(rel) <= FLOOR).sum())}/{len(rows)} within {FLOOR:.0%}")

    for r in rows:  # every seed's loss, in the order of the tokens lists, for the pooled fits
        r["losses"] = {"L_ind": [], "L_br": []}
    by_key = {(r["n_params"], r["n_tokens_budget"]): r for r in rows}
    for summary in summaries:
        for p in summary["points"]:
            r = by_key[(p["n_params"], p["n_tokens_budget"])]
            r["losses"]["L_ind"].append(p["L_ind"])
            r["losses"]["L_br"].append(p["L_br"])
    fits = pooled_fits(rows, args.n_boot)
    print(f"\nL(N, D) on every seed's points ({len(summaries) * len(rows)} per sweep), 90% bootstrap intervals")
    print(f"  {'':<6}{'independent':>34}{'branches':>34}  br in ind CI  ind in br CI  overlap")
    agree = {"branch_in_independent_ci": 0, "independent_in_branch_ci": 0, "overlap": 0}
    for name in PARAMS:
        (vi, li, hi), (vb, lb, hb) = fits["independent"][name], fits["branches"][name]
        checks = {"branch_in_independent_ci": li <= vb <= hi, "independent_in_branch_ci": lb <= vi <= hb,
                  "overlap": max(li, lb) <= min(hi, hb)}
        for key, ok in checks.items():
            agree[key] += ok
        yes = {True: "yes", False: "NO"}
        print(f"  {name:<6}{vi:>12.4g} [{li:>9.4g}, {hi:>9.4g}]{vb:>12.4g} [{lb:>9.4g}, {hb:>9.4g}]  "
              f"{yes[checks['branch_in_independent_ci']]:>12}  {yes[checks['independent_in_branch_ci']]:>12}  "
              f"{yes[checks['overlap']]:>7}")
    print("  " + ", ".join(f"{key.replace('_', ' ')}: {n}/5" for key, n in agree.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"points": rows, "fits": fits, "agreement": agree, "summaries": args.summaries}, f,
                      indent=2, default=float)
        print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
