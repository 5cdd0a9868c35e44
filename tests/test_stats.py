"""Flush and latency figures: percentiles against a naive reference, log2 buckets, RPCIT
accounting and block I/O on the samples, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import GOLDENS, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.cli import main
from tracetool.stats import QUANTILES, histogram, latency

RPCIT = SAMPLES / "ftrace" / "s390-rpcit-flush.txt"


def spans(durations: list[int], exact: list[bool] | None = None) -> pl.LazyFrame:
    n = len(durations)
    return pl.LazyFrame(
        {
            "kind": ["flush"] * n,
            "func": ["zpci_refresh_trans"] * n,
            "start_ts": [1000 * i for i in range(n)],
            "end_ts": [1000 * i + d for i, d in enumerate(durations)],
            "exact": exact if exact is not None else [True] * n,
        },
        schema={
            "kind": pl.String,
            "func": pl.String,
            "start_ts": pl.Int64,
            "end_ts": pl.Int64,
            "exact": pl.Boolean,
        },
    )


def naive_quantile(values: list[int], q: float) -> float:
    """Linear interpolation between the two nearest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10**9), max_size=60), st.data())
def test_percentiles_match_a_naive_reference(durations: list[int], data: st.DataObject) -> None:
    exact = data.draw(st.lists(st.booleans(), min_size=len(durations), max_size=len(durations)))
    got = latency(spans(durations, exact)).collect()
    timed = [d for d, e in zip(durations, exact, strict=True) if e]
    if not timed:  # nothing traced exactly: no row, rather than a row of nulls
        assert got.is_empty()
        return
    row = got.row(0, named=True)
    assert (row["count"], row["min"], row["max"]) == (len(timed), min(timed), max(timed))
    assert row["inexact"] == len(durations) - len(timed)
    assert math.isclose(row["mean"], sum(timed) / len(timed), rel_tol=1e-9)
    for name, q in QUANTILES.items():
        assert math.isclose(row[name], naive_quantile(timed, q), rel_tol=1e-9), name


def test_single_and_equal_values() -> None:
    one = latency(spans([7])).collect().row(0, named=True)
    assert [one[n] for n in ("min", "p50", "p99_9", "max")] == [7, 7.0, 7.0, 7]
    same = latency(spans([5, 5, 5])).collect().row(0, named=True)
    assert {same[n] for n in QUANTILES} == {5.0}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 2**50), min_size=1, max_size=40))
def test_log2_buckets_hold_their_durations(durations: list[int]) -> None:
    got = histogram(spans(durations)).collect()
    assert got["count"].sum() == len(durations)
    expected: dict[int, int] = {}
    for d in durations:
        lower = 1 << (d.bit_length() - 1)
        assert lower <= d < 2 * lower
        expected[lower] = expected.get(lower, 0) + 1
    assert dict(zip(got["lower"], got["count"], strict=True)) == expected
    assert (got["upper"] == got["lower"] * 2).all()


def test_rpcit_sample_figures() -> None:
    figures = tracetool.stats(tracetool.parse(RPCIT, use_cache=False))
    (flush,) = figures.flushes.collect().to_dicts()
    # 8 RPCITs over 2 ms; two returned -12 (-ENOMEM: IOVA space exhausted).
    assert (flush["device"], flush["flushes"], flush["failed"]) == ("fh@0x80a00000", 8, 2)
    assert flush["per_s"] == 4000.0
    # Each -ENOMEM is followed by a flush of the whole aperture, and one flush_iotlb_all.
    assert flush["global"] == 3
    paths = figures.flush_paths.collect()
    scopes = {(r["caller"], r["scope"]): r["flushes"] for r in paths.to_dicts()}
    assert scopes == {
        ("__dma_purge_tlb", "global"): 1,
        ("__dma_purge_tlb", "ranged"): 1,
        ("s390_iommu_flush_iotlb_all", "global"): 1,
        ("s390_iommu_iotlb_sync_map", "global"): 1,
        ("s390_iommu_iotlb_sync_map", "ranged"): 2,
        ("s390_iommu_update_trans", "ranged"): 2,
    }
    (io,) = figures.io.collect().to_dicts()
    assert (io["dev"], io["ios"], io["errors"]) == ("259:0", 3, 1)
    assert math.isclose(io["iops"], io["ios"] / io["seconds"])


LAZY_RUN = SAMPLES / "flush" / "s390-fio-zvm-lazy"
# One golden per input format and per kind of table: golden name -> stats arguments.
STATS_GOLDENS = {
    # ftrace kprobes: every flush kind, -ENOMEM and its fallbacks, fh periods, block I/O
    "s390-rpcit-flush": [str(RPCIT)],
    # a fio run: rates per window, latencies by device and window, debugfs counters
    "s390-fio-zvm-lazy-windows-counters": [
        f"{LAZY_RUN}.txt",
        "--window",
        "2ms",
        "--by",
        "device,window",
        "--counters",
        f"{LAZY_RUN}.statistics-before,{LAZY_RUN}.statistics-after",
    ],
    # simulated under a z/VM shadow limit: -ENOMEM answered by global RPCITs
    "dma-s390-lazy-zvm-enomem": [str(SAMPLES / "simulated" / "dma-s390-lazy-zvm-enomem.txt")],
    # v6.7 flush queue through perf probe events
    "dma-fq-single-lpar-timer.perf": [
        str(SAMPLES / "simulated" / "dma-fq-single-lpar-timer.perf.txt")
    ],
    # bpftrace: hist()/lhist() maps as percentile bounds, printf events as spans
    "s390-rpcit-maps.bpftrace": [str(SAMPLES / "bpftrace" / "s390-rpcit-maps.txt")],
    "s390-dma-block.bpftrace-json": [str(SAMPLES / "bpftrace-json" / "s390-dma-block.ndjson")],
    # trace-cmd report text
    "s390-report.trace-cmd": [str(SAMPLES / "trace-cmd" / "s390-report.report.txt")],
}


def _sig(doc: object) -> object:
    """Floats to 12 significant digits: summation order may move the last bits."""
    if isinstance(doc, float):
        return float(f"{doc:.12g}")
    if isinstance(doc, dict):
        return {k: _sig(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_sig(v) for v in doc]
    return doc


@pytest.mark.parametrize("name", STATS_GOLDENS)
def test_stats_golden(name: str, update_goldens: bool) -> None:
    args = ["stats", *STATS_GOLDENS[name], "--format", "json", "--no-cache"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # Input paths as the checkout names them, wherever it is.
    text = result.stdout.replace(f"{SAMPLES.parent}/", "")
    doc = json.loads(text)
    assert any(doc.values()), "a golden of nothing tests nothing"
    golden = GOLDENS / "stats" / f"{name}.json"
    if update_goldens or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
        if not update_goldens:
            pytest.fail(f"{golden} did not exist; written now, review and commit it")
    assert _sig(doc) == _sig(json.loads(golden.read_text()))


def test_cli_table_fits_80_columns_and_by_is_checked(tmp_path: Path) -> None:
    race = SAMPLES / "ftrace" / "s390-kprobe-race-v6.0.txt"
    result = CliRunner().invoke(main, ["stats", str(race), "--by", "device", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "0004:00:00.0  attach" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    bad = CliRunner().invoke(main, ["stats", str(race), "--by", "devic"])
    assert bad.exit_code == 2 and 'did you mean "device"' in bad.output


def test_flush_scope_needs_a_narrower_flush_or_a_global_caller() -> None:
    from tracetool.stats import flush_paths

    def frame(rows: list[tuple[str, str, int, int | None]]) -> pl.LazyFrame:
        return pl.LazyFrame(
            [
                {
                    "device": dev,
                    "kind": "flush",
                    "caller": caller,
                    "iova": iova,
                    "size": size,
                    "start_ts": 0,
                    "end_ts": 10,
                    "exact": True,
                    "ret": 0,
                }
                for dev, caller, iova, size in rows
            ],
            schema_overrides={"iova": pl.UInt64, "size": pl.UInt64},
        )

    def scopes(rows: list[tuple[str, str, int, int | None]]) -> list[str]:
        return flush_paths(frame(rows)).collect().sort("caller")["scope"].to_list()

    # Only one kind of flush: nothing says it is the whole aperture.
    assert scopes([("a", "x", 0x1000, 0x1000)]) == ["ranged"]
    # A flush that covers every range the device's flushes touched, beside narrower ones.
    assert scopes([("a", "x", 0x1000, 0x1000), ("a", "y", 0x0, 0x10000)]) == ["ranged", "global"]
    # flush_iotlb_all is global whatever it prints.
    assert scopes([("a", "s390_iommu_flush_iotlb_all", 0x1000, 0x1000)]) == ["global"]
    # A cut line whose range was not traced says nothing about the device's span.
    cut = [("a", "x", 0x2000, 0x1000), ("a", "y", 0x1000, 0x10000), ("a", "z", 0xA, None)]
    assert scopes(cut) == ["ranged", "global", "ranged"]


def test_rates_per_window_add_up_to_the_totals() -> None:
    lazy = SAMPLES / "flush" / "s390-fio-zvm-lazy.txt"
    truth = json.loads(lazy.with_suffix(".truth.json").read_text())
    figures = tracetool.stats(tracetool.parse(lazy), window_ns=1_000_000)
    rates = figures.rates.collect()
    # 12 ms of fio plus the tail of the last I/Os: 13 windows of 1 ms, every device in each.
    assert rates.group_by("device").len()["len"].unique().to_list() == [13]
    by_device = {r["device"]: r for r in rates.group_by("device").sum().to_dicts()}
    assert by_device["259:0"]["ios"] == truth["ios"]
    assert by_device["259:0"]["bytes"] == truth["bytes"]
    assert by_device["0004:00:00.0"]["flushes"] == truth["rpcit"]
    assert by_device["0004:00:00.0"]["global"] == truth["rpcit_global"]
    assert by_device["0004:00:00.0"]["unmaps"] == truth["unmaps"]
    full = rates.filter(pl.col("seconds") == 0.001)
    assert (full["iops"] == full["ios"] * 1000).all()
    # The windows tile the run: from the first RPCIT (before the first issue) to the
    # last completion.
    (io,) = figures.io.collect().to_dicts()
    windows = rates.filter(pl.col("device") == "259:0")
    assert io["seconds"] < windows["seconds"].sum() < io["seconds"] + 50e-6
    assert (windows["start_ts"].diff().drop_nulls() == 1_000_000).all()


def test_latency_by_window() -> None:
    lazy = SAMPLES / "flush" / "s390-fio-zvm-lazy.txt"
    figures = tracetool.stats(tracetool.parse(lazy), by=["window"], window_ns=4_000_000)
    lat = figures.latency.collect().filter(pl.col("kind") == "flush")
    assert lat["window"].n_unique() == 3
    assert lat["count"].sum() == json.loads(lazy.with_suffix(".truth.json").read_text())["rpcit"]
    result = CliRunner().invoke(
        main, ["stats", str(lazy), "--by", "window", "--window", "4ms", "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "700.000001  flush" in result.stdout
    assert "per window" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_timeline_is_cached_beside_the_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACETOOL_CACHE_DIR", str(tmp_path / "cache"))
    trace_file = tmp_path / "run.txt"
    trace_file.write_bytes(RPCIT.read_bytes())
    first = tracetool.stats(tracetool.parse(trace_file)).flushes.collect()
    derived = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "derived").iterdir())
    assert derived == ["ios", "spans"]
    again = tracetool.stats(tracetool.parse(trace_file)).flushes.collect()
    assert again.equals(first)
    assert len(list((tmp_path / "cache" / "derived").iterdir())) == 2  # read, not rebuilt
    # A changed input is a new cache entry, so a new timeline.
    trace_file.write_bytes(RPCIT.read_bytes() + RPCIT.read_bytes().split(b"\n", 12)[-1])
    changed = tracetool.stats(tracetool.parse(trace_file)).flushes.collect()
    assert changed["flushes"].item() == 2 * first["flushes"].item()
    assert len(list((tmp_path / "cache" / "derived").iterdir())) == 4
    # Inputs without a cache entry are never served from it.
    tracetool.stats(tracetool.parse(trace_file, use_cache=False))
    tracetool.stats(tracetool.parse_text(RPCIT.read_text()))
    assert len(list((tmp_path / "cache" / "derived").iterdir())) == 4


FLUSH = SAMPLES / "flush"


def counters_args(mode: str) -> list[str]:
    run = FLUSH / f"s390-fio-zvm-{mode}"
    return [f"{run}.statistics-before,{run}.statistics-after"]


@pytest.mark.parametrize("mode", ["strict", "lazy"])
def test_debugfs_counters_reconcile_with_the_trace(mode: str) -> None:
    trace = FLUSH / f"s390-fio-zvm-{mode}.txt"
    args = ["stats", str(trace), "--counters", *counters_args(mode), "--format", "json"]
    result = CliRunner().invoke(main, [*args, "--no-cache"])
    assert result.exit_code == 0, result.output
    rows = {r["counter"]: r for r in json.loads(result.stdout)["counters"]}
    truth = json.loads(trace.with_suffix(".truth.json").read_text())
    assert rows["Refresh operations"]["kernel"] == truth["rpcit"]
    assert rows["Unmapped pages"]["kernel"] == truth["unmaps"]
    assert {r["verdict"] for r in rows.values()} == {"match"}
    assert {r["device"] for r in rows.values()} == {"0004:00:00.0"}


def test_debugfs_counters_say_what_the_trace_missed(tmp_path: Path) -> None:
    from tracetool.counters import read_snapshot

    trace = FLUSH / "s390-fio-zvm-lazy.txt"
    before = FLUSH / "s390-fio-zvm-lazy.statistics-before"
    after = tmp_path / "after"
    text = (FLUSH / "s390-fio-zvm-lazy.statistics-after").read_text()
    refresh = read_snapshot(FLUSH / "s390-fio-zvm-lazy.statistics-after").counters
    after.write_text(
        text.replace(
            f"Refresh operations:\t{refresh['Refresh operations']}",
            f"Refresh operations:\t{refresh['Refresh operations'] + 7}",
        )
    )
    args = ["stats", str(trace), "--counters", f"0004:00:00.0={before},{after}", "--no-cache"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Refresh operations: trace misses 7: lost events, or probes attached" in result.stdout
    # Not a statistics file: the line that is not, and what to give instead.
    bad = CliRunner().invoke(main, ["stats", str(trace), "--counters", f"{trace},{trace}"])
    assert bad.exit_code == 2
    assert f"{trace}:1: not a line of the s390 PCI debugfs statistics file" in bad.output
    half = CliRunner().invoke(main, ["stats", str(trace), "--counters", str(before)])
    assert half.exit_code == 2 and "give two snapshots, BEFORE,AFTER" in half.output


def log2_rows(values: list[int]) -> pl.LazyFrame:
    """bpftrace hist() buckets of ``values``: [0], [1], [2, 4), [4, 8), ..."""
    counts: dict[tuple[int, int], int] = {}
    for v in values:
        lo = 0 if v == 0 else 1 << (v.bit_length() - 1)
        hi = 1 if v == 0 else lo * 2
        counts[(lo, hi)] = counts.get((lo, hi), 0) + 1
    rows = [
        {
            "file": "f",
            "line": i,
            "ts": 0,
            "map": "@m",
            "keys": [],
            "func": "hist",
            "lower": lo,
            "upper": hi,
            "count": c,
        }
        for i, ((lo, hi), c) in enumerate(sorted(counts.items()))
    ]
    return pl.LazyFrame(rows, schema=tracetool.events.RECORD_SCHEMAS["histograms"])


@given(values=st.lists(st.integers(0, 10**7), min_size=1, max_size=300))
@settings(max_examples=150, deadline=None)
def test_bucket_percentile_bounds_hold_the_exact_value(values: list[int]) -> None:
    from tracetool.stats import buckets

    (row,) = buckets(log2_rows(values)).collect().to_dicts()
    assert row["count"] == len(values)
    assert row["min_lo"] <= min(values) and max(values) < row["max_hi"]
    for name, q in QUANTILES.items():
        exact = naive_quantile(values, q)
        assert row[f"{name}_lo"] <= exact <= row[f"{name}_hi"], (name, exact, row)
    mean = sum(values) / len(values)
    assert row["mean_lo"] <= mean <= row["mean_hi"]


def test_open_lhist_bucket_leaves_the_bound_unknown() -> None:
    from tracetool.stats import buckets

    rows = (
        log2_rows([5, 6])
        .collect()
        .vstack(
            pl.DataFrame(
                [
                    {
                        "file": "f",
                        "line": 9,
                        "ts": 0,
                        "map": "@m",
                        "keys": [],
                        "func": "hist",
                        "lower": 100,
                        "upper": None,
                        "count": 8,
                    }
                ],
                schema=tracetool.events.RECORD_SCHEMAS["histograms"],
            )
        )
    )
    (row,) = buckets(rows.lazy()).collect().to_dicts()
    assert (row["p50_lo"], row["p50_hi"]) == (100, None)
    assert row["mean_lo"] is None and row["open_buckets"] == 1


def test_bpftrace_hist_of_a_sample() -> None:
    trace = tracetool.parse(SAMPLES / "bpftrace" / "s390-rpcit-maps.txt")
    (row,) = tracetool.stats(trace).buckets.collect().to_dicts()
    assert (row["map"], row["count"], row["line"]) == ("@rpcit_ns", 340, 34)
    # 27 + 125 = 152 values below 1024 ns, then 22 more: rank 170 is in [1024, 2048).
    assert (row["p50_lo"], row["p50_hi"]) == (1024, 2048)


def test_rpcits_are_counted_per_function_handle_period() -> None:
    """Recovery re-enables the function with a new handle; a handle that comes back
    after another one is a new period."""
    from tracetool.stats import fh_periods

    def io(t: int, fh: int, ret: int = 0) -> str:
        ctx = "             fio-2300    [000] {}   700.{:06d}: "
        return "".join(
            ctx.format(flags, t + dt) + body + "\n"
            for flags, dt, body in (
                (
                    ".....",
                    0,
                    "dmamap: (s390_dma_map_pages+0x0/0x280) dev=0x8f3a40c8 "
                    'name="0004:00:00.0" size=0x1000',
                ),
                (
                    "...1.",
                    1,
                    f"rpcit: (zpci_refresh_trans+0x0/0x110) fn=0x{fh:x}00000000 "
                    "addr=0x100000000 range=0x1000",
                ),
                (
                    "...1.",
                    9,
                    f"rpcit_r: (__dma_purge_tlb+0x7c/0x120 <- zpci_refresh_trans) ret={ret}",
                ),
                (
                    ".....",
                    10,
                    "dmamap_r: (dma_map_page_attrs+0x9c/0x1a8 <- s390_dma_map_pages) "
                    "ret=0x100000000",
                ),
            )
        )

    text = io(0, 0x80A00000) + io(20, 0x80A00000) + io(40, 0x80A10000, ret=-12)
    text += io(60, 0x80A00000)
    spans = tracetool.timeline(tracetool.parse_text(text).events).spans
    periods = fh_periods(spans).collect()
    assert periods.select("device", "period", "fh", "flushes", "failed").rows() == [
        ("0004:00:00.0", 1, 0x80A00000, 2, 0),
        ("0004:00:00.0", 2, 0x80A10000, 1, 1),
        ("0004:00:00.0", 3, 0x80A00000, 1, 0),
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_files_hold_what_json_holds(tmp_path: Path, fmt: str) -> None:
    lazy = SAMPLES / "flush" / "s390-fio-zvm-lazy.txt"
    args = ["stats", str(lazy), "--by", "device", "--window", "1ms", "--no-cache"]
    doc = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).stdout)
    out = tmp_path / "figures"
    result = CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(doc)} tables to {out}" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{fmt}" for n in doc)
    for name, rows in doc.items():
        path = out / f"{name}.{fmt}"
        table = pl.read_parquet(path) if fmt == "parquet" else pl.read_csv(path)
        assert table.columns == (list(rows[0]) if rows else table.columns), name
        assert table.to_dicts() == rows, name


def test_table_files_need_a_directory(tmp_path: Path) -> None:
    base = ["stats", str(RPCIT), "--no-cache", "--format", "parquet"]
    bare = CliRunner().invoke(main, base)
    assert bare.exit_code == 2 and "name a directory for them with -o DIR" in bare.output
    taken = tmp_path / "stats.parquet"
    taken.write_text("mine")
    onto_file = CliRunner().invoke(main, [*base, "-o", str(taken)])
    assert onto_file.exit_code == 2 and "and this is a file" in onto_file.output
    assert taken.read_text() == "mine"  # nothing the user gave is overwritten


def test_by_op_is_the_grouping_latencies_always_have() -> None:
    args = ["stats", str(RPCIT), "--no-cache", "--format", "json"]
    plain = CliRunner().invoke(main, args)
    with_op = CliRunner().invoke(main, [*args, "--by", "op"])
    assert with_op.exit_code == 0, with_op.output
    assert json.loads(with_op.stdout) == json.loads(plain.stdout)
    bad = CliRunner().invoke(main, [*args, "--by", "opp"])
    assert bad.exit_code == 2 and "op" in bad.output


def test_csv_flattens_nested_columns() -> None:
    from tracetool.cli import flat_for_csv

    df = pl.DataFrame(
        {
            "lines": [["a.txt:3: x", "a.txt:4: y"], None],
            "sizes": [[1, 2], None],
            "args": [{"fh": 1, "name": "dev"}, {"fh": None, "name": None}],
            "n": [1, 2],
        }
    )
    flat = flat_for_csv(df)
    assert flat.schema == {"lines": pl.String, "sizes": pl.String, "args": pl.String, "n": pl.Int64}
    assert flat.to_dicts() == [
        {
            "lines": "a.txt:3: x | a.txt:4: y",
            "sizes": "[1,2]",
            "args": '{"fh":1,"name":"dev"}',
            "n": 1,
        },
        {"lines": None, "sizes": None, "args": '{"fh":null,"name":null}', "n": 2},
    ]


def test_enomem_failures_and_the_global_rpcits_they_trigger() -> None:
    """The sample's two -ENOMEM RPCITs (one in iotlb_sync_map, one in __dma_purge_tlb)
    are each followed by their task's global RPCIT; the flush_iotlb_all of another task
    is global but no fallback."""
    (row,) = tracetool.stats(tracetool.parse(RPCIT)).flushes.collect().to_dicts()
    assert (row["failed"], row["enomem"], row["fallback"], row["global"]) == (2, 2, 2, 3)
    result = CliRunner().invoke(main, ["stats", str(RPCIT), "--no-cache"])
    lines = result.stdout.splitlines()
    at = lines.index("device         failed  enomem  other  fallback")
    assert lines[at + 2].split() == ["fh@0x80a00000", "2", "2", "0", "2"]
    assert max(len(line) for line in lines) <= 80


def test_v67_maps_and_unmaps_count_once_against_the_kernel_counters() -> None:
    """From v6.7 a DMA-API map or unmap fires iommu:map/unmap itself: the pages the
    trace shows (compared with debugfs "Mapped pages"/"Unmapped pages") and the
    flushes' unmapped pages count each operation once."""
    from tracetool.counters import traced_counts
    from tracetool.stats import spans_and_ios

    sample = SAMPLES / "simulated" / "dma-iommu-strict-zvm.txt"
    truth = json.loads(sample.with_name(sample.name + ".truth.json").read_text())["summary"]
    trace = tracetool.parse(sample, use_cache=False)
    kinds = trace.events.group_by("event").len().collect()
    assert {"map", "unmap", "dmamap", "dmaunmap"} <= set(kinds["event"])  # both fired
    spans, _ = spans_and_ios(trace)
    counts = traced_counts(spans)["0004:00:00.0"]
    assert counts["Mapped pages"] == counts["Unmapped pages"] == truth["unmaps"]
    (flush,) = tracetool.stats(trace).flushes.collect().to_dicts()
    assert flush["unmaps"] == flush["unmap_pages"] == truth["unmaps"]
    assert flush["flushes_per_page"] == truth["rpcit"] / truth["unmaps"]


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["flush a", "io b", "dma_map c"]),
        st.lists(st.integers(0, 10**9) | st.integers(0, 50), min_size=1, max_size=400),
        min_size=1,
    ),
    st.integers(2, 40),
    st.sampled_from([2, 16, 1 << 13]),
)
def test_cdf_points_of_large_groups_lie_on_the_exact_cdf(
    groups: dict[str, list[int]], points: int, bins: int
) -> None:
    """Counted in bins (every group "large"), each point is a value of the group and
    the exact share of values up to it; the greatest value ends each CDF at 1. Ranked
    whole, the points are those of the in-memory thinning."""
    from tracetool.distributions import cdf, cdf_points

    samples = pl.DataFrame(
        [{"group": g, "value": v} for g, vs in groups.items() for v in vs],
        schema={"group": pl.String, "value": pl.Int64},
    )
    binned = cdf(samples.lazy(), points=points, exact_rows=0, bins=bins).collect()
    for group, values in groups.items():
        mine = binned.filter(pl.col("group") == group)
        assert 1 <= mine.height <= min(bins, len(set(values))) and mine.height <= 2 * points + 1
        for value, p in mine.select("value", "p").rows():
            assert value in values
            assert p == sum(v <= value for v in values) / len(values)
        assert mine["value"].to_list() == sorted(mine["value"]) and mine["p"][-1] == 1.0
        assert mine["value"][-1] == max(values)
    whole = cdf(samples.lazy(), points=points).collect()
    assert whole.equals(cdf_points(samples, points).sort("group", "value", maintain_order=True))


def test_stats_html_cdfs_come_bounded_from_the_stats() -> None:
    lazy = tracetool.stats(tracetool.parse(SAMPLES / "flush" / "s390-fio-zvm-lazy.txt"))
    points = lazy.cdf.collect()
    assert set(points["group"]) == set(lazy.durations.collect()["group"])
    assert points.group_by("group").len()["len"].max() <= 2 * 500 + 1  # "about 500"
