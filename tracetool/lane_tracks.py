"""Time geometry of a timeline: nesting depth, the window, loss windows, density
bins for what is too much to draw, the RPCIT-rate track and the latency panel."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from tracetool.events import Trace
from tracetool.stats import scoped

BINS = 1_200  # density and rate bins across the window
LATENCY_BINS = 240


def depth(calls: pl.DataFrame, by: Sequence[str]) -> pl.Series:
    """Nesting depth of each call among the calls of its group (0: outermost): the calls
    open at its start. At a tie, calls that end there close first, then calls start
    longest first (a caller before its callee), then instants close."""
    dur = pl.col("end_ts") - pl.col("start_ts")
    ends = calls.select(
        *by,
        t=pl.col("end_ts"),
        d=pl.lit(-1),
        o=pl.when(dur == 0).then(pl.lit(2)).otherwise(pl.lit(0)),
        long=pl.lit(0, pl.Int64),
        i=pl.lit(None, pl.UInt32),
    )
    starts = calls.with_row_index("i").select(
        *by, t=pl.col("start_ts"), d=pl.lit(1), o=pl.lit(1), long=-dur, i="i"
    )
    walked = (
        pl.concat([ends, starts])
        .sort([*by, "t", "o", "long"])
        .with_columns(open=pl.col("d").cum_sum().over(by))
        .filter(pl.col("i").is_not_null())
        .sort("i")
    )
    return (walked["open"] - 1).clip(0).cast(pl.Int32)


def span_window(
    spans: pl.DataFrame, trace: Trace, window: tuple[int | None, int | None]
) -> tuple[int, int]:
    """The window in ns: the one given, its open sides filled from the trace's first and
    last event or span."""
    lo, hi = window
    if lo is None or hi is None:
        ts = trace.events.select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).collect()
        both = pl.DataFrame(
            {
                "lo": [ts["lo"][0], spans["start_ts"].min()],
                "hi": [ts["hi"][0], spans["end_ts"].max()],
            },
            schema={"lo": pl.Int64, "hi": pl.Int64},
        )
        first, last = both["lo"].min(), both["hi"].max()
        lo = lo if lo is not None else (int(first) if first is not None else 0)  # type: ignore[arg-type]
        hi = hi if hi is not None else (int(last) if last is not None else lo + 1)  # type: ignore[arg-type]
    return int(lo), max(int(hi), int(lo) + 1)


def parse_window(text: str | None) -> tuple[int | None, int | None]:
    """``START:END`` in seconds (either side may be empty) to ns."""
    if not text:
        return None, None
    from tracetool.errors import TraceToolError

    start, sep, end = text.partition(":")
    try:
        lo = round(float(start) * 1e9) if start.strip() else None
        hi = round(float(end) * 1e9) if end.strip() else None
    except ValueError:
        raise TraceToolError(
            f"--window {text!r}: expected START:END in seconds on the trace clock, "
            "such as 531.00005:531.0002 (either side may be left empty)"
        ) from None
    if not sep or (lo is not None and hi is not None and hi <= lo):
        raise TraceToolError(f"--window {text!r}: expected START:END with END after START")
    return lo, hi


def loss_windows(trace: Trace, lo: int, hi: int) -> pl.DataFrame:
    """The trace's loss windows clipped to the window (an open side: since the start or
    until the end), with the marker's ``path:line``."""
    return (
        trace.losses.select(
            start_ts=pl.col("start_ts").fill_null(lo).clip(lo, hi),
            end_ts=pl.col("end_ts").fill_null(hi).clip(lo, hi),
            cpu="cpu",
            lost="lost",
            marker="marker",
            where=pl.format("{}:{}", "file", "line"),
        )
        .filter(pl.col("end_ts") >= pl.col("start_ts"))
        .sort("start_ts")
        .collect()
    )


def aggregate(
    segments: pl.DataFrame, marks: pl.DataFrame, rows: pl.DataFrame, lo: int, hi: int, budget: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[str]]:
    """Keep ``budget`` items drawn one by one; the biggest (row, kind) groups beyond it
    become counts per time bin."""
    items = pl.concat(
        [
            segments.group_by("row", "kind").agg(n=pl.len(), seg=pl.lit(True)),
            marks.group_by("row", "kind").agg(n=pl.len(), seg=pl.lit(False)),
        ]
    ).sort("n", "row", "kind")
    keep_n = items["n"].cum_sum()
    items = items.with_columns(detail=keep_n <= budget)
    binned = items.filter(~pl.col("detail"))
    empty = pl.DataFrame(
        schema={
            "row": pl.Int32,
            "kind": pl.String,
            "start_ts": pl.Int64,
            "end_ts": pl.Int64,
            "count": pl.UInt32,
        }
    )
    if binned.is_empty():
        return segments, marks, empty, []
    width = max(1, (hi - lo) // BINS)
    key = binned.select("row", "kind")
    seg_out = segments.join(key, on=["row", "kind"], how="anti")
    mark_out = marks.join(key, on=["row", "kind"], how="anti")
    b = ((pl.col("ts") - lo) // width).clip(0, BINS)
    dens = (
        pl.concat(
            [
                segments.join(key, on=["row", "kind"]).select("row", "kind", ts="start_ts"),
                marks.join(key, on=["row", "kind"]).select("row", "kind", "ts"),
            ]
        )
        .group_by("row", "kind", b=b)
        .agg(count=pl.len())
        .select(
            "row",
            "kind",
            start_ts=lo + pl.col("b") * width,
            end_ts=lo + (pl.col("b") + 1) * width,
            count="count",
        )
        .sort("row", "kind", "start_ts")
    )
    groups = rows.select("row", "group")
    per = (
        binned.join(groups, on="row", how="left")
        .group_by("kind", "seg", "group")
        .agg(n=pl.col("n").sum(), rows=pl.len())
        .sort("n", descending=True)
    )
    notes = [
        f"{n:,} {k} {'spans' if s else 'marks'} on {r} {g or ''} row(s) drawn as counts per "
        f"{width / 1e3:,.1f} µs bin"
        for k, s, g, n, r in per.select("kind", "seg", "group", "n", "rows").iter_rows()
    ]
    return seg_out, mark_out, dens, notes


def flush_rate(spans: pl.DataFrame, lo: int, hi: int) -> pl.DataFrame:
    """RPCITs per second in bins over the span of the flushes, global and ranged apart
    (``stats.scoped`` decides which), every bin present."""
    flushes = scoped(spans.lazy()).collect()
    if not flushes.is_empty():  # bins over the flushes, not over a mostly idle window
        lo, hi = int(flushes["start_ts"].min()), int(flushes["start_ts"].max()) + 1  # type: ignore[arg-type]
    width = max(1, (hi - lo) // (BINS // 3))
    if flushes.is_empty():
        return pl.DataFrame(
            schema={
                "start_ts": pl.Int64,
                "end_ts": pl.Int64,
                "scope": pl.String,
                "count": pl.UInt32,
                "per_s": pl.Float64,
            }
        )
    nb = (hi - lo) // width + 1
    grid = pl.DataFrame({"b": pl.int_range(0, nb, eager=True, dtype=pl.Int64)}).join(
        pl.DataFrame({"scope": ["global", "ranged"]}), how="cross"
    )
    counts = flushes.group_by(
        "scope", b=((pl.col("start_ts") - lo) // width).clip(0, nb - 1).cast(pl.Int64)
    ).agg(count=pl.len())
    return (
        grid.join(counts, on=["b", "scope"], how="left")
        .with_columns(pl.col("count").fill_null(0))
        .select(
            start_ts=lo + pl.col("b") * width,
            end_ts=lo + (pl.col("b") + 1) * width,
            scope="scope",
            count="count",
            per_s=pl.col("count").cast(pl.Float64) / (width / 1e9),
        )
        .sort("scope", "start_ts")
    )


def latency(spans: pl.DataFrame, lo: int, hi: int) -> tuple[pl.DataFrame, str]:
    """Durations per time bin and log2 bucket: RPCITs when the trace has them, else
    every device call."""
    flush = spans.filter((pl.col("kind") == "flush") & pl.col("exact"))
    what = "RPCIT latency (zpci_refresh_trans)"
    pool = (
        flush
        if not flush.is_empty()
        else spans.filter(
            pl.col("exact")
            & (pl.col("end_ts") > pl.col("start_ts"))
            & ~pl.col("kind").is_in(["lock", "crash"])
        )
    )
    if flush.is_empty():
        what = "call durations (every traced call with an exact end)"
    if not pool.is_empty():
        lo, hi = int(pool["start_ts"].min()), int(pool["start_ts"].max()) + 1  # type: ignore[arg-type]
    width = max(1, (hi - lo) // LATENCY_BINS)
    dur = (pl.col("end_ts") - pl.col("start_ts")).clip(1)
    e = dur.log(2).floor().cast(pl.Int64)
    out = (
        pool.group_by(b=((pl.col("start_ts") - lo) // width).clip(0, LATENCY_BINS), e=e)
        .agg(count=pl.len())
        .select(
            start_ts=lo + pl.col("b") * width,
            end_ts=lo + (pl.col("b") + 1) * width,
            lo_ns=pl.lit(2, pl.Int64).pow(pl.col("e")),
            hi_ns=pl.lit(2, pl.Int64).pow(pl.col("e") + 1),
            count="count",
        )
        .sort("start_ts", "lo_ns")
    )
    return out, what
