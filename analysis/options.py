"""Checks of numeric options, shared by every analysis and command: one ValueError naming each bad value."""

from __future__ import annotations

import math
import numbers

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


# Rules for numeric options: (test, what a valid value is).
_OPTION_RULES = {
    "positive": (lambda v: _is_real(v) and math.isfinite(v) and v > 0, "a finite number > 0"),
    "non-negative": (lambda v: _is_real(v) and math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "probability": (lambda v: _is_real(v) and 0 < v < 1, "a number strictly between 0 and 1"),
    "count": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "count-or-zero": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}


def option_errors(**options: tuple[object, str]) -> list[str]:
    """One message per bad option: name=(value, rule), rule one of "positive", "non-negative",
    "probability", "count", "count-or-zero", "seed"; a value of None passes (None means "off" or
    "default" where a signature allows it)."""
    errors = []
    for name, (value, rule) in options.items():
        test, wanted = _OPTION_RULES[rule]
        if value is not None and not test(value):
            errors.append(f"{name} must be {wanted}, got {value!r}")
    return errors


def check_options(**options: tuple[object, str]) -> None:
    """Validate numeric options up front (see option_errors); raises one ValueError naming every bad option."""
    errors = option_errors(**options)
    if errors:
        raise ValueError("; ".join(errors))
