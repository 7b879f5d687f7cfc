"""Rows a fit cannot use, said the way a user can find them: which column, what is wrong, which rows.

The fits drop rows whose values are missing, NaN, infinite or (for counts and losses) not positive;
`invalid_rows` names them per column so a table that is mostly or wholly unusable fails with a message
pointing at the column and the rows, and a partly unusable one says what was dropped.
"""

from __future__ import annotations

import numpy as np

MAX_LISTED = 5


def _rows(mask: np.ndarray) -> str:
    """'data rows 1, 2, 3, 4, 5, ... (12 in all)'; data row 1 is the first row after the header."""
    where = (np.flatnonzero(mask) + 1).tolist()
    listed = ", ".join(map(str, where[:MAX_LISTED])) + (", ..." if len(where) > MAX_LISTED else "")
    return f"data row{'s' * (len(where) != 1)} {listed}" + (f" ({len(where)} in all)" if len(where) > MAX_LISTED
                                                             else "")


def invalid_rows(columns: dict[str, np.ndarray], positive: tuple[str, ...] = ()) -> tuple[np.ndarray, list[str]]:
    """(mask of usable rows, one description per column with unusable rows).

    `columns` maps a label (e.g. "column 'params' (--n)") to its values as floats; labels in
    `positive` must also be > 0. Each description: "column 'params' (--n) is <= 0 in data rows 1, 2"
    (data row 1 = the first row after the header). A row bad in several columns is described under each.
    """
    usable = np.ones(len(next(iter(columns.values()))) if columns else 0, dtype=bool)
    notes = []
    for label, values in columns.items():
        values = np.asarray(values, dtype=float)
        missing = ~np.isfinite(values)
        nonpositive = np.isfinite(values) & (values <= 0) if label in positive else np.zeros_like(missing)
        usable &= ~missing & ~nonpositive
        parts = []
        if missing.any():
            parts.append(f"missing, NaN or infinite in {_rows(missing)}")
        if nonpositive.any():
            parts.append(f"<= 0 in {_rows(nonpositive)}")
        if parts:
            notes.append(f"{label} is " + " and ".join(parts))
    return usable, notes


def summary(notes: list[str]) -> str:
    return "; ".join(notes)
