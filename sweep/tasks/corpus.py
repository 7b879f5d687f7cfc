"""User corpora as memory-mapped token streams: never read whole into memory, random access by row.

Accepted: a plain text file or a folder of them, nanoGPT-style token files (`.bin`, uint16 or
uint32), and Parquet files with a text column. With the byte tokenizer a text file *is* its token
stream and is mapped directly; otherwise (Parquet, or text with a tokenizer file) the corpus is
tokenized once, streaming in chunks, into a cache `.bin` that is then mapped. The last
`heldout_fraction` of every file is held out for validation and never trained on.

Rows are drawn at offsets chosen by the caller's generator, so a batch is a pure function of
(seed, batch index, split): deterministic, and resumable at any step.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.messages import first_line
from sweep.tasks.tokenizer import BYTE, Tokenizer

CORPUS_FORMATS = ("auto", "text", "bin", "parquet")
BIN_DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
_TEXT_CHUNK_BYTES = 4 << 20
_FINGERPRINT_BYTES = 1 << 20


def corpus_files(path: str) -> list[Path]:
    """The files of a corpus: the file itself, or every non-hidden file under a folder, sorted."""
    root = Path(path).expanduser()
    if root.is_file():
        return [root]
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts))
        if files:
            return files
        raise ValueError(f"data.corpus.path: folder {path!r} holds no files")
    raise ValueError(f"data.corpus.path: {path!r} does not exist")


def check_corpus(path: str, declared: str = "auto", bin_dtype: str = "uint16", text_column: str = "text",
                 row_tokens: int | None = None, heldout_fraction: float = 0.1,
                 byte_tokens: bool = True, vocab_size: int | None = None) -> list[str]:
    """What would stop a run from drawing rows of this corpus, found before launch; [] when usable.

    Every message starts with the key to change. Cheap: reads sizes, Parquet schemas and the first
    64 KiB of each file, never a whole file. A missing path or a folder without files; an empty file;
    a `.bin` whose byte length is not a whole number of `bin_dtype` tokens, or whose first tokens lie
    outside the tokenizer's vocabulary (`vocab_size`); a text file with NUL bytes (token ids read as
    text); a Parquet file without `text_column` or rows; and, where the token count follows from the
    size (`.bin`, or text read as bytes: `byte_tokens`), a train or held-out part shorter than one row
    of `row_tokens` tokens.
    """
    try:
        files = corpus_files(path)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    token_counts: list[int] = []  # files whose token count the size tells
    for f in files:
        fmt = file_format(f, declared)
        size = f.stat().st_size
        if fmt not in ("text", "bin", "parquet"):
            return [f"data.corpus.format: {declared!r} is not one of {', '.join(CORPUS_FORMATS)}"]
        if size == 0:
            problems.append(f"data.corpus.path: {f} is empty; remove it or point at a file with text or tokens")
            continue
        if fmt == "bin":
            found, tokens = _bin_problems(f, size, bin_dtype, vocab_size)
        elif fmt == "parquet":
            found, tokens = _parquet_problems(f, text_column), None
        else:
            found, tokens = _text_problems(f, size, byte_tokens)
        problems += found
        if tokens is not None:
            token_counts.append(tokens)
    if not problems and row_tokens and len(token_counts) == len(files):
        problems += _split_problems(token_counts, row_tokens, heldout_fraction)
    return problems


def _bin_problems(f: Path, size: int, bin_dtype: str, vocab_size: int | None) -> tuple[list[str], int | None]:
    """A token file's problems, and its token count when its size is a whole number of tokens."""
    width = np.dtype(BIN_DTYPES.get(bin_dtype, np.uint16)).itemsize
    if size % width:
        return [f"data.corpus.dtype: {f} has {size} bytes, not a whole number of {bin_dtype} "
                f"tokens ({width} bytes each); is it a {bin_dtype} token file "
                "(data.corpus.dtype=uint16|uint32)?"], None
    if vocab_size is not None:
        head = np.fromfile(f, dtype=BIN_DTYPES[bin_dtype], count=min(size // width, 1 << 15))
        if head.size and int(head.max()) >= vocab_size:
            return [f"data.tokenizer: {f} holds token id {int(head.max())} in its first "
                    f"{head.size} tokens, outside the tokenizer's vocabulary of {vocab_size}; give "
                    "the data.tokenizer that made these tokens (and the right data.corpus.dtype)"], size // width
    return [], size // width


def _parquet_problems(f: Path, text_column: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(f)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        return [f"data.corpus.path: {f} is not a readable Parquet file ({first_line(exc)})"]
    if text_column not in meta.schema_arrow.names:
        return [f"data.corpus.text_column: {text_column!r} is not a column of {f} "
                f"(columns: {', '.join(meta.schema_arrow.names)})"]
    if meta.metadata.num_rows == 0:
        return [f"data.corpus.path: {f} has no rows"]
    return []


def _text_problems(f: Path, size: int, byte_tokens: bool) -> tuple[list[str], int | None]:
    """A text file's problems, and its token count when text is read as bytes (one token a byte)."""
    with open(f, "rb") as handle:
        head = handle.read(1 << 16)
    if b"\0" in head:
        return [f"data.corpus.format: {f} is read as text but holds NUL bytes (binary data); name "
                "token files .bin or set data.corpus.format=bin"], None
    return [], size if byte_tokens else None


def _split_problems(token_counts: list[int], row_tokens: int, heldout_fraction: float) -> list[str]:
    """A train or held-out part, over all files, shorter than one row of `row_tokens` tokens."""
    problems = []
    for split in ("train", "held-out"):
        usable = 0
        for n in token_counts:
            cut = int(n * (1.0 - heldout_fraction))
            usable += max(0, (cut if split == "train" else n - cut) - row_tokens)
        if usable <= 0:
            problems.append(f"data.corpus.path: the corpus' {split} part (data.heldout_fraction="
                            f"{heldout_fraction:g} of each file is held out) is shorter than one row of "
                            f"{row_tokens} tokens (model.seq_len + 1); give more text or a shorter model.seq_len")
    return problems


def file_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    return {".bin": "bin", ".parquet": "parquet"}.get(suffix, "text")


def fingerprint(files: list[Path]) -> str:
    """Identity of the corpus contents (name, size, first and last MiB of each file), not its path."""
    digest = hashlib.blake2b(digest_size=12)
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                handle.seek(max(0, size - _FINGERPRINT_BYTES))
                digest.update(handle.read())
    return digest.hexdigest()


def _write_atomically(target: Path, chunks) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as out:
        for chunk in chunks:
            out.write(np.ascontiguousarray(chunk).tobytes())
    os.replace(tmp, target)


def _text_chunks(path: Path, tokenizer: Tokenizer, dtype):
    """Token chunks of a text file, read a few MiB at a time and cut at line ends."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        while True:
            text = handle.read(_TEXT_CHUNK_BYTES)
            if not text:
                return
            rest = handle.readline()  # finish the line so no token is split across chunks
            yield tokenizer.encode(text + rest).astype(dtype)


def _parquet_chunks(path: Path, column: str, tokenizer: Tokenizer, dtype):
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if column not in parquet.schema_arrow.names:
        raise ValueError(f"data.corpus.text_column: {column!r} is not a column of {path} "
                         f"(columns: {parquet.schema_arrow.names})")
    for batch in parquet.iter_batches(columns=[column], batch_size=1024):
        texts = [t + "\n" for t in batch.column(0).to_pylist() if t]
        if texts:
            yield tokenizer.encode_documents(texts).astype(dtype)


def _token_dtype(tokenizer: Tokenizer):
    return np.uint8 if tokenizer.vocab_size <= 256 else np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32


def map_file(path: Path, fmt: str, tokenizer: Tokenizer, bin_dtype: str, text_column: str,
             cache_dir: Path) -> np.ndarray:
    """A read-only memory map of one file's tokens (tokenizing into the cache first when needed)."""
    if fmt == "bin":
        return np.memmap(path, dtype=BIN_DTYPES[bin_dtype], mode="r")
    if fmt == "text" and tokenizer.name == BYTE:
        return np.memmap(path, dtype=np.uint8, mode="r")
    if fmt not in ("text", "parquet"):
        raise ValueError(f"data.corpus.format: {fmt!r} is not one of {', '.join(CORPUS_FORMATS)}")
    dtype = _token_dtype(tokenizer)
    key = hashlib.blake2b(f"{fingerprint([path])}|{tokenizer.fingerprint()}|{text_column}".encode(),
                          digest_size=10).hexdigest()
    cached = cache_dir / f"{path.stem}-{key}.{np.dtype(dtype).name}.bin"
    if not cached.exists():
        chunks = (_text_chunks(path, tokenizer, dtype) if fmt == "text"
                  else _parquet_chunks(path, text_column, tokenizer, dtype))
        _write_atomically(cached, chunks)
    return np.memmap(cached, dtype=dtype, mode="r")


@dataclass
class TokenCorpus:
    """Token streams of one or more files; train rows come from the first part of each file."""

    streams: list[np.ndarray]
    heldout_fraction: float
    vocab_size: int

    def rows(self, rng: np.random.Generator, n_rows: int, length: int, split: str) -> np.ndarray:
        """n_rows windows of `length` tokens, int64, from the train or held-out part of the files."""
        spans = []
        for stream in self.streams:
            cut = int(len(stream) * (1.0 - self.heldout_fraction))
            low, high = (0, cut) if split == "train" else (cut, len(stream))
            spans.append((stream, low, high - length))
        usable = np.array([max(0, high - low) for _, low, high in spans], dtype=float)
        if usable.sum() <= 0:
            raise ValueError(f"the corpus' {split} part is shorter than one row of {length} tokens")
        which = rng.choice(len(spans), size=n_rows, p=usable / usable.sum())
        out = np.empty((n_rows, length), dtype=np.int64)
        for i, w in enumerate(which.tolist()):
            stream, low, high = spans[w]
            start = int(rng.integers(low, high + 1))
            out[i] = stream[start : start + length]
        if n_rows and out.max() >= self.vocab_size:
            raise ValueError(f"corpus token id {int(out.max())} is outside the tokenizer's vocabulary "
                             f"({self.vocab_size}); check data.corpus.dtype and data.tokenizer")
        return out


def open_corpus(path: str, fmt: str, tokenizer: Tokenizer, *, bin_dtype: str = "uint16",
                text_column: str = "text", heldout_fraction: float = 0.1, cache_dir: str = "") -> TokenCorpus:
    files = corpus_files(path)
    cache = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "scaling-sweep" / "corpus"
    streams = [map_file(f, file_format(f, fmt), tokenizer, bin_dtype, text_column, cache) for f in files]
    return TokenCorpus(streams=streams, heldout_fraction=heldout_fraction, vocab_size=tokenizer.vocab_size)
