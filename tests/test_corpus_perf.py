"""Every perf script file in ../shared/corpus/perf (the .gz one too) parses with every
line accounted for; real captures in the default layouts give no diagnostics at all
(skipped when the corpus is not beside the checkout)."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from conftest import CORPUS

import tracetool

FILES = sorted(p for p in (CORPUS / "perf").glob("*") if p.is_file()) if CORPUS.is_dir() else []

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not FILES, reason="../shared/corpus/perf not present"),
]


def _lines(path: Path) -> int:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return len(data.splitlines())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_file_is_perf_and_fully_accounted(path: Path) -> None:
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    assert info.format == "perf"
    assert info.accounted(), info
    assert info.lines == _lines(path)
    # Real perf output, whatever its options: nothing is left unexplained.
    assert info.counts["diagnostics"] == 0, trace.diagnostics.collect().head(5).to_dicts()
    events = trace.events.collect()
    assert events.height > 0
    assert events.filter(pl.col("event").is_null()).is_empty()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_callchains_belong_to_samples(path: Path) -> None:
    trace = tracetool.parse(path, use_cache=False)
    events = trace.events.collect()
    frames = events.select(pl.col("stack").list.len().fill_null(0).sum()).item()
    assert frames == trace.inputs[0].counts["records"]
    sampled = events.filter(pl.col("stack").is_not_null())
    # A sample with a callchain knows where it hit, from its line or its first frame.
    assert sampled.filter(pl.col("args").struct.field("sample_ip").is_null()).is_empty()


def test_corpus_headers_fill_meta() -> None:
    path = CORPUS / "perf" / "flamegraph_test_perf-cycles-instructions-01.txt"
    if not path.exists():
        pytest.skip("sample not in this corpus")
    meta = tracetool.parse(path, use_cache=False).inputs[0].meta
    assert meta["perf_version"] == "4.13.0-rc1" and meta["ncpus"] == 8
    assert meta["arch"] == "x86_64" and str(meta["cmdline"]).startswith("/usr/bin/perf record")


def test_corpus_ns_tracepoints_are_typed() -> None:
    path = CORPUS / "perf" / "perf_script_ns_sched_block_irq.txt"
    if not path.exists():
        pytest.skip("sample not in this corpus")
    trace = tracetool.parse(path, use_cache=False)
    assert trace.inputs[0].meta["timestamps"] == "ns"
    events = trace.events.collect()
    issue = events.filter(pl.col("event") == "block_rq_issue")
    assert issue.height > 0
    # perf 6.1 prints the class as a number ("0x2,0,4"); it reads as the kernel's name.
    classes = set(issue["args"].struct.field("ioprio_class").to_list())
    assert classes == {"be", "none"}
    switch = events.filter(pl.col("event") == "sched_switch")
    assert switch["args"].struct.field("next_pid").null_count() == 0
