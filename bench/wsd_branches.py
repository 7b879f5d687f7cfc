"""The same grid trained both ways: independent runs vs WSD branches. Prints the FLOP totals,
per-point final losses and their agreement, and the fitted L(N, D) of both sweeps with bootstrap intervals.

    .venv/bin/python -m bench.wsd_branches                      # 3 sizes x 6 budgets on this machine's CPUs
    .venv/bin/python -m bench.wsd_branches --independent-schedule wsd

Independent: the product's default, every (N, D) trained from scratch (train.schedule=cosine by default,
batch and learning rate derived per run). Branches: train.schedule=wsd grid.branches=true, one trunk per
size (the largest budget) and a cooldown branch per smaller budget. Both land in --results (a rerun skips
finished runs: delete the directory to measure again). Writes <results>/summary-*.json.

Why 6 budgets a factor sqrt(2) apart and not D, 2D, 4D, 8D: the branch sweep costs the largest budget
plus a cooldown (20%) of every other, so the fraction of the independent cost is
(D_max + 0.2 sum(others)) / sum(all): 63% for D..8D (9.4 / 15), 46% for six budgets sqrt(2) apart. The
saving grows with the number of budgets per size, never with their range.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import polars as pl
from rich.console import Console

from sweep.plan.branches import BRANCH_PLANS

SIZES = "[{name: xs, n_layer: 2, d_model: 32, n_head: 1}, {name: s, n_layer: 2, d_model: 64}, " \
        "{name: m, n_layer: 3, d_model: 96}]"
BUDGETS = [2.5e5 * math.sqrt(2) ** k for k in range(6)]
PARAMS = ("E", "A", "alpha", "B", "beta")
# Training text: the synthetic language alone (smoothly learnable: its loss follows the law). The default
# mixture adds addition and 64-key lookups, whose held-out loss drops in steps when a run memorises them,
# so two runs of one point can differ by tens of percent whatever their schedule (--tasks default shows it).
LANGUAGE = "[{name: language, kind: language, args: {}, train_weight: 1.0}]"


def theoretical_fraction(budgets: list[float], cooldown: float) -> float:
    b = sorted(budgets)
    return (b[-1] + cooldown * sum(b[:-1])) / sum(b)


def run(name: str, overrides: list[str], results: str, console: Console) -> tuple[pl.DataFrame, float]:
    from sweep.cli import compose
    from sweep.config.validate import validate
    from sweep.driver.scheduler import run_sweep
    from sweep.plan.checks import validate_runs
    from sweep.plan.grid import expand
    from sweep.store.runs import Store

    cfg = compose([f"name={name}", f"results_dir={results}", "logger=none", "analysis=false", *overrides])
    validate(cfg)
    specs = expand(cfg)
    validate_runs(cfg, specs)
    t0 = time.perf_counter()
    outcome = run_sweep(cfg, specs, Store(cfg.results_dir, cfg.name), console)
    seconds = time.perf_counter() - t0
    if outcome.failed:
        raise SystemExit(f"{name}: runs failed: {outcome.failed}")
    from analysis.tables.grids import open_grid
    from analysis.tables.load import load_runs

    return load_runs(open_grid(f"{results}/{name}")).filter(pl.col("status") == "done"), seconds


def fit(runs: pl.DataFrame, n_boot: int):
    from analysis.loss.run import LossOptions, run_loss_analysis

    out = run_loss_analysis(runs["n_params"], runs["n_tokens"], runs["final_val_loss"],
                            options=LossOptions(n_resamples=n_boot, level=0.90, seed=0))
    if out.fit is None:
        raise SystemExit(f"not fitted: {out.skipped}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/bench_wsd")
    parser.add_argument("--budgets", type=float, nargs="+", default=BUDGETS)
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--independent-schedule", default="cosine", choices=("cosine", "linear", "wsd"))
    parser.add_argument("--branch-plan", default="largest", choices=BRANCH_PLANS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="fp32", help="train.precision of both sweeps (fp32: as the results "
                        "in bench/results/wsd_branches/ were measured; auto picks bf16 for wide models on AMX CPUs)")
    parser.add_argument("--cooldown-fraction", type=float, default=0.2)
    parser.add_argument("--cooldown-shape", default="1-sqrt")
    parser.add_argument("--tasks", default=LANGUAGE, help="tasks.suite; 'default' keeps conf/tasks/default.yaml")
    parser.add_argument("--n-eval", type=int, default=64)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--noise-from", default=None, help="another --results of the same grid (another --seed): "
                        "print how far its independent runs are from these, the noise floor of one point")
    parser.add_argument("--tolerance", type=float, default=0.02, help="per-point |dL| / L stated as agreement")
    args = parser.parse_args()
    console = Console(file=open(os.devnull, "w"))  # the sweeps' own progress: quiet; the tables below are the output
    budgets = "[" + ",".join(f"{b:.6g}" for b in args.budgets) + "]"
    common = [f"grid.seeds=[{args.seed}]", f"grid.models={args.sizes}", f"grid.n_tokens={budgets}",
              f"tasks.n_eval={args.n_eval}", f"train.cooldown_shape={args.cooldown_shape}",
              f"train.precision={args.precision}"]
    if args.tasks != "default":
        common.append(f"tasks.suite={args.tasks}")
    independent_extra = [f"train.schedule={args.independent_schedule}"]
    if args.independent_schedule == "wsd":
        independent_extra.append(f"train.cooldown_fraction={args.cooldown_fraction}")
    sweep_name = f"independent-{args.independent_schedule}"
    ind, ind_s = run(sweep_name, common + independent_extra, args.results, console)
    br, br_s = run(f"branches-{args.branch_plan}", common + [
        "train.schedule=wsd", "grid.branches=true", f"grid.branch_plan={args.branch_plan}",
        f"train.cooldown_fraction={args.cooldown_fraction}"], args.results, console)

    from analysis.report.compute import compute_summary

    ci, cb = compute_summary(ind), compute_summary(br)
    ratio = cb.flops_spent / ci.flops_spent
    print(f"grid: {ind.select(pl.col('label').n_unique()).item()} sizes x {len(args.budgets)} budgets "
          f"({', '.join(f'{b:.3g}' for b in args.budgets)} tokens); independent schedule: "
          f"{args.independent_schedule}; branches: wsd, {args.cooldown_shape} cooldown of "
          f"{args.cooldown_fraction:.0%} of each budget, batch/LR/warm-up of the {args.branch_plan} budget; "
          f"seed {args.seed}")
    print("\nFLOPs (training, sum over runs)")
    print(f"  independent runs     {ci.flops_spent:.4g}   ({ind.height} runs; {ind['wall_seconds'].sum():.0f} "
          "run-seconds, 2 at a time on a shared 2-core machine)")
    print(f"  WSD branches, spent  {cb.flops_spent:.4g}   ({cb.n_trunks} trunks + {cb.n_branches} branches; "
          f"{br['wall_seconds'].sum():.0f} run-seconds)")
    print(f"  branches / independent = {ratio:.1%}  (expected from the budgets: "
          f"{theoretical_fraction(args.budgets, args.cooldown_fraction):.1%}; limit 50%: "
          f"{'met' if ratio <= 0.5 else 'NOT met'})")

    key = ["label", "n_tokens_budget"]
    pair = ind.select(*key, "n_params", pl.col("n_tokens").alias("D_ind"),
                      pl.col("final_val_loss").alias("L_ind")).join(
        br.select(*key, pl.col("n_tokens").alias("D_br"), pl.col("final_val_loss").alias("L_br"), "role", "schedule"),
        on=key).sort("n_params", "n_tokens_budget")
    pair = pair.with_columns(((pl.col("L_br") - pl.col("L_ind")) / pl.col("L_ind")).alias("rel"))
    print(f"\nfinal validation loss per point (tolerance |dL|/L <= {args.tolerance:.0%})")
    print(f"  {'size':<5}{'N':>9}{'D budget':>11}{'D ind':>10}{'D br':>10}{'L indep':>9}{'L branch':>10}"
          f"{'dL/L':>8}  branch run")
    for r in pair.iter_rows(named=True):
        print(f"  {r['label']:<5}{r['n_params']:>9}{r['n_tokens_budget']:>11}{r['D_ind']:>10}{r['D_br']:>10}"
              f"{r['L_ind']:>9.4f}{r['L_br']:>10.4f}{r['rel']:>+8.2%}  {r['role']}")
    rel = pair["rel"].to_numpy()
    within = int((np.abs(rel) <= args.tolerance).sum())
    print(f"  mean dL/L {rel.mean():+.2%}, mean |dL/L| {np.abs(rel).mean():.2%}, max |dL/L| {np.abs(rel).max():.2%}; "
          f"{within}/{len(rel)} points within {args.tolerance:.0%}")

    if args.noise_from:
        from analysis.tables.grids import open_grid
        from analysis.tables.load import load_runs

        print(f"\nseed to seed: this seed ({args.seed}) vs the same sweeps in {args.noise_from}")
        for here, name in ((ind, sweep_name), (br, f"branches-{args.branch_plan}")):
            other = load_runs(open_grid(f"{args.noise_from}/{name}")).filter(pl.col("status") == "done")
            seeds = other.join(here.select(*key, pl.col("final_val_loss").alias("L_here")), on=key).with_columns(
                ((pl.col("L_here") - pl.col("final_val_loss")) / pl.col("final_val_loss")).alias("rel"))
            noise = np.abs(seeds["rel"].to_numpy())
            print(f"  {name:<22} (other seed {other['seed'][0]}): mean |dL/L| {noise.mean():.2%}, "
                  f"max {noise.max():.2%}; {int((noise <= args.tolerance).sum())}/{len(noise)} points within "
                  f"{args.tolerance:.0%}")

    fi, fb = fit(ind, args.n_boot), fit(br, args.n_boot)
    level = fi.bootstrap.level
    print(f"\nL(N, D) = E + A/N^alpha + B/D^beta, N = n_params, D = tokens trained; {level:.0%} bootstrap "
          f"intervals ({args.n_boot} resamples)")
    print(f"  {'':<6}{'independent':>34}{'branches':>34}  br in ind CI  ind in br CI  overlap")
    fits = {}
    for name in PARAMS:
        vi, vb = getattr(fi.fit, name), getattr(fb.fit, name)
        li, hi = fi.bootstrap.ci[name]
        lb, hb = fb.bootstrap.ci[name]
        fits[name] = {"independent": [vi, li, hi], "branches": [vb, lb, hb],
                      "branch_in_independent_ci": bool(li <= vb <= hi),
                      "independent_in_branch_ci": bool(lb <= vi <= hb),
                      "overlap": bool(max(li, lb) <= min(hi, hb))}
        yes = {True: "yes", False: "NO"}
        print(f"  {name:<6}{vi:>12.4g} [{li:>9.4g}, {hi:>9.4g}]{vb:>12.4g} [{lb:>9.4g}, {hb:>9.4g}]  "
              f"{yes[fits[name]['branch_in_independent_ci']]:>12}  {yes[fits[name]['independent_in_branch_ci']]:>12}  "
              f"{yes[fits[name]['overlap']]:>7}")
    print(f"  converged: independent {fi.fit.converged} ({fi.bootstrap.converged_fraction:.0%} of resamples), "
          f"branches {fb.fit.converged} ({fb.bootstrap.converged_fraction:.0%})")
    for label, key_ in (("branch estimates inside the independent intervals", "branch_in_independent_ci"),
                        ("independent estimates inside the branch intervals", "independent_in_branch_ci"),
                        ("intervals overlapping", "overlap")):
        print(f"  {label}: {sum(f[key_] for f in fits.values())}/5")

    summary = {"budgets": args.budgets, "independent_schedule": args.independent_schedule,
               "cooldown_fraction": args.cooldown_fraction, "cooldown_shape": args.cooldown_shape,
               "flops_independent": ci.flops_spent, "flops_branches_spent": cb.flops_spent, "ratio": ratio,
               "sweep_seconds_this_invocation": {"independent": ind_s, "branches": br_s},
               "run_seconds": {"independent": ind["wall_seconds"].sum(), "branches": br["wall_seconds"].sum()},
               "points": pair.to_dicts(), "fits": fits, "level": level, "n_boot": args.n_boot}
    out = f"{args.results}/summary-{sweep_name}-vs-branches-{args.branch_plan}.json"
    with open(out, "w") as f:
        json.dump(summary, f, indent=2, default=float)
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
