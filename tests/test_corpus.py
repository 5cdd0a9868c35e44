"""Every ftrace/trace-cmd/function_graph text file in ../shared/corpus is fully accounted
for and never crashes the parser (skipped when the corpus is not beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

import tracetool

DIRS = ("ftrace", "trace-cmd", "funcgraph")
FILES = (
    sorted(p for d in DIRS for p in (CORPUS / d).rglob("*") if p.is_file() and p.suffix != ".dat")
    if CORPUS.is_dir()
    else []
)

DMESG = (
    sorted(p for p in (CORPUS / "dmesg").rglob("*") if p.is_file())
    if (CORPUS / "dmesg").is_dir()
    else []
)

pytestmark = pytest.mark.corpus


@pytest.mark.skipif(not FILES, reason="../shared/corpus not present")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_file_is_accounted(path: Path) -> None:
    try:
        trace = tracetool.parse(path, use_cache=False)
    except tracetool.InputError as exc:
        # Not recognisably a trace (event format files, prose): forcing the format must
        # still account for every line, as diagnostics at worst.
        assert "known formats" in str(exc)
        trace = tracetool.parse(path, format="ftrace", use_cache=False)
    (info,) = trace.inputs
    assert info.accounted(), info
    assert info.lines == len(path.read_bytes().splitlines())
    diag = trace.diagnostics.collect()
    assert diag.filter(diag["kind"] == "unparsed").height == info.counts["diagnostics"]


@pytest.mark.skipif(not FILES, reason="../shared/corpus not present")
def test_captured_traces_parse_cleanly() -> None:
    # Real captures in the default layouts must produce no unparsed lines at all.
    clean = [
        "ftrace/block_stacktrace_option.trace.txt",
        "ftrace/block_stacktrace_symoffset_symaddr.trace.txt",
        "ftrace/block_userstacktrace.trace.txt",
        "ftrace/timer_irq_sched_global_clock_overrun.trace_pipe.txt",
        "ftrace/sched_block_x86tsc_clock.trace.txt",
        "ftrace/sched_block_uptime_clock.trace.txt",
        "ftrace/syscalls_openat_write_fsync.trace.txt",
        "ftrace/uprobe_libc_fsync_write_block.trace.txt",
        "trace-cmd/report_fullts_t_sched_irq_block.txt",
        "trace-cmd/report_latency_l_sched_irq_block.txt",
        "trace-cmd/report_tsdiff_sched_irq_block.txt",
    ]
    for name in clean:
        path = CORPUS / name
        if path.exists():
            info = tracetool.parse(path, use_cache=False).inputs[0]
            assert info.counts["diagnostics"] == 0, (name, info.counts)


@pytest.mark.skipif(not FILES, reason="../shared/corpus not present")
def test_corpus_checks_without_crash() -> None:
    """The timeline and every rule run on every real trace; none of them shows an s390
    IOMMU device, so none may report anything."""
    from tracetool.check import run

    checked = 0
    for path in FILES:
        try:
            trace = tracetool.parse(path, use_cache=False)
        except tracetool.InputError:
            continue
        result = run(trace)
        assert result.findings.height == 0, (path, result.findings)
        checked += 1
    assert checked >= 20


@pytest.mark.skipif(not DMESG, reason="../shared/corpus not present")
def test_corpus_kernel_logs_are_accounted() -> None:
    """Every kernel log, mail and crash-report file parses (as what it sniffs as, or as
    dmesg when it is prose) with every line accounted, and its crash reports assemble."""
    reports = 0
    for path in DMESG:
        try:
            trace = tracetool.parse(path, use_cache=False)
        except tracetool.InputError:
            trace = tracetool.parse(path, format="dmesg", use_cache=False)
        (info,) = trace.inputs
        assert info.accounted(), (path, info)
        assert info.lines == len(path.read_bytes().splitlines()), path
        crashes = trace.table("crashes").collect()
        assert crashes["title"].null_count() == 0, path
        reports += crashes.height
    assert reports >= 500
