"""Keys that the schema does not have: a typo added with `+` (`+grid.n_token=[1e4]`) or written in a
conf/ file would otherwise be dropped silently when the config becomes dataclasses.

Pure: walks a plain container (OmegaConf.to_container of the composed config) against the
dataclasses of sweep/config.py and names each unknown key with the nearest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass a field holds (directly, optionally, or as list items), else None."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _dataclass_of(arg)
        if found is not None:
            return found
    return None


def _is_free_dict(annotation: Any) -> bool:
    """dict[str, Any] fields (task args, runtime_env) take any keys."""
    return annotation is dict or typing.get_origin(annotation) is dict


def unknown_keys(container: dict[str, Any], schema: type, prefix: str = "") -> list[str]:
    """'key: not a config key; did you mean ...' for every key of `container` absent from `schema`."""
    hints = typing.get_type_hints(schema)
    problems = []
    for key, value in container.items():
        path = f"{prefix}{key}"
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1, cutoff=0.6)
            fix = f"did you mean {prefix}{close[0]}?" if close else f"known keys: {', '.join(sorted(hints))}"
            problems.append(f"{path}: not a config key of {prefix.rstrip('.') or 'the sweep'}; {fix}")
            continue
        annotation = hints[key]
        if _is_free_dict(annotation):
            continue
        inner = _dataclass_of(annotation)
        if inner is None:
            continue
        if isinstance(value, dict):
            problems += unknown_keys(value, inner, f"{path}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    problems += unknown_keys(item, inner, f"{path}[{i}].")
    return problems
