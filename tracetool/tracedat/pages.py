"""Ring-buffer pages to event records, decoded in bulk with numpy.

A page is a header (timestamp, commit word) and events packed after it. Each event
starts with a 32-bit header: ``type_len`` (5 bits) and ``time_delta`` (27 bits).
``type_len`` 1..28 is a data event of ``type_len * 4`` bytes; 0 a data event whose
length is in the next word; 29 padding (the rest of the page when its delta is 0);
30 a time extend (delta bits 27 and up in the next word); 31 an absolute timestamp.
The commit word holds the data length and two flags: events were missed before this
page (bit 31) and their count is stored after the data (bit 30).

Walking events is sequential within a page but independent across pages, so all
pages advance together: each step reads one event header per page with one gathered
numpy load, and the number of steps is the largest number of events in a page. No
Python object is made per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tracetool.tracedat.formats import Field

MISSED_EVENTS = 1 << 31
MISSED_STORED = 1 << 30
COMMIT_MASK = (1 << 30) - 1
TYPE_PADDING, TYPE_EXTEND, TYPE_STAMP, TYPE_DATA_MAX = 29, 30, 31, 28

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass
class Records:
    """The data events of one CPU's pages, in ring-buffer order."""

    ts: U64  # raw ring-buffer time (clock units)
    start: I64  # byte offset of the payload in the CPU's data
    length: I64  # payload bytes
    # One row per page that says events were missed before it.
    missed_page: I64  # page index
    missed_count: I64  # -1 when the count was not stored
    # Problems found, as (byte offset in the CPU's data, what was wrong).
    problems: list[tuple[int, str]]
    pages: int
    first_event_of_page: I64  # per page: index of its first data event (or next one)


def _gather_u32(words: npt.NDArray[np.uint32], idx: I64) -> npt.NDArray[np.uint64]:
    safe = np.clip(idx, 0, max(len(words) - 1, 0))
    out = words[safe].astype(np.uint64) if len(words) else np.zeros(len(idx), np.uint64)
    out[(idx < 0) | (idx >= len(words))] = 0
    return out


def _read_uint(buf: npt.NDArray[np.uint8], at: I64, size: int, big: bool) -> U64:
    """Unsigned integers of ``size`` bytes at byte offsets ``at``."""
    idx = at[:, None] + np.arange(size)
    raw = buf[np.clip(idx, 0, len(buf) - 1)]
    order = ">" if big else "<"
    dtype = {1: "u1", 2: "u2", 4: "u4", 8: "u8"}[size]
    return np.ascontiguousarray(raw).view(order + dtype).reshape(-1).astype(np.uint64)


def walk(
    data: bytes | memoryview,
    page_size: int,
    header: dict[str, Field],
    big_endian: bool,
    long_size: int,
) -> Records:
    """Every data event of ``data`` (whole pages of one CPU)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    problems: list[tuple[int, str]] = []
    npages = len(buf) // page_size
    if len(buf) % page_size:
        problems.append(
            (npages * page_size, f"{len(buf) % page_size} trailing bytes are not a whole page")
        )
    ts_f, commit_f, data_f = header["timestamp"], header["commit"], header["data"]
    page_at = np.arange(npages, dtype=np.int64) * page_size
    page_ts = _read_uint(buf, page_at + ts_f.offset, ts_f.size, big_endian)
    commit = _read_uint(
        buf, page_at + commit_f.offset, min(commit_f.size, long_size or 8), big_endian
    )
    length = (commit & np.uint64(COMMIT_MASK)).astype(np.int64)
    room = page_size - data_f.offset
    bad = length > room
    for p in np.flatnonzero(bad)[:20]:
        problems.append(
            (
                int(page_at[p]),
                f"page {p}: commit says {length[p]} bytes of events, but a page holds {room}",
            )
        )
    length[bad] = 0
    missed = (commit & np.uint64(MISSED_EVENTS)) != 0
    stored = (commit & np.uint64(MISSED_STORED)) != 0
    missed_page = np.flatnonzero(missed).astype(np.int64)
    count_at = page_at[missed_page] + data_f.offset + length[missed_page]
    count = _read_uint(buf, count_at, long_size, big_endian).astype(np.int64)
    fits = count_at + long_size <= page_at[missed_page] + page_size
    missed_count = np.where(stored[missed_page] & fits, count, -1)

    words = buf[: len(buf) // 4 * 4].view(">u4" if big_endian else "<u4")
    pos = (page_at + data_f.offset) // 4  # word index of each page's next event
    end = (page_at + data_f.offset + length) // 4
    page_ids = np.arange(npages, dtype=np.int64)
    steps_pos, steps_page, steps_type, steps_delta, steps_arr = [], [], [], [], []
    active = pos < end
    pos, end, page_ids = pos[active], end[active], page_ids[active]
    while len(pos):
        w = _gather_u32(words, pos)
        if big_endian:
            tl, td = (w >> np.uint64(27)).astype(np.int64), (w & np.uint64(0x7FFFFFF))
        else:
            tl, td = (w & np.uint64(31)).astype(np.int64), (w >> np.uint64(5))
        arr = _gather_u32(words, pos + 1)
        size = np.where(tl <= TYPE_DATA_MAX, 1 + tl, 2)
        var = (tl == 0) | ((tl == TYPE_PADDING) & (td != 0))
        size = np.where(var, 1 + (arr.astype(np.int64) + 3) // 4, size)
        null_pad = (tl == TYPE_PADDING) & (td == 0)
        nxt = np.where(null_pad, end, pos + size)
        over = (nxt > end) | ((tl == 0) & (arr < 4))
        for i in np.flatnonzero(over)[:20]:
            problems.append(
                (
                    int(pos[i]) * 4,
                    f"an event of type_len {tl[i]} and {int(size[i]) * 4} bytes runs past "
                    "the end of its page's data",
                )
            )
        keep = ~over & ~null_pad
        steps_pos.append(pos[keep])
        steps_page.append(page_ids[keep])
        steps_type.append(tl[keep])
        steps_delta.append(td[keep])
        steps_arr.append(arr[keep])
        go = ~over & (nxt < end)
        pos, end, page_ids = nxt[go], end[go], page_ids[go]
    if steps_pos:
        # Step k holds the k-th event of every page still going, pages in order: an
        # event's place in (page, step) order, which is file order, is its page's first
        # place plus k. No sort needed.
        epage = np.concatenate(steps_page)
        per_page = np.bincount(epage, minlength=npages)
        first_place = np.concatenate([np.zeros(1, np.int64), np.cumsum(per_page)[:-1]])
        step = np.repeat(np.arange(len(steps_pos)), [len(p) for p in steps_pos])
        place = first_place[epage] + step

        def placed(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            out: np.ndarray = np.empty(len(place), dtype)
            out[place] = np.concatenate(parts)
            return out

        epos = placed(steps_pos, np.int64)
        epage = placed(steps_page, np.int64)
        etype = placed(steps_type, np.int64)
        edelta = placed(steps_delta, np.uint64)
        earr = placed(steps_arr, np.uint64)
    else:
        epos = epage = etype = np.zeros(0, np.int64)
        edelta = earr = np.zeros(0, np.uint64)
    ts = _timestamps(epage, etype, edelta, earr, page_ts)
    is_data = etype <= TYPE_DATA_MAX
    start = np.where(etype == 0, epos * 4 + 8, epos * 4 + 4)[is_data]
    plen = np.where(etype == 0, earr.astype(np.int64) - 4, etype * 4)[is_data]
    data_page = epage[is_data]
    first = np.searchsorted(data_page, np.arange(npages), side="left").astype(np.int64)
    return Records(ts[is_data], start, plen, missed_page, missed_count, problems, npages, first)


def _timestamps(page: I64, etype: I64, delta: U64, arr: U64, page_ts: U64) -> U64:
    """Each event's time: its page's timestamp plus the deltas before and including it,
    restarted at every absolute timestamp event."""
    n = len(page)
    if n == 0:
        return np.zeros(0, np.uint64)
    contrib = delta.copy()
    extend = etype == TYPE_EXTEND
    contrib[extend] = (arr[extend] << np.uint64(27)) + delta[extend]
    stamp = etype == TYPE_STAMP
    contrib[stamp] = 0
    cs = np.cumsum(contrib, dtype=np.uint64)
    prev = np.concatenate([np.zeros(1, np.uint64), cs[:-1]])
    page_start = np.ones(n, bool)
    page_start[1:] = page[1:] != page[:-1]
    anchor = page_start | stamp
    # value of the anchor minus the prefix sum before it (wrapping arithmetic)
    base = np.zeros(n, np.uint64)
    base[page_start] = page_ts[page[page_start]] - prev[page_start]
    absolute = (arr[stamp] << np.uint64(27)) | delta[stamp]
    # An absolute stamp of 59 bits keeps the page time's top bits.
    top = page_ts[page[stamp]] & ~np.uint64((1 << 59) - 1)
    absolute = np.where(absolute < np.uint64(1 << 59), absolute | top, absolute)
    base[stamp] = absolute - cs[stamp]
    idx = np.where(anchor, np.arange(n), 0)
    idx = np.maximum.accumulate(idx)
    with np.errstate(over="ignore"):
        return base[idx] + cs
