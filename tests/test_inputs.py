"""Inputs: directories, stdin, compression, sniffing errors, and the Parquet cache."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
import zstandard

import tracetool
from tracetool import cache
from tracetool.catalogue import formats
from tracetool.errors import InputError

LINE = "            bash-4411    [002] .....   530.500000: tracing_mark_write: hello\n"


def test_directory_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text(LINE)
    (tmp_path / "two.txt").write_text(
        "cpus=1\n            bash-1  [000]  1.000001: print:  tracing_mark_write: x\n"
    )
    trace = tracetool.parse(tmp_path)
    assert sorted(i.format for i in trace.inputs) == ["ftrace", "trace-cmd"]
    assert trace.events.collect().height == 2


def test_gzip_and_zstd(tmp_path: Path) -> None:
    gz = tmp_path / "t.txt.gz"
    gz.write_bytes(gzip.compress(LINE.encode()))
    zst = tmp_path / "t.txt.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(LINE.encode()))
    for path in (gz, zst):
        trace = tracetool.parse(path, use_cache=False)
        assert trace.events.select("body").collect().item() == "hello"


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(LINE.encode())))
    trace = tracetool.parse("-")
    assert trace.inputs[0].file == "<stdin>"
    assert trace.events.collect().height == 1


def test_unknown_content_lists_known_formats(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some prose\nnothing else\n")
    with pytest.raises(
        InputError,
        match=rf"notes.txt:1: cannot tell the format.*{', '.join(sorted(formats()))}.*--format",
    ):
        tracetool.parse(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        tracetool.parse(tmp_path / "nope.txt")


def test_forced_format_accounts_everything(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some prose\n" + LINE)
    trace = tracetool.parse(path, format="ftrace")
    assert trace.inputs[0].counts["diagnostics"] == 1 and trace.inputs[0].accounted()


def test_cache_roundtrip_and_invalidation(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(LINE)
    first = tracetool.parse(path)
    assert not first.inputs[0].cached
    second = tracetool.parse(path)
    assert second.inputs[0].cached
    assert first.events.collect().equals(second.events.collect())
    assert second.inputs[0].counts == first.inputs[0].counts
    # Touching the file (new mtime and size) invalidates the entry.
    path.write_text(LINE + LINE)
    third = tracetool.parse(path)
    assert not third.inputs[0].cached and third.events.collect().height == 2
    # The cache never writes next to the input.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
    assert cache.directory().is_dir()


def test_no_cache_leaves_no_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(LINE)
    before = set(cache.directory().iterdir()) if cache.directory().is_dir() else set()
    tracetool.parse(path, use_cache=False)
    after = set(cache.directory().iterdir()) if cache.directory().is_dir() else set()
    assert before == after


def test_chunked_parse_matches_single_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = []
    for i in range(400):
        lines.append(
            f"            bash-4411    [00{i % 4}] .....   530.{i:06d}: tracing_mark_write: m{i}\n"
        )
        if i % 7 == 0:
            lines.append(
                f"            bash-4411    [00{i % 4}] .....   530.{i:06d}: <stack trace>\n => f{i}\n => g{i}\n"
            )
    path = tmp_path / "t.txt"
    path.write_text("".join(lines))
    whole = tracetool.parse(path, use_cache=False).events.collect()
    monkeypatch.setattr("tracetool.inputs.CHUNK_BYTES", 997)
    chunked = tracetool.parse(path, use_cache=False)
    assert chunked.inputs[0].accounted()
    assert chunked.events.collect().equals(whole)
    assert os.path.getsize(path) > 997 * 10


def test_progress_reports_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.txt"
    path.write_text(LINE * 500)
    monkeypatch.setattr("tracetool.inputs.CHUNK_BYTES", 4096)
    seen: list[int] = []
    tracetool.parse(path, use_cache=False, progress=seen.append)
    assert len(seen) > 1
    assert sum(seen) == path.stat().st_size


def test_timestamp_precision_is_stated() -> None:
    kinds = {
        "            bash-1    [002] .....   530.500000: x: y\n": "us",
        "cpus=1\n            bash-1  [000]  2990.647399505: x: y\n": "ns",
        "            bash-1    [002] ..... 7603865355593: x: y\n": "counter",
        "# tracer: function_graph\n  2)   8.123 us    |  f();\n": "none",
    }
    for text, kind in kinds.items():
        assert tracetool.parse_text(text).inputs[0].meta["timestamps"] == kind, text


def test_empty_and_binary_inputs_are_explained(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.txt: is empty"):
        tracetool.parse(empty)
    dat = tmp_path / "trace.dat"
    dat.write_bytes(b"\x17\x08\x44tracing6\x00\x00\x00" + b"\x00" * 64)
    # A trace.dat goes to the native reader, which says where this one is damaged.
    with pytest.raises(InputError, match=r"trace\.dat: byte 13: expected a long size .*--via"):
        tracetool.parse(dat)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"ELF\x00\x01\x02" * 10)
    with pytest.raises(InputError, match="looks binary"):
        tracetool.parse(blob)
    # With an explicit format an empty input is simply an empty trace.
    assert tracetool.parse(empty, format="ftrace").inputs[0].lines == 0
