"""`python -m analysis fit-loss|isoflop FILE ...`: the loss-law analyses on any table (CSV or Parquet).

    python -m analysis fit-loss runs.csv --n n_params --d n_tokens --loss val_loss [--json] [--bootstrap 1000]
                                         [--backtest [K]]
    python -m analysis isoflop runs.parquet --n n_params --d n_tokens --loss val_loss [--flops flops] [--json]

The table is read with polars; the named columns must be numeric. Rows with NaN, inf or non-positive
values are dropped and counted. fit-loss also checks that loss falls with N and D, naming the runs that
break it and what differs between them where the table has run_id, label, batch_size, n_steps, lr,
precision, schedule, role or recipe columns, and says whether the law may be headlined and why not
("headlined", "diagnosis", "monotonicity" in the JSON). With --json exactly one JSON document goes to
stdout (non-finite numbers as null); otherwise a readable table. Bad input (missing file or column, non-numeric column,
too few points) is one line on stderr and exit status 2. Both commands run analysis.loss.run, the
orchestrator the sweep report uses, with the options given here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

from analysis.interval import LEVEL
from analysis.loss.allocation import FLOPS_PER_PARAM_TOKEN
from analysis.loss.backtest import MIN_HOLDOUT_FRACTION, MIN_HOLDOUT_RUNS
from analysis.loss.fit import PARAM_NAMES
from analysis.loss.run import LossAnalysis, LossOptions, run_loss_analysis
from analysis.options import option_errors
from analysis.tables.invalid import invalid_rows, summary
from analysis.tables.io import json_ready
from analysis.tables.table import InputError, numeric_array, read_table


def _emit_json(payload: dict) -> None:
    print(json.dumps(json_ready(payload), allow_nan=False))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="CSV (.csv/.tsv) or Parquet (.parquet) table, one row per run")
    parser.add_argument("--n", required=True, metavar="COL", help="parameter-count column (its name is recorded: "
                        "say which count it is, e.g. n_params or n_nonembed_params)")
    parser.add_argument("--d", required=True, metavar="COL", help="training-token column")
    parser.add_argument("--loss", required=True, metavar="COL", help="loss column (e.g. final validation loss)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--level", type=float, default=LEVEL,
                        help=f"confidence level of intervals (default {LEVEL:g}, as in the sweep report)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="bootstrap processes (default: all CPUs)")
    parser.add_argument("--plot", metavar="PNG", help="also write the figure to this file")


def _budgets(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        budgets = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise InputError(f"--budgets must be comma-separated numbers, got {text!r}") from exc
    if not budgets or not all(math.isfinite(c) and c > 0 for c in budgets):
        raise InputError(f"--budgets must be finite FLOP counts > 0, got {text!r}")
    return budgets


def _columns(args, flags: tuple[str, ...]) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """The table, and its named columns as float arrays keyed by their label "column 'params' (--n)"."""
    frame = read_table(args.file)
    out = {}
    for flag in flags:
        name = getattr(args, flag.lstrip("-"))
        out[f"column '{name}' ({flag})"] = numeric_array(frame, name, f"column '{name}' (given as {flag})", args.file)
    return frame, out


def _analyse(frame: pl.DataFrame, columns: dict[str, np.ndarray], options: LossOptions, required: str) -> LossAnalysis:
    """run_loss_analysis on the columns (N, D, loss[, FLOPs]), the table naming the runs and how they were
    trained where it has such columns (run_id, label, batch_size, lr, ...: analysis.loss.monotonicity);
    InputError when the `required` part could not be done, naming the unusable rows; a note on stderr about
    the rows a successful fit dropped."""
    usable, notes = invalid_rows(columns, positive=tuple(columns))
    arrays = list(columns.values())
    result = run_loss_analysis(*arrays[:3], arrays[3] if len(arrays) > 3 else None, options=options, runs=frame)
    if required in result.skipped:
        if notes and not usable.any():
            raise InputError(f"no usable row: {summary(notes)}")
        problem = result.skipped[required]
        raise InputError(f"{problem}; unusable rows: {summary(notes)}" if notes else problem)
    if notes:
        print(f"note: {int((~usable).sum())} of {len(usable)} rows dropped: {summary(notes)}", file=sys.stderr)
    return result


def _run(body, argv, parser) -> int:
    args = parser.parse_args(argv)
    try:
        return body(args)
    except ValueError as exc:  # InputError and the fits' data errors (too few points, ...)
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _check(**options) -> None:
    errors = option_errors(**options)
    if errors:
        raise InputError("; ".join(errors))


def fit_loss_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis fit-loss",
                                     description="Fit L(N, D) = E + A/N^alpha + B/D^beta (Approach 3) with "
                                                 "bootstrap intervals, the compute-optimal frontier and a backtest.")
    _common(parser)
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="R", help="resamples (default 1000; 0: none)")
    parser.add_argument("--budgets", metavar="C1,C2", help="compute budgets (FLOPs) for N*, D*, D*/N* "
                        "(default: the data's smallest and largest 6ND, and 10x and 100x the largest)")
    parser.add_argument("--huber-delta", type=float, default=1e-3, help="Huber delta on log residuals (1e-3)")
    parser.add_argument("--n-best-starts", type=int, default=16, help="init-grid starts refined (default 16)")
    parser.add_argument("--outlier-sd", type=float, default=None, metavar="K",
                        help="drop points more than K robust SDs from a first fit, then refit (default: off)")
    parser.add_argument("--backtest", nargs="?", const="auto", default="0", metavar="K",
                        help="also fit without the largest model sizes and predict them: bare --backtest holds out "
                             "the fewest largest sizes with >= --holdout-fraction of the runs (and >= "
                             "--holdout-min-runs), --backtest K the K largest sizes (default 0: off)")
    parser.add_argument("--holdout-fraction", type=float, default=MIN_HOLDOUT_FRACTION, metavar="F",
                        help=f"share of runs the bare --backtest holds out (default {MIN_HOLDOUT_FRACTION})")
    parser.add_argument("--holdout-min-runs", type=int, default=MIN_HOLDOUT_RUNS, metavar="R",
                        help=f"fewest runs the bare --backtest holds out (default {MIN_HOLDOUT_RUNS})")
    return _run(_fit_loss, argv, parser)


def _holdout_sizes(text: str) -> int | None:
    """--backtest's value: "auto" -> None (the fraction rule), "K" -> K sizes (0: no backtest)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise InputError(f"--backtest takes no value or an integer >= 0 (sizes to hold out), got {text!r}") from exc


def _fit_loss_options(args) -> LossOptions:
    holdout = _holdout_sizes(args.backtest)
    _check(**{"--bootstrap": (args.bootstrap, "count-or-zero"), "--backtest": (holdout, "count-or-zero"),
              "--holdout-fraction": (args.holdout_fraction, "probability"),
              "--holdout-min-runs": (args.holdout_min_runs, "count"),
              "--workers": (args.workers, "count"), "--huber-delta": (args.huber_delta, "positive"),
              "--n-best-starts": (args.n_best_starts, "count"), "--outlier-sd": (args.outlier_sd, "positive"),
              "--level": (args.level, "probability"), "--seed": (args.seed, "seed")})
    return LossOptions(parts=("loss_law",) + (("backtest",) if holdout != 0 else ()), n_resamples=args.bootstrap,
                       level=args.level, seed=args.seed, huber_delta=args.huber_delta,
                       n_best_starts=args.n_best_starts, outlier_sd=args.outlier_sd, n_column=args.n,
                       flops_budgets=_budgets(args.budgets), n_holdout_sizes=holdout or None,
                       min_holdout_fraction=args.holdout_fraction, min_holdout_runs=args.holdout_min_runs,
                       n_workers=args.workers)


def _fit_loss(args) -> int:
    options = _fit_loss_options(args)
    frame, columns = _columns(args, ("--n", "--d", "--loss"))
    result = _analyse(frame, columns, options, "loss_law")
    if "backtest" in result.skipped:
        raise InputError(result.skipped["backtest"])
    fit, boot, frontier, backtest = result.fit, result.bootstrap, result.frontier, result.backtest
    if args.plot:
        from analysis.loss.plots import loss_vs_compute
        from analysis.plots import to_png

        n, d, loss = columns.values()
        table = pl.DataFrame({"n": n, "d": d, "loss": loss}).filter(
            pl.all_horizontal(pl.all().is_finite() & (pl.all() > 0)))
        not_pinned = "" if result.headlined else result.diagnosis().reason()
        Path(args.plot).write_bytes(to_png(loss_vs_compute(table, fit, n_col="n", d_col="d", loss_col="loss",
                                                           not_pinned=not_pinned)))
    payload = {**fit.params(), "objective": fit.objective, "n_points": fit.n_points, "converged": fit.converged,
               "ci": {} if boot is None else {k: list(v) for k, v in boot.ci.items()},
               "n_invalid": fit.n_invalid, "dropped_outliers": list(fit.dropped_outliers),
               "frontier": frontier.as_dict(), "bootstrap": None if boot is None else boot.as_dict(),
               "headlined": result.headlined, "diagnosis": result.diagnosis().as_dict(),
               "monotonicity": result.monotonicity.as_dict(),
               "options": {**fit.options(), "file": args.file, "d_column": args.d, "loss_column": args.loss,
                           "n_resamples": args.bootstrap, "level": args.level, "seed": args.seed,
                           "flops_budgets": [p.flops for p in frontier.points]}}
    if backtest is not None:
        payload["backtest"] = backtest.as_dict()
    if args.json:
        _emit_json(payload)
    else:
        _print_fit(fit, boot, frontier, backtest if result.headlined else None)
        _print_diagnosis(result)
    return 0


def _print_diagnosis(result: LossAnalysis) -> None:
    from rich.console import Console

    console = Console()
    diagnosis = result.diagnosis()
    if not diagnosis.headlined:
        console.print(f"Not headlined: {diagnosis.reason()}; the numbers above are estimates with their intervals, "
                      "not a law to quote" + ("; no backtest verdict" if result.backtest is not None else "") + ".")
    for finding in diagnosis.findings:
        console.print(f"- {finding.text()}", highlight=False)
    if not result.monotonicity.reversals:
        console.print(f"Loss falls with N at every D and with D at every N ({result.monotonicity.rule()}).")


def _fmt_ci(ci) -> str:
    return "" if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _print_fit(fit, boot, frontier, backtest) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    level = "" if boot is None else f" ({boot.level:.0%} bootstrap CI, {boot.n_resamples} resamples, " \
                                    f"{boot.converged_fraction:.1%} converged)"
    table = Table(title=f"L(N, D) = E + A/N^alpha + B/D^beta on {fit.n_points} points, N = {fit.n_column}{level}")
    table.add_column("quantity")
    table.add_column("estimate", justify="right")
    table.add_column("interval", justify="right")
    ci = {} if boot is None else boot.ci
    for name in PARAM_NAMES:
        table.add_row(name, f"{getattr(fit, name):.4g}", _fmt_ci(ci.get(name)))
    table.add_row("a = beta/(alpha+beta)", f"{frontier.a:.4f}", _fmt_ci(frontier.a_ci))
    table.add_row("b = alpha/(alpha+beta)", f"{frontier.b:.4f}", _fmt_ci(frontier.b_ci))
    console.print(table)
    console.print(f"objective {fit.objective:.4g}, converged {fit.converged}, Huber delta {fit.huber_delta}, "
                  f"{fit.n_starts} best starts; {fit.n_invalid} invalid rows dropped; "
                  f"{len(fit.dropped_outliers)} outliers dropped {list(fit.dropped_outliers) or ''}")
    budgets = Table(title="compute-optimal allocation (C = 6ND, Hoffmann et al. eq. 4)")
    for col in ("C (FLOPs)", "quantity", "estimate", "interval"):
        budgets.add_column(col, justify="right")
    for p in frontier.points:
        budgets.add_row(f"{p.flops:.3g}", "N*", f"{p.n_opt:.4g}", _fmt_ci(p.n_opt_ci))
        budgets.add_row("", "D*", f"{p.d_opt:.4g}", _fmt_ci(p.d_opt_ci))
        budgets.add_row("", "D*/N*", f"{p.tokens_per_param:.4g}", _fmt_ci(p.tokens_per_param_ci))
        budgets.add_row("", "loss", f"{p.loss_opt:.4g}", "", end_section=True)
    console.print(budgets)
    if backtest is not None:
        console.print(backtest.statement)


def isoflop_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis isoflop",
                                     description="Approach 2: per compute budget a parabola of loss in log N, "
                                                 "its minimum, and the power laws N_opt(C), D_opt(C).")
    _common(parser)
    parser.add_argument("--flops", metavar="COL", help="compute column (default: 6 N D)")
    parser.add_argument("--rel-tol", type=float, default=0.05,
                        help="budgets within this relative difference form one group (default 0.05)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="R",
                        help="resamples: residual bootstrap of the exponents, and of the loss-law fit they are "
                             "compared with (default 1000)")
    parser.add_argument("--use-edge-minima", action="store_true",
                        help="also fit minima that lie outside their budget's sampled N range")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the Approach-3 fit the exponents are compared with")
    return _run(_isoflop, argv, parser)


def _isoflop(args) -> int:
    _check(**{"--bootstrap": (args.bootstrap, "count-or-zero"), "--workers": (args.workers, "count"),
              "--rel-tol": (args.rel_tol, "non-negative"), "--level": (args.level, "probability"),
              "--seed": (args.seed, "seed")})
    options = LossOptions(parts=("isoflop",) if args.no_compare else ("isoflop", "loss_law"),
                          n_resamples=args.bootstrap, level=args.level, seed=args.seed, n_column=args.n,
                          rel_tol=args.rel_tol, use_edge_minima=args.use_edge_minima, n_workers=args.workers)
    frame, columns = _columns(args, ("--n", "--d", "--loss") + (("--flops",) if args.flops else ()))
    result = _analyse(frame, columns, options, "isoflop")
    iso, frontier, agreement = result.isoflop, result.frontier, result.agreement
    compare_skipped = "--no-compare" if args.no_compare else None
    if "loss_law" in result.skipped:  # Approach 2 stands on its own; only the comparison is skipped
        compare_skipped = f"the loss law (Approach 3) is not fitted: {result.skipped['loss_law']}"
    if args.plot:
        from analysis.loss.plots import isoflop_profiles
        from analysis.plots import to_png

        n, d, loss = list(columns.values())[:3]
        c = list(columns.values())[3] if args.flops else FLOPS_PER_PARAM_TOKEN * n * d
        Path(args.plot).write_bytes(to_png(isoflop_profiles(n, loss, c, iso, frontier if result.headlined else None)))
    payload = {"a": iso.a, "b": iso.b, "ci": {"a": iso.a_ci and list(iso.a_ci), "b": iso.b_ci and list(iso.b_ci)},
               "a_se": iso.a_se, "minima": [m.as_dict() for m in iso.minima],
               "skipped": [{"C": s.flops, "n_points": s.n_points, "reason": s.reason} for s in iso.skipped],
               "n_invalid": iso.n_invalid, "bootstrap_converged_fraction": iso.converged_fraction,
               "agreement": None if agreement is None else {**agreement.as_dict(), "statement": agreement.statement(),
                                                            "a_loss_law_ci": frontier.a_ci,
                                                            "b_loss_law_ci": frontier.b_ci},
               "agreement_skipped": compare_skipped,
               "options": {**iso.options(), "file": args.file, "n_column": args.n, "d_column": args.d,
                           "loss_column": args.loss, "flops_column": args.flops}}
    if args.json:
        _emit_json(payload)
    else:
        _print_isoflop(iso, agreement, compare_skipped)
    return 0


def _print_isoflop(iso, agreement, compare_skipped: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="isoFLOP minima (parabola of loss in log N per budget)")
    for col in ("C (FLOPs)", "N_opt", "D_opt", "loss min", "runs", "sizes", "N range", "note"):
        table.add_column(col, justify="right")
    for m in iso.minima:
        note = "" if m.inside else "minimum outside sampled N" + ("" if m.used else "; not used")
        table.add_row(f"{m.flops:.3g}", f"{m.n_opt:.3g}", f"{m.d_opt:.3g}", f"{m.loss_min:.4g}", str(m.n_points),
                      str(m.n_sizes), f"{m.n_min:.2g}-{m.n_max:.2g}", note)
    console.print(table)
    for s in iso.skipped:
        console.print(f"skipped C={s.flops:.3g} ({s.n_points} runs): {s.reason}")
    console.print(f"N_opt ∝ C^a, a = {iso.a:.4f} {_fmt_ci(iso.a_ci)}; D_opt ∝ C^b, b = {iso.b:.4f} {_fmt_ci(iso.b_ci)} "
                  f"({iso.level:.0%}, {iso.ci_method})")
    if agreement is not None:
        console.print(agreement.statement())
    elif compare_skipped and not compare_skipped.startswith("--"):
        console.print(f"no comparison with the loss law: {compare_skipped}")
