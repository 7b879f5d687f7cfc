"""How an error reads inside a one-line problem ('key: what is wrong (cause); the fix')."""

from __future__ import annotations


def first_line(cause: BaseException | str) -> str:
    """The first line of an exception's message (its type's name when the message is empty), or of a text
    ('' when it is empty): libraries' multi-line messages would break the CLI's one line per problem."""
    text = str(cause).strip()
    if text:
        return text.splitlines()[0]
    return type(cause).__name__ if isinstance(cause, BaseException) else ""
