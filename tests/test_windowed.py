"""Long traces built window by window: the same spans, I/Os and figures as the whole
trace, what earlier windows learned carried forward, and cut calls counted."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tracetool
from tracetool import windowed
from tracetool.blockio import block_ios
from tracetool.distributions import grouped
from tracetool.stats import DISTRIBUTION, distribution, stats
from tracetool.timeline import timeline

PREFIX_TS = re.compile(r"^(.{16}-\S+\s+\[\d+\] \S+\s+)(\d+)\.(\d{6}):", re.M)


def built(
    trace: tracetool.Trace, tmp: Path, **plan: int
) -> tuple[pl.DataFrame, pl.DataFrame, windowed.Built]:
    cuts = windowed.plan(trace.events, **plan)
    b = windowed.build(trace.events, tmp, cuts=cuts)
    spans, ios, again = windowed.load(tmp)
    assert again == b
    return spans.collect(), ios.collect(), b


def stretched(text: str, factor: int) -> str:
    """The trace with every time gap ``factor`` times as long."""
    first: list[int] = []

    def scale(m: re.Match[str]) -> str:
        us = int(m.group(2)) * 1_000_000 + int(m.group(3))
        first.append(us) if not first else None
        t = first[0] + (us - first[0]) * factor
        return f"{m.group(1)}{t // 1_000_000:5d}.{t % 1_000_000:06d}:"

    return PREFIX_TS.sub(scale, text)


@pytest.mark.parametrize(
    "sample",
    [
        "flush/s390-fio-zvm-lazy.txt",
        "simulated/race-v6.0-overlap-warn.txt",
        "simulated/race-v6.1-vfio-lifetime.txt",
        "simulated/dma-fq-percpu-lpar.txt",
        "simulated/dma-s390-lazy-zvm-wraps.txt",
        "function-graph/s390-funcgraph-abstime-proc.txt",
        "rules/mappings-live-at-release/trigger-v6.0-release-with-guest-memory-mapped.txt",
    ],
)
def test_windows_give_the_whole_trace_spans_and_ios(sample: str, tmp_path: Path) -> None:
    path = SAMPLES / sample
    if not path.exists():
        pytest.skip(f"{sample} is not a sample")
    trace = tracetool.parse(path, use_cache=False)
    n = trace.events.select(pl.len()).collect().item()
    spans, ios, b = built(trace, tmp_path, window_events=max(8, n // 6), margin_events=8)
    assert b.windows > 2
    whole = timeline(trace.events).spans.collect()
    assert spans.equals(whole)
    assert ios.sort("issue_ts", "line").equals(
        block_ios(trace.events).collect().sort("issue_ts", "line")
    )
    # Counted as cut: spans with no traced return that run past their window.
    assert b.cut <= whole.filter(~pl.col("exact")).height


def test_attribution_learned_before_a_window_is_carried(tmp_path: Path) -> None:
    # Time gaps 5000x longer: each window reads only a few ms around itself, far after
    # the attaches that tell which device a domain's maps and unmaps concern.
    text = stretched((SAMPLES / "simulated/race-v6.5-group-mutex.txt").read_text(), 5000)
    path = tmp_path / "stretched.txt"
    path.write_text(text)
    trace = tracetool.parse(path, use_cache=False)
    whole = timeline(trace.events).spans.collect()
    by_domain = whole.filter(pl.col("device_why").str.contains("was last attached"))
    assert by_domain.height > 10
    out = tmp_path / "parts"
    out.mkdir()
    cuts = windowed.plan(trace.events, window_events=10, margin_events=2, min_margin_ns=1)
    far = [c for c in cuts if c.read_lo is not None and c.read_lo > by_domain["start_ts"].min()]
    assert far, "no window starts after the first attach-resolved span"
    windowed.build(trace.events, out, cuts=cuts)
    spans = windowed.load(out)[0].collect()
    resolved = spans.filter(pl.col("device_why").str.contains("was last attached"))
    assert resolved.height == by_domain.height
    assert resolved.select("start_line", "device").equals(by_domain.select("start_line", "device"))


def test_calls_outlasting_the_margin_are_counted(tmp_path: Path) -> None:
    text = stretched((SAMPLES / "simulated/race-v6.5-group-mutex.txt").read_text(), 5000)
    path = tmp_path / "stretched.txt"
    path.write_text(text)
    trace = tracetool.parse(path, use_cache=False)
    out = tmp_path / "parts"
    out.mkdir()
    cuts = windowed.plan(trace.events, window_events=10, margin_events=0, min_margin_ns=1)
    b = windowed.build(trace.events, out, cuts=cuts)
    spans = windowed.load(out)[0].collect()
    whole = timeline(trace.events).spans.collect()
    # Every call or hold the windows could not pair is inexact there and exact in the
    # whole: split calls show as an entry and an orphan return, held locks run past.
    lost = whole.filter("exact").height - spans.filter("exact").height
    assert spans.height - whole.height == b.cut > 0
    assert b.cut + b.open >= lost
    assert f"{b.cut} calls outlasted a window's margin" in str(b.note())


def test_io_in_flight_across_windows_is_paired(tmp_path: Path) -> None:
    rows = []
    for i in range(40):
        t = 100 + i * 10  # issues every 10 µs, each completing 205 µs later
        rows.append((t, f"block_rq_issue: 259,0 R 4096 () {1000 + i} + 8 [fio]"))
        rows.append((t + 205, f"block_rq_complete: 259,0 R () {1000 + i} + 8 [0]"))
    rows.sort()
    text = "".join(
        f"             fio-2300    [000] .....   700.{t:06d}: {body}\n" for t, body in rows
    )
    path = tmp_path / "io.txt"
    path.write_text(text)
    trace = tracetool.parse(path, use_cache=False)
    _, ios, b = built(trace, tmp_path, window_events=10, margin_events=0, min_margin_ns=1)
    assert b.windows >= 4
    assert ios.height == 40
    assert (ios["latency"] == 205_000).all()


def test_stats_of_a_long_trace_equal_the_whole_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tracetool.parse(SAMPLES / "flush/s390-fio-zvm-lazy.txt", use_cache=False)
    names = ("latency", "histogram", "flushes", "flush_paths", "fh_periods", "io", "rates")
    whole = {n: getattr(stats(trace), n).collect() for n in names}
    monkeypatch.setattr(windowed, "WINDOW_EVENTS", 700)
    monkeypatch.setattr(windowed.plan, "__defaults__", (700, 50, windowed.MIN_MARGIN_NS))
    notes: list[str] = []
    parts = stats(trace, notes=notes)
    assert len(windowed.plan(trace.events)) > 3
    for n in names:
        assert getattr(parts, n).collect(engine="streaming").equals(whole[n]), n
    assert notes == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(-(10**9), 10**9)),
        max_size=60,
    ),
    st.integers(1, 20),
)
def test_grouped_figures_equal_one_group_by(rows: list[tuple[str | None, int]], batch: int) -> None:
    frame = pl.LazyFrame(rows, schema={"k": pl.String, "v": pl.Int64}, orient="row")
    got = grouped(frame, ["k"], pl.col("v"), DISTRIBUTION, batch_rows=batch).collect()
    want = frame.group_by("k").agg(distribution(pl.col("v"))).collect()
    assert got.sort("k", nulls_last=True).equals(want.sort("k", nulls_last=True))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.integers(-(2**62), 2**62) | st.integers(-5, 5) | st.just(7),
        ),
        max_size=80,
    ),
    st.integers(1, 10),
    st.integers(1, 6),
)
def test_percentiles_of_groups_larger_than_a_batch_are_exact(
    rows: list[tuple[str | None, int]], batch: int, fetch: int
) -> None:
    """Groups of more than ``batch`` values are narrowed bucket by bucket, and read
    only once a range holds at most ``fetch`` values (or one value)."""
    frame = pl.LazyFrame(rows, schema={"k": pl.String, "v": pl.Int64}, orient="row")
    got = grouped(
        frame, ["k"], pl.col("v"), DISTRIBUTION, batch_rows=batch, fetch_rows=fetch
    ).collect()
    want = frame.group_by("k").agg(distribution(pl.col("v"))).collect()
    got, want = got.sort("k", nulls_last=True), want.sort("k", nulls_last=True)
    assert got.drop("mean").equals(want.drop("mean"))
    assert got["mean"].to_list() == pytest.approx(want["mean"].to_list(), rel=1e-12)


def test_grouped_figures_need_integer_values() -> None:
    frame = pl.LazyFrame({"k": ["a"], "v": [1.5]})
    with pytest.raises(TypeError, match="integer values"):
        grouped(frame, ["k"], pl.col("v"), DISTRIBUTION)


def test_a_trace_without_times_is_one_window() -> None:
    # function_graph's default output prints durations but no timestamps.
    trace = tracetool.parse(SAMPLES / "function-graph/s390-funcgraph-default.txt", use_cache=False)
    assert windowed.plan(trace.events, window_events=2) == [windowed.Cut(None, None, None, None)]


def test_a_burst_is_cut_finer_than_the_time_bins() -> None:
    # 1 event per second for an hour, then 3000 events within one millisecond.
    ts = [i * 1_000_000_000 for i in range(3600)]
    ts += [3_600_000_000_000 + i * 300 for i in range(3000)]
    events = pl.LazyFrame({"ts": ts}, schema={"ts": pl.Int64})
    cuts = windowed.plan(events, window_events=500, margin_events=10, min_margin_ns=1)
    in_burst = [c for c in cuts if c.lo is not None and c.lo >= 3_600_000_000_000]
    assert len(in_burst) >= 4


def test_a_windowed_build_is_cached_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACETOOL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(windowed.plan, "__defaults__", (700, 50, windowed.MIN_MARGIN_NS))
    trace_file = tmp_path / "run.txt"
    trace_file.write_bytes((SAMPLES / "flush/s390-fio-zvm-lazy.txt").read_bytes())
    first = stats(tracetool.parse(trace_file)).flushes.collect()
    (entry,) = (tmp_path / "cache" / "derived").iterdir()
    assert entry.name.startswith("windowed-") and entry.is_dir()
    assert len(list(entry.glob("spans-*.parquet"))) > 3

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached windows were built again")

    monkeypatch.setattr(windowed, "build", no_rebuild)
    monkeypatch.setattr(windowed, "plan", no_rebuild)
    again = stats(tracetool.parse(trace_file)).flushes.collect()
    assert again.equals(first)
