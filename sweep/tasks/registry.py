"""The one registry of task generators: `kind` in the config -> generator class.

A generator is a frozen dataclass of its parameters with `sample(rng, n) -> list[Problem]`,
`check() -> list[str]` (problems with its parameters), `max_target_chars` and `chance()`.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sweep.tasks.arithmetic import Addition, Modular, Multiplication, Subtraction
from sweep.tasks.chain_of_thought import CotAddition
from sweep.tasks.choice import LargestChoice
from sweep.tasks.compositional import Compositional
from sweep.tasks.in_context import ShiftCipher
from sweep.tasks.language import Language
from sweep.tasks.multistep import MultiStep
from sweep.tasks.problem import Problem

GENERATORS: dict[str, type] = {
    "addition": Addition,
    "subtraction": Subtraction,
    "multiplication": Multiplication,
    "modular": Modular,
    "multistep": MultiStep,
    "compositional": Compositional,
    "shift_cipher": ShiftCipher,
    "cot_addition": CotAddition,
    "largest_choice": LargestChoice,
    "language": Language,
}


class Generator(Protocol):
    max_target_chars: int

    def check(self) -> list[str]: ...

    def sample(self, rng: np.random.Generator, n: int) -> list[Problem]: ...

    def chance(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class NamedTask:
    """A generator under the name its results are filed under (e.g. `add_3d`)."""

    name: str
    generator: Generator


def _nearest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def _type_problems(cls: type, args: dict[str, Any]) -> list[str]:
    """Arguments whose value is not of the field's type (int, float, str, bool), e.g. digits: 'x'."""
    hints = typing.get_type_hints(cls)
    problems = []
    for name, value in args.items():
        expected = hints.get(name)
        if expected is bool:
            ok = isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif expected is str:
            ok = isinstance(value, str)
        else:
            continue
        if not ok:
            problems.append(f"{name} must be {'an' if expected is int else 'a'} {expected.__name__}, got {value!r}")
    return problems


def build_generator(kind: str, args: dict[str, Any]) -> Generator:
    """The generator for a config entry; raises ValueError naming the kind or argument at fault."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown task kind {kind!r}; {_nearest(kind, GENERATORS)}"
                         f"known kinds: {', '.join(sorted(GENERATORS))}")
    cls = GENERATORS[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - fields)
    missing = sorted(f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and f.name not in args)
    if unknown or missing:
        hints = "".join(_nearest(name, fields) for name in unknown)
        raise ValueError(f"task kind {kind!r} takes arguments {sorted(fields)}"
                         + (f"; unknown: {unknown}" if unknown else "")
                         + (f"; missing: {missing}" if missing else "")
                         + (f"; {hints.strip()}" if hints else ""))
    wrong = _type_problems(cls, args)
    if wrong:
        raise ValueError(f"task kind {kind!r}: " + "; ".join(wrong))
    generator = cls(**args)
    problems = generator.check()
    if problems:
        raise ValueError(f"task kind {kind!r}: " + "; ".join(problems))
    return generator
