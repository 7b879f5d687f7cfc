"""`python -m analysis fit-loss|isoflop FILE ...`: the loss-law analyses on any table (CSV or Parquet).

    python -m analysis fit-loss runs.csv --n n_params --d n_tokens --loss val_loss [--json] [--bootstrap 1000]
                                         [--backtest [K]]
    python -m analysis isoflop runs.parquet --n n_params --d n_tokens --loss val_loss [--flops flops] [--json]

The table is read with polars; the named columns must be numeric. Rows with NaN, inf or non-positive
values are dropped and counted. With --json exactly one JSON document goes to stdout (non-finite
numbers as null); otherwise a readable table. Bad input (missing file or column, non-numeric column,
too few points) is one line on stderr and exit status 2. The only I/O edge of the loss analyses.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

from analysis.backtest import MIN_HOLDOUT_FRACTION, MIN_HOLDOUT_RUNS, backtest_loss_law
from analysis.bootstrap import bootstrap_loss_law
from analysis.chinchilla import PARAM_NAMES, check_options, fit_loss_law, identifiability_problem, valid_rows
from analysis.frontier import FLOPS_PER_PARAM_TOKEN, compute_frontier
from analysis.invalid import invalid_rows, summary
from analysis.io import json_ready
from analysis.isoflop import compare_exponents, fit_isoflop


class InputError(ValueError):
    """The table or its columns cannot be used; the message names the problem."""


def read_table(path: str) -> pl.DataFrame:
    """A CSV (.csv, .tsv) or Parquet (.parquet, .pq) file as a polars DataFrame."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no such file: {path}")
    suffix = file.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(file)
        if suffix in (".csv", ".tsv", ".txt"):
            return pl.read_csv(file, separator="\t" if suffix == ".tsv" else ",", infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    raise InputError(f"cannot tell the format of {path}: name it .csv, .tsv or .parquet")


def numeric_column(frame: pl.DataFrame, name: str, flag: str, path: str) -> np.ndarray:
    """The column as float64 (nulls as NaN), or InputError naming the column."""
    if name not in frame.columns:
        raise InputError(f"column '{name}' (given as {flag}) is not in {path}; its columns are: "
                         + ", ".join(frame.columns))
    column = frame[name]
    if not (column.dtype.is_numeric() or column.dtype == pl.Null):
        converted = column.cast(pl.Float64, strict=False)
        bad = column.filter(converted.is_null() & column.is_not_null())
        if len(bad):
            raise InputError(f"column '{name}' (given as {flag}) is not numeric: dtype {column.dtype}, "
                             f"e.g. value {bad[0]!r}")
        column = converted
    return column.cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _emit_json(payload: dict) -> None:
    print(json.dumps(json_ready(payload), allow_nan=False))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="CSV (.csv/.tsv) or Parquet (.parquet) table, one row per run")
    parser.add_argument("--n", required=True, metavar="COL", help="parameter-count column (its name is recorded: "
                        "say which count it is, e.g. n_params or n_nonembed_params)")
    parser.add_argument("--d", required=True, metavar="COL", help="training-token column")
    parser.add_argument("--loss", required=True, metavar="COL", help="loss column (e.g. final validation loss)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--level", type=float, default=0.90, help="confidence level of intervals (default 0.90)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--plot", metavar="PNG", help="also write the figure to this file")


def _budgets(text: str | None, n: np.ndarray, d: np.ndarray) -> list[float]:
    if text:
        try:
            budgets = [float(x) for x in text.split(",") if x.strip()]
        except ValueError as exc:
            raise InputError(f"--budgets must be comma-separated numbers, got {text!r}") from exc
        if not budgets or not all(math.isfinite(c) and c > 0 for c in budgets):
            raise InputError(f"--budgets must be finite FLOP counts > 0, got {text!r}")
        return budgets
    ok = np.isfinite(n) & np.isfinite(d) & (n > 0) & (d > 0)
    c_max = float(np.max(FLOPS_PER_PARAM_TOKEN * n[ok] * d[ok])) if ok.any() else 1.0
    return [c_max, 10 * c_max, 100 * c_max]


def _checked_rows(columns: dict[str, np.ndarray]):
    """The unusable rows of the table, named: (explain, note). explain(exc) adds them to a fit's error (too
    few valid points) so the message points at column and rows; note() says on stderr which rows a
    successful fit dropped."""
    usable, notes = invalid_rows(columns, positive=tuple(columns))

    def note() -> None:
        if notes:
            print(f"note: {int((~usable).sum())} of {len(usable)} rows dropped: {summary(notes)}", file=sys.stderr)

    def explain(exc: ValueError) -> InputError:
        if not notes:
            return InputError(str(exc))
        if not usable.any():
            return InputError(f"no usable row: {summary(notes)}")
        return InputError(f"{exc}; unusable rows: {summary(notes)}")
    return explain, note


def _label(column: str, flag: str) -> str:
    return f"column '{column}' ({flag})"


def _run(body, argv, parser) -> int:
    args = parser.parse_args(argv)
    try:
        return body(args)
    except ValueError as exc:  # InputError and the fits' data errors (too few points, ...)
        print(f"error: {exc}", file=sys.stderr)
        return 2


def fit_loss_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis fit-loss",
                                     description="Fit L(N, D) = E + A/N^alpha + B/D^beta (Approach 3) with "
                                                 "bootstrap intervals, the compute-optimal frontier and a backtest.")
    _common(parser)
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="R", help="resamples (default 1000; 0: none)")
    parser.add_argument("--budgets", metavar="C1,C2", help="compute budgets (FLOPs) for N*, D*, D*/N* "
                        "(default: the data's largest 6ND, x10, x100)")
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
    parser.add_argument("--workers", type=int, default=None, help="bootstrap processes (default: all CPUs)")
    return _run(_fit_loss, argv, parser)


def _holdout_sizes(text: str) -> int | None:
    """--backtest's value: "auto" -> None (the fraction rule), "K" -> K sizes (0: no backtest)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise InputError(f"--backtest takes no value or an integer >= 0 (sizes to hold out), got {text!r}") from exc


def _fit_loss(args) -> int:
    holdout = _holdout_sizes(args.backtest)
    check_options(**{"--bootstrap": (args.bootstrap, "count-or-zero"), "--backtest": (holdout, "count-or-zero"),
                     "--holdout-fraction": (args.holdout_fraction, "probability"),
                     "--holdout-min-runs": (args.holdout_min_runs, "count"),
                     "--workers": (args.workers, "count"), "--huber-delta": (args.huber_delta, "positive"),
                     "--n-best-starts": (args.n_best_starts, "count"), "--outlier-sd": (args.outlier_sd, "positive"),
                     "--level": (args.level, "probability"), "--seed": (args.seed, "seed")})
    frame = read_table(args.file)
    n, d, loss = (numeric_column(frame, col, flag, args.file)
                  for col, flag in ((args.n, "--n"), (args.d, "--d"), (args.loss, "--loss")))
    explain, note = _checked_rows({_label(args.n, "--n"): n, _label(args.d, "--d"): d,
                                   _label(args.loss, "--loss"): loss})
    budgets = _budgets(args.budgets, n, d)
    try:
        fit = fit_loss_law(n, d, loss, huber_delta=args.huber_delta, n_best_starts=args.n_best_starts,
                           outlier_sd=args.outlier_sd, n_column=args.n)
    except ValueError as exc:
        raise explain(exc) from exc
    note()
    boot = None
    if args.bootstrap > 0:
        boot = bootstrap_loss_law(n, d, loss, fit, n_resamples=args.bootstrap, level=args.level, seed=args.seed,
                                  flops_budgets=budgets, n_workers=args.workers)
    frontier = compute_frontier(fit, budgets, boot)
    backtest = None
    if holdout != 0:
        backtest = backtest_loss_law(n, d, loss, n_holdout_sizes=holdout, min_holdout_fraction=args.holdout_fraction,
                                     min_holdout_runs=args.holdout_min_runs, huber_delta=args.huber_delta,
                                     n_best_starts=args.n_best_starts, outlier_sd=args.outlier_sd, n_column=args.n)
    if args.plot:
        from analysis.plots import to_png
        from analysis.plots_loss import loss_vs_compute

        table = pl.DataFrame({"n": n, "d": d, "loss": loss}).filter(
            pl.all_horizontal(pl.all().is_finite() & (pl.all() > 0)))
        Path(args.plot).write_bytes(to_png(loss_vs_compute(table, fit, n_col="n", d_col="d", loss_col="loss")))
    payload = {**fit.params(), "objective": fit.objective, "n_points": fit.n_points, "converged": fit.converged,
               "ci": {} if boot is None else {k: list(v) for k, v in boot.ci.items()},
               "n_invalid": fit.n_invalid, "dropped_outliers": list(fit.dropped_outliers),
               "frontier": frontier.as_dict(), "bootstrap": None if boot is None else boot.as_dict(),
               "options": {**fit.options(), "file": args.file, "d_column": args.d, "loss_column": args.loss,
                           "n_resamples": args.bootstrap, "level": args.level, "seed": args.seed,
                           "flops_budgets": budgets}}
    if backtest is not None:
        payload["backtest"] = backtest.as_dict()
    if args.json:
        _emit_json(payload)
    else:
        _print_fit(fit, boot, frontier, backtest)
    return 0


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
    parser.add_argument("--workers", type=int, default=None, help="bootstrap processes (default: all CPUs)")
    parser.add_argument("--use-edge-minima", action="store_true",
                        help="also fit minima that lie outside their budget's sampled N range")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the Approach-3 fit the exponents are compared with")
    return _run(_isoflop, argv, parser)


def _isoflop(args) -> int:
    check_options(**{"--bootstrap": (args.bootstrap, "count-or-zero"), "--workers": (args.workers, "count"),
                     "--rel-tol": (args.rel_tol, "non-negative"), "--level": (args.level, "probability"),
                     "--seed": (args.seed, "seed")})
    frame = read_table(args.file)
    cols = [(args.n, "--n"), (args.d, "--d"), (args.loss, "--loss")] + ([(args.flops, "--flops")] if args.flops else [])
    arrays = [numeric_column(frame, col, flag, args.file) for col, flag in cols]
    n, d, loss = arrays[:3]
    flops = arrays[3] if args.flops else None
    explain, note = _checked_rows({_label(col, flag): values for (col, flag), values in zip(cols, arrays)})
    try:
        iso = fit_isoflop(n, d, loss, flops, rel_tol=args.rel_tol, use_edge_minima=args.use_edge_minima,
                          level=args.level, n_resamples=args.bootstrap, seed=args.seed)
    except ValueError as exc:
        raise explain(exc) from exc
    note()
    frontier = agreement = None
    compare_skipped = "--no-compare" if args.no_compare else None
    if not args.no_compare:
        ok = valid_rows(n, d, loss)[3]
        problem = identifiability_problem(n[ok], d[ok])
        if problem is not None:  # Approach 2 stands on its own; only the comparison is skipped
            compare_skipped = f"the loss law (Approach 3) is not fitted: {problem}"
        else:
            fit = fit_loss_law(n, d, loss, n_column=args.n)
            boot = None if args.bootstrap < 1 else bootstrap_loss_law(
                n, d, loss, fit, n_resamples=args.bootstrap, level=args.level, seed=args.seed,
                n_workers=args.workers)
            frontier = compute_frontier(fit, [m.flops for m in iso.minima], boot)
            agreement = compare_exponents(iso, frontier)
    if args.plot:
        from analysis.plots import to_png
        from analysis.plots_loss import isoflop_profiles

        c = FLOPS_PER_PARAM_TOKEN * n * d if flops is None else flops
        Path(args.plot).write_bytes(to_png(isoflop_profiles(n, loss, c, iso, frontier)))
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
