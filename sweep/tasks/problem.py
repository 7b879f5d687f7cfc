"""One evaluation item: a prompt, the answer the model must produce, and how it is scored."""

from __future__ import annotations

from dataclasses import dataclass

# Every answer ends with this; greedy decoding stops on it. Part of the scored target tokens.
TERMINATOR = "\n"


@dataclass(frozen=True)
class Problem:
    prompt: str
    target: str  # the answer, without TERMINATOR

    def document(self) -> str:
        """The problem as it appears in training text."""
        return self.prompt + self.target + TERMINATOR
