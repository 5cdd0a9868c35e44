"""Spans and block I/Os of a long trace, built one time window at a time, so memory
follows the window and not the trace (``stats`` on a 10 GB trace).

The trace is cut into windows of about ``WINDOW_EVENTS`` events. A window's timeline is
built from its own events plus a margin on each side (``MARGIN_EVENTS`` events, and at
least ``MIN_MARGIN_NS``), and keeps the spans that start inside it; each window's spans
go to a Parquet part as soon as they are built. What a window cannot see in its margins
is carried from the windows before it (``devices.Prior``: the last mapping of every
pointer and handle to a device, the last attach of every domain), and the eras and the
inputs' last event times are those of the whole trace, so lookups back in time give
what the whole trace gives. What can differ:

* a call (or lock hold) that outlasts the margin after its window is paired with no
  return, and ends, inexact, at its task's next event or at the end of its input; its
  return, in a later window, is an orphan with a bounded start. Such split calls are
  counted (``Built.cut``), and so are the spans that run past their window with no
  return in its margin (``Built.open``: split, or never returned in the trace);
* a pointer or handle first mapped to a device beyond a window's margin gives no device
  to the calls before it, where the whole-trace build would look forward to it.

Block I/Os are exact: issues still in flight are carried to the next window.

A trace of at most ``WINDOW_EVENTS`` events is one window: exactly the whole-trace
timeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl

from tracetool import blockio
from tracetool.devices import CORRELATE_NS, Prior
from tracetool.kernel import EraChoice
from tracetool.timeline import Window, input_eras, last_times, timeline

WINDOW_EVENTS = 250_000
MARGIN_EVENTS = 50_000
MIN_MARGIN_NS = 2 * CORRELATE_NS
UNTIMED = 1000  # at most this many events without a time still allow windows
BINS = 1 << 16  # time bins the event counts are taken in, to place window edges
CALL = ["file", "pid", "cpu", "func"]  # the spans of one task's calls of one function


@dataclass(frozen=True)
class Cut:
    """One window: the spans starting in ``[lo, hi)`` are built from the events in
    ``[read_lo, read_hi)`` (None: unbounded)."""

    lo: int | None
    hi: int | None
    read_lo: int | None
    read_hi: int | None


def _cells(
    events: pl.LazyFrame, first: int, last: int, window_events: int, column: str = "ts"
) -> tuple[np.ndarray, np.ndarray]:
    """Row counts over the times in ``column``: ``(starts, counts)`` of non-empty cells
    in time order. The span is cut into ``BINS`` bins; bins holding more than half a
    window (bursts) are cut again into ``BINS`` parts each, in one more pass."""
    ts = pl.col(column)
    events = events.filter(ts.is_not_null())
    width = (last - first) // BINS + 1
    bins = (
        events.group_by(b=(ts - first) // width)
        .agg(n=pl.len())
        .collect(engine="streaming")
        .sort("b")
    )
    heavy = bins.filter(pl.col("n") > window_events // 2)["b"]
    sub = -(-width // BINS)  # ceil: a bin's parts cover it
    if heavy.is_empty() or width == 1:
        return (first + bins["b"] * width).to_numpy(), bins["n"].to_numpy()
    parts = (
        events.filter(((ts - first) // width).is_in(heavy.implode()))
        .group_by(start=first + (ts - first) // width * width + (ts - first) % width // sub * sub)
        .agg(n=pl.len())
        .collect(engine="streaming")
    )
    light = bins.filter(~pl.col("b").is_in(heavy.implode())).select(
        start=first + pl.col("b") * width, n="n"
    )
    cells = pl.concat([light, parts.cast(light.schema)]).sort("start")
    return cells["start"].to_numpy(), cells["n"].to_numpy()


def plan(
    events: pl.LazyFrame,
    window_events: int = WINDOW_EVENTS,
    margin_events: int = MARGIN_EVENTS,
    min_margin_ns: int = MIN_MARGIN_NS,
) -> list[Cut]:
    """The windows of a trace, placed by its events' times: one unbounded window when
    it has at most ``window_events`` events, or more than ``UNTIMED`` events without a
    time (function_graph without ``funcgraph-abstime``). A few untimed events (markers
    such as function_graph's context-switch lines) are read by every window."""
    ts = pl.col("ts")
    head = events.select(n=pl.len(), nulls=ts.null_count(), lo=ts.min(), hi=ts.max())
    n, nulls, first, last = head.collect(engine="streaming").row(0)
    whole = [Cut(None, None, None, None)]
    if n <= window_events or nulls > UNTIMED or first is None:
        return whole
    starts, counts = _cells(events, first, last, window_events)
    starts = np.append(starts, last + 1)  # the end of the last cell
    before = np.concatenate([[0], np.cumsum(counts)])  # events before cell i
    cells = len(counts)
    edges = _edges(before, window_events)
    if len(edges) == 1:
        return whole
    cuts = []
    for k, e in enumerate(edges):
        lo = None if k == 0 else int(starts[e])
        hi = int(starts[edges[k + 1]]) if k + 1 < len(edges) else None
        read_lo = read_hi = None
        if lo is not None:
            back = int(np.searchsorted(before, before[e] - margin_events, side="right")) - 1
            read_lo = min(int(starts[max(back, 0)]), lo - min_margin_ns)
        if hi is not None:
            j = edges[k + 1]
            ahead = int(np.searchsorted(before, before[j] + margin_events, side="left"))
            read_hi = max(int(starts[min(ahead, cells)]), hi + min_margin_ns)
        cuts.append(Cut(lo, hi, read_lo, read_hi))
    return cuts


def _edges(before: np.ndarray, window_events: int) -> list[int]:
    """The first cell of each window, given the events ``before`` each cell (and their
    total last): a window ends at the first cell edge where it holds ``window_events``
    events, and a small tail joins the last window."""
    cells = len(before) - 1
    edges = [0]
    while True:
        i = int(np.searchsorted(before, before[edges[-1]] + window_events, side="left"))
        if i >= cells or before[-1] - before[i] < window_events // 4:
            return edges
        edges.append(max(i, edges[-1] + 1))


def slices(rows: pl.LazyFrame, column: str, size: int) -> list[tuple[int | None, int | None]]:
    """Ranges ``[lo, hi)`` of the times in ``column`` that hold about ``size`` rows
    each (a burst in one time bin can make one larger), in time order. The first is
    unbounded below and the last above (None), so rows without a time go to the first
    (see ``between``). One range ``(None, None)`` when all rows fit in one."""
    ts = pl.col(column)
    head = rows.select(n=pl.len(), lo=ts.min(), hi=ts.max())
    n, first, last = head.collect(engine="streaming").row(0)
    if n <= size or first is None:
        return [(None, None)]
    starts, counts = _cells(rows, first, last, size, column)
    edges = _edges(np.concatenate([[0], np.cumsum(counts)]), size)
    bounds = [None, *(int(starts[e]) for e in edges[1:]), None]
    return list(pairwise(bounds))


def between(column: str, lo: int | None, hi: int | None, untimed: bool = False) -> pl.Expr:
    """A filter of ``lo <= column < hi`` (None: unbounded); rows without a value pass
    only if ``untimed``. A plain range, so Parquet scans skip the row groups outside."""
    bounds = []
    if lo is not None:
        bounds.append(pl.col(column) >= lo)
    if hi is not None:
        bounds.append(pl.col(column) < hi)
    if not bounds:
        return pl.lit(True)
    keep = pl.all_horizontal(bounds)
    return keep | pl.col(column).is_null() if untimed else keep


@dataclass
class Built:
    """Where the parts went and what could differ from a whole-trace build."""

    windows: int
    spans: int
    cut: int  # calls split between windows: an unpaired entry, then an orphan return
    open: int  # spans that ran past their window with no return in its margin
    ios: int

    def note(self) -> str | None:
        """A line for the user when the windows changed anything."""
        if not self.cut:
            return None
        return (
            f"built in {self.windows} time windows: {self.cut} calls outlasted a window's "
            "margin, and each shows as an entry and a return with bounded ends; "
            f"{self.open} spans ran past their window with no return in its margin"
        )


def build(
    events: pl.LazyFrame,
    out: Path,
    era: EraChoice | None = None,
    cuts: list[Cut] | None = None,
) -> Built:
    """Write the spans of ``events`` to ``out/spans-*.parquet`` and the block I/Os
    (``blockio.block_ios``) to ``out/ios-*.parquet``, window by window;
    ``out/built.json`` keeps the counts."""
    cuts = cuts if cuts is not None else plan(events)
    eras = input_eras(events, era)
    last_ts = last_times(events).collect(engine="streaming")
    prior = Prior.empty()
    flight = blockio.issues(events.clear()).collect()
    built = Built(len(cuts), 0, 0, 0, 0)
    returns: list[pl.DataFrame] = []
    for k, cut in enumerate(cuts):
        chunk = events.filter(between("ts", cut.read_lo, cut.read_hi, untimed=True))
        window = Window(eras, last_ts, prior, cut.hi if cut.hi is not None else 2**63 - 1)
        tl = timeline(chunk, window=window)
        # Spans without a start (from untimed events) are kept by the first window.
        spans = tl.spans.filter(between("start_ts", cut.lo, cut.hi, untimed=k == 0)).collect()
        assert tl.prior is not None
        prior = tl.prior
        if cut.hi is not None:
            built.open += spans.filter(~pl.col("exact") & (pl.col("end_ts") >= cut.hi)).height
        unpaired = ~pl.col("exact") & pl.col("end_line").is_null()
        spans.filter(unpaired).select(*CALL, "start_line", k=pl.lit(k)).write_parquet(
            out / f"entries-{k:05d}.parquet"
        )
        orphan = ~pl.col("exact") & (pl.col("start_line") == pl.col("end_line"))
        returns.append(spans.filter(orphan).select(*CALL, "end_line", k=pl.lit(k)))
        built.spans += spans.height
        spans.write_parquet(out / f"spans-{k:05d}.parquet")
        del spans, tl
        # I/Os are paired exactly: issues still in flight at a window's end are
        # carried into the next one (the next completion of their device and sector
        # can only come later).
        own = events.filter(between("ts", cut.lo, cut.hi))
        issued = pl.concat([flight.lazy(), blockio.issues(own)])
        paired = blockio.pair(issued, blockio.completions(own)).collect()
        flight = paired.filter(pl.col("done_ts").is_null()).select(flight.columns)
        table = blockio.done(paired.lazy()).collect()
        built.ios += table.height
        table.write_parquet(out / f"ios-{k:05d}.parquet")
    # A call whose entry and return fell in windows too far apart is an unpaired entry
    # in one and an orphan return in a later one.
    # Orphan returns are few (most traces have none); the entries are read only then.
    orphans = pl.concat(returns)
    if not orphans.is_empty():
        split = (
            pl.scan_parquet(out / "entries-*.parquet")
            .join(orphans.lazy(), on=CALL, suffix="_r", nulls_equal=True)
            .filter((pl.col("k") < pl.col("k_r")) & (pl.col("start_line") < pl.col("end_line")))
            .select(*CALL, "end_line")
            .unique()
            .collect(engine="streaming")
        )
        built.cut = split.height
    for part in out.glob("entries-*.parquet"):
        part.unlink()
    (out / "built.json").write_text(json.dumps(built.__dict__))
    return built


def load(out: Path) -> tuple[pl.LazyFrame, pl.LazyFrame, Built]:
    """The spans and I/Os ``build`` wrote, as scans."""
    built = Built(**json.loads((out / "built.json").read_text()))
    return (
        pl.scan_parquet(out / "spans-*.parquet"),
        pl.scan_parquet(out / "ios-*.parquet"),
        built,
    )
