"""Checkpoints as bytes: the trainer packs and unpacks them, the store decides where they live.

A checkpoint comes from a results directory that other people (or a dying process) may have
written, so it is untrusted input. `unpack` loads it with `torch.load(weights_only=True)`: tensors,
containers and primitives only, never arbitrary pickled objects, so a planted checkpoint cannot run
code. Anything that does not load, or does not have a checkpoint's structure, raises
`CheckpointRejected` with the reason; the trainer then restarts the run from scratch. The store only
reads and writes the bytes (sweep.store.runs); they are unpacked here, on the trainer's side.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

KEYS = ("model", "optimizer", "curves", "step")


class CheckpointRejected(ValueError):
    """A checkpoint that cannot be trusted or used (unsafe, truncated, malformed, another shape)."""


Candidate = Callable[[], "bytes | None"]  # reads one place a run may start from: its bytes, or None (nothing there)


class CheckpointIO(Protocol):
    # Where the run may start from, best first, each read only when asked: its own rolling checkpoint, and
    # for a WSD branch then its trunk's checkpoint at the branch step (first_usable picks one).
    def candidates(self) -> Sequence[Candidate]: ...

    def save(self, payload: bytes, step: int) -> None: ...  # the state after `step` optimizer steps

    # A WSD trunk's durable checkpoint at a branch step (only called for a spec with branch_points).
    def save_branch_point(self, payload: bytes, step: int) -> None: ...


class NoCheckpoints:
    def candidates(self) -> Sequence[Candidate]:
        return ()

    def save(self, payload: bytes, step: int) -> None:
        pass

    def save_branch_point(self, payload: bytes, step: int) -> None:
        pass


def pack(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def unpack(payload: bytes) -> dict[str, Any]:
    """The checkpoint's state dict; raises CheckpointRejected for anything but a well-formed one."""
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (unsafe globals), RuntimeError/EOFError (truncated), ...
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointRejected(f"not a safe, complete checkpoint ({type(exc).__name__}: {first_line})") from exc
    if not isinstance(state, dict) or any(key not in state for key in KEYS):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointRejected(f"expected the keys {list(KEYS)}, found {found}")
    if not isinstance(state["step"], int) or state["step"] < 0 or not isinstance(state["curves"], list):
        raise CheckpointRejected(f"malformed step {state['step']!r} or curves")
    return state


def first_usable(candidates: Sequence[Candidate]) -> dict[str, Any] | None:
    """The state of the first candidate that unpacks (None: no candidate holds bytes). One that does not unpack
    is passed over when another follows (a WSD branch's own checkpoint cut short or planted: its cooldown starts
    again from its trunk's); the last one's CheckpointRejected is raised."""
    for i, read in enumerate(candidates):
        payload = read()
        if payload is None:
            continue
        try:
            return unpack(payload)
        except CheckpointRejected:
            if i == len(candidates) - 1:
                raise
    return None
