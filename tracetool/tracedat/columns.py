"""Record fields to columns: numpy gathers at each record's payload offset.

Integers come out as int64 (unsigned 64-bit values keep their bits), strings
(``char name[N]``, ``__data_loc char[]``, a trailing ``char buf[]``) as polars String
columns cut at their NUL, other arrays as raw bytes for the few helpers that print
them. Symbols from kallsyms resolve addresses the way libtraceevent does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from tracetool.tracedat.formats import Field

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


def _words(buf: U8, at: I64, size: int, big: bool) -> npt.NDArray[np.unsignedinteger] | None:
    """Unsigned ``size``-byte words at ``at`` by one gather from a word view of ``buf``,
    when every offset is in range and has the same alignment (record payloads start on
    4-byte boundaries, so a field's offsets do); else None."""
    item = min(size, 4)
    if not len(at) or int(at.min()) < 0 or int(at.max()) + size > len(buf):
        return None
    r = int(at[0]) % item
    if item > 1 and bool(((at & (item - 1)) != r).any()):
        return None
    order = ">" if big else "<"
    words = buf[r : r + (len(buf) - r) // item * item].view(f"{order}u{item}")
    i = (at - r) // item
    if size <= 4:
        return words[i]
    a, b = words[i].astype(np.uint64), words[i + 1].astype(np.uint64)
    hi, lo = (a, b) if big else (b, a)
    return (hi << np.uint64(32)) | lo


def read_int(buf: U8, at: I64, size: int, signed: bool, big: bool) -> I64:
    """Integers of ``size`` bytes at byte offsets ``at``, sign-extended when signed."""
    if size not in (1, 2, 4, 8):
        size = min((s for s in (1, 2, 4, 8) if s >= size), default=8)
    words = _words(buf, at, size, big)
    if words is not None:
        if size == 8:
            return words.view(np.int64)
        return (words.view(words.dtype.str.replace("u", "i")) if signed else words).astype(np.int64)
    idx = at[:, None] + np.arange(size)
    if len(at) and (int(at.min()) < 0 or int(at.max()) + size > len(buf)):
        idx = np.clip(idx, 0, max(len(buf) - 1, 0))
    raw = buf[idx]
    kind = ("i" if signed else "u") + str(size)
    vals = raw.view((">" if big else "<") + kind).reshape(-1)
    out: I64 = vals.astype(np.int64) if signed or size < 8 else vals.view(np.int64).copy()
    return out


def _strings(rows: U8) -> pl.Series:
    """A (n, width) byte matrix to strings cut at the first NUL."""
    n, width = rows.shape
    if width == 0:
        return pl.Series([""] * n, dtype=pl.String)
    rows = rows.copy()
    nul = np.cumsum(rows == 0, axis=1) > 0
    rows[nul] = 0
    binary = pl.Series(rows.view(f"S{width}").reshape(-1))
    try:
        return binary.cast(pl.String)
    except pl.exceptions.ComputeError:  # not UTF-8: as the text parser, replace
        return pl.Series([v.decode("utf-8", "replace") for v in binary.to_list()], dtype=pl.String)


def read_string(buf: U8, at: I64, end: I64, f: Field, big: bool) -> pl.Series:
    """A string field of each record; ``end`` is each record's payload end."""
    if f.dynamic:
        loc = read_int(buf, at + f.offset, 4, False, big)
        off = loc & 0xFFFF
        length = (loc >> 16) & 0xFFFF
        start = at + off + (f.offset + 4 if f.dynamic == "rel_loc" else 0)
    elif f.array == 0:
        start = at + f.offset
        length = end - start
    else:
        start = at + f.offset
        length = np.full(len(at), f.size, np.int64)
    length = np.clip(np.minimum(length, end - start), 0, None)
    width = int(length.max()) if len(length) else 0
    if width == 0:
        return pl.Series([""] * len(at), dtype=pl.String)
    idx = start[:, None] + np.arange(width)
    rows = buf[np.clip(idx, 0, len(buf) - 1)]
    rows = np.where(np.arange(width) < length[:, None], rows, 0).astype(np.uint8)
    return _strings(rows)


def read_bytes(buf: U8, at: I64, end: I64, f: Field, big: bool) -> list[bytes]:
    """Raw bytes of an array field per record (for __print_hex/__print_array)."""
    if f.dynamic:
        loc = read_int(buf, at + f.offset, 4, False, big)
        start = at + (loc & 0xFFFF) + (f.offset + 4 if f.dynamic == "rel_loc" else 0)
        length = (loc >> 16) & 0xFFFF
    elif f.array == 0:
        start = at + f.offset
        length = end - start
    else:
        start = at + f.offset
        length = np.full(len(at), f.size, np.int64)
    raw = bytes(buf)
    return [
        raw[s : s + max(0, int(n))] for s, n in zip(start.tolist(), length.tolist(), strict=True)
    ]


class Symbols:
    """Kernel symbols from the kallsyms text stored in the file."""

    def __init__(self, kallsyms: str) -> None:
        entries: list[tuple[int, str]] = []
        for line in kallsyms.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[2].startswith("$"):
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            if addr < 1 << 64:  # a damaged line can hold more hex digits
                entries.append((addr, parts[2]))
        entries.sort(key=lambda e: e[0])
        self.addrs = np.array([a for a, _ in entries], dtype=np.uint64)
        self.names = [n for _, n in entries]

    def lookup(self, values: I64) -> tuple[I64, npt.NDArray[np.uint64]]:
        """Index of the symbol holding each address (-1: none) and the symbol's address.
        An address matches the symbol at or before it when the next symbol starts after
        it; past the last symbol only an exact match counts."""
        vals = values.view(np.uint64)
        if len(self.addrs) == 0:
            return np.full(len(vals), -1, np.int64), np.zeros(len(vals), np.uint64)
        idx = np.searchsorted(self.addrs, vals, side="right").astype(np.int64) - 1
        safe = np.clip(idx, 0, len(self.addrs) - 1)
        nxt = np.clip(idx + 1, 0, len(self.addrs) - 1)
        inside = (idx >= 0) & (
            (self.addrs[safe] == vals) | ((idx + 1 < len(self.addrs)) & (vals < self.addrs[nxt]))
        )
        return np.where(inside, idx, -1), self.addrs[safe]
