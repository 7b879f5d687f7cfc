"""Checkpoints as bytes: the trainer packs and unpacks them, the store decides where they live.

A checkpoint comes from a results directory that other people (or a dying process) may have
written, so it is untrusted input. `unpack` loads it with `torch.load(weights_only=True)`: tensors,
containers and primitives only, never arbitrary pickled objects, so a planted checkpoint cannot run
code. Anything that does not load, or does not have a checkpoint's structure, raises
`CheckpointRejected` with the reason; the trainer then restarts the run from scratch.
"""

from __future__ import annotations

import io
from typing import Any, Protocol

import torch

KEYS = ("model", "optimizer", "curves", "step")


class CheckpointRejected(ValueError):
    """A checkpoint that cannot be trusted or used (unsafe, truncated, malformed, another shape)."""


class CheckpointIO(Protocol):
    def load(self) -> bytes | None: ...

    def save(self, payload: bytes, step: int) -> None: ...  # the state after `step` optimizer steps

    # A WSD trunk's durable checkpoint at a branch step (only called for a spec with branch_points).
    def save_branch_point(self, payload: bytes, step: int) -> None: ...


class NoCheckpoints:
    def load(self) -> bytes | None:
        return None

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
