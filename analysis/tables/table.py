"""Tables a user hands the command line: one reader (CSV, TSV or Parquet) and one numeric coercion.

Every analysis reads its input through `read_table` and turns columns into numbers through `numeric`,
so a file or a column is refused with the same words whichever subcommand reads it (InputError,
one line, exit status 2 at the command line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

NULL_WORDS = ("", "na", "nan", "null", "none", "inf", "-inf", "+inf")  # read as missing or infinite, not as text


class InputError(ValueError):
    """The table or its columns cannot be used; the message names the problem."""


def _read_csv(file: Path) -> pl.DataFrame:
    separator = "\t" if file.suffix.lower() == ".tsv" else ","
    frame = pl.read_csv(file, separator=separator, infer_schema_length=None, null_values=["", "NA", "null", "None"])
    if frame.width < 2:
        raise ValueError("not a comma-separated table")
    return frame


def read_table(path: str) -> pl.DataFrame:
    """A CSV (.csv, .tsv, .txt) or Parquet (.parquet, .pq) file as a DataFrame; any other name is tried as
    Parquet, then as CSV. InputError naming the file when it is missing or neither."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no such file: {path}")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        readers = [pl.read_parquet]
    elif suffix in (".csv", ".tsv", ".txt"):
        readers = [_read_csv]
    else:
        readers = [pl.read_parquet, _read_csv]
    errors = []
    for reader in readers:
        try:
            return reader(file)
        except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as exc:
            errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    kinds = "Parquet or CSV" if len(readers) > 1 else ("Parquet" if readers[0] is pl.read_parquet else "CSV")
    hint = "; name it .csv, .tsv or .parquet" if len(readers) > 1 else ""
    raise InputError(f"cannot read {path} as {kinds}: {errors[-1]}{hint}")


def numeric(column: pl.Series, label: str) -> pl.Series:
    """The column as Float64 (nulls stay null; "nan", "inf" read as such), or InputError naming `label`
    (e.g. "column 'value'", "column 'params' (given as --n)") and a value that is not a number."""
    if column.dtype.is_numeric() or column.dtype == pl.Null:
        return column.cast(pl.Float64)
    if column.dtype not in (pl.String, pl.Categorical):
        raise InputError(f"{label} must be numeric; it has type {column.dtype}")
    text = column.cast(pl.String).str.strip_chars()
    converted = text.cast(pl.Float64, strict=False)
    bad = text.filter(converted.is_null() & text.is_not_null() & ~text.str.to_lowercase().is_in(NULL_WORDS))
    if bad.len():
        raise InputError(f"{label} must be numeric; found {bad.len()} non-numeric value(s), e.g. {bad[0]!r}")
    return converted


def numeric_array(frame: pl.DataFrame, name: str, label: str, where: str) -> np.ndarray:
    """Column `name` of `frame` as a float array (missing as NaN); InputError when absent or not numeric."""
    if name not in frame.columns:
        raise InputError(f"{label} is not in {where}; its columns are: " + ", ".join(frame.columns))
    return numeric(frame[name], label).fill_null(float("nan")).to_numpy()
