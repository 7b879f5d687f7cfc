"""`python -m analysis emergence FILE`: emergence verdicts for a long table (CSV or Parquet).

The table needs task, metric, n_params, value; metric_kind, chance, higher_is_better, metric_min,
metric_max, metric_log_likelihood, answer_tokens, n_samples, flops, n_tokens, seed and val_loss are
used when present (analysis/emergence/points.py).
--json prints one JSON document: a list with one object per task x metric, each carrying every
column of analyze_emergence, its task's `artifact_verdict` and `artifact_reason` included (NaN is
written as null). A threshold bracketed by two neighbouring sizes has "bracketed": true (and the flag),
"n_c": null and the two sizes in n_c_lo, n_c_hi, with nothing fitted (k, x_c, r2_sigmoid null).
Without --json: a table per metric and one per task. Notes on the table as a whole (rows dropped for
an empty task or metric) go to stderr as "note: ...". Bad input: one line on stderr naming the
problem, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from analysis.emergence.curve import N_BOOT
from analysis.emergence.points import X_AXES, EmergenceInputError, require_usable_rows
from analysis.emergence.run import run_emergence
from analysis.interval import LEVEL
from analysis.tables.io import json_ready
from analysis.tables.table import InputError, read_table


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 with one line, like bad input
        raise EmergenceInputError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m analysis emergence", description=__doc__.splitlines()[0])
    p.add_argument("file", help="long table, .csv or .parquet: task, metric, n_params, value [, ...]")
    p.add_argument("--json", action="store_true", help="print one JSON list of rows instead of tables")
    p.add_argument("--x", choices=X_AXES, default="log_n",
                   help="scale axis: log parameters, log training FLOPs, or validation loss (reversed)")
    p.add_argument("--bootstrap", type=int, default=N_BOOT, metavar="N",
                   help=f"bootstrap replicates per curve (0: none; default {N_BOOT})")
    p.add_argument("--level", type=float, default=LEVEL,
                   help=f"level of the threshold and steepness intervals (default {LEVEL:g}, as in the sweep report)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--answer-tokens", type=float, default=None, metavar="L",
                   help="answer length for the p^L test when the table has no answer_tokens column")
    p.add_argument("--plot", default=None, metavar="PNG", help="also write the emergence figure to this file")
    return p


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _print_tables(result, console) -> None:
    from rich.table import Table

    unit = result.table["threshold_unit"][0] if result.table.height else ""
    table = Table(title=f"Emergence per task and metric (x = {result.x_axis}; threshold in {unit})")
    level = f"{result.level:.0%} CI"
    for name in ("task", "metric", "kind", "verdict", "sizes", f"threshold [{level}]", f"k [{level}]",
                 "R2 sig/best smooth", "dIC", "reason"):
        table.add_column(name, overflow="fold")
    for r in result.table.iter_rows(named=True):
        smooth = max((r["r2_linear"], r["r2_power"]), key=lambda v: -1e9 if v is None or v != v else v)
        threshold = (f"in [{_fmt(r['threshold_lo'])}, {_fmt(r['threshold_hi'])}] (bracketed)" if r["bracketed"] else
                     f"{_fmt(r['threshold'])} [{_fmt(r['threshold_lo'])}, {_fmt(r['threshold_hi'])}]")
        table.add_row(r["task"], r["metric"], r["metric_kind"], r["verdict"], str(r["n_sizes"]), threshold,
                      f"{_fmt(r['k'])} [{_fmt(r['k_lo'])}, {_fmt(r['k_hi'])}]",
                      f"{_fmt(r['r2_sigmoid'])}/{_fmt(smooth)}", f"{r['ic']} {_fmt(r['delta_ic'], 2)}",
                      r["reason"])
    console.print(table)
    tasks = Table(title="Metric artifact per task (Schaeffer et al. 2023)")
    for name in ("task", "artifact verdict", "EM ~ p^L: L (source), R2", "fitted L, R2", "reason"):
        tasks.add_column(name, overflow="fold")
    for r in result.artifacts.iter_rows(named=True):
        tasks.add_row(r["task"], r["artifact_verdict"],
                      f"{_fmt(r['pl_L'])} ({r['pl_L_source'] or 'none'}), {_fmt(r['pl_r2'])}",
                      f"{_fmt(r['pl_L_fit'])}, {_fmt(r['pl_r2_fit'])}", r["artifact_reason"])
    console.print(tasks)


def emergence_main(argv: list[str]) -> int:
    """Run the emergence CLI on argv (without the program name); returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.bootstrap < 0:
            raise EmergenceInputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
        if not 0 < args.level < 1:
            raise EmergenceInputError(f"--level must be in (0, 1), e.g. 0.9; got {args.level}")
        points = read_table(args.file)
        if points.height == 0:
            raise EmergenceInputError(f"{args.file} has no rows")
        require_usable_rows(points, args.x)
        result = run_emergence(points, x=args.x, n_boot=args.bootstrap, seed=args.seed,
                               answer_tokens=args.answer_tokens, level=args.level)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        rows = json_ready(list(result.table.iter_rows(named=True)))
        json.dump(rows, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        _print_tables(result, Console())
    if args.plot:
        from analysis.emergence.plots import emergence_figure
        from analysis.plots import to_png

        Path(args.plot).write_bytes(to_png(emergence_figure(result)))
    return 0


if __name__ == "__main__":
    sys.exit(emergence_main(sys.argv[1:]))
