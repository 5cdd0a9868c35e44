"""The native trace.dat reader against trace-cmd's own report, goldens, and bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.errors import InputError
from tracetool.parse import parse_text
from tracetool.tracedat import TraceDatError, container, reader

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "tracedat"
FILES = sorted(SAMPLES.glob("*.dat"))
COLUMNS = ["ts", "cpu", "pid", "comm", "event", "body", "args"]

# name: (version, compression, events, losses, first event (ts, cpu, event, body))
GOLDEN = {
    "x86-v7.dat": (7, "none", 1030, 0),
    "x86-v7-zstd.dat": (7, "zstd", 1030, 0),
    "x86-v6.dat": (6, "none", 1030, 0),
    "x86-v7-instance.dat": (7, "zstd", 273, 0),
    "x86-v7-overflow.dat": (7, "none", 418, 2),
    "x86-v6-overflow.dat": (6, "none", 418, 2),
}
FIRST_MAIN = (
    46496121191057,
    0,
    "sys_enter_openat",
    "dfd: 0xffffff9c, filename: 0x563d5176b010, flags: 0x00000241, mode: 0x000001b6",
)


def trace_cmd() -> str | None:
    exe = shutil.which("trace-cmd")
    if exe is None and os.environ.get("CI") == "true":
        pytest.fail("trace-cmd is not installed; .ci/run installs it")
    return exe


def test_samples_exist() -> None:
    assert {f.name for f in FILES} == set(GOLDEN)
    assert all(f.stat().st_size < 1_000_000 for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    version, compression, events, losses = GOLDEN[path.name]
    r = reader.read_file(path)
    assert r.info.meta["container"] == f"trace.dat v{version}"
    assert r.info.meta.get("compression", "none").split()[0] == compression
    assert r.events.height == events
    assert r.losses.height == losses
    assert r.diagnostics.is_empty()
    assert r.info.accounted()
    assert r.events["ts"].is_sorted()
    assert r.events["line"].to_list() == list(range(1, events + 1))


def test_first_rows_and_declared_args() -> None:
    ev = reader.read_file(SAMPLES / "x86-v7.dat").events
    first = ev.row(0, named=True)
    assert (first["ts"], first["cpu"], first["event"], first["body"]) == FIRST_MAIN
    switch = ev.filter(pl.col("event") == "sched_switch").row(0, named=True)
    assert switch["body"] == "make.sh:5176 [120] R ==> make.sh:5188 [120]"
    assert switch["args"]["prev_pid"] == 5176 and switch["args"]["next_comm"] == "make.sh"
    marker = ev.filter(pl.col("event") == "print").row(0, named=True)
    assert marker["args"]["text"] == "tt: trace.dat sample begins"
    assert marker["args"]["ip"] == "tracing_mark_write"
    block = ev.filter(pl.col("event") == "block_rq_issue").row(0, named=True)
    assert block["args"]["dev_major"] == 254 and block["args"]["rwbs"]


def test_same_events_in_every_version() -> None:
    a = reader.read_file(SAMPLES / "x86-v7.dat").events.select(COLUMNS)
    for name in ("x86-v6.dat", "x86-v7-zstd.dat"):
        assert reader.read_file(SAMPLES / name).events.select(COLUMNS).equals(a)


def test_losses_from_missed_events_flags() -> None:
    losses = reader.read_file(SAMPLES / "x86-v7-overflow.dat").losses
    assert losses["cpu"].to_list() == [0, 1]
    assert losses["lost"].to_list() == [None, 6390]
    assert losses["marker"].unique().to_list() == ["events-dropped"]
    assert losses["end_ts"].is_not_null().all()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_matches_trace_cmd_report(path: Path) -> None:
    exe = trace_cmd()
    if exe is None:
        pytest.skip("trace-cmd is not installed")
    text = subprocess.run(
        [exe, "report", "-t", "-i", str(path)], capture_output=True, text=True, check=True
    ).stdout
    expected = parse_text(text, "trace-cmd")
    native = reader.read_file(path)
    want = expected.events.collect().select(COLUMNS)
    got = native.events.select(COLUMNS)
    assert got.height == want.height
    diff = got.with_row_index().join(want.with_row_index(), on="index", suffix="_t")
    bad = diff.filter(pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_t")) for c in COLUMNS]))
    assert bad.is_empty(), bad.head(3).to_dicts()
    keys = ["cpu", "lost", "end_ts", "marker"]
    assert native.losses.select(keys).equals(expected.losses.collect().select(keys))


def test_parse_routes_binary_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACETOOL_CACHE_DIR", str(tmp_path / "cache"))
    path = SAMPLES / "x86-v7-zstd.dat"
    first = tracetool.parse(path)
    again = tracetool.parse(path)
    assert first.inputs[0].format == "trace.dat" and not first.inputs[0].cached
    assert again.inputs[0].cached
    assert again.events.collect().equals(first.events.collect())


def test_via_trace_cmd(tmp_path: Path) -> None:
    if trace_cmd() is None:
        pytest.skip("trace-cmd is not installed")
    path = SAMPLES / "x86-v7-overflow.dat"
    via = tracetool.parse(path, via="trace-cmd", use_cache=False)
    native = tracetool.parse(path, use_cache=False)
    assert via.inputs[0].format == "trace-cmd"
    cols = ["ts", "cpu", "event", "body", "args"]
    assert via.events.collect().select(cols).equals(native.events.collect().select(cols))


def test_cli_parse(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tracetool.cli import main

    out = CliRunner().invoke(main, ["parse", "--no-cache", str(SAMPLES / "x86-v6.dat")])
    assert out.exit_code == 0, out.output
    assert "sys_enter_openat" in out.output and "1030 events" in out.output


def test_zstd_missing_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(TraceDatError, match="zstandard"):
        reader.read_file(SAMPLES / "x86-v7-zstd.dat")


def test_stdin_trace_dat_is_explained() -> None:
    from tracetool.inputs import choose_format

    with pytest.raises(InputError, match=r"trace\.dat"):
        choose_format("<stdin>", container.MAGIC + b"7\0", None)


# -- damaged files ---------------------------------------------------------------------

DATA = {p.name: p.read_bytes() for p in FILES}


def _read_damaged(data: bytes) -> None:
    try:
        r = reader.read_bytes_(data, "damaged.dat")
    except TraceDatError as exc:
        assert "byte " in str(exc)
        return
    except InputError:
        return
    # Read to the end: every problem is a diagnostic that says where.
    for reason in r.diagnostics.filter(pl.col("kind") != "args")["reason"].to_list():
        assert (
            "byte" in reason or "records" in reason or "print fmt" in reason or "format" in reason
        )


@pytest.mark.parametrize("name", sorted(DATA))
def test_every_truncation_point_of_the_header(name: str) -> None:
    data = DATA[name]
    for cut in range(0, 600, 7):
        _read_damaged(data[:cut])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(DATA)),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_truncated_anywhere(name: str, cut: float) -> None:
    data = DATA[name]
    _read_damaged(data[: int(len(data) * cut)])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(DATA)),
    where=st.floats(min_value=0.0, max_value=1.0),
    junk=st.binary(min_size=1, max_size=16),
)
def test_corrupted_anywhere(name: str, where: float, junk: bytes) -> None:
    data = bytearray(DATA[name])
    at = int((len(data) - len(junk)) * where)
    data[at : at + len(junk)] = junk
    _read_damaged(bytes(data))


def test_truncation_message_names_offset_and_expectation() -> None:
    data = DATA["x86-v6.dat"]
    with pytest.raises(TraceDatError, match=r"byte \d+: expected .*remain"):
        reader.read_bytes_(data[:300], "cut.dat")
    with pytest.raises(TraceDatError, match="magic"):
        reader.read_bytes_(b"\x17\x08\x44tracinX", "bad.dat")


# -- chunks and worker processes ---------------------------------------------------------


@pytest.mark.parametrize("name", ["x86-v7.dat", "x86-v7-instance.dat", "x86-v6-overflow.dat"])
def test_chunked_and_parallel_give_the_same_tables(name: str, tmp_path: Path) -> None:
    """Chunks of 97 records, built here or in two worker processes, give the frames of
    the whole file read at once."""
    from tracetool.events import scan_events
    from tracetool.tracedat.parallel import read_parts

    path = SAMPLES / name
    whole = reader.read_bytes_(path.read_bytes(), str(path), chunk_rows=1 << 20)
    chunked = reader.read_bytes_(path.read_bytes(), str(path), chunk_rows=97)
    assert chunked.events.equals(whole.events)
    assert chunked.diagnostics.equals(whole.diagnostics)
    for processes in (1, 2):
        sink = tmp_path / f"p{processes}"
        sink.mkdir()
        diags, losses, info = read_parts(
            path, str(path), sink, chunk_rows=97, processes=processes, parallel_bytes=0
        )
        assert len(list(sink.glob("events-*.parquet"))) == -(-whole.events.height // 97)
        events = scan_events(str(sink / "events-*.parquet")).collect()
        assert events.equals(whole.events)
        assert diags.equals(whole.diagnostics)
        assert losses.equals(whole.losses)
        assert info.counts == whole.info.counts


def test_worker_failure_is_raised(tmp_path: Path) -> None:
    from tracetool.tracedat.parallel import Pool

    with Pool(1) as pool, pytest.raises(RuntimeError, match="worker process failed"):
        pool.map("part_name", [("not a number",)])
