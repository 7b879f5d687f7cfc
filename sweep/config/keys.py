"""Keys that the schema does not have: a typo added with `+` (`+grid.n_token=[1e4]`) or written in a
conf/ file would otherwise be dropped silently when the config becomes dataclasses.

Pure: walks a plain container (OmegaConf.to_container of the composed config) against the
dataclasses of sweep/config/schema.py and names each unknown key with the nearest known one.
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


# Names people use for a key that difflib cannot guess from the spelling.
ALIASES = {"learning_rate": "lr", "lr_schedule": "schedule", "scheduler": "schedule", "dtype": "precision",
           "seed": "seeds", "tokens": "n_tokens", "sizes": "models", "warmup": "warmup_fraction",
           "gpus": "gpus_per_run", "cpus": "cpus_per_run"}


# Keys that were renamed: old name -> (new name, why). Refused with the new name wherever the schema has it,
# so a config written before the rename fails before anything launches instead of meaning something else.
RENAMED = {"n_params": ("n_nonembed_params", "a size's target counts non-embedding parameters, while n_params "
                        "in the results tables counts every parameter"),
           "val_batches": ("val_sequences", "every run is validated on the same held-out rows, counted in "
                           "sequences, not in batches of its own size")}


def _problem(key: str, hints: dict[str, Any], prefix: str) -> str:
    where = prefix.rstrip(".") or "the sweep"
    if key in RENAMED and RENAMED[key][0] in hints:
        new, why = RENAMED[key]
        return f"{prefix}{key}: not a config key of {where} (renamed: {why}); did you mean {prefix}{new}?"
    close = [ALIASES[key]] if ALIASES.get(key) in hints else difflib.get_close_matches(key, list(hints), n=1,
                                                                                        cutoff=0.6)
    fix = f"did you mean {prefix}{close[0]}?" if close else f"known keys: {', '.join(sorted(hints))}"
    return f"{prefix}{key}: not a config key of {where}; {fix}"


def unknown_key_problem(full_key: str, schema: type) -> str:
    """The unknown_keys message for one dotted key (`train.learning_rate`), walking the schema to its parent."""
    parts = full_key.split(".")
    node, prefix = schema, ""
    for part in parts[:-1]:
        name = part.split("[", 1)[0]
        inner = _dataclass_of(typing.get_type_hints(node).get(name)) if dataclasses.is_dataclass(node) else None
        if inner is None:
            break
        node, prefix = inner, f"{prefix}{part}."
    hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
    return _problem(full_key[len(prefix):], hints, prefix)


def unknown_keys(container: dict[str, Any], schema: type, prefix: str = "", drop: bool = False) -> list[str]:
    """'key: not a config key; did you mean ...' for every key of `container` absent from `schema`; with `drop`,
    each is also removed from `container`, so the rest can still become the schema's dataclasses."""
    hints = typing.get_type_hints(schema)
    problems = []
    for key, value in list(container.items()):
        path = f"{prefix}{key}"
        if key not in hints:
            problems.append(_problem(str(key), hints, prefix))
            if drop:
                del container[key]
            continue
        annotation = hints[key]
        if _is_free_dict(annotation):
            continue
        inner = _dataclass_of(annotation)
        if inner is None:
            continue
        if isinstance(value, dict):
            problems += unknown_keys(value, inner, f"{path}.", drop)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    problems += unknown_keys(item, inner, f"{path}[{i}].", drop)
    return problems
