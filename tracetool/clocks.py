"""Putting several inputs on one clock, and saying how.

Each input keeps the clock it was printed with. When a run has several, one is the
reference (the first kernel log with time since boot, else the first input) and every
other input gets an offset, from the first of:

1. ``given``: the user's ``--offset SOURCE=SECONDS``;
2. ``anchored``: events visible in both. A ``console`` tracepoint in a trace whose text
   the log printed too, or an event of the trace that an ftrace dump inside the log
   shows again (same event, task and payload). The offset is the median difference,
   good to their spread plus the coarser resolution (1 µs);
3. ``boot``: both print time since boot (trace_clock ``local``/``global`` and printk
   both count from boot), so the offset is taken as zero, unverified;
4. ``none``: no common clock; times stay as printed.

The result is recorded per input in ``InputInfo.meta["clock"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import polars as pl

from tracetool.errors import InputError
from tracetool.events import InputInfo, Trace

RESOLUTION_NS = 1000
_BOOT_CLOCKS = ("us", "ns")
_UNSCALED = ("counter", "relative-counter", "none")


def _reference(inputs: list[InputInfo]) -> InputInfo:
    logs = [i for i in inputs if i.format == "dmesg" and i.meta.get("timestamps") == "us"]
    return logs[0] if logs else inputs[0]


def _match(name: str, inputs: list[InputInfo]) -> InputInfo:
    hits = [i for i in inputs if i.file == name or Path(i.file).name == name]
    if len(hits) != 1:
        known = ", ".join(Path(i.file).name for i in inputs)
        what = "matches no input" if not hits else "matches several inputs"
        raise InputError(f"--offset {name}: {what} (inputs: {known}); give the file's path")
    return hits[0]


def _anchors(events: pl.LazyFrame, ref: str, other: str) -> tuple[int, int, int] | None:
    """(offset, spread, count) from events the two inputs both show, or None."""
    mine = events.filter(pl.col("file") == other)
    theirs = events.filter(pl.col("file") == ref)
    console = mine.filter(pl.col("event") == "console").select(
        text=pl.col("body").str.strip_chars(), ts_other="ts"
    )
    printed = theirs.filter(pl.col("event") == "printk").select(
        text=pl.col("body").str.strip_chars(), ts_ref="ts"
    )
    key = ["event", "pid", "body"]
    dumped = theirs.filter(pl.col("source") == "ftrace-dump").select(*key, ts_ref="ts")
    traced = mine.filter(pl.col("source") != "ftrace-dump").select(*key, ts_other="ts")
    pairs = pl.concat(
        [
            console.join(printed.unique("text", keep="first"), on="text").select(
                "ts_ref", "ts_other"
            ),
            dumped.join(traced.unique(key, keep="last"), on=key).select("ts_ref", "ts_other"),
        ]
    ).filter(pl.col("ts_ref").is_not_null() & pl.col("ts_other").is_not_null())
    diff = pl.col("ts_ref") - pl.col("ts_other")
    stats = pairs.select(
        n=pl.len(),
        median=diff.median().cast(pl.Int64),
        spread=(diff.max() - diff.min()).cast(pl.Int64),
    ).collect()
    n, median, spread = stats.row(0)
    if not n:
        return None
    return int(median), int(spread), int(n)


def align(trace: Trace, offsets: Mapping[str, float] | None = None) -> Trace:
    """``trace`` with every input on the reference clock (see the module docstring)."""
    inputs = trace.inputs
    given = {_match(name, inputs).file: seconds for name, seconds in (offsets or {}).items()}
    if len(inputs) < 2 and not given:
        return trace
    ref = _reference(inputs)
    shift: dict[str, int] = {}
    infos = []
    for info in inputs:
        meta = dict(info.meta)
        if info.file in given:
            clock = {
                "offset_ns": round(given[info.file] * 1e9),
                "uncertainty_ns": None,
                "how": "given",
            }
        elif info is ref:
            clock = {"offset_ns": 0, "uncertainty_ns": 0, "how": "reference"}
        else:
            # An offset cannot map raw counter ticks onto ns: no anchoring for those.
            scaled = meta.get("timestamps") in _UNSCALED
            anchored = None if scaled else _anchors(trace.events, ref.file, info.file)
            if anchored is not None:
                offset, spread, count = anchored
                clock = {
                    "offset_ns": offset,
                    "uncertainty_ns": spread + RESOLUTION_NS,
                    "how": f"anchored on {count} event(s) both inputs show",
                }
            elif (
                meta.get("timestamps") in _BOOT_CLOCKS
                and ref.meta.get("timestamps") in _BOOT_CLOCKS
            ):
                clock = {"offset_ns": 0, "uncertainty_ns": None, "how": "boot"}
            else:
                clock = {"offset_ns": 0, "uncertainty_ns": None, "how": "none"}
        clock["reference"] = ref.file
        meta["clock"] = clock
        shift[info.file] = int(clock["offset_ns"] or 0)
        infos.append(replace(info, meta=meta))
    if not any(shift.values()):
        return replace(trace, inputs=infos)
    by_file = pl.col("file").replace_strict(shift, default=0, return_dtype=pl.Int64)
    return Trace(
        trace.events.with_columns(ts=pl.col("ts") + by_file),
        trace.diagnostics,
        trace.losses.with_columns(
            start_ts=pl.col("start_ts") + by_file, end_ts=pl.col("end_ts") + by_file
        ),
        infos,
        {
            name: table.with_columns(ts=pl.col("ts") + by_file)
            if "ts" in table.collect_schema()
            else table
            for name, table in trace.records.items()
        },
    )


def describe(info: InputInfo) -> str | None:
    """One line saying how an input was put on the reference clock, or None."""
    clock = info.meta.get("clock")
    if not clock or clock["how"] == "reference":
        return None
    ref = Path(clock["reference"]).name
    offset = clock["offset_ns"] / 1e9
    if clock["how"] == "given":
        return f"{info.file}: moved onto {ref}'s clock by {offset:+.6f} s (given)"
    if clock["how"] == "boot":
        return (
            f"{info.file}: on {ref}'s clock as printed: both count time since boot "
            "(not verified: no event appears in both; give --offset to correct)"
        )
    if clock["how"] == "none":
        return (
            f"{info.file}: not aligned with {ref}: no common clock and no shared event; "
            "give --offset SOURCE=SECONDS"
        )
    return (
        f"{info.file}: moved onto {ref}'s clock by {offset:+.6f} s "
        f"± {clock['uncertainty_ns'] / 1e6:.3f} ms ({clock['how']})"
    )
