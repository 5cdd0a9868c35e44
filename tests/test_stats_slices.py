"""Stats tables that order or match a long trace's rows one time slice at a time
(``windowed.slices``): sliced, they equal a whole-trace reference."""

from __future__ import annotations

import importlib

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracetool import windowed

# The module, not the function ``tracetool.stats`` that the package exports.
stats = importlib.import_module("tracetool.stats")

times = st.lists(st.integers(0, 10**9) | st.none(), max_size=300)


@settings(max_examples=80, deadline=None)
@given(times, st.integers(1, 50))
def test_slices_cover_every_row_once_in_time_order(ts: list[int | None], size: int) -> None:
    rows = pl.LazyFrame({"t": ts}, schema={"t": pl.Int64})
    ranges = windowed.slices(rows, "t", size)
    assert ranges[0][0] is None and ranges[-1][1] is None
    edges = [hi for _, hi in ranges[:-1]]
    assert edges == sorted(set(edges))  # strictly increasing
    assert all(lo == prev_hi for (lo, _), (_, prev_hi) in zip(ranges[1:], ranges, strict=False))
    held = [
        rows.filter(windowed.between("t", lo, hi, untimed=k == 0)).collect().height
        for k, (lo, hi) in enumerate(ranges)
    ]
    assert sum(held) == len(ts)
    distinct = [t for t in ts if t is not None]
    if len(set(distinct)) == len(distinct) and None not in ts:
        # No burst at one time: a slice ends once it holds `size` rows, and a tail of
        # less than a quarter joins the last one.
        assert max(held) <= size + size // 4 + 1
    if len(ts) <= size:
        assert ranges == [(None, None)]


def flush_frame(rows: list[tuple[str, int, int, int]]) -> pl.LazyFrame:
    """Flushes of (device, fh, start time, ret), ranged (a narrower flush exists)."""
    return pl.LazyFrame(
        [
            {
                "device": dev,
                "kind": "flush",
                "caller": "__dma_purge_tlb",
                "iova": 0x1000,
                "size": 0x1000,
                "start_ts": t,
                "end_ts": t + 5,
                "exact": True,
                "ret": ret,
                "fh": fh,
            }
            for dev, fh, t, ret in rows
        ],
        schema={
            "device": pl.String,
            "kind": pl.String,
            "caller": pl.String,
            "iova": pl.UInt64,
            "size": pl.UInt64,
            "start_ts": pl.Int64,
            "end_ts": pl.Int64,
            "exact": pl.Boolean,
            "ret": pl.Int64,
            "fh": pl.UInt64,
        },
    )


def naive_periods(rows: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int, int]]:
    """(device, period, fh, flushes, failed), periods numbered from 1 per device."""
    out: list[list[int | str]] = []
    last: dict[str, tuple[int, int]] = {}  # device -> (fh, period)
    for dev, fh, _, ret in sorted(rows, key=lambda r: (r[0], r[2])):
        prev = last.get(dev)
        if prev is not None and prev[0] == fh:
            out[-1][3] = int(out[-1][3]) + 1
            out[-1][4] = int(out[-1][4]) + (ret != 0)
            continue
        period = 1 if prev is None else prev[1] + 1
        last[dev] = (fh, period)
        out.append([dev, period, fh, 1, int(ret != 0)])
    return [(str(d), int(p), int(f), int(n), int(x)) for d, p, f, n, x in out]


flush_rows = st.lists(
    st.tuples(st.sampled_from("ab"), st.sampled_from([0x80A0, 0x80A1, 0x80A2]), st.integers(0, 1)),
    max_size=120,
).map(
    # one flush per device at a time (a task's RPCITs do not share a nanosecond)
    lambda rows: [(d, fh, 10 * i, ret) for i, (d, fh, ret) in enumerate(rows)]
)


@settings(max_examples=60, deadline=None)
@given(flush_rows, st.integers(1, 8))
def test_handle_periods_are_stitched_across_slices(
    rows: list[tuple[str, int, int, int]], slice_rows: int
) -> None:
    columns = ["device", "period", "fh", "flushes", "failed"]
    whole = stats.fh_periods(flush_frame(rows)).collect().select(columns).rows()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats, "SLICE_ROWS", slice_rows)
        sliced = stats.fh_periods(flush_frame(rows)).collect()
    assert whole == naive_periods(rows)
    assert sliced.select(columns).rows() == whole
    # The first and last RPCIT of each period survive the stitching.
    for dev, period, first, last in sliced.select("device", "period", "first_ts", "last_ts").rows():
        mine = [t for d, _, t, _ in rows if d == dev]
        assert min(mine) <= first <= last <= max(mine), (dev, period)


@st.composite
def unmap_spans(draw: st.DrawFn) -> tuple[list[dict[str, object]], int]:
    """DMA-API unmap calls (one at a time per task) and iommu:unmap tracepoints on two
    tasks; and how many tracepoints fired outside every call of their task."""
    spans: list[dict[str, object]] = []
    calls: dict[int, list[tuple[int, int]]] = {1: [], 2: []}
    for pid in calls:
        t = 0
        for _ in range(draw(st.integers(0, 12))):
            t += draw(st.integers(1, 50))
            length = draw(st.integers(0, 400))  # some outlast many slices
            calls[pid].append((t, t + length))
            t += length
    points = draw(st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(0, 3000)), max_size=40))
    for pid, spans_of in calls.items():
        for lo, hi in spans_of:
            size = 4096 * (1 + lo % 3)
            spans.append(
                {"kind": "dma_unmap", "pid": pid, "start_ts": lo, "end_ts": hi, "size": size}
            )
    for pid, t in points:
        spans.append(
            {"kind": "iommu_unmap", "pid": pid, "start_ts": t, "end_ts": t, "size": 4096 + t % 2}
        )
    alone = sum(not any(lo <= t <= hi for lo, hi in calls[pid]) for pid, t in points)
    return spans, alone


@settings(max_examples=60, deadline=None)
@given(unmap_spans(), st.integers(1, 6))
def test_tracepoint_unmaps_inside_a_call_count_once_in_any_slice(
    drawn: tuple[list[dict[str, object]], int], slice_rows: int
) -> None:
    spans, alone = drawn
    calls = sum(s["kind"] == "dma_unmap" for s in spans)
    by_pid = {
        pid: [
            (s["start_ts"], s["end_ts"])
            for s in spans
            if s["kind"] == "dma_unmap" and s["pid"] == pid
        ]
        for pid in (1, 2)
    }
    # A call's pages, and a lone tracepoint's (4097 bytes: a partial page counts whole).
    pages = sum(int(s["size"]) // 4096 for s in spans if s["kind"] == "dma_unmap") + sum(
        (int(s["size"]) + 4095) // 4096
        for s in spans
        if s["kind"] == "iommu_unmap"
        and not any(lo <= s["start_ts"] <= hi for lo, hi in by_pid[int(s["pid"])])
    )
    frame = pl.LazyFrame(
        [{**s, "file": "t", "device": f"dev{s['pid']}"} for s in spans],
        schema={
            "kind": pl.String,
            "pid": pl.Int32,
            "start_ts": pl.Int64,
            "end_ts": pl.Int64,
            "size": pl.UInt64,
            "file": pl.String,
            "device": pl.String,
        },
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats, "SLICE_ROWS", slice_rows)
        counts = stats.op_counts(frame, {"device": pl.col("device")}).collect()
    assert counts["n"].sum() == calls + alone
    assert (counts["pages"].sum() if counts.height else 0) == pages
    whole = stats.op_counts(frame, {"device": pl.col("device")}).collect()
    assert counts.sort("device").rows() == whole.sort("device").rows()


ENOMEM, EIO = -12, -5


@st.composite
def task_flushes(draw: st.DrawFn) -> list[tuple[int, str, int, int, str]]:
    """RPCITs of (pid, device, start time, ret, scope): three tasks on two devices,
    interleaved in time, failing now and then with -ENOMEM or -EIO."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([1, 2, 3]),
                st.sampled_from(["a", "b"]),
                st.sampled_from([0, 0, ENOMEM, EIO]),
                st.sampled_from(["global", "ranged"]),
            ),
            max_size=120,
        )
    )
    return [(pid, dev, 10 * i, ret, scope) for i, (pid, dev, ret, scope) in enumerate(rows)]


def naive_fallbacks(rows: list[tuple[int, str, int, int, str]]) -> dict[str, int]:
    """Walk each task's RPCITs on a device in time order: a global one right after
    that task's -ENOMEM is the kernel's fallback."""
    out: dict[str, int] = {}
    last: dict[tuple[int, str], int] = {}
    for pid, dev, _, ret, scope in sorted(rows, key=lambda r: r[2]):
        if last.get((pid, dev)) == ENOMEM and scope == "global":
            out[dev] = out.get(dev, 0) + 1
        last[(pid, dev)] = ret
    return out


@settings(max_examples=60, deadline=None)
@given(task_flushes(), st.integers(1, 8))
def test_enomem_fallbacks_follow_each_task_across_slices(
    rows: list[tuple[int, str, int, int, str]], slice_rows: int
) -> None:
    frame = pl.LazyFrame(
        [
            {"file": "t", "pid": p, "device": d, "start_ts": t, "ret": r, "scope": s}
            for p, d, t, r, s in rows
        ],
        schema={
            "file": pl.String,
            "pid": pl.Int32,
            "device": pl.String,
            "start_ts": pl.Int64,
            "ret": pl.Int64,
            "scope": pl.String,
        },
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats, "SLICE_ROWS", slice_rows)
        sliced = dict(stats.fallbacks(frame).collect().rows())
    whole = dict(stats.fallbacks(frame).collect().rows())
    assert whole == sliced == naive_fallbacks(rows)
