"""`python -m analysis <sweep dir>`: fit and report a sweep, offline, from its Parquet tables."""

from __future__ import annotations

import argparse
import sys

from analysis.load import NoResults
from analysis.pipeline import analyze_sweep

__all__ = ["analyze_sweep", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("sweep_dir", help="a sweep directory (results/<name>), local path or URI")
    parser.add_argument("--all-runs", action="store_true",
                        help="use every run in the directory, not only those of the sweep's current grid")
    args = parser.parse_args(argv)
    try:
        analyze_sweep(args.sweep_dir, all_runs=args.all_runs)
    except NoResults as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
