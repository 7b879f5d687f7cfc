"""Tokenizers: bytes by default (offline, vocabulary 256), or a tokenizer file the user has on disk.

`load_tokenizer("byte")` or `load_tokenizer("/path/to/tokenizer.json")` (a Hugging Face `tokenizers`
file, loaded offline; needs `pip install tokenizers`). Every tokenizer must encode the answer
terminator as exactly one token, since decoding stops on it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from sweep.tasks.problem import TERMINATOR

BYTE = "byte"
VOCAB_SIZE = 256  # of the byte tokenizer


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    terminator_id: int

    def encode(self, text: str) -> np.ndarray: ...

    def encode_documents(self, texts: list[str]) -> np.ndarray: ...

    def decode(self, ids) -> str: ...

    def fingerprint(self) -> str: ...


class ByteTokenizer:
    name = BYTE
    vocab_size = VOCAB_SIZE
    terminator_id = TERMINATOR.encode()[0]

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """Concatenated tokens of several documents (one encode call: fast)."""
        return self.encode("".join(texts))

    def decode(self, ids) -> str:
        return bytes(int(t) for t in ids).decode("utf-8", errors="replace")

    def fingerprint(self) -> str:
        return BYTE


class FileTokenizer:
    """A Hugging Face `tokenizers` JSON file (tokenizer.json), used offline."""

    def __init__(self, path: str):
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as exc:
            raise ValueError(f"data.tokenizer={path!r} needs the `tokenizers` package: pip install tokenizers") from exc
        self.name = path
        self._path = Path(path)
        self._tok = HFTokenizer.from_file(str(self._path))
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        ids = self._tok.encode(TERMINATOR, add_special_tokens=False).ids
        if len(ids) != 1:
            raise ValueError(f"tokenizer {path!r} encodes the terminator {TERMINATOR!r} as {len(ids)} tokens; need 1")
        self.terminator_id = ids[0]
        self._dtype = np.uint16 if self.vocab_size <= 2**16 else np.uint32

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=self._dtype)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        encodings = self._tok.encode_batch(texts, add_special_tokens=False)
        return np.concatenate([np.asarray(e.ids, dtype=self._dtype) for e in encodings]) if texts else \
            np.zeros(0, dtype=self._dtype)

    def decode(self, ids) -> str:
        return self._tok.decode([int(t) for t in ids], skip_special_tokens=False)

    def fingerprint(self) -> str:
        return "file:" + hashlib.blake2b(self._path.read_bytes(), digest_size=12).hexdigest()


@lru_cache(maxsize=8)
def load_tokenizer(spec: str) -> Tokenizer:
    """'byte' or the path of a tokenizer.json; raises ValueError saying what is wrong."""
    if spec == BYTE:
        return ByteTokenizer()
    if not Path(spec).is_file():
        raise ValueError(f"data.tokenizer: {spec!r} is neither 'byte' nor an existing tokenizer.json file")
    return FileTokenizer(spec)
