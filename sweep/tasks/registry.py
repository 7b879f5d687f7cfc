"""The one registry of task generators: `kind` in the config -> generator class.

A generator is a frozen dataclass of its parameters with `sample(rng, n) -> list[Problem]`,
`check() -> list[str]` (problems with its parameters), `max_target_chars` and `chance()`.
"""

from __future__ import annotations

import dataclasses
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


def build_generator(kind: str, args: dict[str, Any]) -> Generator:
    """The generator for a config entry; raises ValueError naming the kind or argument at fault."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(sorted(GENERATORS))}")
    cls = GENERATORS[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - fields)
    missing = sorted(f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and f.name not in args)
    if unknown or missing:
        raise ValueError(f"task kind {kind!r} takes arguments {sorted(fields)}"
                         + (f"; unknown: {unknown}" if unknown else "")
                         + (f"; missing: {missing}" if missing else ""))
    generator = cls(**args)
    problems = generator.check()
    if problems:
        raise ValueError(f"task kind {kind!r}: " + "; ".join(problems))
    return generator
