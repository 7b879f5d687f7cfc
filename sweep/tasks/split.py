"""Train/held-out split by a hash of the prompt: a problem is held out everywhere or nowhere.

Held-out problems are never used for training; evaluation and validation draw only from them.
The split needs no stored list, so it holds for problem spaces of any size and across processes.
"""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def heldout_score(prompt: str) -> float:
    """A uniform number in [0, 1) fixed by the prompt text."""
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / _SCALE


def is_heldout(key: str, fraction: float) -> bool:
    """Whether the problem with this split key (Problem.key) is held out."""
    return heldout_score(key) < fraction
