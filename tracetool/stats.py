"""Flush and latency figures: distributions of span durations, RPCIT accounting, block I/O.

Everything is a polars aggregation over the timeline's ``spans`` or the ``events``:

``latency``     per span kind and function (and the ``by`` columns): count, min, mean,
                p50, p90, p99, p99.9 and max of the duration in ns, over spans whose
                start and end were both traced (``inexact`` counts the others, which
                are left out: their end is only a bound)
``histogram``   the same durations in log2 buckets ``[lower, upper)`` ns
``flushes``     per device: RPCITs (``zpci_refresh_trans`` calls), global ones, failed
                ones (a non-zero return) and of those the -ENOMEM ones, the global
                RPCITs those triggered (``fallback``, see ``fallbacks``), their rate over
                the time they span, the unmaps seen, the pages they unmapped, unmaps
                per flush (how much a lazy scheme batched) and flushes per unmapped
                page
``fh_periods``  per device and function-handle period (the handle changes when the
                function is re-enabled, after recovery): RPCITs, global and failed
                ones, and when the period's first and last RPCIT were
``flush_paths`` per device, calling function (the kretprobe's return site) and scope
                (global or ranged, see ``scoped``): count, failures, pages, latency
``io``          per block device: I/Os paired issue -> complete by device and sector,
                IOPS and MB/s over the time they span, and their latency distribution
``buckets``     per printed bpftrace ``hist()``/``lhist()`` map: the count and, since only
                buckets are known, each percentile and the mean as bounds ``[lo, hi]``
                that the exact value is guaranteed to lie within (null where an open
                bucket, such as lhist's ``[max, ...)``, holds the rank)
``rates``       per time window and device: I/Os, IOPS, MB/s, RPCITs, global ones and
                unmaps, and RPCITs per second (a window with nothing in it is a row of
                zeros, not a missing row)

The run's span, which windows cut, is from its first I/O issue or RPCIT to its last
completion or RPCIT; ``--by window`` groups latencies by the window a call started in.

Percentiles are linear interpolations between the two nearest ranks (numpy's default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from tracetool import windowed
from tracetool.blockio import block_ios
from tracetool.distributions import Figure, cdf, exprs, grouped
from tracetool.events import Trace
from tracetool.kernel import EraChoice
from tracetool.timeline import timeline

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99_9": 0.999}
FLUSH_KINDS = ("flush",)
UNMAP_KINDS = ("iommu_unmap", "dma_unmap")


# count, min, mean, p50, p90, p99, p99_9, max
DISTRIBUTION: list[Figure] = [
    ("count", "count"),
    ("min", "min"),
    ("mean", "mean"),
    *QUANTILES.items(),
    ("max", "max"),
]


def distribution(value: pl.Expr) -> list[pl.Expr]:
    """count, min, mean, p50, p90, p99, p99_9, max of ``value``."""
    return exprs(DISTRIBUTION, value)


def _durations(spans: pl.LazyFrame) -> pl.LazyFrame:
    return spans.with_columns(dur=pl.col("end_ts") - pl.col("start_ts"))


def latency(spans: pl.LazyFrame, by: Sequence[str] = ()) -> pl.LazyFrame:
    """Duration distributions per ``kind``, ``func`` and ``by`` (see the module doc)."""
    keys = ["kind", "func", *by]
    timed = _durations(spans).filter(pl.col("start_ts") < pl.col("end_ts"))
    exact = pl.col("exact")
    figures = grouped(timed.filter(exact), keys, pl.col("dur"), DISTRIBUTION)
    inexact = timed.group_by(keys).agg(inexact=(~exact).sum())
    return figures.join(inexact, on=keys, how="left", nulls_equal=True).sort("kind", "func", *by)


def histogram(spans: pl.LazyFrame, by: Sequence[str] = ()) -> pl.LazyFrame:
    """Exact durations per ``kind``, ``func`` and ``by`` in log2 buckets: a duration of
    d ns is in ``[2^k, 2^(k+1))`` with k = floor(log2 d). Instants (no duration) are
    not calls and are left out, as in ``latency``."""
    keys = ["kind", "func", *by]
    # bit_length - 1 is floor(log2) exactly, where a float log2 can round up near 2^k.
    k = pl.col("dur").cast(pl.UInt64).bitwise_leading_zeros().cast(pl.Int64).neg() + 63
    bucketed = (
        _durations(spans)
        .filter(pl.col("exact") & (pl.col("start_ts") < pl.col("end_ts")))
        .with_columns(lower=pl.lit(2, pl.Int64).pow(k), upper=pl.lit(2, pl.Int64).pow(k + 1))
    )
    return bucketed.group_by(*keys, "lower", "upper").agg(count=pl.len()).sort(*keys, "lower")


# Callers that always flush a device's whole DMA aperture: the IOMMU-API flush_iotlb_all
# and, up to v6.6, the lazy scheme's flush when the IOVA bitmap wraps.
GLOBAL_CALLERS = ("s390_iommu_flush_iotlb_all", "dma_alloc_address")
PAGE = 4096


def _hull(flush: pl.LazyFrame) -> pl.DataFrame:
    """Per device: the lowest address (``_lo``) and the end of the highest range
    (``_hi``) its flushes touched, and whether any flush was narrower (``_narrower``).
    Computed here, small, so the flushes themselves stream past it."""
    end = pl.col("iova") + pl.col("size")
    # A flush whose range was not traced (a cut line) says nothing about the span.
    hull = (
        flush.group_by("device")
        .agg(_lo=pl.when(end.is_not_null()).then(pl.col("iova")).min(), _hi=end.max())
        .collect(engine="streaming")
    )
    covers = (pl.col("iova") <= pl.col("_lo")) & (end >= pl.col("_hi"))
    narrower = (
        flush.join(hull.lazy(), on="device")
        .group_by("device")
        .agg(_narrower=(~covers).fill_null(False).any())
        .collect(engine="streaming")
    )
    return hull.join(narrower, on="device", how="left")


def scoped(spans: pl.LazyFrame) -> pl.LazyFrame:
    """Flush spans with ``scope``: ``global`` when its caller always flushes everything,
    or when its range covers every address the device's flushes touched while other
    flushes of the device were narrower; ``ranged`` otherwise. The devices' ranges are
    computed when this is called (two streaming passes over the flushes)."""
    flush = spans.filter(pl.col("kind").is_in(FLUSH_KINDS) & pl.col("device").is_not_null())
    end = pl.col("iova") + pl.col("size")
    covers = (pl.col("iova") <= pl.col("_lo")) & (end >= pl.col("_hi"))
    wide = (covers & pl.col("_narrower")).fill_null(False)
    return (
        flush.join(_hull(flush).lazy(), on="device", how="left", maintain_order="left")
        .with_columns(
            scope=pl.when(pl.col("caller").is_in(GLOBAL_CALLERS) | wide)
            .then(pl.lit("global"))
            .otherwise(pl.lit("ranged"))
        )
        .drop("_lo", "_hi", "_narrower")
    )


def flush_paths(spans: pl.LazyFrame) -> pl.LazyFrame:
    """RPCITs per device, calling function and scope: count, failures, pages flushed
    by the ranged ones, and their latency."""
    failed = pl.col("ret").is_not_null() & (pl.col("ret") != 0)
    keys = ["device", "caller", "scope"]
    flush = scoped(spans)
    counts = flush.group_by(keys).agg(
        flushes=pl.len(),
        failed=failed.sum(),
        pages=pl.when(pl.col("scope") == "ranged").then(pl.col("size") // PAGE).sum(),
    )
    latency = grouped(
        flush.filter(pl.col("exact")),
        keys,
        pl.col("end_ts") - pl.col("start_ts"),
        [("mean", "mean"), ("p99", 0.99)],
    )
    return counts.join(latency, on=keys, how="left", nulls_equal=True).sort(
        "device", "scope", "caller", nulls_last=True
    )


# A table that aggregates the same spans several ways reads them once per aggregation:
# polars would otherwise hold the shared part of the plans (the spans) in memory.
UNSHARED = pl.QueryOptFlags(comm_subplan_elim=False)
SLICE_ROWS = 1_000_000  # rows of a long trace that are sorted or joined at once


def fh_periods(spans: pl.LazyFrame) -> pl.LazyFrame:
    """RPCITs per device and function-handle period (see the module doc): a period runs
    from an RPCIT with a new handle to the last one before the handle changes again, so
    a handle that comes back after another one starts a new period.

    The flushes are ordered one time slice of at most about ``SLICE_ROWS`` at a time:
    each slice's runs of one handle are counted, and runs that continue across a
    slice's edge are joined back into one period."""
    flush = scoped(spans).filter(pl.col("fh").is_not_null())
    failed = pl.col("ret").is_not_null() & (pl.col("ret") != 0)
    runs = []
    for k, (lo, hi) in enumerate(windowed.slices(flush, "start_ts", SLICE_ROWS)):
        part = (
            flush.filter(windowed.between("start_ts", lo, hi, untimed=k == 0))
            .select("device", "fh", "start_ts", "scope", "ret")
            .collect(engine="streaming")
            .sort("device", "start_ts", maintain_order=True)
        )
        runs.append(
            part.group_by(run=pl.struct("device", "fh").rle_id(), maintain_order=True)
            .agg(
                pl.col("device", "fh").first(),
                flushes=pl.len(),
                **{"global": (pl.col("scope") == "global").sum()},
                failed=failed.sum(),
                first_ts=pl.col("start_ts").min(),
                last_ts=pl.col("start_ts").max(),
            )
            .with_columns(slice=pl.lit(k))
        )
    changed = (pl.col("fh") != pl.col("fh").shift(1)).fill_null(True)
    return (
        pl.concat(runs)
        .lazy()
        .sort("device", "slice", "run", maintain_order=True)
        .with_columns(period=changed.cum_sum().over("device"))
        .group_by("device", "period", "fh")
        .agg(
            pl.col("flushes", "global", "failed").sum(),
            pl.col("first_ts").min(),
            pl.col("last_ts").max(),
        )
        .sort("device", "period")
    )


def _op_figures() -> dict[str, pl.Expr]:
    """Maps or unmaps (``n``), the pages they cover (``pages``, a partial page counting
    whole) and how many said their size (``sized``)."""
    size = pl.col("size").cast(pl.Int64)
    return {
        "n": pl.len(),
        "pages": ((size + PAGE - 1) // PAGE).sum(),
        "sized": size.is_not_null().sum(),
    }


# (DMA-API call, IOMMU tracepoint) of one operation
MAP_OPS = ("dma_map", "iommu_map")
UNMAP_OPS = ("dma_unmap", "iommu_unmap")


def op_counts(
    spans: pl.LazyFrame, by: dict[str, pl.Expr], kinds: tuple[str, str] = UNMAP_OPS
) -> pl.LazyFrame:
    """Unmaps per ``by`` (``n``) and the pages they cover (``pages``, null when none
    traced its size): the DMA-API unmap calls, and the ``iommu:unmap`` tracepoints that
    did not fire inside one of them. From v6.7 ``iommu_dma_unmap_page`` fires the
    tracepoint itself, so counting both would count that unmap twice; an unmap through
    the IOMMU API (VFIO) fires only the tracepoint. With ``kinds=MAP_OPS`` the same for
    maps (``iommu_dma_map_page`` fires ``iommu:map``).

    Which call a tracepoint fired in is found one time slice of at most about
    ``SLICE_ROWS`` unmaps at a time, against the calls that overlap the slice."""
    kind = pl.col("kind")
    calls = spans.filter(kind == kinds[0])
    points = spans.filter(kind == kinds[1])
    keys = [e.alias(k) for k, e in by.items()]

    def figures(rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.group_by(keys).agg(**_op_figures()) if keys else rows.select(**_op_figures())

    counted = figures(calls)
    schema = counted.collect_schema()

    def alone() -> pl.DataFrame:
        counts = [pl.DataFrame(schema=schema)]
        if not points.select(pl.len()).collect(engine="streaming").item():
            return counts[0]  # no tracepoints (before v6.7, or not enabled)
        unmaps = spans.filter(kind.is_in(kinds))
        for k, (lo, hi) in enumerate(windowed.slices(unmaps, "start_ts", SLICE_ROWS)):
            near = pl.lit(True)
            if hi is not None:
                near &= pl.col("start_ts") < hi
            if lo is not None:
                near &= pl.col("end_ts") >= lo
            enclosing = (
                calls.filter(near.fill_null(False))
                .select("file", "pid", call_ts=pl.col("start_ts"), call_end=pl.col("end_ts"))
                .collect(engine="streaming")
                .sort("call_ts")
            )
            own = (
                points.filter(windowed.between("start_ts", lo, hi, untimed=k == 0))
                .collect(engine="streaming")
                .sort("start_ts")
            )
            inside = own.join_asof(
                enclosing,
                left_on="start_ts",
                right_on="call_ts",
                by=["file", "pid"],
                strategy="backward",
                check_sortedness=False,
            ).filter(pl.col("call_end").is_null() | (pl.col("call_end") < pl.col("start_ts")))
            counts.append(figures(inside.lazy()).collect().cast(schema))
        return pl.concat(counts)

    both = pl.concat([counted, pl.defer(alone, schema=schema)])
    total = pl.col("n", "pages", "sized").sum()
    both = both.group_by(list(by)).agg(total) if by else both.select(total)
    return both.select(*by, "n", pages=pl.when(pl.col("sized") > 0).then(pl.col("pages")))


ENOMEM = -12  # zpci_refresh_trans: cc 1, status 4 or 16: the hypervisor is out of resources
TASK = ["file", "pid", "device"]  # whose RPCITs follow one another


def fallbacks(flush: pl.LazyFrame) -> pl.LazyFrame:
    """Per device (``fallback``): the global RPCITs a task issued as its next RPCIT
    after one of its own failed with -ENOMEM. That is how the kernel answers the
    hypervisor running out of resources (``zpci_refresh_global`` in ``__dma_purge_tlb``,
    ``zpci_refresh_all`` in ``iotlb_sync_map``), so it can free them. ``flush`` is
    ``scoped`` spans. Taken one time slice of about ``SLICE_ROWS`` at a time, with each
    task's last RPCIT carried into the next slice."""
    columns = [*TASK, "start_ts", "ret", "scope"]
    schema = pl.Schema({"device": pl.String, "fallback": pl.UInt32})

    def count() -> pl.DataFrame:
        carry = flush.select(columns).clear().collect()
        counts = [pl.DataFrame(schema=schema)]
        for k, (lo, hi) in enumerate(windowed.slices(flush, "start_ts", SLICE_ROWS)):
            part = (
                flush.filter(windowed.between("start_ts", lo, hi, untimed=k == 0))
                .select(columns)
                .collect(engine="streaming")
            )
            both = pl.concat(
                [carry.with_columns(carried=True), part.with_columns(carried=False)]
            ).sort([*TASK, "start_ts"], maintain_order=True, nulls_last=False)
            after = (pl.col("ret").shift(1).over(TASK) == ENOMEM).fill_null(False)
            hits = both.filter(after & (pl.col("scope") == "global") & ~pl.col("carried"))
            counts.append(hits.group_by("device").agg(fallback=pl.len()).cast(schema))
            carry = both.group_by(TASK, maintain_order=True).last().select(columns)
        return pl.concat(counts).group_by("device").agg(pl.col("fallback").sum())

    return pl.defer(count, schema=schema)


def flushes(spans: pl.LazyFrame) -> pl.LazyFrame:
    """RPCIT accounting per device (see the module doc)."""
    spans = spans.filter(pl.col("device").is_not_null())
    failed = pl.col("ret").is_not_null() & (pl.col("ret") != 0)
    flush = scoped(spans)
    per_device = (
        spans.filter(pl.col("kind").is_in(FLUSH_KINDS))
        .group_by("device")
        .agg(
            flushes=pl.len(),
            failed=failed.sum(),
            enomem=(pl.col("ret") == ENOMEM).sum(),
            first_ts=pl.col("start_ts").min(),
            last_ts=pl.col("start_ts").max(),
            flush_ns=(pl.col("end_ts") - pl.col("start_ts")).filter(pl.col("exact")).sum(),
        )
        .join(op_counts(spans, {"device": pl.col("device")}), on="device", how="left")
        .join(fallbacks(flush), on="device", how="left")
        .join(
            flush.group_by("device").agg(**{"global": (pl.col("scope") == "global").sum()}),
            on="device",
            how="left",
        )
    )
    span_s = (pl.col("last_ts") - pl.col("first_ts")).cast(pl.Float64) / 1e9
    return (
        per_device.with_columns(
            unmaps=pl.col("n").fill_null(0),
            unmap_pages=pl.col("pages"),
            fallback=pl.col("fallback").fill_null(0),
        )
        .with_columns(
            per_s=pl.when(span_s > 0).then(pl.col("flushes") / span_s),
            unmaps_per_flush=pl.col("unmaps") / pl.col("flushes"),
            flushes_per_page=pl.col("flushes") / pl.col("unmap_pages"),
        )
        .select(
            "device",
            "flushes",
            "failed",
            "enomem",
            "fallback",
            "unmaps",
            "unmap_pages",
            "first_ts",
            "last_ts",
            "flush_ns",
            "global",
            "per_s",
            "unmaps_per_flush",
            "flushes_per_page",
        )
        .sort("device")
    )


def io(events: pl.LazyFrame) -> pl.LazyFrame:
    """Per block device: I/Os, IOPS and MB/s over the time they span, and latency."""
    return io_of(block_ios(events))


def io_of(ios: pl.LazyFrame) -> pl.LazyFrame:
    """``io`` of I/Os already paired by ``block_ios``."""
    span_s = (pl.col("done_ts").max() - pl.col("issue_ts").min()).cast(pl.Float64) / 1e9
    latency = grouped(
        ios,
        ["dev"],
        pl.col("latency"),
        [(f"lat_{name}", what) for name, what in DISTRIBUTION[1:]],
    )
    return (
        ios.group_by("dev")
        .agg(
            ios=pl.len(),
            bytes=pl.col("bytes").sum(),
            seconds=span_s,
            errors=(pl.col("error").fill_null(0) != 0).sum(),
        )
        .with_columns(
            iops=pl.when(pl.col("seconds") > 0).then(pl.col("ios") / pl.col("seconds")),
            mb_s=pl.when(pl.col("seconds") > 0).then(pl.col("bytes") / pl.col("seconds") / 1e6),
        )
        .join(latency, on="dev", how="left", nulls_equal=True)
        .select("dev", pl.col("^lat_.*$"), pl.exclude("dev", "^lat_.*$"))
        .sort("dev")
    )


def durations(spans: pl.LazyFrame, ios: pl.LazyFrame) -> pl.LazyFrame:
    """Every duration a distribution is made of: ``group`` (``kind func`` for exact
    calls, ``io dev`` for block I/O latency) and ``value`` in ns."""
    calls = spans.filter(pl.col("exact") & (pl.col("start_ts") < pl.col("end_ts"))).select(
        group=pl.format("{} {}", "kind", "func"), value=pl.col("end_ts") - pl.col("start_ts")
    )
    io = ios.select(group=pl.format("io {}", "dev"), value="latency")
    return pl.concat([calls, io], how="vertical_relaxed").with_columns(
        pl.col("value").cast(pl.Int64)
    )


def buckets(histograms: pl.LazyFrame) -> pl.LazyFrame:
    """Distributions of bpftrace ``hist()``/``lhist()`` prints as bounds (see the module
    doc). Percentile q of n values interpolates the values of ranks floor((n-1)q)+1 and
    ceil((n-1)q)+1, so its bounds are the lower edge of the bucket holding the first
    and the upper edge of the bucket holding the second."""
    keys = ["file", "map", "keys", "ts", "func"]
    ordered = histograms.sort(*keys, pl.col("lower").fill_null(-(2**62)))
    n = pl.col("count").sum()
    cum = pl.col("count").cum_sum()

    def bound(q: float) -> list[pl.Expr]:
        rank_lo = ((n - 1) * q).floor() + 1
        rank_hi = ((n - 1) * q).ceil() + 1
        name = next(k for k, v in QUANTILES.items() if v == q)
        return [
            pl.col("lower").filter(cum >= rank_lo).first().alias(f"{name}_lo"),
            pl.col("upper").filter(cum >= rank_hi).first().alias(f"{name}_hi"),
        ]

    held = pl.col("count") > 0
    figures = [
        pl.col("line").min(),
        n.alias("count"),
        pl.col("lower").filter(held).first().alias("min_lo"),
        pl.col("upper").filter(held).last().alias("max_hi"),
        *(e for q in QUANTILES.values() for e in bound(q)),
        ((pl.col("lower") * pl.col("count")).sum() / n).alias("mean_lo"),
        ((pl.col("upper") * pl.col("count")).sum() / n).alias("mean_hi"),
        (held & (pl.col("lower").is_null() | pl.col("upper").is_null()))
        .sum()
        .alias("open_buckets"),
    ]
    return (
        ordered.group_by(keys, maintain_order=True)
        .agg(figures)
        .with_columns(
            # An open bucket's edge is unknown, and so is any mean it enters.
            pl.when(pl.col("open_buckets") == 0).then(pl.col("mean_lo", "mean_hi")),
            keys=pl.col("keys").list.join(","),
        )
        .filter(pl.col("count") > 0)
    )


WINDOWS = 50  # a run is cut into this many windows unless told a width


@dataclass(frozen=True)
class Grid:
    """Windows of ``width`` ns from ``start``, ``count`` of them; the last one ends at
    ``end`` and may be shorter."""

    start: int
    end: int
    width: int

    @property
    def count(self) -> int:
        return max(1, -(-(self.end - self.start) // self.width))

    def window(self, ts: str) -> pl.Expr:
        """The window index of the times in column ``ts`` (clipped into the grid)."""
        return ((pl.col(ts) - self.start) // self.width).clip(0, self.count - 1).cast(pl.Int64)

    def frame(self) -> pl.DataFrame:
        """One row per window: ``w``, its ``start_ts`` and its length in ``seconds``."""
        w = pl.int_range(0, self.count, eager=True, dtype=pl.Int64)
        start = self.start + w * self.width
        return pl.DataFrame({"w": w, "start_ts": start}).with_columns(
            seconds=(
                pl.min_horizontal(pl.col("start_ts") + self.width, pl.lit(self.end))
                - pl.col("start_ts")
            ).cast(pl.Float64)
            / 1e9
        )


Frame = pl.DataFrame | pl.LazyFrame


def grid(spans: Frame, ios: Frame, width_ns: int | None = None) -> Grid | None:
    """The run's span cut into windows of ``width_ns`` (default: a ``WINDOWS``th of the
    span, at least 1 µs); None when the run has neither I/Os nor RPCITs."""
    flush_ts = pl.col("start_ts").filter(pl.col("kind").is_in(FLUSH_KINDS)).cast(pl.Int64)
    ends = pl.concat(
        [
            spans.lazy().select(lo=flush_ts.min(), hi=flush_ts.max()),
            ios.lazy().select(
                lo=pl.col("issue_ts").cast(pl.Int64).min(),
                hi=pl.col("done_ts").cast(pl.Int64).max(),
            ),
        ]
    )
    start, end = (
        ends.select(pl.col("lo").min(), pl.col("hi").max()).collect(engine="streaming").row(0)
    )
    if start is None or end is None:
        return None
    span = max(1, end - start)
    return Grid(start, max(end, start + 1), width_ns or max(1_000, span // WINDOWS))


def window_counts(spans: Frame, ios: Frame, g: Grid) -> pl.LazyFrame:
    """What happened per window: ``w``, ``what`` (ios, bytes, flushes, global, unmaps),
    ``group`` (the block or IOMMU device) and the total ``n``."""
    flush = scoped(spans.lazy())
    ios = ios.lazy()
    dev = pl.col("device").fill_null("?")
    parts = [
        ios.select(w=g.window("done_ts"), what=pl.lit("ios"), group="dev", n=pl.lit(1.0)),
        ios.select(w=g.window("done_ts"), what=pl.lit("bytes"), group="dev", n="bytes"),
        flush.select(w=g.window("start_ts"), what=pl.lit("flushes"), group=dev),
        flush.filter(pl.col("scope") == "global").select(
            w=g.window("start_ts"), what=pl.lit("global"), group=dev
        ),
        op_counts(spans.lazy(), {"w": g.window("start_ts"), "group": dev}).select(
            "w", "group", "n", what=pl.lit("unmaps")
        ),
    ]
    return (
        pl.concat(parts, how="diagonal_relaxed")
        .with_columns(pl.col("n").fill_null(1.0).cast(pl.Float64))
        .group_by("w", "what", "group")
        .agg(pl.col("n").sum())
    )


RATE_COLUMNS = ("ios", "bytes", "flushes", "global", "unmaps")
RATES_SCHEMA = pl.Schema(
    {
        "start_ts": pl.Int64(),
        "seconds": pl.Float64(),
        "device": pl.String(),
        **dict.fromkeys(RATE_COLUMNS, pl.Float64()),
        "iops": pl.Float64(),
        "mb_s": pl.Float64(),
        "flushes_per_s": pl.Float64(),
    }
)


def rates(spans: Frame, ios: Frame, width_ns: int | None = None) -> pl.DataFrame:
    """Per window and device: counts, IOPS, MB/s and RPCITs per second (see the module
    doc). Every device has a row in every window."""
    g = grid(spans, ios, width_ns)
    if g is None:
        return pl.DataFrame(schema=RATES_SCHEMA)
    counts = window_counts(spans, ios, g).collect(engine="streaming", optimizations=UNSHARED)
    groups = counts.select("group").unique()
    per = counts.group_by("w", "group").agg(
        **{c: pl.col("n").filter(pl.col("what") == c).sum() for c in RATE_COLUMNS}
    )
    return (
        g.frame()
        .join(groups, how="cross")
        .join(per, on=["w", "group"], how="left")
        .with_columns(pl.col(*RATE_COLUMNS).fill_null(0.0))
        .with_columns(
            iops=pl.col("ios") / pl.col("seconds"),
            mb_s=pl.col("bytes") / pl.col("seconds") / 1e6,
            flushes_per_s=pl.col("flushes") / pl.col("seconds"),
        )
        .rename({"group": "device"})
        .sort("device", "w")
        .select(RATES_SCHEMA.names())
        .cast(RATES_SCHEMA)
    )


@dataclass
class Stats:
    """The figures of one trace (lazy frames; see the module doc)."""

    latency: pl.LazyFrame
    histogram: pl.LazyFrame
    flushes: pl.LazyFrame
    flush_paths: pl.LazyFrame
    fh_periods: pl.LazyFrame
    io: pl.LazyFrame
    rates: pl.LazyFrame
    durations: pl.LazyFrame
    buckets: pl.LazyFrame
    cdf: pl.LazyFrame  # the durations' CDFs as at most about 500 points per group


def spans_and_ios(
    trace: Trace, era: EraChoice | None = None, notes: list[str] | None = None
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The timeline's spans and the paired block I/Os of ``trace``, from the cache when
    they were built before from the same cached inputs. A trace of more than
    ``windowed.WINDOW_EVENTS`` events is built window by window into Parquet parts
    (``tracetool.windowed``), and what that changed is added to ``notes``."""
    from tracetool import cache

    out = cache.cached_parts(trace, "windowed", repr(era))
    cuts = windowed.plan(trace.events) if out is None else []
    if out is not None or len(cuts) > 1:
        out = cache.derived_parts(
            trace,
            "windowed",
            repr(era),
            lambda path: windowed.build(trace.events, path, era, cuts=cuts),
        )
        spans, ios, built = windowed.load(out)
        if notes is not None and built.note():
            notes.append(str(built.note()))
        return spans, ios
    built_spans = cache.derived(
        trace, "spans", repr(era), lambda: timeline(trace.events, era).spans.collect()
    )
    built_ios = cache.derived(trace, "ios", "", lambda: block_ios(trace.events).collect())
    return built_spans.lazy(), built_ios.lazy()


def _deferred(table: Callable[[pl.LazyFrame], pl.LazyFrame], spans: pl.LazyFrame) -> pl.LazyFrame:
    """``table(spans)``, planned only when collected: its plan takes passes over the
    spans (the devices' flush ranges, time slices) that a caller may never need."""
    schema = table(spans.clear()).collect_schema()
    return pl.defer(
        lambda: table(spans).collect(engine="streaming", optimizations=UNSHARED), schema=schema
    )


def stats(
    trace: Trace,
    by: Sequence[str] = (),
    era: EraChoice | None = None,
    window_ns: int | None = None,
    notes: list[str] | None = None,
) -> Stats:
    """Latency distributions, RPCIT accounting, block I/O and per-window rates of
    ``trace``; ``by`` adds span columns (``device``, ``cpu``, ``comm``, ``pid``, ``file``,
    ``window``) to the grouping of latencies; ``window_ns`` is the window width (default:
    a ``WINDOWS``th of the run). ``notes`` collects what the user should know of how
    the figures were made (a long trace built in windows)."""
    spans, ios = spans_and_ios(trace, era, notes)
    g = grid(spans, ios, window_ns)
    samples = durations(spans, ios)
    if "window" in by:
        start = g.start + g.window("start_ts") * g.width if g else pl.lit(None, pl.Int64)
        spans = spans.with_columns(window=start)
    return Stats(
        latency(spans, by),
        histogram(spans, by),
        _deferred(flushes, spans),
        _deferred(flush_paths, spans),
        _deferred(fh_periods, spans),
        io_of(ios),
        pl.defer(lambda: rates(spans, ios, window_ns), schema=RATES_SCHEMA),
        samples,
        buckets(trace.table("histograms")),
        cdf(samples),
    )
