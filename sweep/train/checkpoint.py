"""Checkpoints as bytes: the trainer packs and unpacks them, the store decides where they live."""

from __future__ import annotations

import io
from typing import Any, Protocol

import torch


class CheckpointIO(Protocol):
    def load(self) -> bytes | None: ...

    def save(self, payload: bytes) -> None: ...


class NoCheckpoints:
    def load(self) -> bytes | None:
        return None

    def save(self, payload: bytes) -> None:
        pass


def pack(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def unpack(payload: bytes) -> dict[str, Any]:
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
