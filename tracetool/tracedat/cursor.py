"""Bounds-checked reads of a trace.dat's metadata, in the file's byte order.

Every read that would run past the end of its buffer raises ``TraceDatError`` naming
the byte offset and what was expected there, so a truncated file reports where it
ends instead of an ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from tracetool.tracedat.errors import TraceDatError


class Cursor:
    """A read position in ``data``; ``base`` is the file offset of ``data[0]`` (for a
    decompressed section, the offset of the section, with ``where`` saying so)."""

    def __init__(
        self,
        data: bytes | memoryview,
        file: str,
        *,
        big_endian: bool = False,
        base: int = 0,
        pos: int = 0,
        where: str = "",
    ) -> None:
        self.data = data
        self.file = file
        self.order = ">" if big_endian else "<"
        self.base = base
        self.pos = pos
        self.where = where

    def offset(self) -> int:
        """File offset of the read position (of the section, inside a compressed one)."""
        return self.base + (0 if self.where else self.pos)

    def fail(self, expected: str) -> TraceDatError:
        where = f" ({self.where}, byte {self.pos} of its data)" if self.where else ""
        return TraceDatError(self.file, self.offset(), expected + where)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            have = max(0, len(self.data) - self.pos)
            raise self.fail(f"expected {what} ({n} bytes), but only {have} bytes remain")

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def _int(self, fmt: str, size: int, what: str) -> int:
        self.need(size, what)
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def u8(self, what: str) -> int:
        return self._int("B", 1, what)

    def u16(self, what: str) -> int:
        return self._int("H", 2, what)

    def u32(self, what: str) -> int:
        return self._int("I", 4, what)

    def u64(self, what: str) -> int:
        return self._int("Q", 8, what)

    def cstr(self, what: str, limit: int = 1 << 16) -> str:
        """A NUL-terminated string (at most ``limit`` bytes before the NUL)."""
        end = bytes(self.data[self.pos : self.pos + limit + 1]).find(b"\0")
        if end < 0:
            raise self.fail(f"expected {what} (a NUL-terminated string)")
        text = bytes(self.data[self.pos : self.pos + end]).decode("utf-8", "replace")
        self.pos += end + 1
        return text

    def sized_text(self, size: int, what: str) -> str:
        return self.take(size, what).decode("utf-8", "replace")

    def expect(self, literal: bytes, what: str) -> None:
        got = bytes(self.data[self.pos : self.pos + len(literal)])
        if got != literal:
            raise self.fail(f"expected {what} {literal!r}, found {got!r}")
        self.pos += len(literal)

    def seek(self, pos: int, what: str) -> None:
        if pos < 0 or pos > len(self.data):
            raise self.fail(f"{what} points to byte {pos}, past the end ({len(self.data)} bytes)")
        self.pos = pos
