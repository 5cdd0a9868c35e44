"""Opening what the user gives: files, directories, stdin, .gz and .zst; sniffing formats."""

from __future__ import annotations

import gzip
import io
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tracetool.catalogue import FormatSpec, formats, get_format
from tracetool.errors import InputError

SNIFF_LINES = 64
CHUNK_BYTES = 4 << 20  # bounds memory: about 90 MB of working set per MB of chunk
_SKIP_SUFFIXES = {".parquet", ".json", ".csv", ".html", ".png", ".md"}


@dataclass(frozen=True)
class Source:
    """One input: a path (or ``-`` for stdin) and how to open it."""

    name: str
    path: Path | None

    @property
    def compression(self) -> str | None:
        suffix = self.path.suffix if self.path else ""
        return {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}.get(suffix)

    def open(self) -> IO[bytes]:
        if self.path is None:
            return sys.stdin.buffer
        try:
            if self.compression == "gzip":
                return gzip.open(self.path, "rb")  # type: ignore[return-value]
            raw: IO[bytes] = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.name}: cannot open: {exc.strerror}") from None
        if self.compression == "zstd":
            try:
                import zstandard
            except ImportError:
                raise InputError(
                    f"{self.name}: is zstd-compressed and the optional 'zstandard' package is "
                    "not installed; run: pip install 'tracetool[zstd]' (or decompress with "
                    "`zstd -d` first)"
                ) from None
            reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
            return reader
        return raw


def expand(inputs: list[str | Path]) -> list[Source]:
    """Files as given, directories recursively (sorted), ``-`` as stdin."""
    sources: list[Source] = []
    for item in inputs:
        if str(item) == "-":
            sources.append(Source("<stdin>", None))
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.suffix not in _SKIP_SUFFIXES
            )
            if not found:
                raise InputError(f"{path}: directory holds no input files")
            sources.extend(Source(str(p), p) for p in found)
        elif path.exists():
            sources.append(Source(str(path), path))
        else:
            raise InputError(f"{path}: no such file or directory")
    return sources


def read_chunks(
    stream: IO[bytes], safe_line_for: Callable[[bytes], re.Pattern[bytes]]
) -> Iterator[bytes]:
    """Yield the stream in chunks of whole lines, each cut just before a line that
    starts a new record, so no multi-line record spans two chunks. What starts a record
    depends on the format, which ``safe_line_for`` tells from the input's first bytes."""
    carry = b""
    data = stream.read(CHUNK_BYTES)
    safe_line = safe_line_for(data)
    while data:
        following = stream.read(CHUNK_BYTES)
        buf = carry + data
        if not following:
            # The end of the input: nothing can continue past it, so no cut.
            yield buf
            return
        cut = _safe_cut(buf, safe_line)
        if cut > 0:
            yield buf[:cut]
            carry = buf[cut:]
        else:
            carry = buf
        data = following
    if carry:
        yield carry


def _safe_cut(buf: bytes, safe_line: re.Pattern[bytes]) -> int:
    end = buf.rfind(b"\n")
    if end < 0:
        return 0
    pos = end
    limit = max(0, end - (1 << 20))
    while pos > limit:
        start = buf.rfind(b"\n", 0, pos)
        if start < 0:
            break
        if safe_line.match(buf, start + 1, pos):
            return start + 1
        pos = start
    return end + 1


def head_lines(first_chunk: bytes) -> list[str]:
    text = first_chunk[: 1 << 16].decode("utf-8", "replace")
    return text.splitlines()[:SNIFF_LINES]


def sniff(name: str, head: list[str]) -> FormatSpec:
    """The format whose sniff patterns match ``head`` best, or an error listing them."""
    known = formats()
    scores = {fname: spec.sniff_score(head) for fname, spec in known.items()}
    best = max(scores, key=lambda k: scores[k], default=None)
    if best is None or scores[best] == 0:
        listing = ", ".join(sorted(known))
        first = next((line for line in head if line.strip()), "")
        raise InputError(
            f"{name}:1: cannot tell the format from the first {len(head)} lines "
            f"(first line: {first[:60]!r}); known formats: {listing}; "
            "give one with --format"
        )
    return known[best]


TRACE_DAT_MAGIC = b"\x17\x08\x44tracing"


def choose_format(name: str, first_chunk: bytes, format: str | FormatSpec | None) -> FormatSpec:
    """The given format (a name, or a spec built by the caller), or the sniffed one;
    clear errors for empty and binary inputs."""
    if isinstance(format, FormatSpec):
        return format
    if format:
        return get_format(format)
    if not first_chunk.strip():
        raise InputError(f"{name}: is empty; there is nothing to parse")
    if first_chunk.startswith(TRACE_DAT_MAGIC):
        raise InputError(
            f"{name}: is a trace-cmd trace.dat (binary) file, which is read from a file "
            "path, not from a stream; save it to a file and give its path"
        )
    if b"\0" in first_chunk[:4096]:
        raise InputError(f"{name}: looks binary (NUL bytes), not a text trace or log")
    return sniff(name, head_lines(first_chunk))


def text_source(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())
