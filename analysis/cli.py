"""`python -m analysis`: analyse a sweep directory, or run one analysis on any table.

    python -m analysis <sweep dir> [--grid ID | --all-runs]   fit and report a sweep's grid, offline, from its
                                                              Parquet tables (the latest grid unless --grid)
    python -m analysis fit-loss FILE --n COL --d COL --loss COL [--json] [--bootstrap R] [--seed S]
    python -m analysis isoflop FILE --n COL --d COL --loss COL [--flops COL] [--json]
    python -m analysis emergence FILE [--json] ...

A first argument that is exactly a subcommand name selects it; anything else is a sweep directory.
"""

from __future__ import annotations

import argparse
import sys

from analysis.report.pipeline import analyze_sweep
from analysis.tables.grids import UnknownGrid
from analysis.tables.load import NoResults

__all__ = ["SUBCOMMANDS", "analyze_sweep", "main"]

SUBCOMMANDS = ("fit-loss", "isoflop", "emergence")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return run_subcommand(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", help="a sweep directory (results/<name>), local path or URI")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--grid", metavar="ID", help="analyse the grid kept as <sweep dir>/grids/ID/ (default: the "
                       "latest, the one <sweep dir>/sweep.json names); writes grids/ID/analysis/")
    which.add_argument("--all-runs", action="store_true",
                       help="use every run in the directory, not only those of one grid; writes <sweep dir>/analysis/")
    args = parser.parse_args(argv)
    from analysis.tables.io import exists

    if not exists(args.sweep_dir):
        print(f"error: no such sweep directory: {args.sweep_dir} (give the directory `python -m sweep` wrote, "
              "results/<name>)", file=sys.stderr)
        return 2
    try:
        analyze_sweep(args.sweep_dir, all_runs=args.all_runs, grid=args.grid)
    except (NoResults, UnknownGrid) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run_subcommand(name: str, argv: list[str]) -> int:
    """Dispatch to the subcommand's own main(argv) -> exit status, imported only when used."""
    if name == "fit-loss":
        from analysis.loss.cli import fit_loss_main

        return fit_loss_main(argv)
    if name == "isoflop":
        from analysis.loss.cli import isoflop_main

        return isoflop_main(argv)
    if name == "emergence":
        try:
            from analysis.emergence.cli import emergence_main
        except ModuleNotFoundError as exc:
            if exc.name != "analysis.emergence.cli":
                raise
            print("error: the emergence subcommand is not available in this installation "
                  "(module analysis.emergence.cli is missing)", file=sys.stderr)
            return 2
        return emergence_main(argv)
    raise ValueError(f"unknown subcommand {name!r}; known: {', '.join(SUBCOMMANDS)}")
